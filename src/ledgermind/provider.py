"""One provider on one port: registered models served for payment, private datasets served to holders.

``build_provider`` wires the parts a home already has: its acting account (signs receipts and access
statements, is paid through the PaymentChannels contract), its log (takes every receipt and access decision),
its chain and deployments (PaymentChannels, the Marketplace that says who holds access tokens or licences,
the ProviderRegistry where the endpoint is announced) and its blob store (the encrypted datasets offered with
``Client.offer_dataset``). The result is an ASGI app::

    GET  /healthz, /v1/models, /v1/models/{id}          POST /v1/models/{id}/infer      GET /v1/receipts/{n}
    GET  /v1/datasets/{id}/terms                        GET  /v1/datasets/{id}

Models are refused at start-up unless their file fingerprints to the registered digest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgermind.errors import InvalidInputError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ledgermind.access.provider import AccessService
    from ledgermind.access.store import AccessStore
    from ledgermind.client import Client
    from ledgermind.inference.service import InferenceService


@dataclass
class Provider:
    """A built provider: its app and the services behind it. ``close()`` releases the access store."""

    app: FastAPI
    address: str
    models: list[dict[str, Any]]
    datasets: list[dict[str, Any]]
    inference: InferenceService | None
    access: AccessService | None
    _store: AccessStore | None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _computed_by(client: Client, ref: str) -> Any:
    """The function that computes a model whose file holds parameters only, when ledgermind trained it (a
    federation's final model); None for self-contained model files."""
    from ledgermind.federated.service import model_function

    row = client.registry.resolve(ref, "model")
    return model_function(client.ledger.read(row.log_index).statement.predicate)


def build_provider(
    client: Client,
    models: list[tuple[str, str | os.PathLike[str] | None]],
    *,
    price: int = 0,
    token: str | None = None,
    datasets: bool = True,
    settle_interval: float = 30.0,
) -> Provider:
    """Serve ``models`` ((reference, file or None for the stored copy) pairs) at ``price`` per input row in
    ``token`` ("native", "demo" or an ERC-20 address), and, with ``datasets``, the private datasets offered in
    this home. Holders of the model's access token or licence on the Marketplace are served without paying.

    Raises InvalidInputError when there is nothing to serve, ModelMismatchError for a model file that is not
    the registered model, NotFoundError for an unknown model, ChainError when a contract is missing (external
    chains: run ``ledgermind deploy``).
    """
    from fastapi import FastAPI

    from ledgermind.access.provider import access_router
    from ledgermind.access.serve import service_from_client
    from ledgermind.inference.adapters import load_registered
    from ledgermind.inference.server import create_app
    from ledgermind.inference.service import InferenceService, Offer

    market = client.market()  # deploys the contracts first on the embedded chain
    pay_in = market.token_address(token)
    offers = [Offer(load_registered(client, ref, path, fn=_computed_by(client, ref)), price) for ref, path in models]
    gate = market.governance()
    if gate is not None:  # the consortium decides what may be deployed: refuse models built on unapproved data
        from ledgermind.governance.onchain import GovernanceContract

        gov = GovernanceContract(market.chain, gate)
        for offer in offers:
            if not gov.lineage_approved(offer.model.digest):
                raise InvalidInputError(
                    f"refusing to serve {offer.model.name!r}: its on-chain lineage includes a dataset governance "
                    f"{gate} has not approved (see 'ledgermind gov status {offer.model.digest[:12]}')")
    access_service = store = None
    offered: list[dict[str, Any]] = []
    if datasets:
        access_service, store = service_from_client(client, market.address)
        offered = [{"id": o.asset, "name": o.name} for o in store.offers()]
    if not offers and not offered:
        raise InvalidInputError("nothing to serve: give a registered model, or offer a private dataset first "
                                "('ledgermind register dataset PATH --private')")
    service = None
    if offers:
        service = InferenceService.from_client(client, offers, token=pay_in, marketplace=market.address)
        app: FastAPI = create_app(service, settle_interval=settle_interval)
    else:
        app = FastAPI(title="ledgermind provider", docs_url=None, redoc_url=None)
    if access_service is not None:
        app.include_router(access_router(access_service))
    return Provider(app, client.account().address,
                    [{"id": o.model.digest, "name": o.model.name, "price": str(price), "token": pay_in} for o in offers],
                    offered, service, access_service, store)

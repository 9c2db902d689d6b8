"""Who serves a model: the ProviderRegistry contract, behind one function.

A provider announces ``(endpoint, price, token)`` for a model token of the AssetRegistry; anyone may announce
(clients check the signed receipts of what they get, so serving needs no permission). ``discover_providers``
is the only place that reads the contract: swap it for another source (a static list, a DNS record) and the
client does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgermind.chain.connection import Chain, Receipt
from ledgermind.errors import InvalidInputError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

ANNOUNCE_GAS = 250_000


@dataclass(frozen=True)
class ProviderInfo:
    """A provider of a model: its account (signs receipts, receives channel payments), endpoint, price per row."""

    address: str
    endpoint: str
    price: int
    token: str

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.address, "endpoint": self.endpoint, "price": str(self.price), "token": self.token}


def model_token_id(digest: str) -> int:
    """A model digest (64 hex, optionally ``sha256:``/``0x``-prefixed) as the uint256 the contracts key on."""
    h = digest.removeprefix("sha256:").removeprefix("0x")
    if len(h) != 64:
        raise InvalidInputError(f"model id must be a 64-hex digest, got {digest!r}")
    try:
        return int(h, 16)
    except ValueError:
        raise InvalidInputError(f"model id must be a 64-hex digest, got {digest!r}") from None


def _registry(chain: Chain, address: str) -> Any:
    from web3 import Web3

    from ledgermind.contracts import load

    return chain.w3.eth.contract(address=Web3.to_checksum_address(address), abi=load("ProviderRegistry")["abi"])


def discover_providers(chain: Chain, registry: str, model: str) -> list[ProviderInfo]:
    """Every provider announced for ``model`` (its digest) in the ProviderRegistry at ``registry``, in the
    registry's order. Raises ChainError if the chain cannot answer."""
    contract = _registry(chain, registry)
    mid = model_token_id(model)
    out: list[ProviderInfo] = []
    page_size = 32  # the contract's PAGE_SIZE
    while True:
        page = chain.call(contract.functions.providers(mid, len(out)))
        out.extend(ProviderInfo(p[0], p[1], int(p[2]), p[3]) for p in page)
        if len(page) < page_size:
            return out


def announce(chain: Chain, registry: str, account: LocalAccount, model: str, endpoint: str, price: int,
             token: str = "0x0000000000000000000000000000000000000000") -> Receipt:
    """Announce that ``account`` serves ``model`` at ``endpoint`` for ``price`` per row (replaces an earlier
    announcement). The model must be minted on the AssetRegistry. Raises ChainError with the contract's reason."""
    chain.ensure_funds(account.address)
    return chain.transact(account, _registry(chain, registry).functions.announce(model_token_id(model), endpoint,
                                                                                   price, token), ANNOUNCE_GAS)

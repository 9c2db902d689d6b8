"""State changes, each signed by its actor (EIP-712 request headers, see ``ledgermind.node.signing``).

- ``POST /v1/statements``: append a statement the actor signed (DSSE envelope); the envelope's signer must be the
  request's signer.
- ``POST /v1/assets``: register a dataset or model record (dataset/v1 or model/v1 statement the actor signed,
  naming the asset by digest: the bytes stay with their owner). Lineage must be registered first; a digest
  registered before answers the first registration with ``created: false`` and appends nothing.
- ``POST /v1/anchors``: anchor the latest checkpoint now. Only the node's operators (accounts in its keystore).
- ``POST /v1/governance/proposals/{id}/votes``: vote as a Governance member. The vote is a transaction from the
  member's account, so the node must hold the member's key (its keystore); others vote from their own home.

Each write is acknowledged only once durable in the log (and, for anchors and votes, mined).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from ledgermind.client import Client
from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.node import models as m
from ledgermind.node.app import state_of
from ledgermind.node.auth import Refused, check_request
from ledgermind.node.signing import EXPIRY_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SIGNER_HEADER
from ledgermind.node.workers import Worker
from ledgermind.statements import DATASET, MODEL, SignedStatement, open_envelope
from ledgermind.statements.dsse import Envelope

router = APIRouter(tags=["writes"])
SIGNED = {
    401: {"model": m.Error, "description": "Unsigned, badly signed, expired or replayed request"},
    403: {"model": m.Error, "description": "The signer may not do this"},
    400: {"model": m.Error}, 404: {"model": m.Error}, 413: {"model": m.Error}, 429: {"model": m.Error},
    503: {"model": m.Error},
}
_HEADERS_DOC = (f"Signed request: headers {SIGNER_HEADER}, {NONCE_HEADER}, {EXPIRY_HEADER}, {SIGNATURE_HEADER} "
                "(EIP-712, see GET /v1/node).")


async def signer_of(request: Request) -> str:
    """The verified signer of this request, once its nonce is durably spent. Raises Refused(401)."""
    state = state_of(request)
    body = await request.body()
    # the path as sent (percent-encoded), which is what the client signed
    path = request.scope.get("raw_path", b"").decode("latin-1") or request.scope["path"]
    signer, nonce, expiry = check_request(request.headers, request.method, path, body, chain_id=state.chain_id,
                                          node=state.origin)
    await asyncio.wrap_future(state.nonces.spend(signer, nonce, expiry))
    return signer


Signer = Depends(signer_of)


def _envelope(body: m.EnvelopeBody, signer: str) -> SignedStatement:
    """The statement, verified and checked to be signed by the request's signer. Raises InvalidInputError,
    Refused(403)."""
    statement = open_envelope(Envelope.from_json(body.envelope.model_dump()))
    if statement.signer.lower() != signer.lower():
        raise Refused(403, f"the statement is signed by {statement.signer}, the request by {signer}: "
                           f"each actor submits its own statements")
    return statement


@router.post("/v1/statements", response_model=m.Submitted, responses=SIGNED, description=_HEADERS_DOC)
async def submit(request: Request, body: m.EnvelopeBody, signer: str = Signer) -> dict[str, Any]:
    """Append a statement signed by the actor (any accepted predicate type: events, evaluations...)."""
    statement = _envelope(body, signer)
    # verified above, so appended as is (``Ledger.submit`` without its second check); the writer only queues it
    # and is free at once, and the log commits the statements arriving together in one transaction
    queued = await state_of(request).writes.run(lambda w: w.client.ledger.store.submit([statement.entry]))
    index = await asyncio.wrap_future(queued)
    return {"logIndex": index, "signer": statement.signer, "predicateType": statement.statement.predicate_type,
            "subject": statement.statement.digest}


def _register(client: Client, entry: bytes) -> dict[str, Any]:
    statement = open_envelope(entry).statement
    kind = {DATASET: "dataset", MODEL: "model"}.get(statement.predicate_type)
    if kind is None:
        raise InvalidInputError(f"an asset registration is a dataset/v1 or model/v1 statement, not "
                                f"{statement.predicate_type}")
    registry = client.registry
    registry.sync()
    existing = registry.index.asset(statement.digest)
    if existing is not None:
        if existing.kind != kind:
            raise InvalidInputError(f"{statement.digest[:12]} is already registered as a {existing.kind}, not a {kind}")
        return {"id": existing.digest, "kind": existing.kind, "name": existing.name, "logIndex": existing.log_index,
                "signer": existing.signer, "created": False}
    p = statement.predicate
    for relation, want in (("trainingDatasets", "dataset"), ("parentModels", "model")):
        for ref in p.get(relation, []):
            row = registry.index.asset(ref["digest"])
            if row is None or row.kind != want:
                raise NotFoundError(f"{relation} names {ref['digest'][:12]}, which is not a registered {want}: "
                                    f"register it first")
            if ref["digest"] == statement.digest:
                raise InvalidInputError("a model cannot list itself in its own lineage")
    done = client.submit(entry)
    registry.sync()
    return {"id": statement.digest, "kind": kind, "name": statement.subjects[0][0], "logIndex": done["logIndex"],
            "signer": done["signer"], "created": True}


@router.post("/v1/assets", response_model=m.Registration, responses=SIGNED, description=_HEADERS_DOC)
async def register(request: Request, body: m.EnvelopeBody, signer: str = Signer) -> dict[str, Any]:
    """Register a dataset or model by its digest and metadata (a dataset/v1 or model/v1 statement the actor
    signed; build one with ``ledgermind.node.signing.path_envelope``)."""
    entry = _envelope(body, signer).entry
    return await state_of(request).writes.run(lambda w: _register(w.client, entry))


def _operator(client: Client, signer: str) -> None:
    if signer.lower() not in {a.lower() for a in client.keystore.addresses()}:
        raise Refused(403, f"{signer} is not an operator of this node (an account in its keystore)")


@router.post("/v1/anchors", response_model=m.AnchorResult, responses=SIGNED, description=_HEADERS_DOC)
async def anchor(request: Request, signer: str = Signer) -> dict[str, Any]:
    """Anchor the log's latest checkpoint on chain now (operators only)."""
    def run(w: Worker) -> dict[str, Any]:
        _operator(w.client, signer)
        return w.client.anchor()

    return await state_of(request).writes.run(run)


@router.post("/v1/governance/proposals/{proposal_id}/votes", response_model=m.VoteResult, responses=SIGNED,
             description=_HEADERS_DOC)
async def vote(request: Request, body: m.VoteBody, proposal_id: int = Path(ge=1, le=2**62),
               signer: str = Signer) -> dict[str, Any]:
    """Vote on a proposal as the signer, a Governance member whose key this node holds."""
    def run(w: Worker) -> dict[str, Any]:
        _operator(w.client, signer)
        with Client(settings=dataclasses.replace(w.client.settings, account=signer)) as member:
            return member.gov_vote(proposal_id, body.support)

    return await state_of(request).writes.run(run)

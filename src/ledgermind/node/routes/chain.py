"""Public reads of what lives on chain, with the statements the log holds about it: transactions, market listings and sales,
federated training tasks (rounds, scores, rewards, slashing), governance proposals. On the embedded chain the
contracts are deployed on first use, as the CLI does; on an external chain without them the answer is 503."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.node import models as m
from ledgermind.node.app import state_of
from ledgermind.node.reading import MAX_PAGE, statements
from ledgermind.node.workers import Worker
from ledgermind.statements import FEDERATION, GOVERNANCE, MARKET

router = APIRouter()
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": m.Error}, 503: {"model": m.Error}}
SALES = {"buy-access", "buy-licence", "buy-asset", "dispense"}


def _all(client: Any, predicate: str, keep: Any, limit: int = 10_000) -> list[dict[str, Any]]:
    """Statements of ``predicate`` whose predicate passes ``keep``, oldest first, at most ``limit``."""
    out: list[dict[str, Any]] = []
    start = 0
    while len(out) < limit and (page := statements(client, predicate=predicate, start=start, limit=MAX_PAGE)):
        out.extend(s for s in page if keep(s["statement"]["predicate"]))
        start = page[-1]["logIndex"] + 1
    return out[:limit]


@router.get("/v1/chain/transactions/{tx_hash}", response_model=m.Transaction, responses=ERRORS, tags=["chain"])
async def transaction(request: Request, tx_hash: str = Path(pattern="^0x[0-9a-fA-F]{64}$")) -> dict[str, Any]:
    """A transaction on the node's chain with its receipt: sender, recipient, value, block, status, gas used."""
    def read(w: Worker) -> dict[str, Any]:
        from web3.exceptions import TransactionNotFound

        chain = w.client.chain()
        try:
            tx = chain.w3.eth.get_transaction(tx_hash)
            receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            raise NotFoundError(f"no transaction {tx_hash} on chain {chain.chain_id}") from None
        return {"hash": tx_hash.lower(), "chainId": chain.chain_id, "from": tx["from"], "to": tx.get("to"),
                "value": str(tx["value"]), "nonce": int(tx["nonce"]), "blockNumber": int(receipt["blockNumber"]),
                "blockHash": "0x" + bytes(receipt["blockHash"]).hex(), "status": int(receipt["status"]),
                "gasUsed": int(receipt["gasUsed"]), "contractAddress": receipt.get("contractAddress"),
                "logs": len(receipt["logs"])}

    return await state_of(request).reads.run(read)


@router.get("/v1/market/listings", response_model=list[m.Listing], responses=ERRORS, tags=["market"])
async def listings(request: Request) -> list[dict[str, Any]]:
    """Every asset on sale on the Marketplace: access tokens, licences, the NFT itself, dispensers."""
    return await state_of(request).reads.run(lambda w: w.client.listings())


@router.get("/v1/market/sales", response_model=list[m.EntrySummary], tags=["market"])
async def sales(request: Request, limit: int = Query(100, ge=1, le=MAX_PAGE)) -> list[dict[str, Any]]:
    """Purchases recorded in the log (market/v1 statements of buyers), newest last."""
    return await state_of(request).reads.run(
        lambda w: _all(w.client, MARKET, lambda p: p.get("action") in SALES)[-limit:])


@router.get("/v1/federations", response_model=list[m.FederationTask], responses=ERRORS, tags=["federations"])
async def federations(request: Request) -> list[dict[str, Any]]:
    """Federated training tasks on chain: terms, status, current round."""
    def read(w: Worker) -> list[dict[str, Any]]:
        from ledgermind.federated.service import contract_of

        fed = contract_of(w.client)
        return [fed.task(i).to_json() for i in range(1, fed.task_count() + 1)]

    return await state_of(request).reads.run(read)


@router.get("/v1/federations/{task_id}", response_model=m.FederationDetail, responses=ERRORS, tags=["federations"])
async def federation(request: Request, task_id: int = Path(ge=1, le=2**62)) -> dict[str, Any]:
    """A task: its state on chain (participants with stakes and rewards owed, rounds with rewarded and slashed
    amounts) and its statements (each round's scores, contributions, flags and why)."""
    def read(w: Worker) -> dict[str, Any]:
        from ledgermind.federated.service import contract_of

        fed = contract_of(w.client)
        if task_id > fed.task_count():
            raise NotFoundError(f"no federated task {task_id} on chain {fed.chain.chain_id}")
        status = w.client.fed_status(task_id)
        found = _all(w.client, FEDERATION, lambda p: p.get("taskId") == task_id
                     and str(p.get("contract", "")).lower() == fed.address.lower())
        return {"task": status["task"], "participants": status["participants"], "rounds": status["rounds"],
                "statements": found}

    return await state_of(request).reads.run(read)


@router.get("/v1/governance", response_model=m.GovernanceOverview, responses=ERRORS, tags=["governance"])
async def governance(request: Request) -> dict[str, Any]:
    """The consortium's Governance: quorum, timelock, voting period, the Marketplace gate, every proposal."""
    return await state_of(request).reads.run(lambda w: w.client.gov_status())


@router.get("/v1/governance/proposals/{proposal_id}", response_model=m.ProposalDetail, responses=ERRORS,
            tags=["governance"])
async def proposal(request: Request, proposal_id: int = Path(ge=1, le=2**62)) -> dict[str, Any]:
    """A proposal as the contract holds it, and the governance/v1 statements of its proposal, votes, execution."""
    def read(w: Worker) -> dict[str, Any]:
        from ledgermind.governance.service import contract_of

        gov = contract_of(w.client)
        try:
            p = gov.proposal(proposal_id)
        except InvalidInputError as e:
            raise NotFoundError(str(e)) from None
        found = _all(w.client, GOVERNANCE, lambda q: q.get("proposalId") == proposal_id
                     and str(q.get("contract", "")).lower() == gov.address.lower())
        return {"proposal": p.to_json(), "statements": found}

    return await state_of(request).reads.run(read)

"""The AI oracle through a ledgermind home: what ``ledgermind oracle ...`` does.

- A requester publishes an input (validated by the registered model's adapter, stored by digest, and carried in a
  signed ``request`` statement so anyone holding the log can re-run it) and asks a registered oracle on chain.
- The oracle (``serve``, or ``decide`` for one request) picks up requests addressed to it from the chain's
  ``Requested`` events, runs the registered model (``ledgermind.oracle.runner``), signs a ``decision`` statement
  into its log and posts the commitment on chain: model, input and output digests, the statement's log index and
  the log's id. The full output stays in its store.
- Anyone re-runs the model (``dispute``): if the re-run differs from the answer, it challenges within the dispute
  window with the dispute bond; if not, nothing is sent.
- The resolver (the AIOracle's arbiter role) re-runs the model too and rules (``resolve``); a wrong answer's stake
  is slashed on chain. ``serve`` run by the resolver's account also rules on open disputes.

Every act is a transaction signed by the acting account and an ``oracle/v1`` statement it signs.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ledgermind.errors import InvalidInputError, LedgermindError
from ledgermind.inference.digests import json_digest
from ledgermind.oracle import runner
from ledgermind.oracle.onchain import AIOracleContract, InsuranceContract, RequestInfo

if TYPE_CHECKING:
    from ledgermind.chain.connection import Receipt
    from ledgermind.client import Client

ATTACKS = ("flip",)  # a faulty oracle, for demonstrations: it posts the opposite decision


def contract_of(client: Client) -> AIOracleContract:
    chain = client.chain()
    return AIOracleContract(chain, client._deployed(chain, client.account(), "AIOracle").address)


def insurance_of(client: Client) -> InsuranceContract:
    chain = client.chain()
    return InsuranceContract(chain, client._deployed(chain, client.account(), "Insurance").address)


def log_id(client: Client) -> str:
    """This home's log id as the AIOracle records it: SHA-256 of the log's origin (the name in its checkpoints)."""
    return hashlib.sha256(client._log(write=True).origin.encode()).hexdigest()


def record(client: Client, action: str, subject: tuple[str, str], contract: str, receipt: Receipt | None = None,
           **fields: Any) -> tuple[int, bytes]:
    """Sign and append the ``oracle/v1`` statement of ``action``; returns (log index, statement bytes)."""
    from ledgermind.statements import ORACLE, make_statement, sign_envelope, utc_now

    account = client.account()
    predicate = {"action": action, "account": account.address, "chainId": client.chain().chain_id,
                 "contract": contract, "time": utc_now(), "txHash": receipt.tx_hash.lower() if receipt else None,
                 **fields}
    statement = make_statement([subject], ORACLE, {k: v for k, v in predicate.items() if v is not None})
    payload = statement.to_bytes()
    index = client.ledger.submit(sign_envelope(payload, account)).index
    client._after_write(None)
    return index, payload


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------------- oracles
def register(client: Client, models: list[str], bond: int) -> dict[str, Any]:
    """Register the acting account as an oracle serving ``models`` (registered here; none: any model) with a
    first ``bond`` of the oracle's token. Raises NotFoundError for a model not registered in this log."""
    digests = [runner.load_model(client, m).digest for m in models]
    oracle = contract_of(client)
    account = client.account()
    if oracle.oracle_info(account.address).registered:
        raise InvalidInputError(f"{account.address} is already registered as an oracle")
    receipt = oracle.register(account, digests, bond)
    index, _ = record(client, "register", (f"oracle {account.address}", _account_digest(account.address)),
                      oracle.address, receipt, models=digests, bond=str(bond))
    return {**oracle.oracle_info(account.address).to_json(), "logIndex": index}


def _account_digest(address: str) -> str:
    return hashlib.sha256(address.lower().encode()).hexdigest()


def request(client: Client, model: str, inputs: Any, oracle_address: str, *, fee: int, stake: int) -> dict[str, Any]:
    """Ask ``oracle_address`` to run ``model`` on ``inputs``: validates the input with the model, publishes it,
    records it and sends the request with ``fee`` (pulled) and the ``stake`` the oracle must lock behind its answer.
    Raises NotFoundError (unknown model), InvalidInputError (the model refuses the input; the oracle does not
    serve the model), before anything is stored or sent."""
    served = runner.load_model(client, model)
    data = runner.check_inputs(served, inputs)
    oracle = contract_of(client)
    if not oracle.serves(oracle_address, served.digest):
        raise InvalidInputError(f"{oracle_address} is not a registered oracle serving model {served.name!r} "
                                f"({served.digest[:12]})")
    input_digest = client.blobs.put_bytes(data)
    account = client.account()
    rid, receipt = oracle.request(account, oracle_address, served.digest, input_digest, fee=fee, stake=stake)
    index, _ = record(client, "request", ("input", input_digest), oracle.address, receipt, requestId=rid,
                      oracle=oracle.request_info(rid).oracle, model=served.digest, input=input_digest,
                      inputs=inputs, fee=str(fee), stake=str(stake))
    return {**oracle.request_info(rid).to_json(), "logIndex": index}


def decide(client: Client, request_id: int, attack: str | None = None) -> dict[str, Any]:
    """Answer request ``request_id`` as its oracle: run the model, sign the decision into the log, post the
    commitment. ``attack="flip"`` posts the opposite decision (a faulty oracle, for demonstrations).

    Raises NotFoundError (unknown request, model or input not here), InvalidInputError (not this account's
    request, not awaiting an answer, bond too small), before anything is written. The decision is signed into the
    log before ``fulfill`` (its log index is part of the commitment); should the chain still refuse it (the
    response deadline passed in between), ChainError says why and the statement stays without a commitment."""
    if attack is not None and attack not in ATTACKS:
        raise InvalidInputError(f"unknown attack {attack!r}: expected one of {', '.join(ATTACKS)}")
    oracle = contract_of(client)
    account = client.account()
    r = oracle.request_info(request_id)
    if r.oracle != account.address:
        raise InvalidInputError(f"request {request_id} is addressed to oracle {r.oracle}, not to {account.address}")
    if r.state != "requested":
        raise InvalidInputError(f"request {request_id} is {r.state}: it is not awaiting an answer")
    if oracle.oracle_info(account.address).free < r.stake:
        raise InvalidInputError(f"request {request_id} needs a free bond of {r.stake} behind its answer; "
                                f"this oracle has {oracle.oracle_info(account.address).free}")
    result = runner.run(client, r.model, r.input)
    output, decision = result.output, result.decision
    if attack == "flip":
        decision = 0 if decision else 1
        output = [decision]
    output_digest = json_digest(output)
    lid = log_id(client)
    index, _ = record(client, "decision", (f"oracle request {request_id}", output_digest), oracle.address,
                      requestId=request_id, model=r.model, input=r.input, output=output_digest, decision=decision,
                      logId=lid)
    receipt = oracle.fulfill(account, request_id, output_digest, decision, index, lid)
    return {**oracle.request_info(request_id).to_json(), "logIndex": index, "txHash": receipt.tx_hash,
            "gasUsed": receipt.gas_used}


def dispute(client: Client, request_id: int) -> dict[str, Any]:
    """Re-run the registered model on the request's input and, if the oracle's answer differs, challenge it with
    the dispute bond. Raises InvalidInputError when the answer is right (nothing is sent), when the request is
    not answered, or when its dispute window closed; NotFoundError for an unknown request, model or input."""
    oracle = contract_of(client)
    account = client.account()
    r = oracle.request_info(request_id)
    _check_disputable(oracle, r, account.address)
    rerun = runner.run(client, r.model, r.input)
    if rerun.output_digest == r.output and rerun.decision == r.decision:
        raise InvalidInputError(f"re-running model {r.model[:12]} on request {request_id}'s input gives the "
                                f"oracle's answer (decision {r.decision}): nothing to dispute")
    receipt = oracle.dispute(account, request_id, rerun.output_digest, rerun.decision)
    index, _ = record(client, "dispute", (f"dispute of oracle request {request_id}", rerun.output_digest),
                      oracle.address, receipt, requestId=request_id, model=r.model, input=r.input, output=r.output,
                      decision=r.decision, claimedOutput=rerun.output_digest, claimedDecision=rerun.decision,
                      bond=str(oracle.dispute_bond()))
    return {**oracle.request_info(request_id).to_json(), "claimedDecision": rerun.decision,
            "claimedOutput": rerun.output_digest, "logIndex": index, "txHash": receipt.tx_hash,
            "gasUsed": receipt.gas_used}


def _check_disputable(oracle: AIOracleContract, r: RequestInfo, who: str) -> None:
    if r.state in ("requested", "expired"):
        raise InvalidInputError(f"request {r.request_id} is not answered: nothing to dispute yet")
    if r.state == "cancelled":
        raise InvalidInputError(f"request {r.request_id} was cancelled unanswered: nothing to dispute")
    if r.state == "disputed":
        raise InvalidInputError(f"request {r.request_id} is already disputed by {r.challenger}")
    if r.state in ("final", "settled") and r.challenger is not None:
        raise InvalidInputError(f"request {r.request_id} was disputed already; its decision is final "
                                f"({r.outcome or 'resolution window over'})")
    if r.state in ("final", "settled"):
        raise InvalidInputError(f"request {r.request_id}'s dispute window closed at {_when(r.dispute_deadline)}: "
                                f"its decision is final")
    if r.oracle == who:
        raise InvalidInputError("an oracle cannot dispute its own answer")


def resolve(client: Client, request_id: int) -> dict[str, Any]:
    """Rule on a disputed request as the resolver: re-run the registered model, sign the re-run and verdict into
    the log (its statement's SHA-256 is the on-chain evidence), and post the verdict; a wrong answer's stake is
    slashed. Raises InvalidInputError (not the resolver; not disputed), NotFoundError."""
    oracle = contract_of(client)
    account = client.account()
    if oracle.resolver() != account.address:
        raise InvalidInputError(f"only the resolver {oracle.resolver()} rules on disputes, not {account.address}")
    r = oracle.request_info(request_id)
    if r.state != "disputed":
        raise InvalidInputError(f"request {request_id} is {r.state}, not awaiting a ruling")
    rerun = runner.run(client, r.model, r.input)
    overturned = rerun.output_digest != r.output or rerun.decision != r.decision
    index, payload = record(client, "resolution", (f"ruling on oracle request {request_id}", rerun.output_digest),
                            oracle.address, requestId=request_id, model=r.model, input=r.input,
                            output=rerun.output_digest, decision=rerun.decision, overturned=overturned)
    receipt = oracle.resolve(account, request_id, rerun.output_digest, rerun.decision,
                             hashlib.sha256(payload).hexdigest())
    return {**oracle.request_info(request_id).to_json(), "logIndex": index, "txHash": receipt.tx_hash,
            "gasUsed": receipt.gas_used}


def finalize(client: Client, request_id: int) -> dict[str, Any]:
    """Settle a request whose decision became final by time (anyone): the oracle's stake unlocks, its fee (or a
    challenger's returned bond) is credited. Raises InvalidInputError while a window is still open."""
    oracle = contract_of(client)
    r = oracle.request_info(request_id)
    if r.state != "final":
        raise InvalidInputError(f"request {request_id} is {r.state}: only a final, unsettled decision is finalized")
    receipt = oracle.finalize(client.account(), request_id)
    index, _ = record(client, "finalize", (f"oracle request {request_id}", r.output or r.input), oracle.address,
                      receipt, requestId=request_id, output=r.output, decision=r.decision)
    return {**oracle.request_info(request_id).to_json(), "logIndex": index, "gasUsed": receipt.gas_used}


def cancel(client: Client, request_id: int) -> dict[str, Any]:
    """Close a request its oracle left unanswered past the response window (anyone): the fee is credited back
    to the requester (``withdraw``). Raises InvalidInputError unless the request is expired."""
    oracle = contract_of(client)
    r = oracle.request_info(request_id)
    if r.state != "expired":
        raise InvalidInputError(f"request {request_id} is {r.state}: only an unanswered request past its response "
                                f"window ({_when(r.response_deadline)}) is cancelled")
    receipt = oracle.cancel(client.account(), request_id)
    index, _ = record(client, "cancel", (f"oracle request {request_id}", r.input), oracle.address, receipt,
                      requestId=request_id, fee=str(r.fee))
    return {**oracle.request_info(request_id).to_json(), "logIndex": index}


def withdraw(client: Client) -> dict[str, Any]:
    """Collect what the AIOracle owes the acting account (fees, returned bonds, slashed stakes, refunds)."""
    oracle = contract_of(client)
    account = client.account()
    amount = oracle.withdraw(account)
    if not amount:
        raise InvalidInputError(f"the oracle contract owes {account.address} nothing")
    index, _ = record(client, "withdraw", (f"account {account.address}", _account_digest(account.address)),
                      oracle.address, amount=str(amount))
    return {"account": account.address, "amount": str(amount), "logIndex": index}


def set_windows(client: Client, response: int, dispute_window: int, resolution: int) -> dict[str, Any]:
    """Set the response, dispute and resolution windows (seconds) for phases that start later (resolver only)."""
    oracle = contract_of(client)
    receipt = oracle.set_windows(client.account(), response, dispute_window, resolution)
    windows = oracle.windows()
    index, _ = record(client, "windows", (f"oracle {oracle.address}", _account_digest(oracle.address)),
                      oracle.address, receipt, windows=windows)
    return {**windows, "logIndex": index}


def status(client: Client, request_id: int | None = None) -> dict[str, Any]:
    """Request ``request_id`` now; without it, the contract (windows, dispute bond, resolver) and the acting
    account's registration and balance."""
    oracle = contract_of(client)
    if request_id is not None:
        return oracle.request_info(request_id).to_json()
    me = client.account().address
    return {"contract": oracle.address, "chainId": oracle.chain.chain_id, "token": oracle.token,
            "resolver": oracle.resolver(), "windows": oracle.windows(), "disputeBond": str(oracle.dispute_bond()),
            "requests": oracle.request_count(), "account": oracle.oracle_info(me).to_json(),
            "withdrawable": str(oracle.withdrawable(me))}


# ---------------------------------------------------------------------- the service
def serve_once(client: Client, skip: set[int], note: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """One pass of the oracle service for the acting account: answer every open request addressed to it, rule on
    open disputes if it is the resolver, finalize its answers that became final and settle the insurance claims
    they assessed (which credits approved payouts). A request that cannot be answered (model or input not here,
    input refused) is noted once, added to ``skip`` and left to expire (its fee is then refunded). Returns what
    was done."""
    oracle = contract_of(client)
    me = client.account().address
    done: list[dict[str, Any]] = []
    mine = sorted({rid for rid, _ in oracle.requests_for(me)})
    for rid in mine:
        if rid in skip:
            continue
        r = oracle.request_info(rid)
        if r.state in ("settled", "cancelled"):
            skip.add(rid)  # done with: not read again
        elif r.state == "requested":
            try:
                done.append({"action": "decision", **decide(client, rid)})
            except LedgermindError as e:
                skip.add(rid)
                note(f"request {rid} left unanswered: {e}")
        elif r.state == "final":
            done.append({"action": "finalize", **finalize(client, rid)})
            done.extend(_settle_claim(client, rid, r, note))
    if oracle.resolver() == me:
        for rid in sorted({rid for rid, _ in oracle.disputed_requests()}):
            state = oracle.request_info(rid).state if rid not in skip else None
            if state == "settled":
                skip.add(rid)
            elif state == "disputed":
                try:
                    done.append({"action": "resolution", **resolve(client, rid)})
                except LedgermindError as e:
                    skip.add(rid)
                    note(f"dispute of request {rid} not ruled on: {e}")
    return done


def _settle_claim(client: Client, request_id: int, r: RequestInfo, note: Callable[[str], None]) -> list[dict[str, Any]]:
    """Settle the insurance claim behind ``request_id``, if the home's Insurance made it and it is still open."""
    from ledgermind.oracle import insurance

    try:
        ins = insurance_of(client)
    except LedgermindError:
        return []
    if r.requester != ins.address:
        return []
    policy_id = ins.policy_of_request(request_id)
    if policy_id is None or ins.policy(policy_id).status != "claiming":
        return []
    try:
        return [{"action": "settle", **insurance.settle(client, policy_id)}]
    except LedgermindError as e:
        note(f"claim on policy {policy_id} not settled: {e}")
        return []


def serve(client: Client, *, once: bool = False, interval: float = 2.0,
          on_done: Callable[[dict[str, Any]], None] = lambda _: None,
          note: Callable[[str], None] = lambda _: None) -> int:
    """Run the oracle service: ``serve_once`` every ``interval`` seconds until interrupted (or once). Returns the
    number of acts done."""
    skip: set[int] = set()
    count = 0
    while True:
        for act in serve_once(client, skip, note):
            on_done(act)
            count += 1
        if once:
            return count
        time.sleep(interval)

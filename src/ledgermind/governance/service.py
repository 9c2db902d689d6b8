"""Governance through a ledgermind home: what ``ledgermind gov ...`` does. Each act is a transaction on the
Governance contract sent by the acting account and a ``governance/v1`` statement it signs."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ledgermind.errors import InvalidInputError
from ledgermind.governance.onchain import GovernanceContract

if TYPE_CHECKING:
    from ledgermind.chain.connection import Receipt
    from ledgermind.client import Client


def contract_of(client: Client) -> GovernanceContract:
    chain = client.chain()
    return GovernanceContract(chain, client._deployed(chain, client.account(), "Governance").address)


def _record(client: Client, gov: GovernanceContract, receipt: Receipt, subject: tuple[str, str], **fields: Any) -> int:
    from ledgermind.statements import GOVERNANCE, make_statement, sign_envelope, utc_now

    account = client.account()
    predicate = {"account": account.address, "chainId": gov.chain.chain_id, "contract": gov.address,
                 "txHash": receipt.tx_hash.lower(), "time": utc_now(), **fields}
    statement = make_statement([subject], GOVERNANCE, {k: v for k, v in predicate.items() if v is not None})
    index = client.ledger.submit(sign_envelope(statement.to_bytes(), account)).index
    client._after_write(None)
    return index


def _contract_subject(gov: GovernanceContract) -> tuple[str, str]:
    return f"governance {gov.address}", hashlib.sha256(gov.address.lower().encode()).hexdigest()


def propose(client: Client, decision: str, ref: str) -> dict[str, Any]:
    """Propose ``decision`` (approve-dataset, revoke-dataset, approve-model, revoke-model) on an asset."""
    digest, name = client._asset_ref(ref)
    gov = contract_of(client)
    pid, receipt = gov.propose(client.account(), decision, digest)
    index = _record(client, gov, receipt, (name or digest, digest), action="propose", proposalId=pid,
                    decision=decision, target=digest)
    return {**gov.proposal(pid).to_json(), "logIndex": index}


def vote(client: Client, proposal_id: int, support: bool) -> dict[str, Any]:
    gov = contract_of(client)
    p = gov.proposal(proposal_id)
    receipt = gov.vote(client.account(), proposal_id, support)
    index = _record(client, gov, receipt, (p.target, p.target), action="vote", proposalId=proposal_id,
                    decision=p.action, target=p.target, support=support)
    return {**gov.proposal(proposal_id).to_json(), "logIndex": index}


def execute(client: Client, proposal_id: int) -> dict[str, Any]:
    gov = contract_of(client)
    p = gov.proposal(proposal_id)
    receipt = gov.execute(client.account(), proposal_id)
    index = _record(client, gov, receipt, (p.target, p.target), action="execute", proposalId=proposal_id,
                    decision=p.action, target=p.target)
    return {**gov.proposal(proposal_id).to_json(), "logIndex": index}


def decide(client: Client, decision: str, ref: str) -> dict[str, Any]:
    """Propose, vote for, and execute at once when the quorum and timelock allow it (one member, no timelock:
    a consortium of one); otherwise the proposal stays open for the other members."""
    p = propose(client, decision, ref)
    p = vote(client, p["proposal_id"], True)
    gov = contract_of(client)
    if p["status"] == "passed" and gov.parameters()["timelock"] == 0:
        p = execute(client, p["proposal_id"])
    return p


def status(client: Client, ref: str) -> dict[str, Any]:
    """Whether an asset is approved, and whether its whole lineage is."""
    digest, name = client._asset_ref(ref)
    gov = contract_of(client)
    return {"id": digest, "name": name, **gov.approved(digest), "lineageApproved": gov.lineage_approved(digest)}


def overview(client: Client) -> dict[str, Any]:
    gov = contract_of(client)
    market = client.market()
    gate = market.governance()
    return {"contract": gov.address, "chainId": gov.chain.chain_id, **gov.parameters(),
            "marketplaceGate": gate is not None and gate.lower() == gov.address.lower(),
            "proposals": [p.to_json() for p in gov.proposals()]}


def set_member(client: Client, member: str, add: bool) -> dict[str, Any]:
    from web3 import Web3

    if not Web3.is_address(member):
        raise InvalidInputError(f"{member!r} is not an account address")
    member = Web3.to_checksum_address(member)
    gov = contract_of(client)
    receipt = gov.set_member(client.account(), member, add)
    index = _record(client, gov, receipt, _contract_subject(gov), action="member", member=member, added=add)
    return {"member": member, "isMember": gov.is_member(member), "logIndex": index}


def set_parameters(client: Client, quorum: int, timelock: int, voting_period: int) -> dict[str, Any]:
    gov = contract_of(client)
    receipt = gov.set_parameters(client.account(), quorum, timelock, voting_period)
    index = _record(client, gov, receipt, _contract_subject(gov), action="parameters", quorum=quorum,
                    timelock=timelock, votingPeriod=voting_period)
    return {**gov.parameters(), "logIndex": index}


def set_gate(client: Client, enabled: bool) -> dict[str, Any]:
    """Make the Marketplace refuse (or stop refusing) models whose lineage this Governance has not approved.
    Requires the Marketplace's owner."""
    gov = contract_of(client)
    market = client.market()
    receipt = market.set_governance(client.account(), gov.address if enabled else None)
    index = _record(client, gov, receipt, _contract_subject(gov), action="gate", enabled=enabled)
    return {"marketplace": market.address, "governance": gov.address, "enabled": enabled, "logIndex": index}

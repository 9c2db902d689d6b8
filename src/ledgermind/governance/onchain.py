"""The Governance contract, as one Python binding: proposals, votes, execution, membership, and the lineage check.

Actions are named as the CLI names them: ``approve-dataset``, ``revoke-dataset``, ``approve-model``,
``revoke-model``. Every write returns the transaction's receipt (for the statement that records it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgermind.chain.connection import Chain, Receipt
from ledgermind.errors import InvalidInputError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

ACTIONS = {"approve-dataset": 1, "revoke-dataset": 2, "approve-model": 3, "revoke-model": 4}
ACTION_NAMES = {v: k for k, v in ACTIONS.items()}
GAS = {"propose": 250_000, "vote": 150_000, "execute": 120_000, "role": 120_000, "parameters": 100_000,
       "gate": 100_000}


@dataclass(frozen=True)
class Proposal:
    """A proposal as the contract holds it; ``status`` is open, passed (waiting for its timelock or execution),
    executed or expired."""

    proposal_id: int
    action: str
    target: str  # asset digest, 64 hex
    proposer: str
    deadline: int
    yes: int
    no: int
    passed_at: int
    executed: bool
    status: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class GovernanceContract:
    """The Governance contract at ``address`` on ``chain``."""

    def __init__(self, chain: Chain, address: str) -> None:
        from web3 import Web3

        from ledgermind.contracts import load

        self.chain = chain
        self.address = Web3.to_checksum_address(address)
        self.contract = chain.w3.eth.contract(address=self.address, abi=load("Governance")["abi"])
        self.member_role = bytes(chain.call(self.contract.functions.MEMBER_ROLE()))

    # ------------------------------------------------------------------ reads
    def parameters(self) -> dict[str, int]:
        fn = self.contract.functions
        return {"quorum": int(self.chain.call(fn.quorum())), "timelock": int(self.chain.call(fn.timelock())),
                "votingPeriod": int(self.chain.call(fn.voting_period()))}

    def proposal(self, proposal_id: int) -> Proposal:
        """Proposal ``proposal_id``. Raises InvalidInputError for an id never proposed."""
        action, target, proposer, deadline, yes, no, passed_at, executed = self.chain.call(
            self.contract.functions.proposals(proposal_id))
        if action == 0:
            raise InvalidInputError(f"no proposal {proposal_id}")
        now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        status = ("executed" if executed else "passed" if passed_at else "expired" if now >= deadline else "open")
        return Proposal(proposal_id, ACTION_NAMES[int(action)], f"{int(target):064x}", proposer, int(deadline),
                        int(yes), int(no), int(passed_at), bool(executed), status)

    def proposals(self) -> list[Proposal]:
        count = int(self.chain.call(self.contract.functions.proposal_count()))
        return [self.proposal(i) for i in range(1, count + 1)]

    def is_member(self, account: str) -> bool:
        return bool(self.chain.call(self.contract.functions.hasRole(self.member_role, account)))

    def lineage_approved(self, digest: str) -> bool:
        return bool(self.chain.call(self.contract.functions.lineage_approved(int(digest, 16))))

    def approved(self, digest: str) -> dict[str, bool]:
        fn = self.contract.functions
        tid = int(digest, 16)
        return {"dataset": bool(self.chain.call(fn.approved_dataset(tid))),
                "model": bool(self.chain.call(fn.approved_model(tid)))}

    # ------------------------------------------------------------------ writes
    def _send(self, account: LocalAccount, call: Any, gas: str) -> Receipt:
        self.chain.ensure_funds(account.address)
        return self.chain.transact(account, call, GAS[gas])

    def propose(self, account: LocalAccount, action: str, digest: str) -> tuple[int, Receipt]:
        """Propose ``action`` on the asset ``digest``; returns (proposal id, receipt). Raises InvalidInputError
        for an unknown action, ChainError with the contract's reason (not a member, not minted, wrong kind)."""
        if action not in ACTIONS:
            raise InvalidInputError(f"unknown action {action!r}: {', '.join(ACTIONS)}")
        receipt = self._send(account, self.contract.functions.propose(ACTIONS[action], int(digest, 16)), "propose")
        return int(self.chain.call(self.contract.functions.proposal_count())), receipt

    def vote(self, account: LocalAccount, proposal_id: int, support: bool) -> Receipt:
        return self._send(account, self.contract.functions.vote(proposal_id, support), "vote")

    def execute(self, account: LocalAccount, proposal_id: int) -> Receipt:
        return self._send(account, self.contract.functions.execute(proposal_id), "execute")

    def set_member(self, account: LocalAccount, member: str, add: bool) -> Receipt:
        fn = self.contract.functions.grantRole if add else self.contract.functions.revokeRole
        return self._send(account, fn(self.member_role, member), "role")

    def set_parameters(self, account: LocalAccount, quorum: int, timelock: int, voting_period: int) -> Receipt:
        return self._send(account, self.contract.functions.set_parameters(quorum, timelock, voting_period),
                          "parameters")

"""The Federation contract from Python: a thin web3 binding over ``ledgermind.chain.connection.Chain``.

One method per contract function (create_task, join, start_round, commit, reveal, finalize_round, abort_round,
reclaim_stake, reclaim_pool, withdraw, cancel, abandon) and read methods that return frozen dataclasses.
Transactions carry explicit gas limits (the embedded chain estimates gas slowly; see ``GAS``), ERC-20 payments
are approved just before the call that pulls them, and a revert raises ChainError with the contract's reason.

Digests (model, weights, dataset, updates, flag reasons) are 32 bytes or 64 hex characters, such as
``ledgermind.federated.updates.digest(arrays)`` of an update. The commitment a participant sends is computed
here, never by the contract: asking a node to run the contract's ``commitment`` view would send it the salt.
``commitment`` below is the same function::

    from ledgermind.federated.onchain import FederationContract, commitment
    fed = FederationContract(chain, address)
    task = fed.create_task(coordinator, token, model_digest=arch, initial_weights=w0, dataset_digest=val,
                           rounds=3, reward_pool=3_000, min_stake=100, commit_window=600, reveal_window=600,
                           max_participants=8, quorum=2)
    fed.join(alice, task.task_id, 100)
    r = fed.start_round(coordinator, task.task_id, w0)
    salt = os.urandom(32)
    fed.commit(alice, task.task_id, r, update_digest, salt)   # before the commit deadline
    fed.reveal(alice, task.task_id, r, update_digest, salt)   # once the commit phase is over (see reveal)
    fed.finalize_round(coordinator, task.task_id, r, aggregated, scores={alice.address: 10_000})
    fed.withdraw(alice, token)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgermind.chain.connection import Chain, ChainError, Receipt
from ledgermind.accounts import to_checksum_address
from ledgermind.errors import InvalidInputError
from ledgermind.statements.dsse import keccak

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = [
    "GAS",
    "FederationContract",
    "Participant",
    "RoundInfo",
    "Submission",
    "TaskInfo",
    "commitment",
    "finalize_gas",
]

# Explicit gas limits: the embedded chain estimates gas slowly, and every call has a bounded cost. Measured on
# the embedded chain (py-evm), worst case of each (fresh storage slots, first use of a counter), then given
# 30-50% headroom: deploy 3.63M, create_task 425k, join 186k (the first of a task; later ones 135k),
# start_round 157k (the first; later ones 135k), commit 81k, reveal 89k (before the commit deadline, once every
# active participant committed; 84k after it), abort_round 49k, cancel 31k, abandon 42k, reclaim_stake 46k,
# reclaim_pool 53k, withdraw 40k with PaymentToken, approve 46k. finalize_round grows with its lists: 97k +
# 51.4k per scored participant (34.3k when its withdrawable balance is already non-zero) + 60k per flagged one
# (89k for the first), so its limit is computed per call (``finalize_gas``): 64 scored participants need at
# most ~3.4M.
GAS = {
    "deploy": 5_000_000,
    "create_task": 600_000,
    "join": 250_000,
    "start_round": 220_000,
    "commit": 115_000,
    "reveal": 120_000,
    "finalize_base": 140_000,
    "finalize_per_scored": 72_000,
    "finalize_per_flagged": 85_000,
    "abort_round": 75_000,
    "cancel": 50_000,
    "abandon": 70_000,
    "reclaim_stake": 70_000,
    "reclaim_pool": 75_000,
    "withdraw": 120_000,  # the token's transfer runs outside this contract: room for a heavier ERC-20
    "approve": 100_000,
}

# token amounts, as strings in JSON (JavaScript numbers lose precision above 2**53)
_AMOUNTS = frozenset({"reward_pool", "round_reward", "min_stake", "pool", "staked", "rewarded", "slashed"})

TASK_STATUS = {0: "unknown", 1: "open", 2: "running", 3: "finished", 4: "cancelled"}
ROUND_STATUS = {0: "not started", 1: "open", 2: "finalized", 3: "aborted"}
MEMBER_STATE = {0: "none", 1: "active", 2: "slashed", 3: "returned"}
SUBMISSION_STATE = {0: "none", 1: "committed", 2: "revealed", 3: "scored", 4: "flagged"}


def _bytes32(value: bytes | str, name: str) -> bytes:
    """32 bytes from bytes or a hex string (with or without 0x). Raises InvalidInputError otherwise."""
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise InvalidInputError(f"{name} must be 32 bytes or 64 hex characters, got {value!r}") from None
    if not isinstance(value, (bytes, bytearray)):
        raise InvalidInputError(f"{name} must be 32 bytes, got {type(value).__name__}")
    if len(value) != 32:
        raise InvalidInputError(f"{name} must be 32 bytes, got {len(value)}")
    return bytes(value)


def _address(value: str, name: str = "address") -> str:
    """``value`` checksummed; InvalidInputError naming ``name`` if it is not an address."""
    try:
        return to_checksum_address(value if isinstance(value, str) else repr(value))
    except InvalidInputError as e:
        raise InvalidInputError(f"{name}: {e}") from None


def _uint(value: int, name: str) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**256:
        raise InvalidInputError(f"{name} must be an unsigned 256-bit integer, got {value!r}")
    return value.to_bytes(32, "big")


def commitment(task_id: int, round: int, participant: str, update_digest: bytes | str, salt: bytes | str) -> bytes:
    """``keccak256(abi_encode(task_id, round, participant, update_digest, salt))``: what ``commit`` sends.

    The same five 32-byte ABI words the contract hashes (the address left-padded with zeros). Raises
    InvalidInputError for an argument of the wrong type or size.
    """
    return keccak(
        _uint(task_id, "task_id")
        + _uint(round, "round")
        + bytes(12) + bytes.fromhex(_address(participant, "participant")[2:])
        + _bytes32(update_digest, "update_digest")
        + _bytes32(salt, "salt")
    )


def _json(fields: dict[str, Any]) -> dict[str, Any]:
    """Digests as 0x-hex, token amounts as decimal strings, the rest as is."""
    return {k: "0x" + v.hex() if isinstance(v, bytes) else str(v) if k in _AMOUNTS else v for k, v in fields.items()}


def finalize_gas(scored: int, flagged: int) -> int:
    """The gas limit ``finalize_round`` sends for lists of these lengths."""
    return GAS["finalize_base"] + scored * GAS["finalize_per_scored"] + flagged * GAS["finalize_per_flagged"]


@dataclass(frozen=True)
class TaskInfo:
    """A task as ``Federation.task`` reports it. Digests are 32 raw bytes; ``status`` is one of open, running,
    finished, cancelled; ``round`` is the current round (0 before the first); ``deadline`` is when anyone may
    abandon the task if its coordinator has not acted (0 once over)."""

    task_id: int
    coordinator: str
    token: str
    model_digest: bytes
    initial_weights: bytes
    dataset_digest: bytes
    rounds: int
    reward_pool: int
    round_reward: int
    min_stake: int
    commit_window: int
    reveal_window: int
    max_participants: int
    quorum: int
    pool: int
    staked: int
    status: str
    round: int
    deadline: int
    participants: int
    active: int  # joined and not slashed: who may commit; when all of them committed, reveals may start

    def to_json(self) -> dict[str, Any]:
        return _json(self.__dict__)


@dataclass(frozen=True)
class RoundInfo:
    """Round ``round`` of a task; ``status`` is one of not started, open, finalized, aborted."""

    task_id: int
    round: int
    global_digest: bytes
    commit_deadline: int
    reveal_deadline: int
    aggregated_digest: bytes
    commits: int
    reveals: int
    status: str
    rewarded: int
    slashed: int

    def to_json(self) -> dict[str, Any]:
        return _json(self.__dict__)


@dataclass(frozen=True)
class Participant:
    """``account``'s place in a task; ``state`` is one of none (never joined), active, slashed, returned."""

    task_id: int
    account: str
    stake: int
    state: str


@dataclass(frozen=True)
class Submission:
    """What ``account`` submitted in a round; ``state`` is one of none, committed, revealed, scored, flagged.
    ``update_digest`` is all zeros until revealed; ``flag_reason`` is all zeros unless flagged."""

    task_id: int
    round: int
    account: str
    commitment: bytes
    update_digest: bytes
    state: str
    score_bps: int
    flag_reason: bytes


class FederationContract:
    """The Federation contract at ``address`` on ``chain``."""

    def __init__(self, chain: Chain, address: str) -> None:
        from ledgermind.contracts import load

        self.chain = chain
        self.address = _address(address, "contract address")
        self.contract = chain.w3.eth.contract(address=self.address, abi=load("Federation")["abi"])
        self.last_receipt: Receipt | None = None  # of the last transaction sent, for the statement that records it

    @classmethod
    def deploy(cls, chain: Chain, account: LocalAccount) -> FederationContract:
        """Deploy a new Federation contract (dev chains and tests)."""
        from ledgermind.contracts import load

        art = load("Federation")
        chain.ensure_funds(account.address)
        return cls(chain, chain.deploy(account, art["bytecode"], art["abi"], gas=GAS["deploy"]).contract_address)

    # ------------------------------------------------------------------ reads
    def task_count(self) -> int:
        return int(self.chain.call(self.contract.functions.task_count()))

    def task(self, task_id: int) -> TaskInfo:
        """Read task ``task_id``. Raises ChainError ("unknown task") for an id never created."""
        t = self.chain.call(self.contract.functions.task(task_id))
        (coordinator, token, model, weights, dataset, rounds, reward_pool, round_reward, min_stake, commit_window,
         reveal_window, max_participants, quorum, pool, staked, status, rnd, deadline, participants) = t
        return TaskInfo(task_id, _address(coordinator), _address(token), bytes(model), bytes(weights), bytes(dataset),
                        int(rounds), int(reward_pool), int(round_reward), int(min_stake), int(commit_window),
                        int(reveal_window), int(max_participants), int(quorum), int(pool), int(staked),
                        TASK_STATUS.get(int(status), str(status)), int(rnd), int(deadline), int(participants),
                        int(self.chain.call(self.contract.functions.active_participants(task_id))))

    def participants(self, task_id: int) -> list[str]:
        """The participants of ``task_id`` in joining order (slashed ones included)."""
        return [_address(a) for a in self.chain.call(self.contract.functions.participants(task_id))]

    def participant(self, task_id: int, account: str) -> Participant:
        account = _address(account, "account")
        stake, state = self.chain.call(self.contract.functions.participant(task_id, account))
        return Participant(task_id, account, int(stake), MEMBER_STATE.get(int(state), str(state)))

    def round_info(self, task_id: int, round: int) -> RoundInfo:
        (global_digest, commit_deadline, reveal_deadline, aggregated, commits, reveals, status, rewarded,
         slashed) = self.chain.call(self.contract.functions.round_info(task_id, round))
        return RoundInfo(task_id, round, bytes(global_digest), int(commit_deadline), int(reveal_deadline),
                         bytes(aggregated), int(commits), int(reveals), ROUND_STATUS.get(int(status), str(status)),
                         int(rewarded), int(slashed))

    def submission(self, task_id: int, round: int, account: str) -> Submission:
        account = _address(account, "account")
        c, u, state, score, reason = self.chain.call(self.contract.functions.submission(task_id, round, account))
        return Submission(task_id, round, account, bytes(c), bytes(u), SUBMISSION_STATE.get(int(state), str(state)),
                          int(score), bytes(reason))

    def withdrawable(self, account: str, token: str) -> int:
        return int(self.chain.call(self.contract.functions.withdrawable(_address(account, "account"),
                                                                        _address(token, "token"))))

    def now(self) -> int:
        """The latest block's time: what the commit and reveal deadlines are compared with."""
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    # ------------------------------------------------------------------ transactions
    def create_task(
        self,
        account: LocalAccount,
        token: str,
        *,
        model_digest: bytes | str,
        initial_weights: bytes | str,
        dataset_digest: bytes | str,
        rounds: int,
        reward_pool: int,
        min_stake: int,
        commit_window: int,
        reveal_window: int,
        max_participants: int,
        quorum: int,
    ) -> TaskInfo:
        """Create a task coordinated by ``account``; its ``reward_pool`` of ``token`` is approved, then pulled.

        Returns the new task. Raises ChainError with the contract's reason (see Federation.create_task).
        """
        token = _address(token, "token")
        call = self.contract.functions.create_task(
            token, _bytes32(model_digest, "model_digest"), _bytes32(initial_weights, "initial_weights"),
            _bytes32(dataset_digest, "dataset_digest"), rounds, reward_pool, min_stake, commit_window, reveal_window,
            max_participants, quorum,
        )
        self._approve(account, token, reward_pool)
        receipt = self._send(account, call, GAS["create_task"])
        (event,) = self._events(receipt, "TaskCreated")
        return self.task(int(event["args"]["task_id"]))

    def join(self, account: LocalAccount, task_id: int, stake: int) -> Participant:
        """Join ``task_id`` with ``stake`` of its token (approved, then pulled). Raises ChainError."""
        self._approve(account, self.task(task_id).token, stake)
        self._send(account, self.contract.functions.join(task_id, stake), GAS["join"])
        return self.participant(task_id, account.address)

    def start_round(self, account: LocalAccount, task_id: int, global_digest: bytes | str) -> int:
        """Start the next round with the global model ``global_digest``; returns its number."""
        receipt = self._send(account, self.contract.functions.start_round(task_id, _bytes32(global_digest,
                                                                                            "global_digest")),
                             GAS["start_round"])
        (event,) = self._events(receipt, "RoundStarted")
        return int(event["args"]["round"])

    def commit(self, account: LocalAccount, task_id: int, round: int, update_digest: bytes | str,
               salt: bytes | str) -> bytes:
        """Commit to ``update_digest`` with ``salt`` (keep both: ``reveal`` needs them); returns the commitment."""
        c = commitment(task_id, round, account.address, update_digest, salt)
        self._send(account, self.contract.functions.commit(task_id, round, c), GAS["commit"])
        return c

    def reveal(self, account: LocalAccount, task_id: int, round: int, update_digest: bytes | str,
               salt: bytes | str) -> Submission:
        """Reveal what ``account`` committed to, before the reveal deadline, once the commit phase is over: after
        the commit deadline, or as soon as every active participant of the task committed in this round."""
        self._send(account, self.contract.functions.reveal(
            task_id, round, _bytes32(update_digest, "update_digest"), _bytes32(salt, "salt")), GAS["reveal"])
        return self.submission(task_id, round, account.address)

    def finalize_round(
        self,
        account: LocalAccount,
        task_id: int,
        round: int,
        aggregated_digest: bytes | str,
        scores: Mapping[str, int] | None = None,
        flagged: Mapping[str, bytes | str] | None = None,
    ) -> RoundInfo:
        """Close ``round`` as its coordinator: ``scores`` maps participants to basis points (together at most
        10,000), ``flagged`` maps participants to be slashed to a 32-byte reason (a code, or the digest of the
        statement that explains it). Returns the closed round. Raises ChainError with the contract's reason."""
        scores, flagged = dict(scores or {}), dict(flagged or {})
        scored = [_address(a, "scored participant") for a in scores]
        bad = [(a, flagged[a]) for a in flagged]
        call = self.contract.functions.finalize_round(
            task_id, round, _bytes32(aggregated_digest, "aggregated_digest"), scored, [int(s) for s in scores.values()],
            [_address(a, "flagged participant") for a, _ in bad], [_bytes32(r, "flag reason") for _, r in bad],
        )
        self._send(account, call, finalize_gas(len(scored), len(bad)))
        return self.round_info(task_id, round)

    def abort_round(self, account: LocalAccount, task_id: int, round: int) -> RoundInfo:
        self._send(account, self.contract.functions.abort_round(task_id, round), GAS["abort_round"])
        return self.round_info(task_id, round)

    def cancel(self, account: LocalAccount, task_id: int) -> TaskInfo:
        self._send(account, self.contract.functions.cancel(task_id), GAS["cancel"])
        return self.task(task_id)

    def abandon(self, account: LocalAccount, task_id: int) -> TaskInfo:
        """End a task whose coordinator missed its deadline (anyone may). Raises ChainError if it has not."""
        self._send(account, self.contract.functions.abandon(task_id), GAS["abandon"])
        return self.task(task_id)

    def reclaim_stake(self, account: LocalAccount, task_id: int) -> int:
        """Credit ``account``'s stake back once the task is over; returns it (collect it with ``withdraw``)."""
        receipt = self._send(account, self.contract.functions.reclaim_stake(task_id), GAS["reclaim_stake"])
        (event,) = self._events(receipt, "StakeReturned")
        return int(event["args"]["amount"])

    def reclaim_pool(self, account: LocalAccount, task_id: int) -> int:
        """Credit what is left of the pool to the coordinator once the task is over; returns it."""
        receipt = self._send(account, self.contract.functions.reclaim_pool(task_id), GAS["reclaim_pool"])
        (event,) = self._events(receipt, "PoolReclaimed")
        return int(event["args"]["amount"])

    def withdraw(self, account: LocalAccount, token: str) -> int:
        """Collect ``account``'s whole balance of ``token`` (every task in that token together); returns the
        amount, 0 without a transaction when there is nothing to collect."""
        token = _address(token, "token")
        if not self.withdrawable(account.address, token):
            return 0
        receipt = self._send(account, self.contract.functions.withdraw(token), GAS["withdraw"])
        (event,) = self._events(receipt, "Withdrawn")
        return int(event["args"]["amount"])

    # ------------------------------------------------------------------ helpers
    def _send(self, account: LocalAccount, call: Any, gas: int) -> Receipt:
        self.chain.ensure_funds(account.address)
        self.last_receipt = self.chain.transact(account, call, gas)
        return self.last_receipt

    def _approve(self, account: LocalAccount, token: str, amount: int) -> None:
        """Let this contract pull ``amount`` of ``token`` from ``account`` (any ERC-20's approve)."""
        from ledgermind.contracts import load

        erc20 = self.chain.w3.eth.contract(address=token, abi=load("PaymentToken")["abi"])
        self._send(account, erc20.functions.approve(self.address, amount), GAS["approve"])

    def _events(self, receipt: Receipt, name: str) -> list[Any]:
        """The ``name`` events this contract emitted in ``receipt``, decoded."""
        event = getattr(self.contract.events, name)()
        topic = bytes.fromhex(event.topic.removeprefix("0x"))
        out = [event.process_log(entry) for entry in receipt.logs
               if _address(entry["address"]) == self.address and entry["topics"] and bytes(entry["topics"][0]) == topic]
        if not out:
            raise ChainError(f"transaction {receipt.tx_hash} emitted no {name} event on {self.address}")
        return out

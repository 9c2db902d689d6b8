"""A federated training task run on chain and in the log: the coordinator's side and each participant's side.

The roles, whatever carries the messages between them (this process, or Flower across machines):

- ``Participant`` (one account, one dataset): joins with a stake; each round trains from the global model,
  publishes its update's bytes in the content store under their digest, commits to that digest on chain with a
  secret salt and signs an ``update`` statement; reveals once the commit phase is over; claims its rewards and
  stake at the end.
- ``Coordinator``: creates the task (terms on chain, ``create`` statement); starts each round with the global
  model's digest; closes it: reads who revealed what from the chain, loads those updates by digest, rejects any
  it cannot check (not revealed, bytes not published, bytes that hash to something else), has the
  ``RoundServer`` aggregate, flag and score the rest, pays by score and slashes the flagged on chain, publishes
  the new global model and signs a ``round`` statement holding everything needed to re-run the round.

Digests are ``updates.digest`` (SHA-256 of the canonical encoding), which is also the content store's key for
the bytes, so ``BlobStore.open(digest)`` is how anyone fetches a published update.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ledgermind.errors import InvalidInputError, LedgermindError, NotFoundError
from ledgermind.federated import attacks as atk
from ledgermind.federated.data import Split
from ledgermind.federated.onchain import FederationContract, TaskInfo
from ledgermind.federated.server import RoundServer, ServerRound, bps
from ledgermind.federated.trainers import Trainer, local_update
from ledgermind.federated.updates import EncodingError, decode, digest, encode

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledgermind.store import BlobStore

NDArrays = list[np.ndarray]

#: ``record(account, subject_digest, subject_name, predicate) -> log index``: sign a ``federation/v1`` statement
#: with ``account`` and append it durably. Supplied by the Client (its log and anchoring policy).
Recorder = Callable[["LocalAccount", str, str, dict[str, Any]], int]

#: The largest update accepted from the content store (bytes): far above any model trained here.
MAX_UPDATE_BYTES = 64 << 20


def architecture_digest(architecture: Mapping[str, Any]) -> str:
    """SHA-256 of the architecture's canonical JSON (RFC 8785): what the task commits to as its model."""
    from ledgermind.statements import canonical_json

    return hashlib.sha256(canonical_json(dict(architecture))).hexdigest()


def reason_digest(reason: str) -> str:
    """The bytes32 a flag carries on chain: SHA-256 of its reason as written in the round statement."""
    return hashlib.sha256(reason.encode()).hexdigest()


@dataclass
class TaskContext:
    """What every role needs to act on one task: the contract, the task id, and where to record and publish."""

    contract: FederationContract
    task_id: int
    record: Recorder
    blobs: BlobStore

    @property
    def chain_id(self) -> int:
        return self.contract.chain.chain_id

    def statement(self, account: LocalAccount, action: str, subject: tuple[str, str], **fields: Any) -> int:
        predicate = {"action": action, "taskId": self.task_id, "chainId": self.chain_id,
                     "contract": self.contract.address, "account": account.address, "time": _now(), **fields}
        tx = self.contract.last_receipt
        if tx is not None and "txHash" not in fields:
            predicate["txHash"] = tx.tx_hash.lower()
        return self.record(account, subject[1], subject[0], {k: v for k, v in predicate.items() if v is not None})

    def publish(self, arrays: NDArrays) -> str:
        """Store ``arrays`` in the content store; returns their digest (their key there)."""
        return self.blobs.put_bytes(encode(arrays))

    def fetch(self, update_digest: str) -> NDArrays:
        """The arrays published under ``update_digest``. Raises NotFoundError (not published) or
        InvalidInputError (the stored bytes are not an encoding of arrays, or hash to something else)."""
        with self.blobs.open(update_digest) as f:
            data = f.read(MAX_UPDATE_BYTES + 1)
        if len(data) > MAX_UPDATE_BYTES:
            raise InvalidInputError(f"update {update_digest[:12]} is larger than {MAX_UPDATE_BYTES} bytes")
        if hashlib.sha256(data).hexdigest() != update_digest:
            raise InvalidInputError(f"the bytes stored as {update_digest[:12]} hash to something else")
        try:
            return decode(data, max_bytes=MAX_UPDATE_BYTES)
        except EncodingError as e:
            raise InvalidInputError(f"update {update_digest[:12]} is not an encoding of arrays: {e}") from None


# ---------------------------------------------------------------------- participant
@dataclass
class Participant:
    """One party: its account, its training data (and the registered digest of that dataset), its trainer.

    ``attack`` makes it a poisoner, for demonstrations and tests: one of ``attacks.ATTACKS`` ("colluding" acts as
    a label flipper here, having no accomplice in this process) or ``attacks.FAULTS``.
    """

    account: LocalAccount
    data: Split
    dataset_digest: str
    trainer: Trainer
    n_classes: int
    attack: str | None = None
    #: round -> (update digest, salt) committed and not revealed yet (a process that ends in between keeps them)
    pending: dict[int, tuple[str, bytes]] = field(default_factory=dict, repr=False)

    @property
    def address(self) -> str:
        return self.account.address

    def join(self, ctx: TaskContext, stake: int) -> int:
        """Join the task with ``stake``; returns the log index of the ``join`` statement."""
        ctx.contract.join(self.account, ctx.task_id, stake)
        return ctx.statement(self.account, "join", (f"dataset {self.dataset_digest[:12]}", self.dataset_digest),
                             stake=str(stake), dataset=self.dataset_digest, samples=len(self.data))

    def train(self, params: NDArrays, fit: Mapping[str, Any], seed: int) -> NDArrays:
        """This round's update (its attack instead, for a poisoner)."""
        y = atk.flip_labels(self.data.y, self.n_classes) if self.attack in ("label_flip", "colluding") else self.data.y
        update = local_update(self.trainer, params, self.data.X, y, **fit, seed=seed)
        if self.attack in (None, "label_flip", "colluding"):
            return update
        return {"sign_flip": atk.sign_flip, "scale": atk.scale, "nan": atk.nan_update,
                "wrong_shape": atk.wrong_shape_update}[self.attack](update)

    def submit(self, ctx: TaskContext, round: int, update: NDArrays) -> str:
        """Publish ``update`` and commit to its digest on chain; returns the digest. Keep the salt for ``reveal``."""
        update_digest = ctx.publish(update)
        salt = os.urandom(32)
        c = ctx.contract.commit(self.account, ctx.task_id, round, update_digest, salt)
        self.pending[round] = (update_digest, salt)
        ctx.statement(self.account, "update", (f"update {update_digest[:12]}", update_digest), round=round,
                      updateDigest=update_digest, commitment="0x" + c.hex())
        return update_digest

    def reveal(self, ctx: TaskContext, round: int) -> None:
        """Reveal this round's commitment. Raises InvalidInputError if nothing was submitted in ``round``."""
        if round not in self.pending:
            raise InvalidInputError(f"{self.address} submitted nothing in round {round}")
        update_digest, salt = self.pending.pop(round)
        ctx.contract.reveal(self.account, ctx.task_id, round, update_digest, salt)

    def claim(self, ctx: TaskContext) -> dict[str, Any]:
        """After the task: credit the stake back (unless slashed) and withdraw everything owed in the task's
        token. Returns what was paid."""
        task = ctx.contract.task(ctx.task_id)
        member = ctx.contract.participant(ctx.task_id, self.address)
        stake = 0
        if task.status in ("finished", "cancelled") and member.state == "active":
            stake = ctx.contract.reclaim_stake(self.account, ctx.task_id)
        paid = ctx.contract.withdraw(self.account, task.token)
        ctx.statement(self.account, "claim", (f"account {self.address}", _account_digest(self.address)),
                      amount=str(paid))
        return {"account": self.address, "stake": str(stake), "paid": str(paid), "state": member.state}


# ---------------------------------------------------------------------- coordinator
@dataclass
class TaskTerms:
    """The terms a coordinator puts on chain (amounts in the token's smallest unit, windows in seconds)."""

    token: str
    rounds: int
    reward_pool: int
    min_stake: int
    quorum: int
    commit_window: int = 60
    reveal_window: int = 60
    max_participants: int = 64


class Coordinator:
    """The coordinator (and aggregator) of one task: creates it, runs its rounds, closes them on chain."""

    def __init__(self, account: LocalAccount, contract: FederationContract, server: RoundServer,
                 record: Recorder, blobs: BlobStore) -> None:
        self.account = account
        self.contract = contract
        self.server = server
        self.record = record
        self.blobs = blobs
        self.ctx: TaskContext | None = None

    def create(self, terms: TaskTerms, architecture: Mapping[str, Any], initial: NDArrays,
               validation_dataset: str) -> TaskContext:
        """Create the task on chain (pulling the reward pool) and record its terms. Returns its context."""
        arch = architecture_digest(architecture)
        init = self.blobs.put_bytes(encode(initial))
        task = self.contract.create_task(
            self.account, terms.token, model_digest=arch, initial_weights=init, dataset_digest=validation_dataset,
            rounds=terms.rounds, reward_pool=terms.reward_pool, min_stake=terms.min_stake,
            commit_window=terms.commit_window, reveal_window=terms.reveal_window,
            max_participants=terms.max_participants, quorum=terms.quorum,
        )
        self.ctx = TaskContext(self.contract, task.task_id, self.record, self.blobs)
        self.ctx.statement(self.account, "create", (f"initial weights {init[:12]}", init), token=task.token,
                           rounds=terms.rounds, rewardPool=str(terms.reward_pool), minStake=str(terms.min_stake),
                           quorum=terms.quorum, architecture=dict(architecture), initialWeights=init,
                           validationDataset=validation_dataset)
        return self.ctx

    def attach(self, task_id: int) -> TaskContext:
        """Act on an existing task (its coordinator must be this account)."""
        task = self.contract.task(task_id)
        if task.coordinator.lower() != self.account.address.lower():
            raise InvalidInputError(f"task {task_id} is coordinated by {task.coordinator}, not {self.account.address}")
        self.ctx = TaskContext(self.contract, task_id, self.record, self.blobs)
        return self.ctx

    def _context(self) -> TaskContext:
        if self.ctx is None:
            raise InvalidInputError("create or attach a task first")
        return self.ctx

    def start_round(self, params: NDArrays) -> int:
        """Open the next round with ``params`` as the global model (published); returns the round number."""
        ctx = self._context()
        global_digest = ctx.publish(params)
        return self.contract.start_round(self.account, ctx.task_id, global_digest)

    def wait_for_reveals(self, round: int, poll: float = 0.05, timeout: float | None = None) -> None:
        """Block until the round can close: every commitment revealed once the commit phase is over, or the reveal
        deadline passed (late parties are then left out). ``timeout`` bounds the wait (seconds)."""
        ctx = self._context()
        limit = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.contract.round_info(ctx.task_id, round)
            now = chain_time(self.contract)
            if now >= info.reveal_deadline or (info.commits and info.reveals == info.commits and
                                               (now >= info.commit_deadline or _all_committed(ctx, info))):
                return
            if limit is not None and time.monotonic() > limit:
                return
            time.sleep(poll)

    def close_round(self, round: int, params: NDArrays, samples: Mapping[str, int]) -> ServerRound:
        """Judge the round from what the chain says was revealed and what the content store holds, then pay,
        slash, publish the new model and record the verdict. ``samples``: each participant's claimed sample
        count (from its ``join`` statement). Raises ChainError if the chain refuses the finalization."""
        ctx = self._context()
        received: dict[str, NDArrays] = {}
        rejected: dict[str, str] = {}
        revealed: dict[str, str] = {}
        for address in self.contract.participants(ctx.task_id):
            sub = self.contract.submission(ctx.task_id, round, address)
            if sub.state == "none":
                continue  # absent this round (or slashed earlier): not an update, nothing to reject
            if sub.state == "committed":
                rejected[address] = "committed but did not reveal before the reveal deadline"
                continue
            update_digest = sub.update_digest.hex()
            revealed[address] = update_digest
            try:
                received[address] = ctx.fetch(update_digest)
            except NotFoundError:
                rejected[address] = f"revealed update {update_digest[:12]} was never published"
            except InvalidInputError as e:
                rejected[address] = str(e)
        done = self.server.step(round, params, received, samples, rejected)
        scores = bps(done.shares) if not done.skipped else {}
        info = self.contract.round_info(ctx.task_id, round)
        if done.skipped and info.reveals < self.contract.task(ctx.task_id).quorum:
            self.contract.abort_round(self.account, ctx.task_id, round)
        else:
            flagged = {a: reason_digest(r) for a, r in done.flags.items()}
            self.contract.finalize_round(self.account, ctx.task_id, round, done.model_digest, scores, flagged)
        ctx.publish(done.params)
        acc = self.server.trainer.score(done.params, self.server.validation.X, self.server.validation.y)
        ctx.statement(
            self.account, "round", (f"model after round {round}", done.model_digest), round=round,
            globalModel=digest(params), aggregatedModel=done.model_digest, aggregator=self.server.aggregator_name,
            updates=revealed, weights=done.weights, contributions=done.contributions, scoresBps=scores,
            flags=done.flags, rejected=done.rejected, skipped=done.skipped, validationAccuracy=round_float(acc),
        )
        return done

    def task(self) -> TaskInfo:
        return self.contract.task(self._context().task_id)


def run_rounds(
    coordinator: Coordinator,
    participants: list[Participant],
    params: NDArrays,
    rounds: int,
    fit: Mapping[str, Any],
    seed: int = 0,
    on_round: Callable[[ServerRound], None] | None = None,
) -> NDArrays:
    """The in-process engine: every participant trains, submits and reveals in turn, the coordinator closes each
    round. Returns the final global model. A participant whose transaction fails (e.g. it was slashed) sits the
    round out; the round goes on with the others."""
    ctx = coordinator._context()
    samples = {p.address: len(p.data) for p in participants}
    for _ in range(rounds):
        r = coordinator.start_round(params)
        submitted = []
        for k, p in enumerate(participants):
            if ctx.contract.participant(ctx.task_id, p.address).state != "active":
                continue
            try:
                p.submit(ctx, r, p.train(params, fit, party_seed(seed, r, k)))
                submitted.append(p)
            except LedgermindError:
                continue
        wait_commit_phase(ctx, r)
        for p in submitted:
            try:
                p.reveal(ctx, r)
            except LedgermindError:
                continue
        coordinator.wait_for_reveals(r)
        done = coordinator.close_round(r, params, samples)
        params = done.params
        if on_round is not None:
            on_round(done)
    return params


def chain_time(contract: FederationContract) -> float:
    """What the chain's clock says now, as far as a deadline check goes: the latest block's time, or the wall
    clock if it is later. (A development chain that mines one block per transaction runs ahead of the wall
    clock, since each block must be later than its parent; the contract compares deadlines with block time.)"""
    return max(time.time(), float(contract.now()))


def _all_committed(ctx: TaskContext, info: Any) -> bool:
    """Every active participant committed, which ends the commit phase early (when the contract allows it)."""
    return info.commits >= ctx.contract.task(ctx.task_id).active


def wait_commit_phase(ctx: TaskContext, round: int) -> None:
    """Sleep until reveals are accepted: the commit deadline passed, or every active participant committed."""
    while True:
        info = ctx.contract.round_info(ctx.task_id, round)
        if chain_time(ctx.contract) >= info.commit_deadline or _all_committed(ctx, info):
            return
        time.sleep(0.1)


def party_seed(seed: int, round: int, k: int) -> int:
    """The training seed of the ``k``-th participant (in joining order) in ``round`` of a task seeded ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(round), int(k)]).generate_state(1)[0])


def _account_digest(address: str) -> str:
    return hashlib.sha256(address.lower().encode()).hexdigest()


def _now() -> str:
    from ledgermind.statements import utc_now

    return utc_now()


def round_float(x: float) -> float:
    return float(f"{x:.6f}")

"""The Federation contract from its users' side, on titanoboa's in-process EVM with the real contract and the
project's PaymentToken (no mocks): three rounds with four participants and exact balances, every revert reason,
commit-reveal against copied updates, the commit phase ending early once every active participant committed
(slashed ones not waited for), slashing, rewards by score with the rounding dust kept, quorum and aborts,
cancellation, abandonment of a stalled task, withdrawal by the owner of a balance only, and a malicious ERC-20
that re-enters the contract from its transfer hook.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import boa
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ledgermind.contracts import SOURCE_DIR, load

from .evil_token import EVIL_TOKEN

BPS = 10_000
START = 10_000_000  # PaymentToken units minted to every actor
POOL = 2_000_003  # 3 rounds: round_reward 666,667, and 2 units that no round can pay
STAKE = 1_000
COMMIT, REVEAL = 600, 900
STALL = 30 * 86_400
OPEN, RUNNING, FINISHED, CANCELLED = 1, 2, 3, 4
R_OPEN, R_FINALIZED, R_ABORTED = 1, 2, 3
ACTIVE, SLASHED, RETURNED = 1, 2, 3
COMMITTED, REVEALED, SCORED, FLAGGED = 1, 2, 3, 4
ZERO32 = b"\x00" * 32
MAX_UINT = 2**256 - 1


@functools.cache
def deployer(name: str):
    """Compiled on first use from the source (the committed artifact is pinned to it below)."""
    return boa.load_partial(str(SOURCE_DIR / f"{name}.vy"))


def digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def now() -> int:
    return boa.env.evm.patch.timestamp


def travel_to(timestamp: int) -> None:
    assert timestamp >= now()
    boa.env.time_travel(seconds=timestamp - now())


def events(contract, name: str) -> list:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def last_event(contract, name: str):
    (event,) = events(contract, name)
    return event


def commitment(task_id: int, round: int, participant: str, update: bytes, salt: bytes) -> bytes:
    """The commitment as the contract's notice defines it, computed independently of the binding."""
    return keccak(abi_encode(["uint256", "uint256", "address", "bytes32", "bytes32"],
                             [task_id, round, participant, update, salt]))


def update_of(who: str, round: int) -> bytes:
    return digest(f"update {who} {round}")


def salt_of(who: str, round: int) -> bytes:
    return digest(f"salt {who} {round}")


@dataclass
class World:
    fed: object
    pay: object
    coordinator: str
    people: list[str]  # four would-be participants
    outsider: str

    def create(self, **overrides) -> int:
        params = dict(token=self.pay.address, model_digest=digest("arch"), initial_weights=digest("w0"),
                      dataset_digest=digest("validation set"), rounds=3, reward_pool=POOL, min_stake=STAKE,
                      commit_window=COMMIT, reveal_window=REVEAL, max_participants=8, quorum=2)
        params.update(overrides)
        sender = params.pop("sender", self.coordinator)
        return self.fed.create_task(*params.values(), sender=sender)

    def joined(self, n: int = 4, stakes: list[int] | None = None, **overrides) -> int:
        """A task with the first ``n`` people joined (with ``stakes``, STAKE each by default)."""
        task_id = self.create(**overrides)
        for who, stake in zip(self.people[:n], stakes or [STAKE] * n, strict=False):
            self.fed.join(task_id, stake, sender=who)
        return task_id

    def commit(self, task_id: int, round: int, who: str) -> bytes:
        c = commitment(task_id, round, who, update_of(who, round), salt_of(who, round))
        self.fed.commit(task_id, round, c, sender=who)
        return c

    def reveal(self, task_id: int, round: int, who: str) -> None:
        self.fed.reveal(task_id, round, update_of(who, round), salt_of(who, round), sender=who)

    def round(self, task_id: int, round: int):
        return self.fed.round_info(task_id, round)

    def to_reveal(self, task_id: int, round: int) -> None:
        travel_to(self.round(task_id, round).commit_deadline)

    def to_end(self, task_id: int, round: int) -> None:
        travel_to(self.round(task_id, round).reveal_deadline)

    def revealed_round(self, task_id: int, who: list[str], global_digest: bytes = b"") -> int:
        """Starts the next round; ``who`` commit, then reveal (every commitment revealed: closable at once)."""
        r = self.fed.start_round(task_id, global_digest or digest(f"global {task_id}"), sender=self.coordinator)
        for p in who:
            self.commit(task_id, r, p)
        self.to_reveal(task_id, r)
        for p in who:
            self.reveal(task_id, r, p)
        return r

    def finalize(self, task_id: int, round: int, scores: dict[str, int] | None = None,
                 flags: dict[str, bytes] | None = None, sender: str | None = None) -> None:
        scores, flags = scores or {}, flags or {}
        self.fed.finalize_round(task_id, round, digest(f"aggregate {task_id} {round}"), list(scores),
                                list(scores.values()), list(flags), list(flags.values()),
                                sender=sender or self.coordinator)

    def token_held(self) -> int:
        return self.pay.balanceOf(self.fed.address)


@pytest.fixture()
def w() -> World:
    fed = deployer("Federation").deploy()
    pay = deployer("PaymentToken").deploy()  # boa's default account deployed it: it owns it and mints
    coordinator = boa.env.generate_address("coordinator")
    people = [boa.env.generate_address(f"participant {i}") for i in range(4)]
    outsider = boa.env.generate_address("outsider")
    for who in [coordinator, *people, outsider]:
        pay.mint(who, START)
        pay.approve(fed.address, MAX_UINT, sender=who)
    return World(fed, pay, coordinator, people, outsider)


# ------------------------------------------------------------------------------------------------ artifacts


def test_boa_runs_the_committed_bytecode():
    art = load("Federation")
    data = deployer("Federation").compiler_data
    assert "0x" + data.bytecode.hex() == art["bytecode"]
    assert "0x" + data.bytecode_runtime.hex() == art["deployedBytecode"]
    assert art["evmVersion"] == "cancun" and list(art["sources"]) == ["Federation.vy"]


def test_commitment_is_computable_off_chain(w):
    from ledgermind.federated.onchain import commitment as binding_commitment

    args = (7, 3, w.people[0], digest("an update"), digest("a salt"))
    expected = commitment(*args)
    assert w.fed.commitment(*args) == expected == binding_commitment(*args)
    # every field is bound: another task, round, participant, update or salt gives another commitment
    assert len({commitment(*args), commitment(8, *args[1:]), commitment(7, 4, *args[2:]),
                commitment(7, 3, w.people[1], *args[3:]), commitment(*args[:3], digest("other"), args[4]),
                commitment(*args[:4], digest("other salt"))}) == 6


# ------------------------------------------------------------------------------------------- the happy path


def test_three_rounds_four_participants_exact_balances(w):
    fed, (a, b, c, d) = w.fed, w.people
    stakes = {a: 1_000, b: 2_000, c: 1_500, d: 3_000}

    task_id = w.create()
    created = last_event(fed, "TaskCreated")
    assert task_id == 1 and fed.task_count() == 1
    assert (created.task_id, created.coordinator, created.token, created.rounds, created.reward_pool,
            created.min_stake, created.commit_window, created.reveal_window, created.max_participants,
            created.quorum) == (1, w.coordinator, w.pay.address, 3, POOL, STAKE, COMMIT, REVEAL, 8, 2)
    assert (created.model_digest, created.initial_weights, created.dataset_digest) == (
        digest("arch"), digest("w0"), digest("validation set"))
    assert w.pay.balanceOf(w.coordinator) == START - POOL and w.token_held() == POOL
    for who, stake in stakes.items():
        fed.join(task_id, stake, sender=who)
        assert (last_event(fed, "Joined").participant, last_event(fed, "Joined").stake) == (who, stake)
    assert fed.participants(task_id) == [a, b, c, d]
    assert fed.participant(task_id, b) == (2_000, ACTIVE)
    info = fed.task(task_id)
    assert (info.status, info.round, info.pool, info.staked, info.participants, info.round_reward) == (
        OPEN, 0, POOL, 7_500, 4, 666_667)
    assert w.token_held() == POOL + 7_500
    reward = 666_667

    # round 1: everyone commits, then reveals; scored 40/30/20/10 %
    r1 = fed.start_round(task_id, digest("w0"), sender=w.coordinator)
    started = last_event(fed, "RoundStarted")
    assert (r1, started.round, started.global_digest, started.commit_deadline, started.reveal_deadline) == (
        1, 1, digest("w0"), now() + COMMIT, now() + COMMIT + REVEAL)
    for p in (a, b, c, d):
        assert w.commit(task_id, 1, p) == last_event(fed, "Committed").commitment
    assert fed.submission(task_id, 1, a) == (commitment(task_id, 1, a, update_of(a, 1), salt_of(a, 1)), ZERO32,
                                              COMMITTED, 0, ZERO32)
    w.to_reveal(task_id, 1)
    for p in (a, b, c, d):
        w.reveal(task_id, 1, p)
        assert last_event(fed, "Revealed").update_digest == update_of(p, 1)
    scores1 = {a: 4_000, b: 3_000, c: 2_000, d: 1_000}
    w.finalize(task_id, 1, scores1)
    paid1 = {p: reward * s // BPS for p, s in scores1.items()}
    assert [(e.participant, e.score_bps, e.amount) for e in events(fed, "Rewarded")] == [
        (p, s, paid1[p]) for p, s in scores1.items()]
    fin = last_event(fed, "RoundFinalized")
    assert (fin.aggregated_digest, fin.reveals, fin.rewarded, fin.slashed) == (
        digest(f"aggregate {task_id} 1"), 4, sum(paid1.values()), 0)
    assert sum(paid1.values()) == reward - 2  # 266,666.8 + 200,000.1 + 133,333.4 + 66,666.7: the dust stays
    assert fed.submission(task_id, 1, b)[2:4] == (SCORED, 3_000)

    # round 2: c commits and never reveals (nothing, not slashed); d's update is poisoned and flagged
    r2 = fed.start_round(task_id, digest("aggregate 1"), sender=w.coordinator)
    for p in (a, b, c, d):
        w.commit(task_id, r2, p)
    w.to_reveal(task_id, r2)
    for p in (a, b, d):
        w.reveal(task_id, r2, p)
    with boa.reverts("reveal window still open"):  # c committed and has not revealed: wait for the deadline
        w.finalize(task_id, r2, {a: 6_000, b: 3_999}, {d: digest("statement: label flipping")})
    w.to_end(task_id, r2)
    w.finalize(task_id, r2, {a: 6_000, b: 3_999}, {d: digest("statement: label flipping")})
    slashed = last_event(fed, "Slashed")
    assert (slashed.participant, slashed.stake, slashed.reason) == (d, 3_000, digest("statement: label flipping"))
    paid2 = {a: reward * 6_000 // BPS, b: reward * 3_999 // BPS}
    assert (last_event(fed, "RoundFinalized").rewarded, last_event(fed, "RoundFinalized").slashed) == (
        sum(paid2.values()), 3_000)
    assert fed.participant(task_id, d) == (3_000, SLASHED)
    assert fed.submission(task_id, r2, d)[2:] == (FLAGGED, 0, digest("statement: label flipping"))
    assert fed.submission(task_id, r2, c)[2] == COMMITTED
    assert fed.participant(task_id, c) == (1_500, ACTIVE)

    # round 3: the slashed participant is out; the others reveal, and the round closes as soon as they have
    r3 = fed.start_round(task_id, digest("aggregate 2"), sender=w.coordinator)
    with boa.reverts("participant slashed"):
        w.commit(task_id, r3, d)
    for p in (a, b, c):
        w.commit(task_id, r3, p)
    w.to_reveal(task_id, r3)
    for p in (a, b, c):
        w.reveal(task_id, r3, p)
    assert now() < w.round(task_id, r3).reveal_deadline
    scores3 = {a: 5_000, b: 2_500, c: 2_500}
    w.finalize(task_id, r3, scores3)
    paid3 = {p: reward * s // BPS for p, s in scores3.items()}
    assert events(fed, "TaskFinished")[0].task_id == task_id

    info = fed.task(task_id)
    rewards = {p: paid1.get(p, 0) + paid2.get(p, 0) + paid3.get(p, 0) for p in (a, b, c, d)}
    distributed = sum(rewards.values())
    assert distributed <= 3 * reward
    assert (info.status, info.round, info.deadline) == (FINISHED, 3, 0)
    assert info.pool == POOL - distributed + 3_000
    assert info.staked == 4_500
    for r, paid in ((1, paid1), (2, paid2), (3, paid3)):
        assert w.round(task_id, r).rewarded == sum(paid.values()) <= reward
        assert w.round(task_id, r).status == R_FINALIZED
    # the contract holds exactly: pool + stakes + credited rewards
    assert w.token_held() == info.pool + info.staked + sum(fed.withdrawable(p, w.pay.address) for p in (a, b, c, d))

    # the task is over: no more rounds, stakes and pool come back
    with boa.reverts("task is over"):
        fed.start_round(task_id, digest("more"), sender=w.coordinator)
    with boa.reverts("stake slashed"):
        fed.reclaim_stake(task_id, sender=d)
    for p in (a, b, c):
        assert fed.reclaim_stake(task_id, sender=p) == stakes[p]
        assert last_event(fed, "StakeReturned").amount == stakes[p]
    assert fed.reclaim_pool(task_id, sender=w.coordinator) == POOL - distributed + 3_000
    for p in (a, b, c, d):
        owed = rewards[p] + (stakes[p] if p != d else 0)
        assert fed.withdrawable(p, w.pay.address) == owed
        assert fed.withdraw(w.pay.address, sender=p) == owed
        assert w.pay.balanceOf(p) == START - stakes[p] + owed
    fed.withdraw(w.pay.address, sender=w.coordinator)
    assert w.pay.balanceOf(w.coordinator) == START - distributed + 3_000  # the slashed stake went to the pool
    assert w.token_held() == 0
    assert sum(w.pay.balanceOf(p) for p in (a, b, c, d, w.coordinator)) == 5 * START  # nothing made or lost


# --------------------------------------------------------------------------------------- creating and joining


def test_create_task_rejects_bad_parameters(w):
    z = ZERO32
    cases = [
        ("token is not a contract", dict(token=w.outsider)),
        ("zero digest", dict(model_digest=z)),
        ("zero digest", dict(initial_weights=z)),
        ("zero digest", dict(dataset_digest=z)),
        ("rounds out of range", dict(rounds=0)),
        ("rounds out of range", dict(rounds=1_001)),
        ("zero reward pool", dict(reward_pool=0)),
        ("reward pool too large", dict(reward_pool=MAX_UINT // BPS + 1)),
        ("zero minimum stake", dict(min_stake=0)),
        ("commit window out of range", dict(commit_window=0)),
        ("commit window out of range", dict(commit_window=STALL + 1)),
        ("reveal window out of range", dict(reveal_window=0)),
        ("reveal window out of range", dict(reveal_window=STALL + 1)),
        ("max participants out of range", dict(max_participants=0)),
        ("max participants out of range", dict(max_participants=65)),
        ("quorum out of range", dict(quorum=0)),
        ("quorum out of range", dict(max_participants=3, quorum=4)),
        ("erc20: transfer amount exceeds balance", dict(reward_pool=START + 1)),
    ]
    for reason, overrides in cases:
        with boa.reverts(reason):
            w.create(**overrides)
    poor = boa.env.generate_address("no allowance")
    w.pay.mint(poor, POOL)
    with boa.reverts("erc20: insufficient allowance"):
        w.create(sender=poor)
    assert w.fed.task_count() == 0 and w.token_held() == 0
    assert w.create(max_participants=64, quorum=64, rounds=1_000) == 1
    assert w.create() == 2  # sequential ids


def test_join_rules(w):
    fed, (a, b, c, _) = w.fed, w.people
    task_id = w.create(max_participants=2, quorum=1)
    with boa.reverts("unknown task"):
        fed.join(99, STAKE, sender=a)
    with boa.reverts("coordinator cannot join"):
        fed.join(task_id, STAKE, sender=w.coordinator)
    with boa.reverts("stake below minimum"):
        fed.join(task_id, STAKE - 1, sender=a)
    fed.join(task_id, STAKE, sender=a)
    with boa.reverts("already joined"):
        fed.join(task_id, STAKE, sender=a)
    stranger = boa.env.generate_address("unapproved")
    w.pay.mint(stranger, STAKE)
    with boa.reverts("erc20: insufficient allowance"):
        fed.join(task_id, STAKE, sender=stranger)
    fed.join(task_id, 5 * STAKE, sender=b)  # more than the minimum is fine
    with boa.reverts("task full"):
        fed.join(task_id, STAKE, sender=c)
    assert fed.task(task_id).staked == 6 * STAKE == w.token_held() - POOL
    assert fed.active_participants(task_id) == 2  # refused joins, the coordinator's included, do not count

    # joining closes with the first round; a cancelled task cannot be joined either
    fed.start_round(task_id, digest("w0"), sender=w.coordinator)
    other = w.create()
    fed.cancel(other, sender=w.coordinator)
    for t in (task_id, other):
        with boa.reverts("task not open"):
            fed.join(t, STAKE, sender=c)
    # deny by default: an account that never joined cannot commit
    with boa.reverts("not a participant"):
        w.commit(task_id, 1, c)


def test_start_round_rules(w):
    fed, (a, b, *_) = w.fed, w.people
    task_id = w.create(quorum=2)
    fed.join(task_id, STAKE, sender=a)
    with boa.reverts("unknown task"):
        fed.start_round(99, digest("g"), sender=w.coordinator)
    with boa.reverts("caller is not the coordinator"):
        fed.start_round(task_id, digest("g"), sender=a)
    with boa.reverts("not enough participants"):  # fewer than the quorum could never finalize a round
        fed.start_round(task_id, digest("g"), sender=w.coordinator)
    fed.join(task_id, STAKE, sender=b)
    with boa.reverts("zero model digest"):
        fed.start_round(task_id, ZERO32, sender=w.coordinator)
    assert fed.start_round(task_id, digest("g"), sender=w.coordinator) == 1
    assert fed.task(task_id).status == RUNNING
    with boa.reverts("round in progress"):
        fed.start_round(task_id, digest("g"), sender=w.coordinator)
    with boa.reverts("task not open"):
        fed.cancel(task_id, sender=w.coordinator)


# --------------------------------------------------------------------------------------------- commit, reveal


def test_commit_rules(w):
    fed, (a, b, c, _) = w.fed, w.people
    task_id = w.joined(3)
    with boa.reverts("task not running"):
        w.commit(task_id, 1, a)
    with boa.reverts("unknown task"):
        fed.commit(99, 1, digest("c"), sender=a)
    r = fed.start_round(task_id, digest("g"), sender=w.coordinator)
    with boa.reverts("not the current round"):
        w.commit(task_id, r + 1, a)
    with boa.reverts("not a participant"):
        w.commit(task_id, r, w.outsider)
    with boa.reverts("not a participant"):
        w.commit(task_id, r, w.coordinator)
    with boa.reverts("zero commitment"):
        fed.commit(task_id, r, ZERO32, sender=a)
    w.commit(task_id, r, a)
    with boa.reverts("already committed"):
        fed.commit(task_id, r, digest("second thoughts"), sender=a)
    travel_to(w.round(task_id, r).commit_deadline - 1)
    w.commit(task_id, r, b)  # the last second of the window
    boa.env.time_travel(seconds=1)
    with boa.reverts("commit window closed"):  # late commit
        w.commit(task_id, r, c)
    assert w.round(task_id, r).commits == 2


def test_reveal_rules(w):
    fed, (a, b, c, _) = w.fed, w.people
    task_id = w.joined(3, quorum=1)
    r = fed.start_round(task_id, digest("g"), sender=w.coordinator)
    w.commit(task_id, r, a)
    w.commit(task_id, r, b)
    with boa.reverts("commit window still open"):  # early reveal
        w.reveal(task_id, r, a)
    w.to_reveal(task_id, r)
    with boa.reverts("nothing committed"):
        w.reveal(task_id, r, c)
    with boa.reverts("not the current round"):
        fed.reveal(task_id, r + 1, update_of(a, r), salt_of(a, r), sender=a)
    with boa.reverts("reveal does not match commitment"):  # wrong salt
        fed.reveal(task_id, r, update_of(a, r), digest("guess"), sender=a)
    with boa.reverts("reveal does not match commitment"):  # another update than committed
        fed.reveal(task_id, r, digest("better idea"), salt_of(a, r), sender=a)
    with boa.reverts("zero update digest"):
        fed.reveal(task_id, r, ZERO32, salt_of(a, r), sender=a)
    w.reveal(task_id, r, a)
    assert fed.submission(task_id, r, a)[1:3] == (update_of(a, r), REVEALED)
    with boa.reverts("already revealed"):  # replayed reveal
        w.reveal(task_id, r, a)
    # b saw a's update and salt in the reveal: revealing them as its own does not open b's commitment
    with boa.reverts("reveal does not match commitment"):
        fed.reveal(task_id, r, update_of(a, r), salt_of(a, r), sender=b)
    travel_to(w.round(task_id, r).reveal_deadline)
    with boa.reverts("reveal window closed"):  # late reveal
        w.reveal(task_id, r, b)
    assert (w.round(task_id, r).commits, w.round(task_id, r).reveals) == (2, 1)


def test_a_copied_commitment_cannot_be_revealed(w):
    """Commit-reveal against update copying: b copies a's commitment from the Committed event before the
    deadline; the commitment binds a's address, so b can never open it, even after seeing a's reveal."""
    fed, (a, b, *_) = w.fed, w.people
    task_id = w.joined(2, quorum=1)
    r = fed.start_round(task_id, digest("g"), sender=w.coordinator)
    copied = w.commit(task_id, r, a)
    fed.commit(task_id, r, copied, sender=b)
    w.to_reveal(task_id, r)
    w.reveal(task_id, r, a)
    seen = last_event(fed, "Revealed").update_digest
    with boa.reverts("reveal does not match commitment"):
        fed.reveal(task_id, r, seen, salt_of(a, r), sender=b)
    w.to_end(task_id, r)
    with boa.reverts("score for a participant that did not reveal"):
        w.finalize(task_id, r, {b: 5_000})
    w.finalize(task_id, r, {a: 10_000})
    assert fed.withdrawable(b, w.pay.address) == 0


# ---------------------------------------------------------------------------- the commit phase ending early


def test_reveal_opens_as_soon_as_every_active_participant_committed(w):
    """Once every participant that may commit has committed, no commitment can come after a reveal: reveals need
    not wait for the commit deadline. Until then, one that has not committed could copy a revealed update."""
    fed, (a, b, c, _) = w.fed, w.people
    task_id = w.joined(3, quorum=1)
    assert fed.active_participants(task_id) == 3  # the coordinator cannot join: it is never waited for
    r = fed.start_round(task_id, digest("g"), sender=w.coordinator)
    commit_deadline, reveal_deadline = w.round(task_id, r).commit_deadline, w.round(task_id, r).reveal_deadline
    w.commit(task_id, r, a)
    w.commit(task_id, r, b)
    for p in (a, b, c):  # c is active and has not committed: the commit window is still open
        with boa.reverts("commit window still open"):
            w.reveal(task_id, r, p)
    travel_to(commit_deadline - 1)
    with boa.reverts("commit window still open"):
        w.reveal(task_id, r, a)
    w.commit(task_id, r, c)  # the last active participant, in the last second of the window
    assert w.round(task_id, r).commits == fed.active_participants(task_id) == 3 and now() < commit_deadline

    w.reveal(task_id, r, a)  # before the commit deadline
    assert last_event(fed, "Revealed").update_digest == update_of(a, r)
    # nobody can commit any more, so nobody can commit a copy of a's update
    for p in (a, b, c):
        with boa.reverts("already committed"):
            fed.commit(task_id, r, commitment(task_id, r, p, update_of(a, r), salt_of(p, r)), sender=p)
    for p in (w.outsider, w.coordinator):
        with boa.reverts("not a participant"):
            w.commit(task_id, r, p)
    # the other reveal rules hold as before
    with boa.reverts("already revealed"):
        w.reveal(task_id, r, a)
    with boa.reverts("reveal does not match commitment"):
        fed.reveal(task_id, r, update_of(a, r), salt_of(a, r), sender=b)
    with boa.reverts("nothing committed"):
        w.reveal(task_id, r, w.outsider)
    w.reveal(task_id, r, b)
    rnd = w.round(task_id, r)
    assert (rnd.commits, rnd.reveals, rnd.commit_deadline, rnd.reveal_deadline) == (
        3, 2, commit_deadline, reveal_deadline)  # the deadlines stay: c may reveal until the reveal deadline
    travel_to(reveal_deadline - 1)
    w.reveal(task_id, r, c)
    assert w.round(task_id, r).reveals == 3


def test_a_round_closes_as_soon_as_every_active_participant_committed_and_revealed(w):
    fed, (a, b, c, _) = w.fed, w.people
    task_id = w.joined(3, quorum=3, rounds=2)
    r1 = fed.start_round(task_id, digest("g1"), sender=w.coordinator)
    commit_deadline = w.round(task_id, r1).commit_deadline
    with boa.reverts("reveal window still open"):  # nobody committed yet
        fed.abort_round(task_id, r1, sender=w.coordinator)
    w.commit(task_id, r1, a)
    w.commit(task_id, r1, b)
    with boa.reverts("reveal window still open"):  # c, active, may still commit
        w.finalize(task_id, r1, {})
    w.commit(task_id, r1, c)
    w.reveal(task_id, r1, a)
    w.reveal(task_id, r1, b)
    with boa.reverts("reveal window still open"):  # c may still reveal
        w.finalize(task_id, r1, {a: 5_000, b: 5_000})
    with boa.reverts("reveal window still open"):
        fed.abort_round(task_id, r1, sender=w.coordinator)
    w.reveal(task_id, r1, c)
    with boa.reverts("quorum reached: finalize instead"):
        fed.abort_round(task_id, r1, sender=w.coordinator)
    w.finalize(task_id, r1, {a: 5_000, b: 5_000}, {c: digest("poisoned")})  # long before the commit deadline
    assert now() < commit_deadline
    assert (w.round(task_id, r1).status, fed.task(task_id).deadline) == (R_FINALIZED, now() + STALL)
    assert fed.active_participants(task_id) == 2

    # round 2: a and b are all the active participants left, fewer than the quorum: the round, which cannot
    # reach it, is aborted as soon as both committed and revealed
    r2 = fed.start_round(task_id, digest("g2"), sender=w.coordinator)
    commit_deadline = w.round(task_id, r2).commit_deadline
    w.commit(task_id, r2, a)
    with boa.reverts("reveal window still open"):
        fed.abort_round(task_id, r2, sender=w.coordinator)
    w.commit(task_id, r2, b)
    w.reveal(task_id, r2, a)
    with boa.reverts("reveal window still open"):
        fed.abort_round(task_id, r2, sender=w.coordinator)
    w.reveal(task_id, r2, b)
    with boa.reverts("below quorum"):
        w.finalize(task_id, r2, {a: BPS})
    fed.abort_round(task_id, r2, sender=w.coordinator)
    assert now() < commit_deadline
    assert (w.round(task_id, r2).status, fed.task(task_id).status) == (R_ABORTED, FINISHED)


def test_a_slashed_participant_is_not_waited_for(w):
    fed, (a, b, c, d) = w.fed, w.people
    task_id = w.joined(4, quorum=1)
    r1 = w.revealed_round(task_id, [a, b, c, d])
    w.finalize(task_id, r1, {a: 5_000, b: 5_000}, {d: digest("label flipping")})
    assert (fed.active_participants(task_id), fed.task(task_id).participants) == (3, 4)

    # round 2: d cannot commit, and is not waited for; c is, until it commits
    r2 = fed.start_round(task_id, digest("g2"), sender=w.coordinator)
    commit_deadline = w.round(task_id, r2).commit_deadline
    with boa.reverts("participant slashed"):
        w.commit(task_id, r2, d)
    w.commit(task_id, r2, a)
    w.commit(task_id, r2, b)
    with boa.reverts("commit window still open"):
        w.reveal(task_id, r2, a)
    with boa.reverts("reveal window still open"):
        w.finalize(task_id, r2, {})
    w.commit(task_id, r2, c)
    for p in (a, b, c):
        w.reveal(task_id, r2, p)
    w.finalize(task_id, r2, {a: BPS}, {c: digest("backdoor")})
    assert now() < commit_deadline
    assert fed.active_participants(task_id) == 2

    # round 3: slashed one and two rounds ago, neither c nor d is waited for
    r3 = fed.start_round(task_id, digest("g3"), sender=w.coordinator)
    commit_deadline = w.round(task_id, r3).commit_deadline
    w.commit(task_id, r3, a)
    with boa.reverts("commit window still open"):  # b has not committed
        w.reveal(task_id, r3, a)
    w.commit(task_id, r3, b)
    w.reveal(task_id, r3, a)
    w.reveal(task_id, r3, b)
    w.finalize(task_id, r3, {a: 5_000, b: 5_000})
    assert now() < commit_deadline
    assert fed.task(task_id).status == FINISHED


def test_a_round_with_no_active_participant_left_closes_at_once(w):
    """Everyone slashed: nobody may commit, so the commit phase is over as the round starts, and with nothing to
    reveal so is the reveal phase; the round, which cannot reach the quorum, can be aborted at once."""
    fed, (a, b, *_) = w.fed, w.people
    task_id = w.joined(2, quorum=1, rounds=2)
    r1 = w.revealed_round(task_id, [a, b])
    w.finalize(task_id, r1, {}, {a: digest("poisoned"), b: digest("poisoned too")})
    assert fed.active_participants(task_id) == 0
    r2 = fed.start_round(task_id, digest("g2"), sender=w.coordinator)
    for p in (a, b):
        with boa.reverts("participant slashed"):
            w.commit(task_id, r2, p)
        with boa.reverts("nothing committed"):
            w.reveal(task_id, r2, p)
    with boa.reverts("below quorum"):
        w.finalize(task_id, r2, {})
    fed.abort_round(task_id, r2, sender=w.coordinator)
    assert now() < w.round(task_id, r2).commit_deadline
    assert fed.task(task_id).status == FINISHED


# ------------------------------------------------------------------------------------------------- finalize


def test_finalize_rules(w):
    fed, (a, b, c, d) = w.fed, w.people
    task_id = w.joined(4, quorum=2)
    with boa.reverts("task not running"):
        w.finalize(task_id, 1, {})
    r = fed.start_round(task_id, digest("g"), sender=w.coordinator)
    for p in (a, b, c):
        w.commit(task_id, r, p)
    with boa.reverts("reveal window still open"):  # during the commit window
        w.finalize(task_id, r, {})
    w.to_reveal(task_id, r)
    w.reveal(task_id, r, a)
    w.reveal(task_id, r, b)
    with boa.reverts("reveal window still open"):  # c may still reveal
        w.finalize(task_id, r, {a: 5_000})
    w.to_end(task_id, r)

    agg = digest("aggregate")
    cases = [
        ("caller is not the coordinator", dict(sender=a)),
        ("unknown task", dict(task_id=99)),
        ("not the current round", dict(round=r + 1)),
        ("zero aggregated digest", dict(agg=ZERO32)),
        ("scores length mismatch", dict(scored=[a, b], scores=[5_000])),
        ("flags length mismatch", dict(flagged=[a], reasons=[])),
        ("scores above 10,000", dict(scored=[a], scores=[10_001])),
        ("scores above 10,000", dict(scored=[a, b], scores=[6_000, 4_001])),
        ("scores above 10,000", dict(scored=[a], scores=[MAX_UINT])),
        ("score for a participant that did not reveal", dict(scored=[c], scores=[1])),  # committed only
        ("score for a participant that did not reveal", dict(scored=[d], scores=[1])),  # never committed
        ("score for a participant that did not reveal", dict(scored=[w.outsider], scores=[1])),
        ("participant scored twice", dict(scored=[a, b, a], scores=[1, 1, 1])),
        ("flagged participant did not reveal", dict(flagged=[c], reasons=[digest("r")])),
        ("flagged participant did not reveal", dict(flagged=[w.outsider], reasons=[digest("r")])),
        ("participant flagged twice", dict(flagged=[b, b], reasons=[digest("r"), digest("r")])),
        ("flagged participant was scored", dict(scored=[a], scores=[1], flagged=[a], reasons=[digest("r")])),
    ]
    for reason, o in cases:
        with boa.reverts(reason):
            fed.finalize_round(o.get("task_id", task_id), o.get("round", r), o.get("agg", agg), o.get("scored", []),
                               o.get("scores", []), o.get("flagged", []), o.get("reasons", []),
                               sender=o.get("sender", w.coordinator))
    assert w.round(task_id, r).status == R_OPEN and fed.withdrawable(a, w.pay.address) == 0

    # all of the basis points, all to one: exactly the round reward; scores of 0 are allowed
    w.finalize(task_id, r, {a: BPS, b: 0})
    reward = fed.task(task_id).round_reward
    assert fed.withdrawable(a, w.pay.address) == reward and fed.withdrawable(b, w.pay.address) == 0
    with boa.reverts("round closed"):
        w.finalize(task_id, r, {a: BPS})
    with boa.reverts("round closed"):
        w.commit(task_id, r, d)
    with boa.reverts("round closed"):
        fed.abort_round(task_id, r, sender=w.coordinator)


def test_quorum_and_abort(w):
    fed, (a, b, c, _) = w.fed, w.people
    task_id = w.joined(3, quorum=3, rounds=2)
    r1 = w.revealed_round(task_id, [a, b])  # two reveals, quorum three
    with boa.reverts("below quorum"):
        w.finalize(task_id, r1, {a: 5_000, b: 5_000})
    with boa.reverts("caller is not the coordinator"):
        fed.abort_round(task_id, r1, sender=a)
    pool = fed.task(task_id).pool
    fed.abort_round(task_id, r1, sender=w.coordinator)
    aborted = last_event(fed, "RoundAborted")
    assert (aborted.round, aborted.reveals) == (1, 2)
    assert w.round(task_id, r1).status == R_ABORTED and w.round(task_id, r1).rewarded == 0
    assert fed.task(task_id).pool == pool and fed.withdrawable(a, w.pay.address) == 0  # nothing paid
    assert fed.task(task_id).deadline == now() + STALL

    # the next round reaches the quorum: it must be finalized, not aborted
    r2 = fed.start_round(task_id, digest("g2"), sender=w.coordinator)
    assert r2 == 2
    with boa.reverts("reveal window still open"):
        fed.abort_round(task_id, r2, sender=w.coordinator)
    for p in (a, b, c):
        w.commit(task_id, r2, p)
    w.to_reveal(task_id, r2)
    for p in (a, b, c):
        w.reveal(task_id, r2, p)
    with boa.reverts("quorum reached: finalize instead"):
        fed.abort_round(task_id, r2, sender=w.coordinator)
    w.finalize(task_id, r2, {a: 10_000})
    assert fed.task(task_id).status == FINISHED
    # the aborted round's reward was never paid: it returns to the coordinator with the rest of the pool
    assert fed.reclaim_pool(task_id, sender=w.coordinator) == POOL - fed.task(task_id).round_reward


def test_aborting_the_last_round_finishes_the_task(w):
    fed, (a, *_) = w.fed, w.people
    task_id = w.joined(2, quorum=2, rounds=1)
    r = fed.start_round(task_id, digest("g"), sender=w.coordinator)
    w.commit(task_id, r, a)
    w.to_end(task_id, r)  # nobody revealed
    fed.abort_round(task_id, r, sender=w.coordinator)
    assert events(fed, "RoundAborted") and events(fed, "TaskFinished")
    assert fed.task(task_id).status == FINISHED
    assert fed.reclaim_pool(task_id, sender=w.coordinator) == POOL
    assert fed.reclaim_stake(task_id, sender=a) == STAKE


# -------------------------------------------------------------------------------------------------- slashing


def test_slashing_takes_the_whole_stake_and_keeps_earlier_rewards(w):
    fed, (a, b, c, _) = w.fed, w.people
    task_id = w.joined(3, stakes=[STAKE, 4 * STAKE, STAKE], quorum=1)
    r1 = w.revealed_round(task_id, [a, b, c])
    w.finalize(task_id, r1, {a: 5_000, b: 5_000})
    earned = fed.withdrawable(b, w.pay.address)
    assert earned == fed.task(task_id).round_reward // 2

    r2 = w.revealed_round(task_id, [a, b, c])
    pool, staked = fed.task(task_id).pool, fed.task(task_id).staked
    w.finalize(task_id, r2, {a: BPS}, {b: digest("backdoor trigger in update"), c: (7).to_bytes(32, "big")})
    slashes = events(fed, "Slashed")
    assert [(e.participant, e.stake, e.reason) for e in slashes] == [
        (b, 4 * STAKE, digest("backdoor trigger in update")), (c, STAKE, (7).to_bytes(32, "big"))]
    info = fed.task(task_id)
    assert info.pool == pool - fed.task(task_id).round_reward + 5 * STAKE
    assert info.staked == staked - 5 * STAKE == STAKE
    assert w.round(task_id, r2).slashed == 5 * STAKE
    assert fed.withdrawable(b, w.pay.address) == earned  # what it earned before stays its own

    r3 = fed.start_round(task_id, digest("g3"), sender=w.coordinator)
    for p in (b, c):
        with boa.reverts("participant slashed"):
            w.commit(task_id, r3, p)
    w.commit(task_id, r3, a)
    w.to_reveal(task_id, r3)
    w.reveal(task_id, r3, a)
    w.finalize(task_id, r3, {a: BPS})
    for p in (b, c):
        with boa.reverts("stake slashed"):
            fed.reclaim_stake(task_id, sender=p)
    assert fed.withdraw(w.pay.address, sender=b) == earned
    assert w.pay.balanceOf(b) == START - 4 * STAKE + earned


# ------------------------------------------------------------------------------------ cancel, reclaim, withdraw


def test_cancel_refunds_everyone_once(w):
    fed, (a, b, *_) = w.fed, w.people
    task_id = w.joined(2, stakes=[STAKE, 2 * STAKE])
    with boa.reverts("task not over"):
        fed.reclaim_stake(task_id, sender=a)
    with boa.reverts("task not over"):
        fed.reclaim_pool(task_id, sender=w.coordinator)
    with boa.reverts("caller is not the coordinator"):
        fed.cancel(task_id, sender=a)
    with boa.reverts("unknown task"):
        fed.cancel(99, sender=w.coordinator)
    fed.cancel(task_id, sender=w.coordinator)
    assert last_event(fed, "TaskCancelled").task_id == task_id
    assert (fed.task(task_id).status, fed.task(task_id).deadline) == (CANCELLED, 0)
    with boa.reverts("task not open"):
        fed.cancel(task_id, sender=w.coordinator)
    with boa.reverts("task is over"):
        fed.start_round(task_id, digest("g"), sender=w.coordinator)

    with boa.reverts("not a participant"):
        fed.reclaim_stake(task_id, sender=w.outsider)
    with boa.reverts("caller is not the coordinator"):
        fed.reclaim_pool(task_id, sender=a)
    assert fed.reclaim_stake(task_id, sender=a) == STAKE
    assert fed.participant(task_id, a) == (STAKE, RETURNED)
    with boa.reverts("stake already returned"):
        fed.reclaim_stake(task_id, sender=a)
    assert fed.reclaim_stake(task_id, sender=b) == 2 * STAKE
    assert fed.active_participants(task_id) == 2  # a returned stake still counts: no round runs any more
    assert fed.reclaim_pool(task_id, sender=w.coordinator) == POOL
    assert (last_event(fed, "PoolReclaimed").coordinator, last_event(fed, "PoolReclaimed").amount) == (
        w.coordinator, POOL)
    with boa.reverts("pool empty"):
        fed.reclaim_pool(task_id, sender=w.coordinator)
    assert (fed.task(task_id).pool, fed.task(task_id).staked) == (0, 0)
    for who in (a, b, w.coordinator):
        fed.withdraw(w.pay.address, sender=who)
        assert w.pay.balanceOf(who) == START
    assert w.token_held() == 0


def test_withdraw_pays_only_the_owner_of_a_balance(w):
    fed, (a, b, *_) = w.fed, w.people
    task_id = w.joined(2, quorum=1, rounds=1)
    r = w.revealed_round(task_id, [a, b])
    w.finalize(task_id, r, {a: BPS})
    owed = fed.withdrawable(a, w.pay.address)
    for stranger in (b, w.outsider, w.coordinator):
        with boa.reverts("nothing to withdraw"):
            fed.withdraw(w.pay.address, sender=stranger)
    with boa.reverts("nothing to withdraw"):  # a's balance is in PaymentToken, not in another token
        fed.withdraw(w.fed.address, sender=a)
    assert fed.withdrawable(a, w.pay.address) == owed
    assert fed.withdraw(w.pay.address, sender=a) == owed
    event = last_event(fed, "Withdrawn")
    assert (event.account, event.token, event.amount) == (a, w.pay.address, owed)
    assert w.pay.balanceOf(a) == START - STAKE + owed
    with boa.reverts("nothing to withdraw"):
        fed.withdraw(w.pay.address, sender=a)


def test_a_stalled_coordinator_can_be_abandoned(w):
    fed, (a, b, *_) = w.fed, w.people
    # never started: cancelled by anyone once the deadline has passed
    idle = w.joined(2)
    assert fed.task(idle).deadline == now() + STALL
    with boa.reverts("coordinator not late"):
        fed.abandon(idle, sender=a)

    # started, round 1 finalized, round 2 left open by the coordinator
    task_id = w.joined(2, quorum=1)
    r1 = w.revealed_round(task_id, [a, b])
    w.finalize(task_id, r1, {a: 6_000, b: 4_000})
    assert fed.task(task_id).deadline == now() + STALL  # time to start the next round
    r2 = w.revealed_round(task_id, [a, b])
    deadline = w.round(task_id, r2).reveal_deadline + STALL
    assert fed.task(task_id).deadline == deadline
    travel_to(deadline - 1)
    with boa.reverts("coordinator not late"):
        fed.abandon(task_id, sender=w.outsider)
    boa.env.time_travel(seconds=1)
    fed.abandon(task_id, sender=w.outsider)
    assert (last_event(fed, "TaskAbandoned").caller, last_event(fed, "TaskAbandoned").round) == (w.outsider, 2)
    assert fed.task(task_id).status == FINISHED and w.round(task_id, r2).status == R_ABORTED
    with boa.reverts("task not running"):
        w.finalize(task_id, r2, {a: BPS})
    with boa.reverts("task is over"):
        fed.abandon(task_id, sender=w.outsider)
    paid = fed.withdrawable(a, w.pay.address) + fed.withdrawable(b, w.pay.address)
    assert paid == 666_666  # round 1 only: round 2 paid nothing
    assert fed.reclaim_stake(task_id, sender=a) == STAKE
    assert fed.reclaim_pool(task_id, sender=w.coordinator) == POOL - paid

    fed.abandon(idle, sender=a)  # long past its deadline too
    assert fed.task(idle).status == CANCELLED
    assert fed.reclaim_stake(idle, sender=b) == STAKE
    with boa.reverts("unknown task"):
        fed.abandon(99, sender=a)


def test_views(w):
    fed, (a, b, *_) = w.fed, w.people
    with boa.reverts("unknown task"):
        fed.task(1)
    with boa.reverts("unknown task"):
        fed.participants(1)
    with boa.reverts("unknown task"):
        fed.round_info(1, 1)
    with boa.reverts("unknown task"):
        fed.active_participants(1)
    assert fed.active_participants(w.create()) == 0
    task_id = w.joined(2, quorum=1)
    assert fed.active_participants(task_id) == 2
    info = fed.task(task_id)
    assert (info.coordinator, info.token, info.model_digest, info.initial_weights, info.dataset_digest) == (
        w.coordinator, w.pay.address, digest("arch"), digest("w0"), digest("validation set"))
    assert (info.rounds, info.reward_pool, info.min_stake, info.commit_window, info.reveal_window,
            info.max_participants, info.quorum) == (3, POOL, STAKE, COMMIT, REVEAL, 8, 1)
    assert tuple(w.round(task_id, 1)) == (ZERO32, 0, 0, ZERO32, 0, 0, 0, 0, 0)  # not started
    assert fed.participant(task_id, w.outsider) == (0, 0)
    assert fed.submission(task_id, 1, a) == (ZERO32, ZERO32, 0, 0, ZERO32)
    r = w.revealed_round(task_id, [a, b], digest("global"))
    rnd = w.round(task_id, r)
    assert (rnd.global_digest, rnd.commits, rnd.reveals, rnd.status) == (digest("global"), 2, 2, R_OPEN)
    assert rnd.reveal_deadline - rnd.commit_deadline == REVEAL


# ------------------------------------------------------------------------------------------------ reentrancy


def test_a_reentrant_token_cannot_drain(w):
    fed, (a, *_) = w.fed, w.people
    honest = w.joined(2)  # an honest task in PaymentToken alongside
    held = w.token_held()
    evil = boa.loads(EVIL_TOKEN)
    evil.mint(evil.address, 100_000)
    evil.mint(a, 1_000)

    def create() -> bytes:
        return fed.create_task.prepare_calldata(evil.address, digest("a"), digest("w"), digest("d"), 1, 1_000, 10,
                                                COMMIT, REVEAL, 4, 1)

    def held_by_fed() -> int:
        return evil.balanceOf(fed.address)

    # the evil token coordinates task E1 (pool 1,000), a honest account stakes 100 of it in E1
    evil.act(fed.address, create())
    e1 = fed.task_count()
    fed.join(e1, 100, sender=a)
    evil.act(fed.address, fed.cancel.prepare_calldata(e1))
    evil.act(fed.address, fed.reclaim_pool.prepare_calldata(e1))
    assert fed.withdrawable(evil.address, evil.address) == 1_000 and held_by_fed() == 1_100
    # a second task E2, open, and a third E3, cancelled but its pool not yet reclaimed
    evil.act(fed.address, create())
    e2 = fed.task_count()
    evil.act(fed.address, create())
    e3 = fed.task_count()
    evil.act(fed.address, fed.cancel.prepare_calldata(e3))

    # from inside the transfer of its own withdrawal, it tries, one per withdrawal: to withdraw again, to
    # create a task, to reclaim E3's pool, to cancel E2; each would work outside (but the first, already
    # zeroed), and each is refused by the reentrancy lock
    payloads = [fed.withdraw.prepare_calldata(evil.address), create(), fed.reclaim_pool.prepare_calldata(e3),
                fed.cancel.prepare_calldata(e2)]
    for i, payload in enumerate(payloads):
        if i:  # a fresh rightful balance to withdraw: a task created, cancelled and its pool reclaimed
            evil.act(fed.address, create())
            evil.act(fed.address, fed.cancel.prepare_calldata(fed.task_count()))
            evil.act(fed.address, fed.reclaim_pool.prepare_calldata(fed.task_count()))
        count, before = fed.task_count(), evil.balanceOf(evil.address)
        evil.arm(fed.address, payload)
        evil.act(fed.address, fed.withdraw.prepare_calldata(evil.address))
        assert (evil.attempts(), evil.reentered()) == (i + 1, 0)
        assert evil.balanceOf(evil.address) == before + 1_000  # paid once
        assert fed.withdrawable(evil.address, evil.address) == 0 and fed.task_count() == count
    assert fed.task(e2).status == OPEN and fed.task(e3).pool == 1_000
    # what stays in the contract is exactly what it owes in that token: a's stake, E2's and E3's pools
    assert held_by_fed() == fed.withdrawable(a, evil.address) + fed.task(e1).staked + 2_000 == 2_100

    # the same calls outside a transfer go through: it was the lock that refused them
    evil.act(fed.address, fed.reclaim_pool.prepare_calldata(e3))
    evil.act(fed.address, fed.cancel.prepare_calldata(e2))
    evil.act(fed.address, create())
    assert fed.task(e2).status == CANCELLED

    # a re-entry from a pull (transferFrom in join) is refused too: the token cannot join meanwhile
    evil.mint(w.coordinator, 1_000)
    t = w.create(token=evil.address, reward_pool=1_000, min_stake=10, rounds=1, quorum=1)
    evil.arm(fed.address, fed.join.prepare_calldata(t, 100))
    fed.join(t, 100, sender=a)
    assert (evil.attempts(), evil.reentered()) == (len(payloads) + 1, 0)
    assert fed.participants(t) == [a]
    evil.act(fed.address, fed.join.prepare_calldata(t, 100))  # outside a transfer it can
    assert fed.participants(t) == [a, evil.address]
    # the honest PaymentToken task never moved
    assert w.token_held() == held and fed.task(honest).staked == 2 * STAKE

"""Federation against a Python model, with hypothesis driving random sequences of task creations, joins,
round starts, commits (fresh, zero, for another round), reveals (right, wrong salt, replayed), finalizations with
random scores and flags (valid, above 10,000, naming non-revealers, duplicates), aborts, cancellations,
abandonments, stake and pool reclaims, withdrawals and the passing of time, by five actors who are coordinators
of some tasks and participants of others, all paying in the PaymentToken.

Every call either succeeds and changes what the model predicts, or reverts with the reason the model predicts.
The commit phase of a round is over at its commit deadline, or as soon as every active participant (joined, not
slashed) committed: from then on reveals are accepted, and a round whose commitments are all revealed can be
closed (`Task.commits_over`).

Invariants, after every step:
- money is conserved: the contract's token balance is exactly, over all tasks, the remaining pools + the stakes
  held + the credited balances not withdrawn; nobody withdrew more than was credited to it; nothing is created
  or lost (what the actors hold + what the contract holds == what was minted). Each actor's own balance, and
  what the contract owes it, are compared with the chain after each of its withdrawals and at the end of every
  example: what it started with, less what it paid in (pools, stakes), plus what it withdrew;
- a participant's stake is held, slashed into its task's pool, or returned, each exactly once (the contract's
  `participant`, `pool` and `staked` agree with the model, and `StakeReturned` fires once per returned stake);
- the rewards credited in a round never exceed reward_pool // rounds;
- an open round's commitments never outnumber the task's active participants (`active_participants`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import boa
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ledgermind.contracts import SOURCE_DIR
from ledgermind.federated.onchain import commitment

START = 10**7
BPS = 10_000
STALL = 30 * 86_400
MAX_UINT = 2**256 - 1
ZERO32 = b"\x00" * 32
ACTORS = [boa.env.generate_address(f"actor {i}") for i in range(5)]
NOT_ENOUGH = "erc20: transfer amount exceeds balance"

actor = st.integers(0, len(ACTORS) - 1)
MOSTLY = st.sampled_from([True, True, True, False])  # a participant that plays its part, most of the time


@functools.cache
def deployer(name: str):
    return boa.load_partial(str(SOURCE_DIR / f"{name}.vy"))


def digest(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def now() -> int:
    return boa.env.evm.patch.timestamp


@dataclass
class Round:
    commit_deadline: int
    reveal_deadline: int
    status: str = "open"  # open, finalized, aborted
    commits: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # actor -> (update, salt)
    revealed: set[int] = field(default_factory=set)
    rewarded: int = 0


@dataclass
class Task:
    id: int
    coordinator: int
    rounds: int
    reward_pool: int
    min_stake: int
    commit_window: int
    reveal_window: int
    max_participants: int
    quorum: int
    deadline: int
    pool: int = 0
    status: str = "open"  # open, running, finished, cancelled
    round: int = 0
    members: dict[int, list] = field(default_factory=dict)  # actor -> [stake, state]; state active/slashed/returned
    history: dict[int, Round] = field(default_factory=dict)

    @property
    def round_reward(self) -> int:
        return self.reward_pool // self.rounds

    @property
    def staked(self) -> int:
        return sum(stake for stake, state in self.members.values() if state == "active")

    @property
    def active(self) -> int:
        """Participants joined and not slashed, as the contract counts them (a returned stake still counts)."""
        return sum(1 for _, state in self.members.values() if state != "slashed")

    def commits_over(self, r: Round) -> bool:
        """The commit phase of ``r`` is over: its commit deadline passed, or every active participant committed
        (nobody can commit any more)."""
        return now() >= r.commit_deadline or len(r.commits) == self.active

    @property
    def current(self) -> Round | None:
        return self.history.get(self.round)

    @property
    def over(self) -> bool:
        return self.status in ("finished", "cancelled")


STATUS = {"open": 1, "running": 2, "finished": 3, "cancelled": 4}
ROUND_STATUS = {"open": 1, "finalized": 2, "aborted": 3}
MEMBER_STATE = {"active": 1, "slashed": 2, "returned": 3}


@dataclass(frozen=True)
class Base:
    fed: object
    pay: object


def quiet(contract, name: str):
    """The same contract object, with a short repr. On every revert titanoboa renders the reverting contract's
    repr, a dump of its whole storage, for the error message it may show; with the dozens of reverts an example
    expects, that dump was a third of the run."""
    contract.__class__ = type(f"Quiet{name}", (type(contract),), {"__repr__": lambda self: f"<{name} {self.address}>"})
    return contract


@functools.cache
def base() -> Base:
    """Deployed once per module: the contract, and START of PaymentToken for each actor, approved to it."""
    fed = quiet(deployer("Federation").deploy(), "Federation")
    pay = quiet(deployer("PaymentToken").deploy(), "PaymentToken")
    for who in ACTORS:
        pay.mint(who, START)
        pay.approve(fed.address, MAX_UINT, sender=who)
    return Base(fed, pay)


@pytest.fixture(scope="module", autouse=True)
def base_state():
    """Builds the base state once for this module; each hypothesis example starts from it (boa anchors)."""
    base()
    yield
    base.cache_clear()


class FederationMachine(RuleBasedStateMachine):
    @initialize(coordinator=actor, rounds=st.integers(1, 3), pool=st.integers(1, 10_000), quorum=st.integers(1, 2),
                joiners=st.integers(2, 4))
    def setup(self, coordinator, rounds, pool, quorum, joiners) -> None:
        b = base()
        self.snapshot = boa.env.anchor()  # undone in teardown: each example starts from the base state
        self.snapshot.__enter__()
        self.fed, self.pay = b.fed, b.pay
        self.tasks: list[Task] = []
        self.withdrawable = [0] * len(ACTORS)
        self.paid_in = [0] * len(ACTORS)  # pools and stakes sent to the contract
        self.credited = [0] * len(ACTORS)
        self.withdrawn = [0] * len(ACTORS)
        self.returned: set[tuple[int, int]] = set()  # (task id, actor) whose stake came back
        self.slashed: set[tuple[int, int]] = set()
        self.salt = 0
        self.touched: set[int] = set()  # ids of the tasks a step acted on: compared with the chain after it
        # one task with participants and its first round started, so that rounds happen in most examples
        self.create(coordinator, rounds, pool, 100, 600, 600, 4, quorum)
        self.fell_silent = False
        for i in range(joiners):
            self.join_task(self.tasks[0], (coordinator + 1 + i) % len(ACTORS), 100 + i)
        self.start(self.tasks[0], coordinator)

    def teardown(self) -> None:
        if not hasattr(self, "snapshot"):
            return
        try:
            if hasattr(self, "touched"):  # setup itself failed otherwise: that error is the report
                # the full comparison once per example: every task, round, participant and balance
                for task in self.tasks:
                    self.check_task(task, rounds=True)
                for i, who in enumerate(ACTORS):
                    assert self.fed.withdrawable(who, self.pay.address) == self.withdrawable[i]
                    assert self.pay.balanceOf(who) == START - self.paid_in[i] + self.withdrawn[i]
        finally:
            self.snapshot.__exit__(None, None, None)

    # --------------------------------------------------------------------------------------------- helpers

    def expect(self, reason: str | None, call, label: str):
        """Run ``call``; it must revert with ``reason``, or succeed when ``reason`` is None."""
        event(f"{label}: {reason or 'ok'}")  # shown by --hypothesis-show-statistics
        if reason is not None:
            with boa.reverts(reason):
                call()
            return None
        return call()

    def credit(self, who: int, amount: int) -> None:
        self.withdrawable[who] += amount
        self.credited[who] += amount

    def balance_short(self, who: int, amount: int) -> bool:
        return self.pay.balanceOf(ACTORS[who]) < amount

    def check_task(self, t: Task, rounds: bool = False) -> None:
        info = self.fed.task(t.id)
        assert (info.coordinator, info.status, info.round, info.pool, info.staked, info.deadline) == (
            ACTORS[t.coordinator], STATUS[t.status], t.round, t.pool, t.staked, t.deadline)
        assert info.participants == len(t.members) and info.round_reward == t.round_reward
        assert self.fed.active_participants(t.id) == t.active
        for who, (stake, state) in t.members.items():
            assert self.fed.participant(t.id, ACTORS[who]) == (stake, MEMBER_STATE[state])
        if rounds:
            assert self.fed.participants(t.id) == [ACTORS[who] for who in t.members]
            for number, r in t.history.items():
                on_chain = self.fed.round_info(t.id, number)
                assert (on_chain.status, on_chain.commits, on_chain.reveals, on_chain.rewarded) == (
                    ROUND_STATUS[r.status], len(r.commits), len(r.revealed), r.rewarded)

    def create(self, who, rounds, pool, min_stake, commit_window, reveal_window, max_participants, quorum) -> None:
        reason = ("quorum out of range" if quorum > max_participants
                  else NOT_ENOUGH if self.balance_short(who, pool) else None)
        task_id = self.expect(reason, lambda: self.fed.create_task(
            self.pay.address, digest("arch"), digest("w0"), digest("val"), rounds, pool, min_stake, commit_window,
            reveal_window, max_participants, quorum, sender=ACTORS[who]), "create_task")
        if reason is None:
            assert task_id == len(self.tasks) + 1
            self.tasks.append(Task(task_id, who, rounds, pool, min_stake, commit_window, reveal_window,
                                   max_participants, quorum, now() + STALL, pool=pool))
            self.paid_in[who] += pool

    def join_task(self, t: Task, who: int, stake: int) -> None:
        self.touched.add(t.id)
        if t.status != "open":
            reason = "task not open"
        elif who == t.coordinator:
            reason = "coordinator cannot join"
        elif who in t.members:
            reason = "already joined"
        elif stake < t.min_stake:
            reason = "stake below minimum"
        elif len(t.members) >= t.max_participants:
            reason = "task full"
        elif self.balance_short(who, stake):
            reason = NOT_ENOUGH
        else:
            reason = None
        self.expect(reason, lambda: self.fed.join(t.id, stake, sender=ACTORS[who]), "join")
        if reason is None:
            t.members[who] = [stake, "active"]
            self.paid_in[who] += stake

    def closable_reason(self, t: Task, number: int) -> str | None:
        """Why a round cannot be closed (finalized or aborted) now, in the contract's order, after the caller."""
        if t.status != "running":
            return "task not running"
        if number != t.round:
            return "not the current round"
        r = t.history[number]
        if r.status != "open":
            return "round closed"
        if now() >= r.reveal_deadline:
            return None
        if not t.commits_over(r) or len(r.revealed) != len(r.commits):
            return "reveal window still open"
        if now() < r.commit_deadline:
            event("closable before the commit deadline")
        return None

    def next_round(self, t: Task) -> None:
        if t.round == t.rounds:
            t.status, t.deadline = "finished", 0
        else:
            t.deadline = now() + STALL

    # ---------------------------------------------------------------------------------------------- rules
    # No rule has a precondition: with hypothesis' swarm testing (some rules off in each example), rules that
    # are often disabled made it give up on a quarter of the examples. A rule with nothing to do returns.

    @rule(who=actor, rounds=st.integers(1, 3), pool=st.integers(1, 10**6), min_stake=st.integers(1, 300),
          windows=st.tuples(st.integers(300, 1_000), st.integers(300, 1_000)), max_participants=st.integers(1, 5),
          quorum=st.integers(1, 4))
    def create_task(self, who, rounds, pool, min_stake, windows, max_participants, quorum) -> None:
        if len(self.tasks) < 4:
            self.create(who, rounds, pool, min_stake, *windows, max_participants, quorum)

    @rule(data=st.data(), who=actor, stake=st.integers(0, 2_000))
    def join(self, data, who, stake) -> None:
        self.join_task(data.draw(st.sampled_from(self.tasks)), who, stake)

    @rule(data=st.data(), by_coordinator=st.booleans())
    def start_round(self, data, by_coordinator) -> None:
        t = data.draw(st.sampled_from(self.tasks))
        self.start(t, t.coordinator if by_coordinator else data.draw(actor))

    def start(self, t: Task, caller: int) -> None:
        self.touched.add(t.id)
        if caller != t.coordinator:
            reason = "caller is not the coordinator"
        elif t.over:
            reason = "task is over"
        elif t.status == "open" and len(t.members) < t.quorum:
            reason = "not enough participants"
        elif t.status == "running" and t.current.status == "open":
            reason = "round in progress"
        else:
            reason = None
        number = self.expect(reason, lambda: self.fed.start_round(t.id, digest("global", t.id, t.round),
                                                                  sender=ACTORS[caller]), "start_round")
        if reason is None:
            t.status, t.round = "running", t.round + 1
            assert number == t.round
            commit_deadline = now() + t.commit_window
            t.history[t.round] = Round(commit_deadline, commit_deadline + t.reveal_window)
            t.deadline = commit_deadline + t.reveal_window + STALL

    def running(self) -> list[Task]:
        return [t for t in self.tasks if t.status == "running"]

    def committing(self) -> list[Task]:
        """Tasks in a commit window with an active participant that has not committed."""
        return [t for t in self.running() if t.current.status == "open" and now() < t.current.commit_deadline
                and any(s == "active" and who not in t.current.commits for who, (_, s) in t.members.items())]

    @rule(data=st.data(), then_wait=st.booleans())
    def participants_commit(self, data, then_wait) -> None:
        """Some of the participants commit, and maybe the commit window ends: the common case, as its own rule
        so that rounds go on."""
        if not self.committing():
            return
        t = data.draw(st.sampled_from(self.committing()))
        ready = [who for who, (_, state) in t.members.items() if state == "active" and who not in t.current.commits]
        for who in data.draw(st.lists(st.sampled_from(ready), unique=True, min_size=1)):
            self.commit_one(t, who, "ok")
        if then_wait and now() < t.current.commit_deadline:
            boa.env.time_travel(seconds=t.current.commit_deadline - now())

    @rule(data=st.data(), kind=st.sampled_from(["ok", "zero", "other round"]))
    def commit(self, data, kind) -> None:
        """Anyone commits to any task, running or not."""
        t = data.draw(st.sampled_from(self.tasks))
        self.commit_one(t, data.draw(actor), kind)

    def commit_one(self, t: Task, who: int, kind: str) -> None:
        self.touched.add(t.id)
        number = t.round + 1 if kind == "other round" else t.round
        self.salt += 1
        update, salt = digest("update", t.id, number, who), self.salt.to_bytes(32, "big")
        c = ZERO32 if kind == "zero" else commitment(t.id, number, ACTORS[who], update, salt)
        r = t.current
        state = t.members.get(who, [0, None])[1]
        if t.status != "running":
            reason = "task not running"
        elif number != t.round:
            reason = "not the current round"
        elif r.status != "open":
            reason = "round closed"
        elif state is None:
            reason = "not a participant"
        elif state != "active":
            reason = "participant slashed"
        elif now() >= r.commit_deadline:
            reason = "commit window closed"
        elif kind == "zero":
            reason = "zero commitment"
        elif who in r.commits:
            reason = "already committed"
        else:
            reason = None
        self.expect(reason, lambda: self.fed.commit(t.id, number, c, sender=ACTORS[who]), "commit")
        if reason is None:
            r.commits[who] = (update, salt)

    def to_reveal(self) -> list[Task]:
        """Tasks in a reveal phase (the commit phase over, the reveal deadline not passed) with a commitment not
        revealed."""
        return [t for t in self.running() if t.current.status == "open"
                and t.commits_over(t.current) and now() < t.current.reveal_deadline
                and set(t.current.commits) - t.current.revealed]

    @rule(data=st.data(), then_wait=st.booleans())
    def participants_reveal(self, data, then_wait) -> None:
        """Some of those that committed reveal, and maybe the reveal window ends (the common case)."""
        if not self.to_reveal():
            return
        t = data.draw(st.sampled_from(self.to_reveal()))
        pending = sorted(set(t.current.commits) - t.current.revealed)
        for who in data.draw(st.lists(st.sampled_from(pending), unique=True, min_size=1)):
            self.reveal_one(t, who, "ok")
        if then_wait and now() < t.current.reveal_deadline:
            boa.env.time_travel(seconds=t.current.reveal_deadline - now())

    @rule(data=st.data(), kind=st.sampled_from(["ok", "wrong salt", "outsider"]))
    def reveal(self, data, kind) -> None:
        """A reveal in any task, running or not, by one that committed (if any did) or by anyone."""
        t = data.draw(st.sampled_from(self.tasks))
        committed = list(t.current.commits) if t.current else []
        who = data.draw(st.sampled_from(committed)) if committed and kind != "outsider" else data.draw(actor)
        self.reveal_one(t, who, kind)

    def reveal_one(self, t: Task, who: int, kind: str) -> None:
        self.touched.add(t.id)
        r = t.current
        update, salt = r.commits.get(who, (digest("nothing"), ZERO32)) if r else (digest("nothing"), ZERO32)
        if kind == "wrong salt":
            salt = digest("guess", salt)
        if t.status != "running":
            reason = "task not running"
        elif r.status != "open":
            reason = "round closed"
        elif not t.commits_over(r):
            reason = "commit window still open"
        elif now() >= r.reveal_deadline:
            reason = "reveal window closed"
        elif who not in r.commits:
            reason = "nothing committed"
        elif who in r.revealed:
            reason = "already revealed"  # a replay, whatever the salt
        elif kind == "wrong salt":
            reason = "reveal does not match commitment"
        else:
            reason = None
        self.expect(reason, lambda: self.fed.reveal(t.id, t.round, update, salt, sender=ACTORS[who]), "reveal")
        if reason is None:
            r.revealed.add(who)
            if now() < r.commit_deadline:
                event("reveal before the commit deadline")

    @rule(data=st.data(), by_coordinator=st.booleans(),
          kind=st.sampled_from(["ok", "ok", "ok", "ok", "over", "non-revealer", "twice", "flag scored"]))
    def finalize(self, data, by_coordinator, kind) -> None:
        """The coordinator (or another) finalizes the current round of any task, running or not."""
        t = data.draw(st.sampled_from(self.tasks))
        self.finalize_one(t, t.coordinator if by_coordinator or data.draw(st.booleans()) else data.draw(actor),
                          data, kind)

    def finalize_one(self, t: Task, caller: int, data, kind: str) -> None:
        """The coordinator (or ``caller``) finalizes with random scores and flags; ``kind`` != "ok" adds a
        mistake: a score that takes the sum above 10,000, a non-revealer, a duplicate, a scored flag."""
        self.touched.add(t.id)
        r = t.current
        revealed = r.revealed if r else set()
        scored, flagged = [], []
        for who in sorted(revealed):
            verdict = data.draw(st.sampled_from(["scored", "scored", "scored", "flagged", "neither"]))
            (scored if verdict == "scored" else flagged if verdict == "flagged" else []).append(who)
        budget = BPS
        scores = []
        for _ in scored:
            s = data.draw(st.integers(0, budget))
            scores.append(s)
            budget -= s
        if kind == "over":
            scored.append(data.draw(actor))
            scores.append(data.draw(st.integers(budget + 1, BPS + 1)))
        elif kind == "non-revealer":
            scored.append(data.draw(st.sampled_from([a for a in range(len(ACTORS)) if a not in revealed])))
            scores.append(0)
        elif kind == "twice" and scored:
            scored.append(scored[0])
            scores.append(0)
        elif kind == "flag scored" and scored:
            flagged.append(scored[0])
        reasons = [digest("reason", who) for who in flagged]

        if caller != t.coordinator:
            reason = "caller is not the coordinator"
        else:
            reason = self.closable_reason(t, t.round)
        if reason is None and len(revealed) < t.quorum:
            reason = "below quorum"
        if reason is None:
            seen, total = set(), 0
            for who, s in zip(scored, scores, strict=True):
                if s > BPS:
                    reason = "scores above 10,000"
                elif who not in revealed:
                    reason = "score for a participant that did not reveal"
                elif who in seen:
                    reason = "participant scored twice"
                if reason:
                    break
                seen.add(who)
                total += s
            if reason is None and total > BPS:
                reason = "scores above 10,000"
            if reason is None:
                for who in flagged:  # only revealers are ever drawn here
                    if who in scored:
                        reason = "flagged participant was scored"
                        break
        self.expect(reason, lambda: self.fed.finalize_round(
            t.id, t.round, digest("aggregate", t.id, t.round), [ACTORS[a] for a in scored], scores,
            [ACTORS[a] for a in flagged], reasons, sender=ACTORS[caller]), "finalize")
        if reason is not None:
            return
        for who, s in zip(scored, scores, strict=True):
            amount = t.round_reward * s // BPS
            self.credit(who, amount)
            r.rewarded += amount
        t.pool -= r.rewarded
        for who in flagged:
            t.members[who][1] = "slashed"
            t.pool += t.members[who][0]
            assert (t.id, who) not in self.slashed
            self.slashed.add((t.id, who))
        r.status = "finalized"
        self.next_round(t)
        event(f"finalized with {len(scored)} scored and {len(flagged)} flagged")

    @rule(data=st.data(), wait=st.booleans())
    def a_round_is_played(self, data, wait) -> None:
        """A whole round in one step, so that tasks get through their rounds: the coordinator starts it if the
        last one is closed; some commit (if the commit window is still open), the commit window ends (unless every
        active participant committed and ``wait`` is False), some reveal, the reveal window ends (unless everyone
        revealed and ``wait`` is False), and the coordinator finalizes with random scores and flags, or aborts
        below the quorum."""
        if not self.running():
            return
        t = data.draw(st.sampled_from(self.running()))
        if t.current.status != "open":
            self.start(t, t.coordinator)
        r = t.current
        ready = [who for who, (_, state) in t.members.items() if state == "active" and who not in r.commits]
        if now() < r.commit_deadline and ready:
            for who in ready:
                if data.draw(MOSTLY):
                    self.commit_one(t, who, "ok")
        if (wait or not t.commits_over(r)) and now() < r.commit_deadline:
            boa.env.time_travel(seconds=r.commit_deadline - now())
        pending = sorted(set(r.commits) - r.revealed)
        if now() < r.reveal_deadline and pending:
            for who in pending:
                if data.draw(MOSTLY):
                    self.reveal_one(t, who, "ok")
        if (wait or r.revealed != set(r.commits)) and now() < r.reveal_deadline:
            boa.env.time_travel(seconds=r.reveal_deadline - now())
        if len(r.revealed) >= t.quorum:
            self.finalize_one(t, t.coordinator, data, "ok")
        else:
            self.abort_one(t)

    @rule(data=st.data(), wait=st.booleans())
    def another_round_is_played(self, data, wait) -> None:
        """The same again: rules are drawn evenly, and this one doubles the weight of whole rounds."""
        self.a_round_is_played(data, wait)

    @rule(data=st.data())
    def abort(self, data) -> None:
        """The coordinator aborts the current round of any task, running or not."""
        self.abort_one(data.draw(st.sampled_from(self.tasks)))

    def abort_one(self, t: Task) -> None:
        self.touched.add(t.id)
        reason = self.closable_reason(t, t.round)
        if reason is None and len(t.current.revealed) >= t.quorum:
            reason = "quorum reached: finalize instead"
        self.expect(reason, lambda: self.fed.abort_round(t.id, t.round, sender=ACTORS[t.coordinator]), "abort")
        if reason is None:
            t.current.status = "aborted"
            self.next_round(t)

    @rule(data=st.data(), by_coordinator=st.booleans())
    def cancel(self, data, by_coordinator) -> None:
        t = data.draw(st.sampled_from(self.tasks))
        self.touched.add(t.id)
        caller = t.coordinator if by_coordinator else data.draw(actor)
        reason = ("caller is not the coordinator" if caller != t.coordinator
                  else "task not open" if t.status != "open" else None)
        self.expect(reason, lambda: self.fed.cancel(t.id, sender=ACTORS[caller]), "cancel")
        if reason is None:
            t.status, t.deadline = "cancelled", 0

    @rule(data=st.data(), who=actor)
    def abandon(self, data, who) -> None:
        t = data.draw(st.sampled_from(self.tasks))
        self.touched.add(t.id)
        reason = "task is over" if t.over else "coordinator not late" if now() < t.deadline else None
        self.expect(reason, lambda: self.fed.abandon(t.id, sender=ACTORS[who]), "abandon")
        if reason is None:
            if t.status == "open":
                t.status = "cancelled"
            else:
                if t.current and t.current.status == "open":
                    t.current.status = "aborted"
                t.status = "finished"
            t.deadline = 0

    @rule(data=st.data())
    def reclaim_stake(self, data) -> None:
        t = data.draw(st.sampled_from(self.tasks))
        self.touched.add(t.id)
        who = data.draw(st.sampled_from(list(t.members)) if t.members and data.draw(st.booleans()) else actor)
        state = t.members.get(who, [0, None])[1]
        reason = ("task not over" if not t.over else "not a participant" if state is None
                  else "stake slashed" if state == "slashed" else "stake already returned" if state == "returned"
                  else None)
        amount = self.expect(reason, lambda: self.fed.reclaim_stake(t.id, sender=ACTORS[who]), "reclaim_stake")
        if reason is None:
            stake = t.members[who][0]
            assert amount == stake
            assert [e.amount for e in self.fed.get_logs() if type(e).__name__ == "StakeReturned"] == [stake]
            assert (t.id, who) not in self.returned and (t.id, who) not in self.slashed
            self.returned.add((t.id, who))
            t.members[who][1] = "returned"
            self.credit(who, stake)

    @rule(data=st.data(), by_coordinator=st.booleans())
    def reclaim_pool(self, data, by_coordinator) -> None:
        t = data.draw(st.sampled_from(self.tasks))
        self.touched.add(t.id)
        caller = t.coordinator if by_coordinator else data.draw(actor)
        reason = ("caller is not the coordinator" if caller != t.coordinator else "task not over" if not t.over
                  else "pool empty" if t.pool == 0 else None)
        amount = self.expect(reason, lambda: self.fed.reclaim_pool(t.id, sender=ACTORS[caller]), "reclaim_pool")
        if reason is None:
            assert amount == t.pool
            self.credit(caller, t.pool)
            t.pool = 0

    @rule(data=st.data(), who=actor)
    def withdraw(self, data, who) -> None:
        """Mostly by an actor that is owed something; otherwise by anyone."""
        owed_to = [i for i, amount in enumerate(self.withdrawable) if amount]
        if owed_to and data.draw(MOSTLY):
            who = data.draw(st.sampled_from(owed_to))
        owed = self.withdrawable[who]
        before = self.pay.balanceOf(ACTORS[who])
        amount = self.expect(None if owed else "nothing to withdraw",
                             lambda: self.fed.withdraw(self.pay.address, sender=ACTORS[who]), "withdraw")
        if owed:
            assert amount == owed and self.pay.balanceOf(ACTORS[who]) == before + owed  # its own, to itself
            self.withdrawable[who] = 0
            self.withdrawn[who] += owed
        assert self.fed.withdrawable(ACTORS[who], self.pay.address) == 0
        assert self.pay.balanceOf(ACTORS[who]) == START - self.paid_in[who] + self.withdrawn[who]

    @rule(seconds=st.integers(1, 200))
    def time_passes(self, seconds) -> None:
        boa.env.time_travel(seconds=seconds)

    @rule(data=st.data())
    def deadline_comes(self, data) -> None:
        """Time moves to exactly the next deadline of an open round: the boundary is where mistakes hide."""
        open_rounds = [t.current for t in self.running() if t.current.status == "open"]
        if not open_rounds:
            return
        r = data.draw(st.sampled_from(open_rounds))
        for deadline in (r.commit_deadline, r.reveal_deadline):
            if now() < deadline:
                boa.env.time_travel(seconds=deadline - now())
                return

    @rule()
    def coordinators_fall_silent(self) -> None:
        """Once per example (it ends every round in progress): anyone may then abandon the stalled tasks."""
        if not self.fell_silent:
            boa.env.time_travel(seconds=STALL)
            self.fell_silent = True

    # ------------------------------------------------------------------------------------------ invariants

    @invariant()
    def money_is_conserved(self) -> None:
        held = self.pay.balanceOf(self.fed.address)
        assert held == sum(t.pool + t.staked for t in self.tasks) + sum(self.withdrawable)
        # what the actors hold is checked with the chain in `withdraw` and at teardown; by the model:
        for i in range(len(ACTORS)):
            assert self.withdrawn[i] <= self.credited[i]  # nobody takes more than was credited to it
        actors = sum(START - self.paid_in[i] + self.withdrawn[i] for i in range(len(ACTORS)))
        assert actors + held == START * len(ACTORS)  # nothing created, nothing lost

    @invariant()
    def tasks_match_the_model(self) -> None:
        for t in self.tasks:
            if t.id in self.touched:
                self.check_task(t)
            for r in t.history.values():
                assert r.rewarded <= t.round_reward
            # the early end of a commit phase (commits == active) relies on this: only active participants
            # commit, and nobody joins or is slashed while a round is open
            if t.current and t.current.status == "open":
                assert len(t.current.commits) <= t.active
            # each stake is in exactly one place: held (counted in staked), slashed (in the pool) or returned
            for who, (stake, state) in t.members.items():
                assert ((t.id, who) in self.slashed) == (state == "slashed")
                assert ((t.id, who) in self.returned) == (state == "returned")
        self.touched.clear()


FederationMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestFederationContract = FederationMachine.TestCase

"""The in-process federation: attackers flagged and excluded, hooks, rejected updates, quorum, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from ledgermind.errors import InvalidInputError
from ledgermind.federated.data import make_federated_data
from ledgermind.federated.simulation import RoundResult, run_federation, train_centralized
from ledgermind.federated.updates import digest


@pytest.fixture(scope="module")
def cancer():
    return make_federated_data("breast_cancer", 5, seed=0)


def test_a_times_minus_ten_attacker_is_flagged_and_excluded(cancer):
    clean = run_federation(cancer, 5, 6, aggregator="ours", seed=0)
    attacked = run_federation(cancer, 5, 6, aggregator="ours", attackers={3: "scale"}, seed=0)
    naive = run_federation(cancer, 5, 6, aggregator="fedavg", attackers={3: "scale"}, seed=0, contributions=None)
    for r in attacked.rounds:
        assert "x the median > 3x" in r.flags[3]
        assert r.weights[3] == 0 and 3 in r.excluded and r.contributions[3] == 0
        assert not set(r.flags) - {3}
    assert attacked.flagged.tolist() == [False, False, False, True, False]
    assert attacked.rewards[3] == 0 and attacked.rewards.sum() == pytest.approx(1)
    assert attacked.accuracy >= clean.accuracy - 0.02
    assert naive.accuracy < 0.5  # the same attack wrecks plain averaging: the defence is what made the difference


def test_same_seed_same_history(cancer):
    a = run_federation(cancer, 5, 3, attackers={0: "label_flip"}, seed=4)
    b = run_federation(cancer, 5, 3, attackers={0: "label_flip"}, seed=4)
    c = run_federation(cancer, 5, 3, attackers={0: "label_flip"}, seed=5)
    assert [r.digests for r in a.rounds] == [r.digests for r in b.rounds]
    assert [r.model_digest for r in a.rounds] == [r.model_digest for r in b.rounds]
    assert np.array_equal(a.rewards, b.rewards)
    assert [r.digests for r in a.rounds] != [r.digests for r in c.rounds]


class Recorder:
    """A ledger stand-in: records every call, and refuses one party's updates in round 2."""

    def __init__(self):
        self.calls = []

    def on_round_start(self, round, model_digest):
        self.calls.append(("start", round, model_digest))

    def on_update(self, round, party, update_digest):
        self.calls.append(("update", round, party, update_digest))
        if round == 2 and party == 1:
            return "digest differs from the commitment"
        return None

    def on_round_end(self, result):
        self.calls.append(("end", result.round, result))


def test_hooks_see_every_round_and_digest_and_can_refuse(cancer):
    hooks = Recorder()
    history = run_federation(cancer, 5, 3, seed=0, hooks=hooks)
    kinds = [c[0] for c in hooks.calls]
    assert kinds == (["start"] + ["update"] * 5 + ["end"]) * 3
    starts = [c for c in hooks.calls if c[0] == "start"]
    ends = [c[2] for c in hooks.calls if c[0] == "end"]
    assert all(isinstance(e, RoundResult) for e in ends) and ends == history.rounds
    # the model a round starts from is the model the previous round ended with
    assert [s[2] for s in starts[1:]] == [e.model_digest for e in ends[:-1]]
    assert history.rounds[-1].model_digest == digest(history.params)
    for call in hooks.calls:
        if call[0] == "update":
            _, r, party, d = call
            assert history.rounds[r - 1].digests[party] == d and len(d) == 64
    r2 = history.rounds[1]
    assert r2.rejected == {1: "digest differs from the commitment"}
    assert 1 not in r2.weights and 1 not in r2.contributions and 1 not in r2.flags


def test_broken_updates_are_rejected_with_a_reason_and_never_scored(cancer):
    history = run_federation(cancer, 5, 3, attackers={0: "nan", 4: "wrong_shape"}, seed=0)
    for r in history.rounds:
        assert r.rejected[0] == "array 0 contains NaN (1 values)"
        assert r.rejected[4] == "update has 1 arrays, expected 2"
        assert r.digests[0] is not None and r.digests[4] is not None  # still recorded: it was received
        for scored in (r.weights, r.contributions, r.flags, r.excluded):
            assert not {0, 4} & set(scored)
    assert history.rewards[0] == 0 and history.rewards[4] == 0
    assert history.cumulative_cosine[0] is None
    assert history.accuracy > 0.9


def test_missing_parties_and_quorum(cancer):
    history = run_federation(cancer, 5, 12, seed=0, dropout=0.5, quorum=3, contributions=None)
    skipped = [r for r in history.rounds if r.skipped]
    moved = [r for r in history.rounds if not r.skipped]
    assert skipped and moved  # with half the parties missing on average, both happen in 12 rounds
    for r in history.rounds:
        assert sorted(r.missing + list(r.digests)) == list(range(5))
    for r in skipped:
        assert r.skipped == f"{len(r.digests)} valid updates < quorum 3"
        assert not r.weights and not r.flags
    # a skipped round leaves the model where it was
    for prev, r in zip(history.rounds, history.rounds[1:]):
        if r.skipped:
            assert r.model_digest == prev.model_digest


def test_colluders_send_the_same_update(cancer):
    history = run_federation(cancer, 5, 2, attackers={1: "colluding", 2: "colluding"}, seed=0)
    for r in history.rounds:
        assert r.digests[1] == r.digests[2]
        assert len(set(r.digests.values())) == 4
        assert {1, 2} <= set(r.flags)


def test_bad_arguments(cancer):
    with pytest.raises(InvalidInputError, match="dataset has 5 parties"):
        run_federation(cancer, 4, 1)
    with pytest.raises(InvalidInputError, match="attacker 7 is not a party"):
        run_federation(cancer, 5, 1, attackers={7: "scale"})
    with pytest.raises(InvalidInputError, match="unknown attack 'gaussian'"):
        run_federation(cancer, 5, 1, attackers={0: "gaussian"})
    with pytest.raises(InvalidInputError, match="quorum must be between 1 and 5"):
        run_federation(cancer, 5, 1, quorum=6)
    with pytest.raises(InvalidInputError, match="unknown aggregator"):
        run_federation(cancer, 5, 1, aggregator="best")


def test_by_name_and_centralized_baseline():
    history = run_federation("breast_cancer", 5, 2, aggregator="median", seed=1, partition="dirichlet",
                             contributions="loo")
    assert history.config["partition"] == "dirichlet" and history.config["aggregator"] == "median"
    assert all(set(r.contributions) == set(range(5)) for r in history.rounds)
    data = make_federated_data("breast_cancer", 5, seed=1)
    _, accuracy = train_centralized(data, epochs=5)
    assert accuracy > 0.9

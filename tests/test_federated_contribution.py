"""Contribution scores: Shapley and leave-one-out on known games, reward shares, fairness under label skew."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ledgermind.errors import InvalidInputError
from ledgermind.federated.contribution import (
    coalition_utility,
    leave_one_out,
    reward_shares,
    round_contributions,
    shapley_values,
)
from ledgermind.federated.data import make_federated_data
from ledgermind.federated.simulation import run_federation
from ledgermind.federated.trainers import LogisticRegressionTrainer, local_update


class Counted:
    """A utility that counts the distinct coalitions it was asked about."""

    def __init__(self, fn):
        self.fn = fn
        self.seen: set[tuple[int, ...]] = set()

    def __call__(self, coalition):
        key = tuple(sorted(coalition))
        self.seen.add(key)
        return self.fn(key)


def test_exact_shapley_on_an_additive_game():
    a = {0: 0.5, 1: -0.2, 2: 1.5, 3: 0.0}
    values = shapley_values(list(a), lambda s: sum(a[i] for i in s))
    assert values == pytest.approx(a)


def test_exact_shapley_splits_a_joint_gain_and_is_efficient():
    def v(s):
        return 1.0 if {0, 1} <= set(s) else 0.0

    values = shapley_values([0, 1, 2], v)
    assert values == pytest.approx({0: 0.5, 1: 0.5, 2: 0.0})
    assert sum(values.values()) == pytest.approx(v((0, 1, 2)) - v(()))


def test_leave_one_out_misses_redundancy_that_shapley_credits():
    def v(s):  # players 0 and 1 hold the same data: either one is enough
        return 1.0 if {0, 1} & set(s) else 0.0

    assert leave_one_out([0, 1, 2], v) == pytest.approx({0: 0.0, 1: 0.0, 2: 0.0})
    assert shapley_values([0, 1, 2], v) == pytest.approx({0: 0.5, 1: 0.5, 2: 0.0})


def test_monte_carlo_shapley_is_bounded_deterministic_and_right_on_known_games():
    players = list(range(10))  # 1024 coalitions > the budget: Monte-Carlo
    additive = Counted(lambda s: sum(0.1 * (i + 1) for i in s))
    values = shapley_values(players, additive, max_evaluations=120, seed=1)
    assert values == pytest.approx({i: 0.1 * (i + 1) for i in players})  # every permutation is exact here
    assert len(additive.seen) <= 120 + len(players) + 1

    square = Counted(lambda s: float(len(s) ** 2))  # symmetric: everyone's value is n
    a = shapley_values(players, square, max_evaluations=200, seed=2)
    b = shapley_values(players, Counted(square.fn), max_evaluations=200, seed=2)
    assert a == b
    assert sum(a.values()) == pytest.approx(100.0)  # efficiency holds permutation by permutation
    assert np.allclose(list(a.values()), 10.0, atol=3.0)
    assert len(square.seen) <= 200 + len(players) + 1
    with pytest.raises(InvalidInputError):
        shapley_values(players, square, max_evaluations=0)


def test_reward_shares():
    assert np.allclose(reward_shares([2.0, 1.0, 1.0], [False, False, False]), [0.5, 0.25, 0.25])
    assert np.allclose(reward_shares([2.0, 1.0, -1.0], [True, False, False]), [0, 1, 0])
    assert np.allclose(reward_shares([-1.0, 0.0, 5.0], [False, False, True]), [0.5, 0.5, 0])
    assert np.allclose(reward_shares([1.0, 1.0], [True, True]), [0, 0])
    with pytest.raises(InvalidInputError):
        reward_shares([1.0], [True, False])


@pytest.fixture(scope="module")
def round_setup():
    data = make_federated_data("digits", 5, partition="dirichlet", seed=0)
    trainer = LogisticRegressionTrainer()
    params = trainer.init_params(data.n_features, data.n_classes, seed=0)
    updates = [local_update(trainer, params, p.X, p.y, epochs=1, seed=i) for i, p in enumerate(data.parties)]
    return data, trainer, params, updates


def test_full_coalition_is_the_fedavg_step(round_setup):
    data, trainer, params, updates = round_setup
    counts = data.num_samples()
    utility = coalition_utility(trainer, params, updates, counts, data.validation.X, data.validation.y,
                                metric="accuracy")
    w = np.array(counts) / sum(counts)
    fedavg = [p + sum(wi * u[k] for wi, u in zip(w, updates)) for k, p in enumerate(params)]
    assert utility(tuple(range(5))) == trainer.score(fedavg, data.validation.X, data.validation.y)
    assert utility(()) == trainer.score(params, data.validation.X, data.validation.y)


def test_flagged_updates_score_zero_and_cannot_move_the_others(round_setup):
    data, trainer, params, updates = round_setup
    counts = data.num_samples()
    flagged = [False, False, True, False, False]
    args = (trainer, params)
    a = round_contributions(*args, updates, counts, data.validation.X, data.validation.y, flagged=flagged)
    poisoned = list(updates)
    poisoned[2] = [-100 * x for x in updates[2]]
    b = round_contributions(*args, poisoned, counts, data.validation.X, data.validation.y, flagged=flagged)
    assert a[2] == 0 and b[2] == 0
    assert np.array_equal(a, b)
    # efficiency: the unflagged parties share exactly the gain of their joint step
    utility = coalition_utility(trainer, params, updates, counts, data.validation.X, data.validation.y)
    assert a.sum() == pytest.approx(utility((0, 1, 3, 4)) - utility(()))
    loo = round_contributions(*args, updates, counts, data.validation.X, data.validation.y, flagged=flagged,
                              method="loo")
    assert loo[2] == 0 and loo[0] == pytest.approx(utility((0, 1, 3, 4)) - utility((1, 3, 4)))
    with pytest.raises(InvalidInputError, match="unknown method"):
        round_contributions(*args, updates, counts, data.validation.X, data.validation.y, flagged=flagged,
                            method="banzhaf")


def test_skewed_honest_parties_are_paid_and_a_flagged_attacker_is_not():
    """Under Dirichlet label skew every honest party, the most skewed included, gets a positive share.

    In this split party 4 holds mostly digits 0 and 4 (total-variation distance 0.69 from the pooled labels). Scoring
    full FedAvg steps of each coalition on validation accuracy (the naive utility) pays it nothing here; the
    default utility (each party's own FedAvg term, on validation log-loss) pays it about a fifth.
    """
    data = make_federated_data("digits", 5, partition="dirichlet", alpha=0.5, seed=2)
    counts = data.label_counts()
    dist = counts / counts.sum(axis=1, keepdims=True)
    skew = 0.5 * np.abs(dist - counts.sum(axis=0) / counts.sum()).sum(axis=1)
    attacker = 0
    history = run_federation(data, 5, 10, aggregator="ours", attackers={attacker: "label_flip"}, seed=2,
                             local_epochs=2)
    honest = [p for p in range(5) if p != attacker]
    most_skewed = max(honest, key=lambda p: skew[p])
    assert most_skewed == 4 and skew[4] > 0.6
    assert history.flagged[attacker] and history.rewards[attacker] == 0
    assert "cumulative cosine to the reference" in history.flag_reasons[attacker]
    assert history.rewards[most_skewed] > 0.1
    assert all(history.rewards[p] > 0 for p in honest)
    assert history.rewards[honest].sum() == pytest.approx(1.0)
    assert not any(history.flagged[p] for p in honest)


def test_every_coalition_is_evaluated_once_for_exact_shapley():
    calls = []

    def v(s):
        calls.append(s)
        return float(len(s))

    cached = {}

    def memo(s):
        key = tuple(sorted(s))
        if key not in cached:
            cached[key] = v(key)
        return cached[key]

    shapley_values([0, 1, 2, 3], memo)
    assert sorted(calls) == sorted(c for k in range(5) for c in itertools.combinations(range(4), k))

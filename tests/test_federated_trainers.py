"""numpy trainers: they learn, they are deterministic, they never touch the caller's parameters."""

from __future__ import annotations

import numpy as np
import pytest

from ledgermind.errors import InvalidInputError
from ledgermind.federated.data import make_federated_data
from ledgermind.federated.trainers import (
    LogisticRegressionTrainer,
    MLPTrainer,
    Trainer,
    apply_update,
    local_update,
)


@pytest.fixture(scope="module")
def digits():
    return make_federated_data("digits", 5, seed=0)


@pytest.mark.parametrize("trainer", [LogisticRegressionTrainer(), MLPTrainer(hidden=16)])
def test_trainers_learn_digits(trainer, digits):
    assert isinstance(trainer, Trainer)
    params = trainer.init_params(digits.n_features, digits.n_classes, seed=0)
    before = trainer.score(params, digits.test.X, digits.test.y)
    params = trainer.fit(params, digits.train.X, digits.train.y, epochs=5, lr=0.1, batch_size=32, seed=0)
    after = trainer.score(params, digits.test.X, digits.test.y)
    assert before < 0.3 and after > 0.9
    proba = trainer.predict_proba(params, digits.test.X)
    assert np.allclose(proba.sum(axis=1), 1) and (proba >= 0).all()


def test_logistic_parameter_shapes():
    W, b = LogisticRegressionTrainer().init_params(30, 2, seed=0)
    assert W.shape == (30, 2) and b.shape == (2,)
    shapes = [p.shape for p in MLPTrainer(hidden=8).init_params(64, 10, seed=0)]
    assert shapes == [(64, 8), (8,), (8, 10), (10,)]


@pytest.mark.parametrize("trainer", [LogisticRegressionTrainer(), MLPTrainer(hidden=8)])
def test_deterministic_given_seeds(trainer, digits):
    part = digits.parties[0]

    def run(seed):
        p = trainer.init_params(digits.n_features, digits.n_classes, seed=1)
        return trainer.fit(p, part.X, part.y, epochs=2, lr=0.1, batch_size=16, seed=seed)

    a, b, c = run(5), run(5), run(6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_fit_leaves_input_parameters_alone(digits):
    trainer = LogisticRegressionTrainer()
    params = trainer.init_params(digits.n_features, digits.n_classes, seed=0)
    copy = [p.copy() for p in params]
    trainer.fit(params, digits.train.X, digits.train.y, epochs=1)
    assert all(np.array_equal(p, c) for p, c in zip(params, copy))


def test_party_with_few_labels_still_trains_full_model(digits):
    trainer = LogisticRegressionTrainer()
    mask = digits.train.y < 2
    params = trainer.init_params(digits.n_features, digits.n_classes, seed=0)
    new = trainer.fit(params, digits.train.X[mask], digits.train.y[mask], epochs=1)
    assert new[0].shape == (64, 10)
    assert set(trainer.predict(new, digits.test.X)) <= set(range(10))


def test_local_update_is_the_delta(digits):
    trainer = LogisticRegressionTrainer()
    params = trainer.init_params(digits.n_features, digits.n_classes, seed=0)
    part = digits.parties[1]
    delta = local_update(trainer, params, part.X, part.y, epochs=1, lr=0.1, batch_size=32, seed=3)
    new = trainer.fit(params, part.X, part.y, epochs=1, lr=0.1, batch_size=32, seed=3)
    assert all(np.allclose(p + d, n) for p, d, n in zip(params, delta, new))
    assert all(np.allclose(a, n) for a, n in zip(apply_update(params, delta), new))


def test_bad_inputs_are_refused(digits):
    trainer = LogisticRegressionTrainer()
    params = trainer.init_params(64, 10, seed=0)
    with pytest.raises(InvalidInputError, match=r"X must have shape \(n, 64\)"):
        trainer.fit(params, digits.train.X[:, :10], digits.train.y)
    with pytest.raises(InvalidInputError, match=r"labels in \[0, 10\)"):
        trainer.fit(params, digits.train.X, digits.train.y + 5)
    with pytest.raises(InvalidInputError, match="lr > 0"):
        trainer.fit(params, digits.train.X, digits.train.y, lr=0)
    with pytest.raises(InvalidInputError, match="expected \\[W"):
        trainer.fit(params[:1], digits.train.X, digits.train.y)
    with pytest.raises(InvalidInputError, match="do not match"):
        apply_update(params, params[:1])
    with pytest.raises(InvalidInputError, match="empty"):
        trainer.score(params, digits.test.X[:0], digits.test.y[:0])

"""The other model families a federation can train: any torch module (optional extra) through TorchTrainer, and
the built-in logistic regression handed over to scikit-learn as a fitted LogisticRegression."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ledgermind.errors import InvalidInputError
from ledgermind.federated import run_federation
from ledgermind.federated.data import make_federated_data
from ledgermind.federated.trainers import LogisticRegressionTrainer

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_logistic_regression_hands_over_to_scikit_learn():
    trainer = LogisticRegressionTrainer()
    for name, k in (("breast_cancer", 2), ("digits", 10)):
        data = make_federated_data(name, 3, seed=0)
        X, y = np.vstack([p.X for p in data.parties]), np.concatenate([p.y for p in data.parties])
        params = trainer.fit(trainer.init_params(X.shape[1], k, seed=0), X, y, epochs=3, lr=0.1, seed=0)
        model = trainer.to_sklearn(params)
        np.testing.assert_allclose(model.predict_proba(data.test.X), trainer.predict_proba(params, data.test.X),
                                   rtol=1e-9, atol=1e-12)
        assert (model.predict(data.test.X) == trainer.predict(params, data.test.X)).all()
        assert model.score(data.test.X, data.test.y) > 0.85


def test_torch_trainer_without_torch_says_how_to_install_it(monkeypatch):
    import sys

    from ledgermind.federated.torch_trainer import TorchTrainer

    monkeypatch.setitem(sys.modules, "torch", None)  # an installation without the extra: `import torch` fails

    with pytest.raises(InvalidInputError, match=r'pip install "ledgermind\[torch\]"'):
        TorchTrainer(lambda d, k: None)


@pytest.mark.skipif(not HAS_TORCH, reason='the torch extra is not installed (pip install "ledgermind[torch]"); '
                                          '.ci/run installs it')
def test_a_torch_module_trains_in_a_poisoned_federation():
    import torch

    from ledgermind.federated.torch_trainer import TorchTrainer

    def mlp(d: int, k: int) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.ReLU(), torch.nn.Linear(16, k))

    runs = [run_federation("breast_cancer", parties=4, rounds=4, trainer=TorchTrainer(mlp), attackers={0: "scale"},
                           seed=1, contributions=None) for _ in range(2)]
    history = runs[0]
    assert history.accuracy > 0.9 and history.accuracy > history.initial_accuracy
    assert all(0 in r.flags for r in history.rounds)  # the scaled updates are flagged every round
    assert history.flagged[0] and not history.flagged[1:].any()
    assert [r.model_digest for r in runs[0].rounds] == [r.model_digest for r in runs[1].rounds]  # seeded
    trainer = TorchTrainer(mlp)
    params = trainer.init_params(30, 2, seed=0)
    with pytest.raises(InvalidInputError, match="do not fit the module"):
        trainer.fit(params[:2], np.zeros((4, 30)), np.zeros(4, dtype=np.int64))

"""The supervised fraud detector on the real Kaggle data: a small fit separates held-out accounts, the serialized
form round-trips with the same digest, a wrong digest or a foreign file is refused, and the bundled detector is
trained once and then read from its cache."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.guard.data import KAGGLE_FILE, load_kaggle, shared_data_dir
from ledgermind.guard.detector import FraudDetector, bundled_detector
from ledgermind.guard.features import FEATURES, account_features

SMALL = {"max_iter": 40, "learning_rate": 0.2, "max_leaf_nodes": 15, "early_stopping": False, "random_state": 0}


@pytest.fixture(scope="module")
def split():
    data = load_kaggle()
    order = np.random.default_rng(7).permutation(len(data.y))
    train, test = order[:2500], order[2500:4500]
    return data.X[train], data.y[train], data.X[test], data.y[test]


def test_small_fit_separates_held_out_accounts(split):
    X, y, Xt, yt = split
    det = FraudDetector(params=SMALL).fit(X, y)
    scores = det.score(Xt)
    assert scores.shape == (len(yt),) and ((scores >= 0) & (scores <= 1)).all()
    assert roc_auc_score(yt, scores) > 0.95
    flagged = det.flag(Xt)
    assert yt[flagged].mean() > 0.8 and flagged[yt == 1].mean() > 0.7  # precision, recall of the fraud class


def test_save_load_keeps_scores_and_digest(split, tmp_path):
    X, y, Xt, _ = split
    det = FraudDetector(threshold=0.4, params=SMALL).fit(X, y)
    again = FraudDetector(threshold=0.4, params=SMALL).fit(X, y)
    assert again.digest == det.digest and len(det.digest) == 64  # the same training, the same bytes
    digest = det.save(tmp_path / "d.pkl")
    assert digest == det.digest
    loaded = FraudDetector.load(tmp_path / "d.pkl", digest=f"sha256:{digest}")
    assert loaded.digest == digest and loaded.threshold == 0.4 and loaded.names == list(FEATURES)
    assert np.array_equal(loaded.score(Xt), det.score(Xt))
    with pytest.raises(InvalidInputError, match="expected " + "0" * 64):
        FraudDetector.load(tmp_path / "d.pkl", digest="0" * 64)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InvalidInputError, match="not a detector file"):
        FraudDetector.load(tmp_path / "junk.pkl")
    with pytest.raises(NotFoundError):
        FraudDetector.load(tmp_path / "absent.pkl")


def test_refuses_bad_input(split):
    X, y, _, _ = split
    with pytest.raises(InvalidInputError, match="not trained"):
        FraudDetector().score(X)
    with pytest.raises(InvalidInputError, match="both classes"):
        FraudDetector(params=SMALL).fit(X, np.zeros(len(y)))
    with pytest.raises(InvalidInputError, match="2500 feature rows but 3 labels"):
        FraudDetector(params=SMALL).fit(X, y[:3])
    det = FraudDetector(params=SMALL).fit(X, y)
    with pytest.raises(InvalidInputError, match="feature columns"):
        det.score(X[:, :5])
    with pytest.raises(InvalidInputError, match="finite"):
        det.score(np.full((1, len(FEATURES)), np.nan))
    with pytest.raises(InvalidInputError, match="threshold"):
        FraudDetector(threshold=1.5)


def test_bundled_detector_trains_once_then_reads_its_cache(tmp_path):
    # a 700-row slice of the real file keeps this fast; the full file trains the same way in ~10 s
    lines = (shared_data_dir() / KAGGLE_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "slice.csv").write_text("".join(lines[:1] + lines[1:400] + lines[-300:]), encoding="utf-8")
    first = bundled_detector(tmp_path / "cache", tmp_path / "slice.csv")
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and first.trained_on["rows"] == 666  # 1 repeated address, 33 empty accounts
    second = bundled_detector(tmp_path / "cache", tmp_path / "slice.csv")
    assert second.digest == first.digest and list((tmp_path / "cache").iterdir()) == cached
    # scores accounts straight from a transactions table
    fm = account_features([{"from": "0x" + "aa" * 20, "to": "0x" + "bb" * 20, "value": 10**18, "timestamp": 0}])
    assert second.score(fm).shape == (2,)
    with pytest.raises(NotFoundError, match="no Kaggle fraud dataset"):
        bundled_detector(tmp_path / "cache", tmp_path / "absent.csv")

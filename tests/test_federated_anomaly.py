"""Anomaly scores: reasons a human can read, per-round and accumulated evidence, detection metrics."""

from __future__ import annotations

import numpy as np
import pytest

from ledgermind.errors import InvalidInputError
from ledgermind.federated.anomaly import (
    AnomalyPolicy,
    CumulativeEvidence,
    detection_metrics,
    score_updates,
)
from ledgermind.federated.attacks import colluding_update, flip_labels, scale, sign_flip

_rng = np.random.default_rng(3)
REF = _rng.normal(size=10)
HONEST = [REF + 0.6 * _rng.normal(size=10) for _ in range(5)]


def u(v):
    return [np.asarray(v, dtype=float)]


def test_honest_updates_are_not_flagged():
    reports = score_updates([u(v) for v in HONEST], u(REF))
    assert not any(r.flagged for r in reports)
    assert all(r.cosine > 0.5 for r in reports) and all(0.5 < r.norm_ratio < 2 for r in reports)


def test_sign_flip_and_scaling_are_flagged_with_reasons():
    updates = [u(v) for v in HONEST]
    updates[1] = sign_flip(updates[1])
    updates[3] = scale(updates[3], -10.0)
    reports = score_updates(updates, u(REF))
    assert [r.flagged for r in reports] == [False, True, False, True, False]
    assert reports[1].reason.startswith("cosine to the reference update -0.")
    assert reports[1].reason.endswith("< 0")
    assert "x the median > 3x" in reports[3].reason and "cosine" in reports[3].reason


def test_positive_scaling_is_caught_by_norm_alone():
    updates = [u(v) for v in HONEST]
    updates[0] = scale(updates[0], 10.0)
    reports = score_updates(updates, u(REF))
    assert reports[0].cosine > 0 and reports[0].reasons == (f"norm {reports[0].norm_ratio:.1f}x the median > 3x",)


def test_free_rider_rule_is_opt_in():
    updates = [u(v) for v in HONEST] + [u(np.full(10, 1e-6))]
    assert not score_updates(updates, u(REF), AnomalyPolicy(min_cosine=None))[-1].flagged
    report = score_updates(updates, u(REF), AnomalyPolicy(min_cosine=None, min_norm_ratio=0.1))[-1]
    assert report.reason.startswith("norm 0.00x the median < 0.1x")


def test_without_reference_only_magnitude_is_judged():
    reports = score_updates([u(v) for v in HONEST] + [sign_flip(u(HONEST[0]))])
    assert all(r.cosine is None for r in reports) and not any(r.flagged for r in reports)


def test_good_record_absorbs_one_noisy_round_but_not_a_sudden_reversal():
    evidence = CumulativeEvidence()
    for _ in range(5):  # five rounds in agreement with the reference
        report = score_updates([u(REF)], u(REF))[0]
        evidence.observe(0, u(REF), u(REF), report)
    record = evidence.before(0)
    assert record.rounds == 5
    orth = np.roll(REF, 1) - np.dot(np.roll(REF, 1), REF) / np.dot(REF, REF) * REF
    orth *= 2 * np.linalg.norm(REF) / np.linalg.norm(orth)
    noisy = u(-0.3 * REF + orth)  # a round pointing somewhat away (cosine -0.15), as late honest rounds do
    lone = score_updates([noisy], u(REF))[0]
    with_record = score_updates([noisy], u(REF), evidence=[record])[0]
    assert lone.flagged and not with_record.flagged
    assert with_record.cumulative_cosine > 0
    reversal = score_updates([sign_flip(u(REF))], u(REF), evidence=[record])[0]  # cosine -1 < -0.6
    assert reversal.reason == "cosine to the reference update -1.00 < -0.6"


def test_cumulative_verdict_over_a_run():
    rng = np.random.default_rng(4)
    evidence = CumulativeEvidence()
    for _ in range(6):
        ref = REF + 0.2 * rng.normal(size=10)
        updates = [u(HONEST[0] + 0.8 * rng.normal(size=10)), sign_flip(u(HONEST[1])), scale(u(HONEST[2]), 10.0),
                   u(HONEST[3]), u(HONEST[4])]
        for party, report in enumerate(score_updates(updates, u(ref))):
            evidence.observe(party, updates[party], u(ref), report)
    assert evidence.verdict(0) is None and evidence.cosine(0) > 0
    assert evidence.verdict(1).startswith("cumulative cosine to the reference -0.")
    assert evidence.verdict(1).endswith("< 0 over 6 rounds")
    assert evidence.cosine(2) > 0 and evidence.verdict(2) == "norm out of bounds in 6 of 6 rounds"
    assert evidence.verdict(7) is None and evidence.cosine(7) is None and evidence.before(7) is None


def test_colluders_send_one_update_with_an_honest_norm():
    flipped = [u(-3 * v) for v in HONEST[:2]]  # label flipping tends to produce larger updates
    crafted = colluding_update(flipped, [u(v) for v in HONEST[:2]])
    assert np.isclose(np.linalg.norm(crafted[0]), np.mean([np.linalg.norm(v) for v in HONEST[:2]]))
    assert np.dot(crafted[0], REF) < 0
    with pytest.raises(InvalidInputError):
        colluding_update([])


def test_flip_labels():
    assert list(flip_labels(np.array([0, 1, 9, 4]), 10)) == [9, 8, 0, 5]
    assert list(flip_labels(np.array([0, 1]), 2)) == [1, 0]
    with pytest.raises(InvalidInputError):
        flip_labels(np.array([10]), 10)


def test_detection_metrics():
    m = detection_metrics([True, True, False, False], [True, False, True, False])
    assert m == {"tp": 1, "fp": 1, "fn": 1, "precision": 0.5, "recall": 0.5}
    clean = detection_metrics([False, False], [False, False])
    assert clean["precision"] == 1.0 and clean["recall"] == 1.0


def test_preconditions():
    with pytest.raises(InvalidInputError, match="no updates"):
        score_updates([])
    with pytest.raises(InvalidInputError, match="different sizes"):
        score_updates([u(np.ones(3)), u(np.ones(4))])
    with pytest.raises(InvalidInputError, match="reference has 3 values"):
        score_updates([u(np.ones(4))], u(np.ones(3)))
    with pytest.raises(InvalidInputError, match="2 evidence records for 1 updates"):
        score_updates([u(np.ones(4))], u(np.ones(4)), evidence=[None, None])

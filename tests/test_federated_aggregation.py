"""Aggregation rules as pure functions: properties over random updates, and the attacks they must withstand."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ledgermind.errors import InvalidInputError
from ledgermind.federated.aggregation import (
    AGGREGATORS,
    coordinate_median,
    fedavg,
    fltrust,
    make_aggregator,
    multi_krum,
    ours,
    trimmed_mean,
)
from ledgermind.federated.anomaly import AnomalyPolicy
from ledgermind.federated.attacks import scale, sign_flip
from ledgermind.federated.updates import flatten

SHAPES = [(3, 2), (2,)]
SIZE = 8
FINITE = st.floats(-100, 100, allow_nan=False, width=64)


def as_update(v: np.ndarray) -> list[np.ndarray]:
    return [v[:6].reshape(3, 2), v[6:]]


def run(name: str, updates, **kw):
    if name == "trimmed_mean":
        kw.setdefault("trim", 1)
    if name == "multi_krum":
        kw.setdefault("f", 1)
    return AGGREGATORS[name](updates, **kw)


matrices = st.integers(5, 7).flatmap(lambda n: hnp.arrays(np.float64, (n, SIZE), elements=FINITE))


def check_weights(result, n):
    w = result.weights
    assert w.shape == (n,) and (w >= -1e-12).all()
    assert np.isclose(w.sum(), 1.0) or np.allclose(w, 0)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
@settings(max_examples=40, deadline=None)
@given(M=matrices, data=st.data())
def test_permutation_invariance(name, M, data):
    n = len(M)
    perm = np.array(data.draw(st.permutations(range(n))))
    counts = data.draw(st.lists(st.integers(1, 50), min_size=n, max_size=n))
    ref = as_update(data.draw(hnp.arrays(np.float64, SIZE, elements=FINITE)))
    kw = {"num_samples": counts, "reference": ref}
    a = run(name, [as_update(m) for m in M], **kw)
    if name == "multi_krum":  # ties in Krum scores are broken by input order: only distinct scores are order-free
        scores = a.details["scores"]
        assume(len(np.unique(np.round(scores, 6))) == n)
    b = run(name, [as_update(M[i]) for i in perm], num_samples=[counts[i] for i in perm], reference=ref)
    assert np.allclose(flatten(a.update), flatten(b.update), atol=1e-9)
    assert np.allclose(a.weights[perm], b.weights, atol=1e-9)
    check_weights(a, n)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
@settings(max_examples=30, deadline=None)
@given(v=hnp.arrays(np.float64, SIZE, elements=FINITE), n=st.integers(5, 7), counts=st.data())
def test_identical_honest_updates_give_that_update(name, v, n, counts):
    assume(np.linalg.norm(v) > 1e-3)
    c = counts.draw(st.lists(st.integers(1, 50), min_size=n, max_size=n))
    result = run(name, [as_update(v)] * n, num_samples=c, reference=as_update(v))
    assert np.allclose(flatten(result.update), v, rtol=1e-9, atol=1e-9)
    check_weights(result, n)


@settings(max_examples=60, deadline=None)
@given(
    honest=st.integers(3, 6).flatmap(lambda h: hnp.arrays(np.float64, (h, SIZE), elements=FINITE)),
    outliers=st.data(),
)
def test_median_and_trimmed_mean_stay_in_the_honest_range(honest, outliers):
    h = len(honest)  # >= 3, so f <= 2 outliers are always a minority: the median's precondition
    f = outliers.draw(st.integers(1, 2))
    bad = outliers.draw(hnp.arrays(np.float64, (f, SIZE), elements=st.floats(-1e9, 1e9)))
    M = np.vstack([honest, bad])
    updates = [as_update(m) for m in M]
    lo, hi = honest.min(axis=0) - 1e-9, honest.max(axis=0) + 1e-9
    results = [coordinate_median(updates)]
    if len(M) > 2 * f:  # the trimmed mean tolerates up to `trim` outliers per side
        results.append(trimmed_mean(updates, trim=f))
    for result in results:
        agg = flatten(result.update)
        assert ((lo <= agg) & (agg <= hi)).all()


def test_median_weights_share_ties_and_sum_to_one():
    updates = [as_update(np.full(SIZE, x)) for x in (1.0, 1.0, 1.0, 5.0, -5.0)]
    result = coordinate_median(updates)
    assert np.allclose(result.weights, [1 / 3, 1 / 3, 1 / 3, 0, 0])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), f=st.integers(1, 2))
def test_multi_krum_selects_the_honest_cluster(seed, f):
    rng = np.random.default_rng(seed)
    center = rng.normal(size=SIZE)
    honest = center + 0.01 * rng.normal(size=(5, SIZE))
    bad = center + rng.choice([-1, 1]) * (3 + rng.random((f, SIZE)))
    order = rng.permutation(5 + f)
    M = np.vstack([honest, bad])[order]
    result = multi_krum([as_update(m) for m in M], f=f)
    assert set(result.details["selected"]) == {i for i, o in enumerate(order) if o < 5}
    assert all(result.weights[i] == 0 for i, o in enumerate(order) if o >= 5)


def test_multi_krum_is_fooled_by_identical_colluders_as_documented():
    """Two colluders at distance 0 from each other get the best Krum scores when f=2 (n - f - 2 = 1 neighbour)."""
    rng = np.random.default_rng(0)
    honest = rng.normal(size=(3, SIZE))
    crafted = -honest.mean(axis=0)
    result = multi_krum([as_update(m) for m in [*honest, crafted, crafted]], f=2, m=2)
    assert result.details["selected"] == [3, 4]


def test_fltrust_gives_zero_trust_to_a_sign_flipped_update():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=SIZE)
    honest = [ref + 0.3 * rng.normal(size=SIZE) for _ in range(4)]
    updates = [as_update(v) for v in honest] + [sign_flip(as_update(honest[0]))]
    result = fltrust(updates, reference=as_update(ref))
    assert result.details["trust"][4] == 0 and result.weights[4] == 0
    assert (result.details["trust"][:4] > 0.5).all()
    assert 4 in result.excluded and "cosine to the reference" in result.excluded[4]
    # every update was rescaled to the reference's norm before weighting
    assert np.isclose(np.linalg.norm(flatten(result.update)), np.linalg.norm(ref), rtol=0.2)


def test_fltrust_rescales_every_update_to_the_reference_norm():
    ref = np.linspace(1, 2, SIZE)
    updates = [as_update(5 * ref), as_update(0.2 * ref), as_update(-ref)]
    result = fltrust(updates, reference=as_update(ref))
    assert np.allclose(result.weights, [0.5, 0.5, 0])
    assert np.allclose(flatten(result.update), ref)  # not (5 + 0.2) / 2 * ref: magnitudes come from the reference


def test_fedavg_weights_by_samples():
    updates = [as_update(np.full(SIZE, 1.0)), as_update(np.full(SIZE, 4.0))]
    result = fedavg(updates, num_samples=[3, 1])
    assert np.allclose(flatten(result.update), 1.75)
    assert np.allclose(result.weights, [0.75, 0.25])


_rng = np.random.default_rng(7)
_REF = _rng.normal(size=SIZE)
_HONEST = [_REF + 0.5 * _rng.normal(size=SIZE) for _ in range(5)]


class TestOurs:
    ref = _REF
    honest = _HONEST
    counts = [10, 20, 30, 40, 50]

    def updates(self, attacked: dict[int, str]):
        out = []
        for i, v in enumerate(self.honest):
            u = as_update(v)
            out.append({"sign_flip": sign_flip, "scale": scale}.get(attacked.get(i), lambda x: x)(u))
        return out

    def test_equals_fedavg_when_nobody_is_flagged(self):
        updates = self.updates({})
        a = ours(updates, reference=as_update(self.ref), num_samples=self.counts)
        b = fedavg(updates, num_samples=self.counts)
        assert not a.excluded and a.details["reference_weight"] == 0
        assert np.allclose(flatten(a.update), flatten(b.update)) and np.allclose(a.weights, b.weights)

    @pytest.mark.parametrize("attacked", [{0: "sign_flip"}, {4: "scale"}, {1: "scale", 3: "sign_flip"}])
    def test_excludes_attackers_and_gives_their_share_to_the_reference(self, attacked):
        updates = self.updates(attacked)
        result = ours(updates, reference=as_update(self.ref), num_samples=self.counts)
        assert set(result.excluded) == set(attacked)
        assert all(result.weights[i] == 0 for i in attacked)
        share = sum(self.counts[i] for i in attacked) / sum(self.counts)
        assert np.isclose(result.details["reference_weight"], share)
        # the result sits with the honest updates, not the attackers
        assert np.dot(flatten(result.update), self.ref) > 0

    def test_scaled_update_reason_names_the_norm(self):
        result = ours(self.updates({2: "scale"}), reference=as_update(self.ref))
        assert re.search(r"^cosine to the reference update -0\.\d\d < 0; norm \d+\.\dx the median > 3x$",
                         result.excluded[2])

    def test_without_substitution_renormalizes_over_the_accepted(self):
        updates = self.updates({0: "sign_flip"})
        result = ours(updates, reference=as_update(self.ref), num_samples=self.counts, substitute=False)
        expected = fedavg(updates[1:], num_samples=self.counts[1:])
        assert np.allclose(flatten(result.update), flatten(expected.update))

    def test_all_flagged_falls_back_to_the_reference(self):
        updates = [sign_flip(as_update(v)) for v in self.honest]
        result = ours(updates, reference=as_update(self.ref))
        assert np.allclose(result.weights, 0) and result.details["fallback"] == "reference"
        agg = flatten(result.update)
        assert np.isclose(np.dot(agg, self.ref), np.linalg.norm(agg) * np.linalg.norm(self.ref))  # same direction

    def test_clips_an_unflagged_large_update(self):
        updates = [as_update(2.5 * self.ref)] + [as_update(self.ref)] * 4  # 2.5x the median: under the 3x flag
        result = ours(updates, reference=as_update(self.ref), policy=AnomalyPolicy(max_norm_ratio=3.0))
        assert result.details["clipped"] == [0] and not result.excluded
        assert np.allclose(flatten(result.update), (2.0 + 4.0) / 5 * self.ref)  # clipped to 2x the median norm


def test_bad_inputs_are_refused():
    u = as_update(np.ones(SIZE))
    with pytest.raises(InvalidInputError, match="no updates"):
        fedavg([])
    with pytest.raises(InvalidInputError, match="update 1 has shapes"):
        fedavg([u, [np.ones((2, 3)), np.ones(2)]])
    with pytest.raises(InvalidInputError, match="cannot trim 1 from each side"):
        trimmed_mean([u, u], trim=1)
    with pytest.raises(InvalidInputError, match="needs at least 5 updates"):
        multi_krum([u] * 4, f=2)
    with pytest.raises(InvalidInputError, match="needs the server's reference"):
        fltrust([u] * 3)
    with pytest.raises(InvalidInputError, match="num_samples must be 2"):
        fedavg([u, u], num_samples=[1])
    with pytest.raises(InvalidInputError, match="unknown aggregator"):
        make_aggregator("krum-ish")
    assert make_aggregator("multi_krum", f=2)([u] * 5).details["f"] == 2

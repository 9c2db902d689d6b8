"""Federated splits: held-out sets, standardization, IID and Dirichlet partitions, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from ledgermind.errors import InvalidInputError
from ledgermind.federated.data import (
    load_dataset,
    make_federated_data,
    partition_dirichlet,
    partition_iid,
)


def label_skew(counts: np.ndarray) -> float:
    """Mean total-variation distance between each party's label distribution and the pooled one."""
    dist = counts / counts.sum(axis=1, keepdims=True)
    pooled = counts.sum(axis=0) / counts.sum()
    return float(0.5 * np.abs(dist - pooled).sum(axis=1).mean())


@pytest.mark.parametrize("name, rows, features, classes", [("breast_cancer", 569, 30, 2), ("digits", 1797, 64, 10)])
def test_load_dataset(name, rows, features, classes):
    X, y = load_dataset(name)
    assert X.shape == (rows, features) and X.dtype == np.float64
    assert sorted(np.unique(y)) == list(range(classes))


def test_unknown_dataset_is_refused():
    with pytest.raises(InvalidInputError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")


@pytest.mark.parametrize("partition", ["iid", "dirichlet"])
def test_every_row_lands_in_exactly_one_place(partition):
    d = make_federated_data("digits", 5, partition=partition, seed=3)
    X, _ = load_dataset("digits")
    sizes = sum(len(p) for p in d.parties) + len(d.validation) + len(d.test)
    assert sizes == len(X)
    # parties' index sets partition the training part
    joined = np.sort(np.concatenate(d.indices))
    assert np.array_equal(joined, np.arange(len(d.train)))
    # no training row reappears in the held-out sets (rows are distinct in digits after standardization)
    train_rows = {r.tobytes() for r in d.train.X}
    assert not any(r.tobytes() in train_rows for r in d.test.X)


def test_held_out_sets_are_stratified():
    d = make_federated_data("digits", 5, seed=0)
    _, y = load_dataset("digits")
    pooled = np.bincount(y) / len(y)
    for held in (d.validation, d.test):
        share = np.bincount(held.y, minlength=10) / len(held)
        assert np.abs(share - pooled).max() < 0.02


def test_standardized_with_training_statistics_only():
    d = make_federated_data("breast_cancer", 5, seed=0)
    assert np.allclose(d.train.X.mean(axis=0), 0, atol=1e-9)
    assert np.allclose(d.train.X.std(axis=0), 1, atol=1e-9)
    # held-out rows were transformed with the same statistics, not their own
    assert not np.allclose(d.test.X.mean(axis=0), 0, atol=1e-3)
    X, _ = load_dataset("breast_cancer")
    raw_test_row = d.test.X[0] * d.scale + d.mean
    assert np.isclose(np.abs(X - raw_test_row).sum(axis=1), 0).any()


def test_constant_features_do_not_become_nan():
    d = make_federated_data("digits", 5, seed=0)  # some pixels are blank in every image
    assert np.isfinite(d.train.X).all() and np.isfinite(d.test.X).all()


@pytest.mark.parametrize("partition", ["iid", "dirichlet"])
def test_same_seed_same_split_other_seed_other_split(partition):
    a = make_federated_data("digits", 5, partition=partition, seed=11)
    b = make_federated_data("digits", 5, partition=partition, seed=11)
    c = make_federated_data("digits", 5, partition=partition, seed=12)
    for pa, pb in zip(a.parties, b.parties):
        assert np.array_equal(pa.X, pb.X) and np.array_equal(pa.y, pb.y)
    assert not all(np.array_equal(pa.y, pc.y) for pa, pc in zip(a.parties, c.parties))


def test_dirichlet_is_skewed_and_iid_is_not():
    iid = np.mean([label_skew(make_federated_data("digits", 5, seed=s).label_counts()) for s in range(3)])
    skew = np.mean(
        [label_skew(make_federated_data("digits", 5, partition="dirichlet", alpha=0.5, seed=s).label_counts())
         for s in range(3)]
    )
    assert iid < 0.1 < 0.3 < skew


def test_smaller_alpha_means_more_skew():
    y = np.repeat(np.arange(10), 100)
    skew = {}
    for alpha in (0.1, 100.0):
        parts = partition_dirichlet(y, 5, alpha=alpha, min_samples=10, seed=0)
        skew[alpha] = label_skew(np.stack([np.bincount(y[p], minlength=10) for p in parts]))
    assert skew[0.1] > 2 * skew[100.0]


def test_dirichlet_gives_every_party_the_minimum():
    y = np.repeat(np.arange(2), 200)
    for seed in range(10):
        parts = partition_dirichlet(y, 5, alpha=0.1, min_samples=25, seed=seed)
        assert min(len(p) for p in parts) >= 25
        assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(y)))


def test_dirichlet_stops_feeding_parties_that_hold_their_share():
    """A party over its fair share gets no later labels, so it overshoots by at most one label's rows."""
    y = np.repeat(np.arange(10), 100)
    for seed in range(10):
        parts = partition_dirichlet(y, 5, alpha=0.1, min_samples=10, seed=seed)
        assert max(len(p) for p in parts) <= 200 + 100


def test_dirichlet_refuses_impossible_minimum():
    with pytest.raises(InvalidInputError, match="cannot give 5 parties 100 rows"):
        partition_dirichlet(np.zeros(100, dtype=int), 5, min_samples=100)
    with pytest.raises(InvalidInputError, match="alpha must be > 0"):
        partition_dirichlet(np.zeros(100, dtype=int), 5, alpha=0)


def test_iid_sizes_differ_by_at_most_one():
    parts = partition_iid(103, 5, seed=0)
    assert {len(p) for p in parts} == {20, 21}
    with pytest.raises(InvalidInputError):
        partition_iid(3, 5, seed=0)


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="unknown partition"):
        make_federated_data("digits", 5, partition="pathological")
    with pytest.raises(InvalidInputError, match="must be in"):
        make_federated_data("digits", 5, test_size=0.6, validation_size=0.5)

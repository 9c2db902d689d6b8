"""Federated datasets: scikit-learn's bundled data, held-out validation and test sets, and party splits.

Only the offline loaders are used (``load_breast_cancer``, ``load_digits``): the ``fetch_*`` loaders need the internet.

The split, in this order and all seeded:

1. a stratified **test** set, used only to report accuracy;
2. a stratified **validation** set the consortium approves: the server trains its reference update on it (trust
   aggregation, anomaly scores) and contribution scores are measured on it;
3. the rest (the *training part*) is spread over the parties, IID or with Dirichlet label skew.

Features are standardized with the mean and standard deviation of the training part only, so nothing about the
validation or test rows leaks into training. (In a real federation those two statistics would be computed by secure
aggregation of per-party sums; pooling them here is a simulation shortcut that does not change the split.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ledgermind.errors import InvalidInputError

DATASETS = ("breast_cancer", "digits")

# Give up on a Dirichlet draw that keeps starving a party after this many tries: the inputs make the minimum impossible
# or very unlikely, and an error says so instead of looping forever.
_MAX_DIRICHLET_TRIES = 1000


@dataclass(frozen=True)
class Split:
    """Rows ``X`` (float64, standardized) and integer labels ``y`` in ``[0, n_classes)``."""

    X: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class FederatedData:
    """A dataset prepared for a federation.

    ``parties[i]`` is party ``i``'s private data; ``validation`` is the consortium-approved validation set;
    ``test`` is only for reporting. ``train`` is the union of the parties' data (for a centralized baseline).
    ``mean`` and ``scale`` are the standardization statistics (from the training part only).
    """

    name: str
    n_features: int
    n_classes: int
    parties: list[Split]
    validation: Split
    test: Split
    train: Split
    mean: np.ndarray
    scale: np.ndarray
    partition: str
    alpha: float | None
    seed: int
    indices: list[np.ndarray] = field(repr=False, default_factory=list)

    def label_counts(self) -> np.ndarray:
        """Matrix ``(n_parties, n_classes)`` of how many rows of each label every party holds."""
        return np.stack([np.bincount(p.y, minlength=self.n_classes) for p in self.parties])

    def num_samples(self) -> list[int]:
        """Rows per party, in party order."""
        return [len(p) for p in self.parties]


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(X, y)`` of a bundled dataset: float64 features and int64 labels ``0..k-1``.

    Raises InvalidInputError for a name not in ``DATASETS``.
    """
    from sklearn.datasets import load_breast_cancer, load_digits  # here: scikit-learn takes seconds to import

    loaders = {"breast_cancer": load_breast_cancer, "digits": load_digits}
    if name not in loaders:
        raise InvalidInputError(f"unknown dataset {name!r}, expected one of {', '.join(DATASETS)}")
    bunch = loaders[name]()
    X = np.asarray(bunch.data, dtype=np.float64)
    _, y = np.unique(np.asarray(bunch.target), return_inverse=True)  # relabel to 0..k-1 whatever the source coding
    return X, y.astype(np.int64)


def partition_iid(n_rows: int, n_parties: int, seed: int) -> list[np.ndarray]:
    """Shuffle ``range(n_rows)`` and cut it into ``n_parties`` near-equal index arrays (sizes differ by at most 1).

    Requires 1 <= n_parties <= n_rows; raises InvalidInputError otherwise.
    """
    _check_parties(n_parties, n_rows)
    order = np.random.default_rng(seed).permutation(n_rows)
    return [np.sort(part) for part in np.array_split(order, n_parties)]


def partition_dirichlet(
    y: np.ndarray, n_parties: int, *, alpha: float = 0.5, min_samples: int = 10, seed: int = 0
) -> list[np.ndarray]:
    """Split row indices by label skew: each label's rows are shared out in proportions drawn from Dir(alpha).

    This is the usual non-IID benchmark split (Hsu et al. 2019; Wang et al. 2020): the smaller ``alpha``, the more
    each party is dominated by a few labels. A party that already holds its fair share ``len(y)/n_parties`` gets no
    more rows of later labels, which keeps sizes within reason; the whole draw is repeated (with the same generator,
    so still deterministic) until every party has at least ``min_samples`` rows.

    Requires alpha > 0, 1 <= n_parties and n_parties * min_samples <= len(y). Raises InvalidInputError if the
    preconditions fail or if no draw satisfies the minimum after a bounded number of tries.
    """
    y = np.asarray(y)
    _check_parties(n_parties, len(y))
    if not alpha > 0:
        raise InvalidInputError(f"alpha must be > 0, got {alpha}")
    if min_samples < 0 or n_parties * min_samples > len(y):
        raise InvalidInputError(f"cannot give {n_parties} parties {min_samples} rows each out of {len(y)}")
    rng = np.random.default_rng(seed)
    labels = np.unique(y)
    fair_share = len(y) / n_parties
    for _ in range(_MAX_DIRICHLET_TRIES):
        parts: list[list[int]] = [[] for _ in range(n_parties)]
        for label in labels:
            rows = rng.permutation(np.flatnonzero(y == label))
            shares = rng.dirichlet(np.full(n_parties, alpha))
            full = np.array([len(p) >= fair_share for p in parts])
            if not full.all():  # if every party is full, keep the raw shares rather than divide by zero
                shares = np.where(full, 0.0, shares)
            shares = shares / shares.sum()
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for part, chunk in zip(parts, np.split(rows, cuts)):
                part.extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_samples:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise InvalidInputError(
        f"no Dirichlet(alpha={alpha}) split of {len(y)} rows gave all {n_parties} parties >= {min_samples} rows "
        f"in {_MAX_DIRICHLET_TRIES} tries; lower min_samples or raise alpha"
    )


def make_federated_data(
    name: str,
    n_parties: int,
    *,
    partition: str = "iid",
    alpha: float = 0.5,
    test_size: float = 0.2,
    validation_size: float = 0.1,
    min_samples: int = 20,
    seed: int = 0,
) -> FederatedData:
    """Load ``name``, hold out stratified test and validation sets, standardize, and split the rest over parties.

    ``partition`` is ``"iid"`` or ``"dirichlet"`` (label skew with ``alpha``). ``test_size`` and
    ``validation_size`` are fractions of the whole dataset. The same arguments always give the same split.

    Raises InvalidInputError for an unknown dataset or partition, fractions outside (0, 1) or summing to >= 1, or a
    split that cannot give every party ``min_samples`` rows.
    """
    if partition not in ("iid", "dirichlet"):
        raise InvalidInputError(f"unknown partition {partition!r}, expected 'iid' or 'dirichlet'")
    if not (0 < test_size < 1 and 0 < validation_size < 1 and test_size + validation_size < 1):
        raise InvalidInputError(
            f"test_size {test_size} and validation_size {validation_size} must be in (0, 1), sum < 1"
        )
    from sklearn.model_selection import train_test_split

    X, y = load_dataset(name)
    # independent streams for each random step, so changing one (e.g. the partition) leaves the others as they were
    s_test, s_val, s_part = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3))
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test_size, stratify=y, random_state=s_test)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=validation_size / (1 - test_size), stratify=y_rest, random_state=s_val
    )
    mean = X_train.mean(axis=0)
    scale = X_train.std(axis=0)
    scale[scale == 0] = 1.0  # constant features (blank digit pixels) stay 0 instead of becoming NaN

    def standardize(a: np.ndarray) -> np.ndarray:
        return (a - mean) / scale

    X_train, X_val, X_test = standardize(X_train), standardize(X_val), standardize(X_test)
    if partition == "iid":
        indices = partition_iid(len(y_train), n_parties, s_part)
        if min(len(i) for i in indices) < min_samples:
            raise InvalidInputError(f"{len(y_train)} rows give some of {n_parties} parties fewer than {min_samples}")
    else:
        indices = partition_dirichlet(y_train, n_parties, alpha=alpha, min_samples=min_samples, seed=s_part)
    return FederatedData(
        name=name,
        n_features=X.shape[1],
        n_classes=int(y.max()) + 1,
        parties=[Split(X_train[i], y_train[i]) for i in indices],
        validation=Split(X_val, y_val),
        test=Split(X_test, y_test),
        train=Split(X_train, y_train),
        mean=mean,
        scale=scale,
        partition=partition,
        alpha=alpha if partition == "dirichlet" else None,
        seed=seed,
        indices=indices,
    )


def _check_parties(n_parties: int, n_rows: int) -> None:
    if not 1 <= n_parties <= n_rows:
        raise InvalidInputError(f"n_parties must be between 1 and {n_rows}, got {n_parties}")


__all__ = [
    "DATASETS",
    "FederatedData",
    "Split",
    "load_dataset",
    "make_federated_data",
    "partition_dirichlet",
    "partition_iid",
]

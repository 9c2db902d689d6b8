"""Contribution scores that can drive rewards, and stay fair when honest parties hold skewed data.

A party's contribution in a round is measured by what its update does to the model on the consortium-approved
validation set, not by how much it resembles the others: a party holding only two digits points in an unusual
direction (so trust or similarity scores under-pay it) yet still improves accuracy on those digits, which is what
the Shapley value credits.

The *utility* of a coalition S of parties is minus the validation log-loss (or the accuracy) of the global model
plus the FedAvg terms of S's members (see ``coalition_utility``); the empty coalition is the global model as it
was. From it:

- ``leave_one_out``: u(all) - u(all without i); n + 1 evaluations, but blind to redundancy (two parties with the
  same data each look useless).
- ``shapley_values``: exact for small n (2^n evaluations), otherwise Monte-Carlo over seeded random permutations
  with a hard cap on utility evaluations. Shapley values add up to u(all) - u(none) (efficiency), so a round's gain
  is shared out completely.

Flagged parties (``anomaly``) are left out of every coalition and score 0; ``reward_shares`` turns accumulated
scores into non-negative shares summing to 1 over the unflagged parties.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from ledgermind.errors import InvalidInputError
from ledgermind.federated.trainers import Trainer
from ledgermind.federated.updates import flatten, shapes_of, unflatten

NDArrays = list[np.ndarray]
Utility = Callable[[tuple[int, ...]], float]


def coalition_utility(
    trainer: Trainer,
    global_params: NDArrays,
    updates: Sequence[NDArrays],
    num_samples: Sequence[int],
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    metric: str = "neg_log_loss",
    renormalize: bool = False,
) -> Utility:
    """A memoized ``utility(coalition)``: the validation ``metric`` of the global model plus the coalition's terms.

    ``coalition`` is a tuple of indices into ``updates``; ``()`` scores the global model unchanged.

    With ``renormalize=False`` (the default) a coalition moves the model by ``sum(n_i / N * update_i)`` over its
    members, N counting all of ``num_samples``: each party always contributes its own FedAvg term, so the full
    coalition is exactly the FedAvg step and a party's marginal value is what its term adds. With
    ``renormalize=True`` a coalition takes a full FedAvg step over its members alone; a label-skewed party on its
    own then drags the model toward its few labels, which Shapley averages in as a penalty, and in the sweep of
    ``bench/bench_federated.py`` that left honest non-IID parties with no reward at all.

    ``metric`` is ``"neg_log_loss"`` (default: minus the mean cross-entropy, which keeps moving after accuracy has
    saturated) or ``"accuracy"`` (a step function: after a few rounds most marginal gains are 0 or one validation
    row, i.e. noise). Raises InvalidInputError for an unknown metric or mismatched lengths.
    """
    if metric not in ("accuracy", "neg_log_loss"):
        raise InvalidInputError(f"unknown metric {metric!r}, expected 'accuracy' or 'neg_log_loss'")
    if len(updates) != len(num_samples):
        raise InvalidInputError(f"{len(updates)} updates but {len(num_samples)} sample counts")
    base = flatten(global_params)
    shapes = shapes_of(global_params)
    vectors = [flatten(u) for u in updates]
    counts = np.asarray(num_samples, dtype=np.float64)
    if (counts < 0).any() or counts.sum() <= 0:
        raise InvalidInputError(f"num_samples must be non-negative with a positive sum, got {list(num_samples)}")
    cache: dict[tuple[int, ...], float] = {}

    def utility(coalition: tuple[int, ...]) -> float:
        key = tuple(sorted(coalition))
        if key not in cache:
            params = base
            if key:
                w = counts[list(key)] / (counts[list(key)].sum() if renormalize else counts.sum())
                if not np.isfinite(w).all():  # a coalition of parties that all report 0 samples: equal weights
                    w = np.full(len(key), 1.0 / len(key))
                params = base + w @ np.stack([vectors[i] for i in key])
            model = unflatten(params, shapes)
            if metric == "accuracy":
                cache[key] = trainer.score(model, X_val, y_val)
            else:
                cache[key] = -trainer.log_loss(model, X_val, y_val)
        return cache[key]

    return utility


def leave_one_out(players: Sequence[int], utility: Utility) -> dict[int, float]:
    """u(players) - u(players without i), for each i in ``players``."""
    everyone = tuple(sorted(players))
    full = utility(everyone)
    return {i: full - utility(tuple(p for p in everyone if p != i)) for i in everyone}


def shapley_values(
    players: Sequence[int], utility: Utility, *, max_evaluations: int = 256, seed: int = 0
) -> dict[int, float]:
    """Shapley value of each player in ``players`` for ``utility``.

    Exact when the 2^n coalitions fit in ``max_evaluations``; otherwise Monte-Carlo: seeded random permutations,
    each player credited with its marginal gain when it joins, stopping before a permutation would exceed the budget
    of new utility evaluations (at least one permutation always runs, so the cap can be exceeded by at most n).
    Deterministic given ``seed``. Requires ``max_evaluations >= 1``.
    """
    if max_evaluations < 1:
        raise InvalidInputError(f"max_evaluations must be >= 1, got {max_evaluations}")
    everyone = tuple(sorted(players))
    n = len(everyone)
    if n == 0:
        return {}
    if 2**n <= max_evaluations:
        values = dict.fromkeys(everyone, 0.0)
        for i in everyone:
            others = [p for p in everyone if p != i]
            for size in range(n):
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                for subset in itertools.combinations(others, size):
                    values[i] += weight * (utility(tuple(sorted(subset + (i,)))) - utility(subset))
        return values
    rng = np.random.default_rng(seed)
    totals = dict.fromkeys(everyone, 0.0)
    seen: set[tuple[int, ...]] = set()
    permutations = 0
    while True:
        order = [everyone[k] for k in rng.permutation(n)]
        prefixes = [tuple(sorted(order[:k])) for k in range(n + 1)]
        new = sum(1 for p in prefixes if p not in seen)
        if permutations and len(seen) + new > max_evaluations:
            break
        seen.update(prefixes)
        for k, player in enumerate(order):
            totals[player] += utility(prefixes[k + 1]) - utility(prefixes[k])
        permutations += 1
        if permutations >= 64 * max_evaluations:  # only cached coalitions keep coming up: enough resampling
            break
    return {p: v / permutations for p, v in totals.items()}


def round_contributions(
    trainer: Trainer,
    global_params: NDArrays,
    updates: Sequence[NDArrays],
    num_samples: Sequence[int],
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    flagged: Sequence[bool],
    method: str = "shapley",
    metric: str = "neg_log_loss",
    max_evaluations: int = 256,
    seed: int = 0,
    renormalize: bool = False,
) -> np.ndarray:
    """One round's contribution of each update (input order): Shapley or leave-one-out over the unflagged ones.

    Flagged updates score exactly 0 and never join a coalition, so a poisoner can neither earn nor lower the scores
    of others by being present. Raises InvalidInputError for an unknown method or mismatched lengths.
    """
    if method not in ("shapley", "loo"):
        raise InvalidInputError(f"unknown method {method!r}, expected 'shapley' or 'loo'")
    if len(flagged) != len(updates):
        raise InvalidInputError(f"{len(flagged)} flags for {len(updates)} updates")
    utility = coalition_utility(
        trainer, global_params, updates, num_samples, X_val, y_val, metric=metric, renormalize=renormalize
    )
    players = [i for i, f in enumerate(flagged) if not f]
    if method == "loo":
        values = leave_one_out(players, utility)
    else:
        values = shapley_values(players, utility, max_evaluations=max_evaluations, seed=seed)
    out = np.zeros(len(updates))
    for i, v in values.items():
        out[i] = v
    return out


def reward_shares(values: Sequence[float], flagged: Sequence[bool]) -> np.ndarray:
    """Turn contribution scores into reward shares: flagged -> 0, negative -> 0, the rest proportional, sum 1.

    If no unflagged party has a positive score, the unflagged parties share equally (nobody measurably helped, so
    nobody is singled out). If every party is flagged, all shares are 0.
    """
    v = np.asarray(values, dtype=np.float64)
    f = np.asarray(flagged, dtype=bool)
    if v.shape != f.shape:
        raise InvalidInputError(f"{v.size} values for {f.size} flags")
    if f.all():
        return np.zeros_like(v)
    positive = np.where(f, 0.0, np.clip(v, 0.0, None))
    if positive.sum() > 0:
        return positive / positive.sum()
    return np.where(f, 0.0, 1.0 / (~f).sum())


__all__ = [
    "coalition_utility",
    "leave_one_out",
    "reward_shares",
    "round_contributions",
    "shapley_values",
]

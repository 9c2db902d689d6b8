"""Aggregation rules: pure functions from a round's updates to one update, with per-participant weights.

Every rule takes the round's *updates* (deltas from the current global model, each a list of numpy arrays with
identical shapes: validate them first with ``updates.validate_update``) and returns an ``AggregationResult``: the
aggregated update, a weight per participant (non-negative, summing to 1, or all 0 when nothing was accepted) and
rule-specific details (trust scores, Krum scores, who was excluded and why). Nothing here trains, samples or keeps
state, so each rule can be tested alone and wrapped by a Flower ``Strategy`` later.

Common keyword arguments: ``num_samples`` (rows each party trained on; weights of sample-weighted rules) and
``reference`` (the server's update on the approved validation set, for the trust-based rules). ``AGGREGATORS`` maps
names to rules; ``make_aggregator(name, **options)`` binds options into a callable with the common signature.

What "weight" means per rule: FedAvg / Multi-Krum / trust rules: the coefficient of the party's (possibly clipped)
update in the result. Median / trimmed mean: the share of coordinates in which the party's value was used (ties share
the credit equally, so the weights do not depend on the order of the parties).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ledgermind.errors import InvalidInputError
from ledgermind.federated.anomaly import AnomalyPolicy, Evidence, cosine, score_updates
from ledgermind.federated.updates import flatten, shapes_of, unflatten

NDArrays = list[np.ndarray]


@dataclass(frozen=True)
class AggregationResult:
    """The aggregated update, one weight per participant (input order), and what the rule saw.

    ``excluded`` maps a participant's index to the reason it got no weight (only rules that exclude fill it).
    """

    update: NDArrays
    weights: np.ndarray
    method: str
    excluded: dict[int, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Aggregator(Protocol):
    def __call__(
        self,
        updates: Sequence[NDArrays],
        *,
        num_samples: Sequence[int] | None = None,
        reference: NDArrays | None = None,
    ) -> AggregationResult: ...


def _stack(updates: Sequence[NDArrays]) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Rows = flattened updates. Raises InvalidInputError if empty or if the shapes differ."""
    if not updates:
        raise InvalidInputError("no updates to aggregate")
    shapes = shapes_of(updates[0])
    for i, u in enumerate(updates[1:], start=1):
        if shapes_of(u) != shapes:
            raise InvalidInputError(f"update {i} has shapes {shapes_of(u)}, expected {shapes}")
    return np.stack([flatten(u) for u in updates]), shapes


def _sample_weights(num_samples: Sequence[int] | None, n: int) -> np.ndarray:
    if num_samples is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(num_samples, dtype=np.float64)
    if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
        raise InvalidInputError(
            f"num_samples must be {n} non-negative counts with a positive sum, got {list(num_samples)}"
        )
    return w / w.sum()


def _flat_reference(reference: NDArrays | None, d: int, rule: str) -> np.ndarray:
    if reference is None:
        raise InvalidInputError(f"{rule} needs the server's reference update")
    ref = flatten(reference)
    if ref.size != d:
        raise InvalidInputError(f"reference has {ref.size} values, updates have {d}")
    return ref


def fedavg(
    updates: Sequence[NDArrays], *, num_samples: Sequence[int] | None = None, reference: NDArrays | None = None
) -> AggregationResult:
    """FedAvg (McMahan et al. 2017): the mean of the updates weighted by ``num_samples`` (plain mean if None).

    No defence: one scaled update moves the result arbitrarily far. ``reference`` is ignored.
    """
    M, shapes = _stack(updates)
    w = _sample_weights(num_samples, len(M))
    return AggregationResult(unflatten(w @ M, shapes), w, "fedavg")


def _used_share(M: np.ndarray, trim: int) -> np.ndarray:
    """Per party, the share of coordinates whose value sits in the kept ranks ``[trim, n - trim)``.

    With ties, the kept slots a value occupies are shared equally by the parties holding it. O(n^2 d), done in
    chunks of coordinates to bound memory.
    """
    n, d = M.shape
    credit = np.zeros(n)
    chunk = max(1, 2_000_000 // max(1, n * n))
    for start in range(0, d, chunk):
        X = M[:, start : start + chunk]
        below = (X[None, :, :] < X[:, None, :]).sum(axis=1)  # how many values sort strictly before mine
        equal = (X[None, :, :] == X[:, None, :]).sum(axis=1)  # how many share my value (me included)
        overlap = np.clip(np.minimum(below + equal, n - trim) - np.maximum(below, trim), 0, None)
        credit += (overlap / equal).sum(axis=1)
    return credit / (d * (n - 2 * trim)) if d else np.full(n, 1.0 / n)


def trimmed_mean(
    updates: Sequence[NDArrays],
    *,
    trim: int = 1,
    num_samples: Sequence[int] | None = None,
    reference: NDArrays | None = None,
) -> AggregationResult:
    """Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the ``trim`` largest and ``trim``
    smallest values and average the rest (unweighted).

    Tolerates up to ``trim`` outliers per coordinate. Requires n > 2 * trim. ``num_samples`` and ``reference``
    are ignored (sample weights would let one party claim a huge count).
    """
    M, shapes = _stack(updates)
    n = len(M)
    if trim < 0 or n <= 2 * trim:
        raise InvalidInputError(f"trimmed mean of {n} updates cannot trim {trim} from each side (needs n > 2*trim)")
    kept = np.sort(M, axis=0)[trim : n - trim]
    return AggregationResult(unflatten(kept.mean(axis=0), shapes), _used_share(M, trim), "trimmed_mean",
                             details={"trim": trim})


def coordinate_median(
    updates: Sequence[NDArrays], *, num_samples: Sequence[int] | None = None, reference: NDArrays | None = None
) -> AggregationResult:
    """Coordinate-wise median (Yin et al. 2018): tolerates fewer than half outliers per coordinate.

    Same as a trimmed mean that keeps only the middle one (odd n) or two (even n) values.
    """
    M, shapes = _stack(updates)
    trim = (len(M) - 1) // 2
    return AggregationResult(unflatten(np.median(M, axis=0), shapes), _used_share(M, trim), "median")


def multi_krum(
    updates: Sequence[NDArrays],
    *,
    f: int = 1,
    m: int | None = None,
    num_samples: Sequence[int] | None = None,
    reference: NDArrays | None = None,
) -> AggregationResult:
    """Multi-Krum (Blanchard et al. 2017): score each update by the summed squared distances to its ``n - f - 2``
    nearest neighbours, keep the ``m`` lowest scores (default ``n - f``) and average them, weighted by
    ``num_samples``. ``m = 1`` is Krum.

    Requires n >= f + 3 and 1 <= m <= n. Ties in score are broken by input order. ``reference`` is ignored.
    """
    M, shapes = _stack(updates)
    n = len(M)
    if f < 0 or n < f + 3:
        raise InvalidInputError(f"Multi-Krum with f={f} needs at least {f + 3} updates, got {n}")
    m = n - f if m is None else m
    if not 1 <= m <= n:
        raise InvalidInputError(f"Multi-Krum must keep between 1 and {n} updates, got m={m}")
    sq = np.square(M).sum(axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * M @ M.T, 0.0)  # squared distances, clamped against rounding
    np.fill_diagonal(dist, np.inf)
    scores = np.sort(dist, axis=1)[:, : n - f - 2].sum(axis=1)
    selected = np.argsort(scores, kind="stable")[:m]
    w = np.zeros(n)
    w[selected] = _sample_weights(None if num_samples is None else [num_samples[i] for i in selected], m)
    excluded = {int(i): f"Krum score {scores[i]:.3g} not among the {m} lowest" for i in range(n) if w[i] == 0}
    return AggregationResult(unflatten(w @ M, shapes), w, "multi_krum", excluded,
                             {"scores": scores, "selected": sorted(int(i) for i in selected), "f": f, "m": m})


def fltrust(
    updates: Sequence[NDArrays], *, reference: NDArrays | None = None, num_samples: Sequence[int] | None = None
) -> AggregationResult:
    """FLTrust-style trust bootstrapping (Cao et al. 2021).

    Trust of update i = ReLU(cosine(update_i, reference)); each update is rescaled to the reference's norm; the
    result is the trust-weighted mean of the rescaled updates. An update pointing away from the reference gets
    trust 0; if every trust is 0 the result is the zero update. Requires ``reference``; ``num_samples`` is ignored
    (as in the paper: counts are self-reported).
    """
    M, shapes = _stack(updates)
    ref = _flat_reference(reference, M.shape[1], "fltrust")
    ref_norm = float(np.linalg.norm(ref))
    trust = np.array([max(cosine(v, ref), 0.0) for v in M])
    norms = np.linalg.norm(M, axis=1)
    factors = np.divide(ref_norm, norms, out=np.zeros_like(norms), where=norms > 0)
    total = trust.sum()
    w = trust / total if total > 0 else np.zeros(len(M))
    agg = (w * factors) @ M
    excluded = {
        i: f"trust 0: cosine to the reference {cosine(M[i], ref):.2f} <= 0" for i in range(len(M)) if trust[i] == 0
    }
    return AggregationResult(unflatten(agg, shapes), w, "fltrust", excluded,
                             {"trust": trust, "scale_factors": factors, "reference_norm": ref_norm})


def ours(
    updates: Sequence[NDArrays],
    *,
    reference: NDArrays | None = None,
    num_samples: Sequence[int] | None = None,
    evidence: Sequence[Evidence | None] | None = None,
    policy: AnomalyPolicy = AnomalyPolicy(),
    clip_ratio: float = 2.0,
    substitute: bool = True,
) -> AggregationResult:
    """Guarded FedAvg with reference substitution: FedAvg among the parties that agree with the reference, with
    the excluded parties' share of the samples given to the server's reference update.

    1. Flag with ``anomaly.score_updates`` (``policy``, optional per-party ``evidence``): direction against the
       reference (cumulative cosine if evidence is given, so a skewed honest party is not excluded for one noisy
       round), a sudden reversal, or a norm far from the round's median.
    2. Clip each accepted update to ``clip_ratio`` times the median norm of the accepted ones (bounds an undetected
       attacker; honest updates are rarely touched).
    3. Sample-weighted mean over the accepted updates, where the flagged parties' weight goes to the reference update
       rescaled to that median norm (``substitute=True``): without flags this is exactly FedAvg; with flags the
       step keeps its size and still carries the labels the excluded parties held, which under label skew may exist
       nowhere else but in the balanced validation data. ``substitute=False`` renormalizes over the accepted parties.
    4. If every update is flagged, the rescaled reference alone is applied and every weight is 0.

    Weights are over the participants (sum 1 over the accepted, 0 for the flagged); ``details["reference_weight"]``
    is the share given to the reference. Requires ``reference``.
    """
    M, shapes = _stack(updates)
    ref = _flat_reference(reference, M.shape[1], "ours")
    reports = score_updates(updates, reference, policy, evidence)
    keep = np.array([not r.flagged for r in reports])
    excluded = {r.index: r.reason for r in reports if r.flagged}
    norms = np.linalg.norm(M, axis=1)
    ref_norm = float(np.linalg.norm(ref))
    scale_to = float(np.median(norms[keep] if keep.any() else norms))
    ref_scaled = ref * (scale_to / ref_norm) if ref_norm > 0 else ref
    details: dict[str, Any] = {"reports": reports}
    if not keep.any():
        return AggregationResult(unflatten(ref_scaled, shapes), np.zeros(len(M)), "ours", excluded,
                                 {**details, "reference_weight": 1.0, "fallback": "reference"})
    bound = clip_ratio * scale_to
    factors = np.where(norms > bound, bound / np.where(norms > 0, norms, 1.0), 1.0)
    w = np.where(keep, _sample_weights(num_samples, len(M)), 0.0)
    ref_weight = float(1.0 - w.sum()) if substitute else 0.0
    if not substitute:
        w = w / w.sum()
    agg = (w * factors) @ M + ref_weight * ref_scaled
    details.update(reference_weight=ref_weight, clip_bound=bound,
                   clipped=[int(i) for i in np.flatnonzero(keep & (factors < 1))])
    return AggregationResult(unflatten(agg, shapes), w / w.sum(), "ours", excluded, details)


AGGREGATORS: dict[str, Callable[..., AggregationResult]] = {
    "fedavg": fedavg,
    "median": coordinate_median,
    "trimmed_mean": trimmed_mean,
    "multi_krum": multi_krum,
    "fltrust": fltrust,
    "ours": ours,
}

# Rules that cannot run without the server's reference update.
NEEDS_REFERENCE = frozenset({"fltrust", "ours"})


def make_aggregator(name: str, **options: Any) -> Aggregator:
    """The rule called ``name`` with ``options`` bound (e.g. ``make_aggregator("multi_krum", f=2)``).

    Raises InvalidInputError for an unknown name.
    """
    if name not in AGGREGATORS:
        raise InvalidInputError(f"unknown aggregator {name!r}, expected one of {', '.join(AGGREGATORS)}")
    agg = functools.partial(AGGREGATORS[name], **options)
    functools.update_wrapper(agg, AGGREGATORS[name])
    return agg


__all__ = [
    "AGGREGATORS",
    "NEEDS_REFERENCE",
    "AggregationResult",
    "Aggregator",
    "coordinate_median",
    "fedavg",
    "fltrust",
    "make_aggregator",
    "multi_krum",
    "ours",
    "trimmed_mean",
]

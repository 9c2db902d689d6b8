"""Score each update and flag likely poisoners, with a reason a human can read.

Two signals, both cheap and both explainable:

- **direction**: cosine similarity between an update and the server's *reference update* (trained on the
  consortium-approved validation set). A poisoner pushes the model where the validation data does not want it to
  go: "cosine to the reference update -0.93 < 0".
- **magnitude**: the update's L2 norm over the median norm of the round's updates. The median stays honest while
  fewer than half the parties attack, so a scaled update stands out: "norm 10.2x the median > 3x".

Why direction is judged on *accumulated* evidence. In one round, late in training, honest updates shrink to noise
and an honest party with skewed labels points away from the reference now and then: in the benchmark sweep
(``bench/bench_federated.py``, 5 parties, 20 rounds) a one-round rule "cosine < 0" would have flagged 1,670 of 6,600
honest non-IID updates (624 of 6,600 IID), excluding and under-paying honest parties. Summed over the rounds a party
took part in, its updates keep pointing where the summed references point (cumulative cosine >= 0.07 for every
honest party of the sweep), while a poisoner's sum keeps pointing away (<= -0.13 for every attacker).
``CumulativeEvidence`` keeps those sums; ``score_updates`` judges direction on the cumulative cosine *including the
current update* when evidence is given, and on the round's cosine alone otherwise (first round, or a caller without
history). A per-round floor (``min_round_cosine``) still catches a sudden reversal by a party with a good record, since
a record alone would let a "sleeper" attack for a few rounds. The margin around 0 is thin on the hardest split
(digits, label skew): treat the thresholds as a policy to revisit with other data, not as constants of nature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ledgermind.errors import InvalidInputError
from ledgermind.federated.updates import flatten

NDArrays = list[np.ndarray]


@dataclass(frozen=True)
class AnomalyPolicy:
    """Thresholds for flagging. An update is flagged if ANY rule fires; ``None`` switches a rule off.

    ``min_cosine``: flag when the cosine to the reference (cumulative if evidence is given, else this round's) is
    below this. ``min_round_cosine``: flag when this round's cosine alone is below this, whatever the record
    (only applied with evidence; without it ``min_cosine`` already judges the round). ``max_norm_ratio``: flag
    when the norm exceeds this multiple of the round's median norm. ``min_norm_ratio``: flag when the norm is below
    this multiple of the median (a free-rider sending ~nothing).
    """

    min_cosine: float | None = 0.0
    min_round_cosine: float | None = -0.6
    max_norm_ratio: float | None = 3.0
    min_norm_ratio: float | None = None


@dataclass(frozen=True)
class AnomalyReport:
    """Scores of one update and, if flagged, why. ``reasons`` is empty for an accepted update.

    ``cosine``: this round's cosine to the reference (None without a reference). ``cumulative_cosine``: with the
    party's earlier rounds included (None without evidence). ``norm_ratio``: norm over the round's median norm.
    """

    index: int
    cosine: float | None
    cumulative_cosine: float | None
    norm: float
    norm_ratio: float
    reasons: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)

    @property
    def reason(self) -> str:
        """All reasons on one line ('' if not flagged)."""
        return "; ".join(self.reasons)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors; 0.0 if either is all zeros (no direction to agree or disagree with)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


@dataclass(frozen=True)
class Evidence:
    """One party's record before this round: the sum of its earlier valid updates and of the references of the same
    rounds (flattened), and how many rounds that covers."""

    update_sum: np.ndarray
    reference_sum: np.ndarray
    rounds: int


class CumulativeEvidence:
    """Per-party running sums of valid updates and of the server's references over the rounds the party took part in.

    ``before(party)`` gives the record to pass to ``score_updates``; ``observe`` adds a round once it is decided;
    ``verdict`` judges the party over the whole run (for payouts): flagged if its cumulative cosine is below
    ``min_cosine`` or its norm was out of bounds in more than half of its rounds.
    """

    def __init__(self) -> None:
        self._updates: dict[int, np.ndarray] = {}
        self._references: dict[int, np.ndarray] = {}
        self._rounds: dict[int, int] = {}
        self._norm_flags: dict[int, int] = {}

    def before(self, party: int) -> Evidence | None:
        """The party's record so far, or None if it has none yet."""
        if party not in self._references:
            return None
        return Evidence(self._updates[party], self._references[party], self._rounds[party])

    def observe(self, party: int, update: NDArrays, reference: NDArrays, report: AnomalyReport) -> None:
        """Add one round's valid update of ``party``, that round's reference, and the update's report."""
        self._updates[party] = self._updates.get(party, 0) + flatten(update)
        self._references[party] = self._references.get(party, 0) + flatten(reference)
        self._rounds[party] = self._rounds.get(party, 0) + 1
        norm_flag = any(r.startswith("norm") for r in report.reasons)
        self._norm_flags[party] = self._norm_flags.get(party, 0) + int(norm_flag)

    def rounds(self, party: int) -> int:
        """How many valid updates of ``party`` were observed."""
        return self._rounds.get(party, 0)

    def cosine(self, party: int) -> float | None:
        """Cosine between the party's summed updates and the summed references of the same rounds (None if unseen)."""
        if party not in self._references:
            return None
        return cosine(self._updates[party], self._references[party])

    def verdict(self, party: int, policy: AnomalyPolicy = AnomalyPolicy()) -> str | None:
        """The reason to flag ``party`` over the whole run, or None. An unseen party is not flagged (no evidence)."""
        n = self.rounds(party)
        if n == 0:
            return None
        reasons = []
        cos = self.cosine(party)
        if cos is not None and policy.min_cosine is not None and cos < policy.min_cosine:
            reasons.append(f"cumulative cosine to the reference {cos:.2f} < {policy.min_cosine:g} over {n} rounds")
        if self._norm_flags[party] * 2 > n:
            reasons.append(f"norm out of bounds in {self._norm_flags[party]} of {n} rounds")
        return "; ".join(reasons) or None


def score_updates(
    updates: Sequence[NDArrays],
    reference: NDArrays | None = None,
    policy: AnomalyPolicy = AnomalyPolicy(),
    evidence: Sequence[Evidence | None] | None = None,
) -> list[AnomalyReport]:
    """Score every update and apply ``policy``; one report per update, in input order.

    ``evidence[i]`` is the record of the party that sent ``updates[i]`` (``CumulativeEvidence.before``), or None.
    Preconditions: at least one update, all of the same total size (validate them first with
    ``updates.validate_update``); the reference, if given, of that size too; ``evidence`` as long as ``updates``.
    Without a reference the direction rules are skipped. Raises InvalidInputError if a precondition fails.
    """
    if not updates:
        raise InvalidInputError("no updates to score")
    vectors = [flatten(u) for u in updates]
    if len({v.size for v in vectors}) != 1:
        raise InvalidInputError(f"updates have different sizes {sorted({v.size for v in vectors})}")
    ref = None if reference is None else flatten(reference)
    if ref is not None and ref.size != vectors[0].size:
        raise InvalidInputError(f"reference has {ref.size} values, updates have {vectors[0].size}")
    if evidence is not None and len(evidence) != len(updates):
        raise InvalidInputError(f"{len(evidence)} evidence records for {len(updates)} updates")
    norms = np.array([np.linalg.norm(v) for v in vectors])
    median = float(np.median(norms))
    reports = []
    for i, (v, norm) in enumerate(zip(vectors, norms)):
        ratio = float(norm / median) if median > 0 else (1.0 if norm == 0 else float("inf"))
        cos = cum = None
        reasons = []
        if ref is not None:
            cos = cosine(v, ref)
            record = evidence[i] if evidence is not None else None
            if record is not None:
                cum = cosine(record.update_sum + v, record.reference_sum + ref)
                if policy.min_cosine is not None and cum < policy.min_cosine:
                    reasons.append(
                        f"cumulative cosine to the reference {cum:.2f} < {policy.min_cosine:g} "
                        f"over {record.rounds + 1} rounds"
                    )
                if policy.min_round_cosine is not None and cos < policy.min_round_cosine:
                    reasons.append(f"cosine to the reference update {cos:.2f} < {policy.min_round_cosine:g}")
            elif policy.min_cosine is not None and cos < policy.min_cosine:
                reasons.append(f"cosine to the reference update {cos:.2f} < {policy.min_cosine:g}")
        if policy.max_norm_ratio is not None and ratio > policy.max_norm_ratio:
            reasons.append(f"norm {ratio:.1f}x the median > {policy.max_norm_ratio:g}x")
        if policy.min_norm_ratio is not None and ratio < policy.min_norm_ratio:
            reasons.append(f"norm {ratio:.2f}x the median < {policy.min_norm_ratio:g}x")
        reports.append(AnomalyReport(i, cos, cum, float(norm), ratio, tuple(reasons)))
    return reports


def detection_metrics(flagged: Sequence[bool], is_attacker: Sequence[bool]) -> dict[str, float | int]:
    """Precision and recall of flags against the truth, with the raw counts.

    Precision is 1.0 when nothing was flagged (no false accusations) and recall is 1.0 when there was no attacker
    (nothing to find): the conventions that keep a clean no-attack run from reading as a failure.
    """
    if len(flagged) != len(is_attacker):
        raise InvalidInputError(f"{len(flagged)} flags for {len(is_attacker)} parties")
    f = np.asarray(flagged, dtype=bool)
    t = np.asarray(is_attacker, dtype=bool)
    tp, fp, fn = int((f & t).sum()), int((f & ~t).sum()), int((~f & t).sum())
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
    }


__all__ = [
    "AnomalyPolicy",
    "AnomalyReport",
    "CumulativeEvidence",
    "Evidence",
    "cosine",
    "detection_metrics",
    "score_updates",
]

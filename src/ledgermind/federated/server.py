"""The server side of a federated round, with no transport: validate what arrived, aggregate, flag, score.

``RoundServer`` is the one implementation every engine calls: the in-process simulation (``simulation``), the
coordinator that records rounds on chain and in the log (``coordinator``) and the Flower strategy
(``flower``). It holds what must persist across rounds (each party's cumulative evidence and contribution
totals); everything else is a pure function of the round's inputs, so anyone holding the published updates can
re-run a round and get the same result.

Parties are identified by any hashable key (an index in a simulation, an address on chain).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ledgermind.errors import InvalidInputError
from ledgermind.federated.aggregation import AggregationResult, make_aggregator
from ledgermind.federated.anomaly import AnomalyPolicy, CumulativeEvidence, score_updates
from ledgermind.federated.contribution import reward_shares, round_contributions
from ledgermind.federated.data import Split
from ledgermind.federated.trainers import Trainer, apply_update, local_update
from ledgermind.federated.updates import InvalidUpdateError, digest, validate_update

NDArrays = list[np.ndarray]
Party = Hashable


@dataclass(frozen=True)
class ServerRound:
    """The server's verdict on one round. Party-keyed dicts cover the parties whose update arrived.

    ``rejected``: party -> why its update was not considered (bad shape, NaN, a digest that differs from its
    commitment...). ``flags``: party -> anomaly reason (a valid update judged poisoned). ``weights``: the
    aggregator's weight per valid party; ``excluded``: party -> why the aggregator gave it no weight.
    ``contributions``: the round's contribution per valid party (0 if flagged); ``shares``: the same turned
    into reward shares of this round (sum 1 over unflagged parties). ``skipped``: why the model did not move
    (fewer valid updates than the quorum), else None; ``params``/``model_digest``: the global model after.
    """

    round: int
    params: NDArrays
    model_digest: str
    rejected: dict[Party, str]
    flags: dict[Party, str]
    weights: dict[Party, float]
    excluded: dict[Party, str]
    contributions: dict[Party, float]
    shares: dict[Party, float]
    skipped: str | None = None
    details: dict[str, Any] = field(default_factory=dict, repr=False)


class RoundServer:
    """Validates, aggregates, flags and scores the updates of each round against an approved validation set.

    ``trainer`` computes the server's reference update on ``validation`` (the consortium-approved data) with
    ``fit`` (epochs, lr, batch_size). ``aggregator``: a name of ``aggregation.AGGREGATORS`` (with
    ``aggregator_options``) or a callable with the aggregators' signature. ``quorum``: fewest valid updates
    for the model to move. ``contributions``: "shapley", "loo" or None. ``seed`` makes the reference and the
    Monte-Carlo scores reproducible (``seed_of(round, purpose)`` overrides how the per-round seeds derive from
    it). Raises InvalidInputError for a bad quorum or an unknown aggregator.
    """

    def __init__(
        self,
        trainer: Trainer,
        validation: Split,
        *,
        aggregator: str | Callable[..., AggregationResult] = "ours",
        aggregator_options: Mapping[str, Any] | None = None,
        policy: AnomalyPolicy = AnomalyPolicy(),
        quorum: int = 1,
        contributions: str | None = "shapley",
        contribution_metric: str = "neg_log_loss",
        max_evaluations: int = 256,
        max_norm: float | None = 1e6,
        max_bytes: int | None = None,
        fit: Mapping[str, Any] | None = None,
        seed: int = 0,
        seed_of: Callable[[int, int], int] | None = None,
    ) -> None:
        if quorum < 1:
            raise InvalidInputError(f"quorum must be at least 1, got {quorum}")
        self.trainer = trainer
        self.validation = validation
        self.policy = policy
        self.quorum = quorum
        self.contributions = contributions
        self.contribution_metric = contribution_metric
        self.max_evaluations = max_evaluations
        self.max_norm = max_norm
        self.max_bytes = max_bytes
        self.fit = dict(fit or {"epochs": 1, "lr": 0.1, "batch_size": 32})
        self.seed_of = seed_of or (lambda r, purpose: _seed(seed, r, purpose))
        if isinstance(aggregator, str):
            self.aggregator_name = aggregator
            self._aggregate = make_aggregator(aggregator, **dict(aggregator_options or {}))
        else:
            self.aggregator_name = getattr(aggregator, "__name__", "custom")
            self._aggregate = aggregator
        # pass the parties' records to rules that can use them (ours); the others judge one round at a time
        accepted = inspect.signature(self._aggregate).parameters
        self._takes_evidence = "evidence" in accepted
        # one policy for the flags we report and the rule's own exclusions, unless the caller chose the rule's
        self._takes_policy = "policy" in accepted and "policy" not in dict(aggregator_options or {})
        self.evidence = CumulativeEvidence()
        self.totals: dict[Party, float] = {}

    def step(
        self,
        round: int,
        params: NDArrays,
        received: Mapping[Party, Any],
        num_samples: Mapping[Party, int],
        rejected: Mapping[Party, str] | None = None,
    ) -> ServerRound:
        """Judge one round: ``received`` maps each party to what it sent (anything: it is validated here against
        the shapes of ``params``), ``num_samples`` to its claimed sample count, and ``rejected`` to reasons
        decided before (e.g. by the ledger: a digest that does not match the commitment). Never raises for a bad
        update: it lands in ``rejected`` with its reason and is never scored.
        """
        shapes = [a.shape for a in params]
        out_rejected = dict(rejected or {})
        valid: dict[Party, NDArrays] = {}
        for party, update in received.items():
            if party in out_rejected:
                continue
            try:
                valid[party] = validate_update(update, shapes, max_norm=self.max_norm, max_bytes=self.max_bytes)
            except InvalidUpdateError as exc:
                out_rejected[party] = exc.reason
        ids = sorted(valid)  # one order for every engine: the aggregation's float sums depend on it
        if len(ids) < self.quorum:
            return ServerRound(round, params, digest(params), out_rejected, {}, {}, {}, {}, {},
                               skipped=f"{len(ids)} valid updates < quorum {self.quorum}")

        updates = [valid[p] for p in ids]
        counts = [int(num_samples.get(p, 0)) for p in ids]
        if sum(counts) <= 0:  # no party said how much data it has: weigh them equally
            counts = [1] * len(ids)
        # computed every round, whatever the rule: flags and payouts depend on it, and it is one small fit
        reference = local_update(self.trainer, params, self.validation.X, self.validation.y, **self.fit,
                                 seed=self.seed_of(round, 2))
        records = [self.evidence.before(p) for p in ids]
        reports = score_updates(updates, reference, self.policy, records)
        flags = {ids[k]: rep.reason for k, rep in enumerate(reports) if rep.flagged}
        extra: dict[str, Any] = {"evidence": records} if self._takes_evidence else {}
        if self._takes_policy:
            extra["policy"] = self.policy
        agg = self._aggregate(updates, num_samples=counts, reference=reference, **extra)
        new_params = apply_update(params, agg.update)

        scores: dict[Party, float] = {}
        shares: dict[Party, float] = {}
        if self.contributions is not None:
            flagged = [p in flags for p in ids]
            values = round_contributions(
                self.trainer, params, updates, counts, self.validation.X, self.validation.y, flagged=flagged,
                method=self.contributions, metric=self.contribution_metric, max_evaluations=self.max_evaluations,
                seed=self.seed_of(round, 3),
            )
            scores = {p: float(v) for p, v in zip(ids, values)}
            shares = {p: float(s) for p, s in zip(ids, reward_shares(values, flagged))}
            for p, v in scores.items():
                self.totals[p] = self.totals.get(p, 0.0) + v
        for k, p in enumerate(ids):
            self.evidence.observe(p, updates[k], reference, reports[k])
        return ServerRound(
            round, new_params, digest(new_params), out_rejected, flags,
            {p: float(w) for p, w in zip(ids, agg.weights)}, {ids[k]: why for k, why in agg.excluded.items()},
            scores, shares, details={"aggregator": agg.details, "anomaly": reports},
        )

    def verdict(self, party: Party) -> str | None:
        """Why ``party`` is flagged over the whole run (for the final payout), or None."""
        return self.evidence.verdict(party, self.policy)

    def rewards(self, parties: list[Party]) -> dict[Party, float]:
        """Reward shares over the run: contributions summed over rounds, flagged parties 0, sum 1."""
        flagged = [self.verdict(p) is not None for p in parties]
        shares = reward_shares([self.totals.get(p, 0.0) for p in parties], flagged)
        return {p: float(s) for p, s in zip(parties, shares)}


def _seed(*parts: int) -> int:
    """An independent 32-bit seed for each (run, round, purpose) tuple."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def bps(shares: Mapping[Party, float]) -> dict[Party, int]:
    """Reward shares as whole basis points, never adding up to more than 10,000 (rounded down)."""
    return {p: int(np.floor(s * 10_000 + 1e-9)) for p, s in shares.items() if s > 0}

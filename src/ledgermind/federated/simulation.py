"""An in-process federation (no Ray, no Flower): parties train, the server validates, aggregates, scores and pays.

One round, in order:

1. ``hooks.on_round_start(round, model_digest)``;
2. each party present this round (``dropout`` makes some late or missing, seeded) trains from the global model
   and sends its update; attackers send their attack instead (``attacks``);
3. for each update received, ``hooks.on_update(round, party, digest)`` sees its canonical SHA-256 digest (the value
   a ledger would commit) and may return a string to reject it; then ``updates.validate_update`` rejects bad shapes,
   dtypes, NaN/Inf and oversized updates. Rejected updates are excluded, with their reason, and never scored;
4. if fewer than ``quorum`` valid updates remain, the round is skipped and the model stays as it was;
5. the server computes its reference update on the approved validation set; ``anomaly.score_updates`` flags
   suspects with reasons; the aggregator combines the valid updates; the global model moves;
6. contribution scores (Shapley or leave-one-out on the validation set; flagged -> 0) are recorded;
7. ``hooks.on_round_end(result)``.

At the end, contributions summed over rounds become reward shares (``contribution.reward_shares``). A party is
flagged for the payout by ``anomaly.CumulativeEvidence.verdict``: its updates summed over the run point against the
summed references, or its norm was out of bounds in most of its rounds.

Everything is seeded: the same arguments give the same history, digests included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ledgermind.errors import InvalidInputError
from ledgermind.federated import attacks as atk
from ledgermind.federated.aggregation import AggregationResult
from ledgermind.federated.anomaly import AnomalyPolicy
from ledgermind.federated.contribution import reward_shares
from ledgermind.federated.data import FederatedData, make_federated_data
from ledgermind.federated.server import RoundServer
from ledgermind.federated.trainers import LogisticRegressionTrainer, Trainer, local_update
from ledgermind.federated.updates import EncodingError, digest

NDArrays = list[np.ndarray]


class FederationHooks(Protocol):
    """Where a ledger or chain layer plugs in. Every method is optional: ``run_federation`` calls only those the
    object defines, so ``class Log: def on_update(self, round, party, digest): ...`` is a valid hooks object.

    ``on_update`` may return a string to reject the update with that reason (e.g. "digest differs from the
    commitment"); any other return value accepts it. ``digest`` is None when the update cannot even be encoded.
    """

    def on_round_start(self, round: int, model_digest: str) -> None: ...

    def on_update(self, round: int, party: int, digest: str | None) -> str | None: ...

    def on_round_end(self, result: RoundResult) -> None: ...


@dataclass(frozen=True)
class RoundResult:
    """What happened in one round. Party-keyed dicts use the party's index.

    ``accuracy``: test accuracy of the global model after the round; ``model_digest``: its canonical digest.
    ``digests``: canonical digest of every update received (None if not encodable). ``rejected``: party ->
    validation reason. ``missing``: parties absent this round. ``flags``: party -> anomaly reason (valid updates
    only, whatever the aggregator). ``weights``: the aggregator's weight per valid party; ``excluded``: party -> why
    the aggregator gave it no weight. ``contributions``: this round's score per valid party (0 if flagged).
    ``skipped``: why the model did not move (quorum not met), else None. ``details``: the aggregator's details and
    the anomaly reports, for inspection.
    """

    round: int
    accuracy: float
    model_digest: str
    digests: dict[int, str | None]
    rejected: dict[int, str]
    missing: list[int]
    flags: dict[int, str]
    weights: dict[int, float]
    excluded: dict[int, str]
    contributions: dict[int, float]
    skipped: str | None = None
    details: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class FederationHistory:
    """Every round, the final model, and the payout.

    ``rewards``: reward share per party (sums to 1 over parties not flagged overall, 0 for flagged ones).
    ``flagged``: each party's verdict over the whole run (``flag_reasons`` says why); ``cumulative_cosine``: its
    summed updates against the summed references (None if it never sent a valid update). ``attackers``: the truth.
    ``contribution_totals``: per-round contributions summed (before clipping and normalization).
    """

    rounds: list[RoundResult]
    params: NDArrays
    accuracy: float
    initial_accuracy: float
    rewards: np.ndarray
    contribution_totals: np.ndarray
    flagged: np.ndarray
    flag_reasons: dict[int, str]
    cumulative_cosine: list[float | None]
    attackers: dict[int, str]
    config: dict[str, Any]


def _seed(*parts: int) -> int:
    """An independent 32-bit seed for each (run, round, party, purpose) tuple."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _call(hooks: object, name: str, *args: Any) -> Any:
    method = getattr(hooks, name, None) if hooks is not None else None
    return method(*args) if method is not None else None


def run_federation(
    dataset: str | FederatedData,
    parties: int = 5,
    rounds: int = 20,
    trainer: Trainer | None = None,
    aggregator: str | Callable[..., AggregationResult] = "ours",
    attackers: Mapping[int, str] | None = None,
    seed: int = 0,
    hooks: object | None = None,
    *,
    partition: str = "iid",
    alpha: float = 0.5,
    local_epochs: int = 1,
    lr: float = 0.1,
    batch_size: int = 32,
    dropout: float = 0.0,
    quorum: int | None = None,
    policy: AnomalyPolicy = AnomalyPolicy(),
    aggregator_options: Mapping[str, Any] | None = None,
    contributions: str | None = "shapley",
    contribution_metric: str = "neg_log_loss",
    max_evaluations: int = 256,
    max_norm: float | None = 1e6,
    max_bytes: int | None = None,
) -> FederationHistory:
    """Run a seeded federation of ``parties`` over ``rounds`` and return its history.

    ``dataset``: a name from ``data.DATASETS`` (split with ``partition``/``alpha``/``seed``) or a prepared
    ``FederatedData`` with exactly ``parties`` parties. ``trainer``: defaults to logistic regression.
    ``aggregator``: a name from ``aggregation.AGGREGATORS`` (with ``aggregator_options``) or a callable with the
    aggregators' signature. ``attackers``: party -> one of ``attacks.ATTACKS`` or ``attacks.FAULTS``; all
    ``"colluding"`` parties present in a round send one shared crafted update. ``dropout``: probability that a party
    misses a round. ``quorum``: fewest valid updates for the model to move (default: a majority of ``parties``).
    ``contributions``: ``"shapley"``, ``"loo"`` or None (skip scoring).

    Raises InvalidInputError for inconsistent arguments (unknown attack, attacker index out of range, bad quorum).
    """
    trainer = trainer or LogisticRegressionTrainer()
    attackers = dict(attackers or {})
    if isinstance(dataset, FederatedData):
        data = dataset
        if len(data.parties) != parties:
            raise InvalidInputError(f"dataset has {len(data.parties)} parties, run asked for {parties}")
    else:
        data = make_federated_data(dataset, parties, partition=partition, alpha=alpha, seed=seed)
    for party, kind in attackers.items():
        if not 0 <= party < parties:
            raise InvalidInputError(f"attacker {party} is not a party (0..{parties - 1})")
        if kind not in atk.ATTACKS + atk.FAULTS:
            raise InvalidInputError(f"unknown attack {kind!r}, expected one of {', '.join(atk.ATTACKS + atk.FAULTS)}")
    quorum = parties // 2 + 1 if quorum is None else quorum
    if not 1 <= quorum <= parties:
        raise InvalidInputError(f"quorum must be between 1 and {parties}, got {quorum}")
    if not 0 <= dropout < 1:
        raise InvalidInputError(f"dropout must be in [0, 1), got {dropout}")
    fit = {"epochs": local_epochs, "lr": lr, "batch_size": batch_size}
    server = RoundServer(
        trainer, data.validation, aggregator=aggregator, aggregator_options=aggregator_options, policy=policy,
        quorum=quorum, contributions=contributions, contribution_metric=contribution_metric,
        max_evaluations=max_evaluations, max_norm=max_norm, max_bytes=max_bytes, fit=fit,
        seed_of=lambda r, purpose: _seed(seed, r, parties, purpose),
    )

    params = trainer.init_params(data.n_features, data.n_classes, _seed(seed, 0, 0, 0))
    initial_accuracy = trainer.score(params, data.test.X, data.test.y)
    counts = data.num_samples()
    history: list[RoundResult] = []
    availability = np.random.default_rng(_seed(seed, 1, 0, 0))

    for r in range(1, rounds + 1):
        model_digest = digest(params)
        _call(hooks, "on_round_start", r, model_digest)
        present = [p for p in range(parties) if availability.random() >= dropout]
        missing = [p for p in range(parties) if p not in present]
        sent = _party_updates(trainer, params, data, present, attackers, fit, seed, r)

        digests: dict[int, str | None] = {}
        rejected: dict[int, str] = {}
        for p in present:
            try:
                digests[p] = digest(sent[p])
            except (EncodingError, TypeError, ValueError):
                digests[p] = None
            verdict = _call(hooks, "on_update", r, p, digests[p])
            if isinstance(verdict, str):
                rejected[p] = verdict
        done = server.step(r, params, sent, {p: counts[p] for p in present}, rejected)
        params = done.params
        result = RoundResult(
            r, trainer.score(params, data.test.X, data.test.y), done.model_digest,
            digests, done.rejected, missing, done.flags, done.weights, done.excluded, done.contributions,
            skipped=done.skipped, details=done.details,
        )
        history.append(result)
        _call(hooks, "on_round_end", result)

    verdicts = {p: server.verdict(p) for p in range(parties)}
    flagged = np.array([verdicts[p] is not None for p in range(parties)])
    totals = np.array([server.totals.get(p, 0.0) for p in range(parties)])
    return FederationHistory(
        rounds=history,
        params=params,
        accuracy=trainer.score(params, data.test.X, data.test.y),
        initial_accuracy=initial_accuracy,
        rewards=reward_shares(totals, flagged),
        contribution_totals=totals,
        flagged=flagged,
        flag_reasons={p: why for p, why in verdicts.items() if why},
        cumulative_cosine=[server.evidence.cosine(p) for p in range(parties)],
        attackers=attackers,
        config={
            "dataset": data.name, "parties": parties, "rounds": rounds, "aggregator": server.aggregator_name,
            "aggregator_options": dict(aggregator_options or {}), "partition": data.partition, "alpha": data.alpha,
            "seed": seed, "trainer": type(trainer).__name__, "trainer_params": trainer.get_params(), **fit,
            "dropout": dropout, "quorum": quorum, "contributions": contributions,
        },
    )


def _party_updates(
    trainer: Trainer,
    params: NDArrays,
    data: FederatedData,
    present: Sequence[int],
    attackers: Mapping[int, str],
    fit: Mapping[str, Any],
    seed: int,
    r: int,
) -> dict[int, NDArrays]:
    """What each present party sends this round: an honest update, or its attack."""

    def train(p: int, flip: bool = False) -> NDArrays:
        part = data.parties[p]
        y = atk.flip_labels(part.y, data.n_classes) if flip else part.y
        return local_update(trainer, params, part.X, y, **fit, seed=_seed(seed, r, p, 1))

    sent: dict[int, NDArrays] = {}
    colluders = [p for p in present if attackers.get(p) == "colluding"]
    if colluders:
        crafted = atk.colluding_update([train(p, flip=True) for p in colluders], [train(p) for p in colluders])
        sent.update({p: [a.copy() for a in crafted] for p in colluders})
    for p in present:
        kind = attackers.get(p)
        if kind == "colluding":
            continue
        if kind == "label_flip":
            sent[p] = train(p, flip=True)
            continue
        honest = train(p)
        sent[p] = {
            None: lambda u: u,
            "sign_flip": atk.sign_flip,
            "scale": atk.scale,
            "nan": atk.nan_update,
            "wrong_shape": atk.wrong_shape_update,
        }[kind](honest)
    return sent


def train_centralized(
    data: FederatedData,
    trainer: Trainer | None = None,
    *,
    epochs: int = 20,
    lr: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
) -> tuple[NDArrays, float]:
    """The non-federated baseline: one model trained on the union of the parties' data; returns (params, test acc)."""
    trainer = trainer or LogisticRegressionTrainer()
    params = trainer.init_params(data.n_features, data.n_classes, _seed(seed, 0, 0, 0))
    params = trainer.fit(params, data.train.X, data.train.y, epochs=epochs, lr=lr, batch_size=batch_size,
                         seed=_seed(seed, 0, 0, 4))
    return params, trainer.score(params, data.test.X, data.test.y)


__all__ = ["FederationHistory", "FederationHooks", "RoundResult", "run_federation", "train_centralized"]

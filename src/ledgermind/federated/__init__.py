"""Framework-agnostic core of decentralized training: data splits, numpy trainers, update checks and digests,
attacks, robust aggregation, anomaly flags, contribution scores, and an in-process federation.

Parameters travel as lists of numpy arrays (Flower's ``NDArrays``). Nothing here knows about chains, logs or
markets: a ledger plugs in through ``simulation.FederationHooks`` and the digests of ``updates.digest``.

    from ledgermind.federated import run_federation
    history = run_federation("digits", parties=5, rounds=20, aggregator="ours", attackers={0: "scale"})
    history.accuracy, history.rounds[-1].flags, history.rewards
"""

from ledgermind.federated.aggregation import (
    AGGREGATORS,
    AggregationResult,
    coordinate_median,
    fedavg,
    fltrust,
    make_aggregator,
    multi_krum,
    ours,
    trimmed_mean,
)
from ledgermind.federated.anomaly import (
    AnomalyPolicy,
    AnomalyReport,
    CumulativeEvidence,
    detection_metrics,
    score_updates,
)
from ledgermind.federated.contribution import (
    coalition_utility,
    leave_one_out,
    reward_shares,
    round_contributions,
    shapley_values,
)
from ledgermind.federated.data import DATASETS, FederatedData, Split, make_federated_data
from ledgermind.federated.simulation import (
    FederationHistory,
    FederationHooks,
    RoundResult,
    run_federation,
    train_centralized,
)
from ledgermind.federated.trainers import LogisticRegressionTrainer, MLPTrainer, Trainer, local_update
from ledgermind.federated.updates import InvalidUpdateError, decode, digest, encode, validate_update

__all__ = [
    "AGGREGATORS",
    "DATASETS",
    "AggregationResult",
    "AnomalyPolicy",
    "AnomalyReport",
    "CumulativeEvidence",
    "FederatedData",
    "FederationHistory",
    "FederationHooks",
    "InvalidUpdateError",
    "LogisticRegressionTrainer",
    "MLPTrainer",
    "RoundResult",
    "Split",
    "Trainer",
    "coalition_utility",
    "coordinate_median",
    "decode",
    "detection_metrics",
    "digest",
    "encode",
    "fedavg",
    "fltrust",
    "leave_one_out",
    "local_update",
    "make_aggregator",
    "make_federated_data",
    "multi_krum",
    "ours",
    "reward_shares",
    "round_contributions",
    "run_federation",
    "score_updates",
    "shapley_values",
    "train_centralized",
    "trimmed_mean",
    "validate_update",
]

"""What a home keeps about the federated tasks it takes part in, and the data files parties train on.

``TaskBook`` keeps one JSON file per task under ``LEDGERMIND_HOME/federations`` (the chain holds the task's terms
and every round's outcome, the log holds the statements; this only remembers local things: which files the local
participants train on, how the coordinator's server is configured, where the final model went).

Party data files are CSV: a header ``f0,f1,...,label`` and one row per sample, numeric features and an integer
label in the last column (``write_split`` / ``read_split``).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.federated.data import Split
from ledgermind.federated.trainers import LogisticRegressionTrainer, MLPTrainer, Trainer

TRAINERS = {"logistic": LogisticRegressionTrainer, "mlp": MLPTrainer}


def make_trainer(spec: dict[str, Any]) -> Trainer:
    """A trainer from ``{"name": "logistic"|"mlp", "params": {...}}``. Raises InvalidInputError."""
    cls = TRAINERS.get(spec.get("name", ""))
    if cls is None:
        raise InvalidInputError(f"unknown trainer {spec.get('name')!r}, expected one of {', '.join(TRAINERS)}")
    try:
        return cls(**spec.get("params", {}))
    except TypeError as e:
        raise InvalidInputError(f"bad parameters for trainer {spec['name']}: {e}") from None


def write_split(path: Path, split: Split) -> None:
    """Write ``split`` as CSV (features f0..fN, then label), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{i}" for i in range(split.X.shape[1])] + ["label"])
        for x, y in zip(split.X, split.y):
            w.writerow([repr(float(v)) for v in x] + [int(y)])
    os.replace(tmp, path)


def read_split(path: str | os.PathLike[str], n_features: int | None = None, n_classes: int | None = None) -> Split:
    """Read a party's CSV (see the module docstring). Raises NotFoundError or InvalidInputError naming the line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError(f"no such data file: {p}")
    rows, labels = [], []
    with p.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or header[-1] != "label":
            raise InvalidInputError(f"{p}: the header must end with a 'label' column")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise InvalidInputError(f"{p} line {line}: {len(row)} values, the header has {len(header)}")
            try:
                rows.append([float(v) for v in row[:-1]])
                labels.append(int(row[-1]))
            except ValueError as e:
                raise InvalidInputError(f"{p} line {line}: {e}") from None
    if not rows:
        raise InvalidInputError(f"{p} has no rows")
    X, y = np.asarray(rows, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if not np.isfinite(X).all():
        raise InvalidInputError(f"{p} holds NaN or infinite values")
    if n_features is not None and X.shape[1] != n_features:
        raise InvalidInputError(f"{p} has {X.shape[1]} features, the task's model takes {n_features}")
    if n_classes is not None and (y.min() < 0 or y.max() >= n_classes):
        raise InvalidInputError(f"{p} has labels outside 0..{n_classes - 1}")
    return Split(X, y)


@dataclass
class TaskRecord:
    """This home's notes on one task (see the module docstring)."""

    chain_id: int
    contract: str
    task_id: int
    role: str  # "coordinator" or "participant"
    n_features: int
    n_classes: int
    trainer: dict[str, Any]
    fit: dict[str, Any]
    aggregator: str = "ours"
    seed: int = 0
    validation: dict[str, str] | None = None  # path, digest (the coordinator's)
    participants: dict[str, dict[str, str]] = field(default_factory=dict)  # address -> path, dataset digest
    party_files: list[str] = field(default_factory=list)  # prepared splits waiting for a participant
    model: dict[str, Any] | None = None  # the registered final model
    rounds: list[dict[str, Any]] = field(default_factory=list)  # summary per round closed here


class TaskBook:
    """The task records of one home, in ``folder`` (one JSON file per chain and task)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, chain_id: int, task_id: int) -> Path:
        return self.folder / f"{chain_id}-{task_id}.json"

    def workdir(self, chain_id: int, task_id: int) -> Path:
        """Where files of the task live (prepared splits, the final model)."""
        return self.folder / f"{chain_id}-{task_id}"

    def load(self, chain_id: int, task_id: int) -> TaskRecord:
        p = self.path(chain_id, task_id)
        if not p.is_file():
            raise NotFoundError(f"this home knows no task {task_id} on chain {chain_id}: create or join it first")
        try:
            return TaskRecord(**json.loads(p.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise InvalidInputError(f"task record {p} is unreadable: {e}") from None

    def find(self, chain_id: int, task_id: int) -> TaskRecord | None:
        try:
            return self.load(chain_id, task_id)
        except NotFoundError:
            return None

    def save(self, record: TaskRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        p = self.path(record.chain_id, record.task_id)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2, sort_keys=True))
        os.replace(tmp, p)

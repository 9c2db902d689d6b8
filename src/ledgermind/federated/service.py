"""Federated training tasks through a ledgermind home: what ``ledgermind fed create|join|run|status|claim`` do.

The home's acting account takes the role: the coordinator creates and runs a task, a participant joins and
claims. The in-process engine (``run``) trains every participant whose account and data file this home holds
(a demonstration, or a consortium member running several sites); across machines each participant runs its
own process (``ledgermind.federated.flower``) with the same roles.

Amounts are in the smallest unit of the task's token (the demo PaymentToken by default).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.federated.coordinator import Coordinator, Participant, TaskContext, TaskTerms, run_rounds
from ledgermind.federated.data import make_federated_data
from ledgermind.federated.local import TaskBook, TaskRecord, make_trainer, read_split, write_split
from ledgermind.federated.metering import LedgerCost, metered
from ledgermind.federated.onchain import FederationContract, TaskInfo
from ledgermind.federated.server import RoundServer, ServerRound

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledgermind.client import Client


def contract_of(client: Client) -> FederationContract:
    chain = client.chain()
    return FederationContract(chain, client._deployed(chain, client.account(), "Federation").address)


def _book(client: Client) -> TaskBook:
    return TaskBook(client.settings.home / "federations")


def _recorder(client: Client) -> Any:
    from ledgermind.statements import FEDERATION, make_statement, sign_envelope

    def record(account: LocalAccount, subject: str, name: str, predicate: dict[str, Any]) -> int:
        statement = make_statement([(name, subject)], FEDERATION, predicate)
        return client.ledger.submit(sign_envelope(statement.to_bytes(), account)).index

    return record


def _context(client: Client, task_id: int) -> TaskContext:
    return TaskContext(contract_of(client), task_id, _recorder(client), client.blobs)


def create(
    client: Client,
    *,
    dataset: str = "breast_cancer",
    parties: int = 5,
    partition: str = "iid",
    alpha: float = 0.5,
    rounds: int = 5,
    reward_pool: int,
    min_stake: int,
    quorum: int | None = None,
    token: str | None = "demo",
    commit_window: int = 30,
    reveal_window: int = 60,
    aggregator: str = "ours",
    trainer: str = "logistic",
    local_epochs: int = 2,
    lr: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, Any]:
    """Create a task as its coordinator: split ``dataset`` (a bundled one) into ``parties`` data files for the
    participants and an approved validation set (registered in the log), put the terms on chain (the reward pool
    is pulled from the coordinator) and record them. Returns the task id and the party data files.
    Raises InvalidInputError for bad terms, ChainError when the chain refuses (e.g. too few tokens)."""
    if rounds < 1 or parties < 1:
        raise InvalidInputError("a task needs at least one round and one party")
    quorum = parties // 2 + 1 if quorum is None else quorum
    if not 1 <= quorum <= parties:
        raise InvalidInputError(f"quorum must be between 1 and {parties}, got {quorum}")
    if reward_pool < rounds:
        raise InvalidInputError(f"a reward pool of {reward_pool} cannot pay {rounds} rounds")
    data = make_federated_data(dataset, parties, partition=partition, alpha=alpha, seed=seed)
    spec = {"name": trainer, "params": make_trainer({"name": trainer}).get_params()}
    coordinator = client.account()
    market = client.market()
    fed = contract_of(client)
    staging = _book(client).folder / f".new-{os.getpid()}"
    files = []
    for k, part in enumerate(data.parties, start=1):
        files.append(staging / f"{dataset}-party-{k}.csv")
        write_split(files[-1], part)
    validation_file = staging / f"{dataset}-validation.csv"
    write_split(validation_file, data.validation)
    validation = client.register_dataset(validation_file, name=f"{dataset} validation (approved)",
                                         source="scikit-learn bundled dataset", licence="BSD-3-Clause")
    architecture = {"trainer": spec, "features": data.n_features, "classes": data.n_classes}
    trainer_obj = make_trainer(spec)
    initial = trainer_obj.init_params(data.n_features, data.n_classes, seed)
    server = RoundServer(trainer_obj, data.validation, aggregator=aggregator, quorum=quorum)
    ctx = Coordinator(coordinator, fed, server, _recorder(client), client.blobs).create(
        TaskTerms(market.token_address(token), rounds, reward_pool, min_stake, quorum, commit_window, reveal_window,
                  max(parties, 1)),
        architecture, initial, validation.digest,
    )
    book = _book(client)
    work = book.workdir(ctx.chain_id, ctx.task_id)
    os.replace(staging, work)
    record = TaskRecord(
        ctx.chain_id, fed.address, ctx.task_id, "coordinator", data.n_features, data.n_classes, spec,
        {"epochs": local_epochs, "lr": lr, "batch_size": batch_size}, aggregator, seed,
        validation={"path": str(work / validation_file.name), "digest": validation.digest},
        party_files=[str(work / f.name) for f in files],
    )
    book.save(record)
    client._after_write(None)
    return {"taskId": ctx.task_id, "chainId": ctx.chain_id, "contract": fed.address, "token": fed.task(ctx.task_id).token,
            "validationDataset": validation.digest, "partyFiles": record.party_files, "quorum": quorum}


def join(client: Client, task_id: int, data_path: str | os.PathLike[str], stake: int | None = None) -> dict[str, Any]:
    """Join ``task_id`` as the acting account, training on the CSV at ``data_path`` (registered in the log as a
    dataset first), with ``stake`` (default: the task's minimum). Raises InvalidInputError for data the task's
    model cannot take, ChainError when the chain refuses (task started, already joined, not enough tokens)."""
    fed = contract_of(client)
    task = fed.task(task_id)
    book = _book(client)
    record = book.find(fed.chain.chain_id, task_id)
    if record is None:
        raise NotFoundError(f"this home knows no task {task_id}: the coordinator's home records its model")
    split = read_split(data_path, record.n_features, record.n_classes)
    path = Path(data_path).expanduser().resolve()
    dataset = client.register_dataset(path, source=f"federated task {task_id}")
    account = client.account()
    participant = Participant(account, split, dataset.digest, make_trainer(record.trainer), record.n_classes)
    index = participant.join(_context(client, task_id), task.min_stake if stake is None else stake)
    record.participants[account.address] = {"path": str(path), "dataset": dataset.digest}
    if str(path) in record.party_files:
        record.party_files.remove(str(path))
    book.save(record)
    client._after_write(None)
    return {"taskId": task_id, "participant": account.address, "dataset": dataset.digest, "samples": len(split),
            "stake": str(fed.participant(task_id, account.address).stake), "logIndex": index}


def run(client: Client, task_id: int, attacks: dict[str, str] | None = None, *,
        on_round: Any = None) -> dict[str, Any]:
    """Run every round of ``task_id`` as its coordinator with the in-process engine: the participants are the
    accounts of this home that joined (``attacks`` makes some of them poisoners, by address, for
    demonstrations). Then registers the final model with its lineage to every participant's dataset.
    Returns a summary: accuracy per round, flags, rewards, the registered model."""
    coordinator, record, task = coordinator_of(client, task_id)
    fed, book = coordinator.contract, _book(client)
    trainer, validation = coordinator.server.trainer, coordinator.server.validation
    attacks = {a.lower(): k for a, k in (attacks or {}).items()}
    password = client.settings.password
    participants = []
    for address in fed.participants(task_id):
        local = record.participants.get(address)
        if local is None:
            continue  # joined from another home: it trains there (Flower engine)
        account = client.keystore.unlock(address, password or "")
        participants.append(Participant(account, read_split(local["path"], record.n_features, record.n_classes),
                                        local["dataset"], trainer, record.n_classes, attacks.get(address.lower())))
    if not participants:
        raise InvalidInputError(f"no participant of task {task_id} trains from this home")
    unknown = set(attacks) - {p.address.lower() for p in participants}
    if unknown:
        raise InvalidInputError(f"not a local participant of task {task_id}: {', '.join(sorted(unknown))}")
    params = coordinator.ctx.fetch(task.initial_weights.hex())
    summary: list[dict[str, Any]] = []

    def closed(done: ServerRound) -> None:
        acc = trainer.score(done.params, validation.X, validation.y)
        summary.append({"round": done.round, "validationAccuracy": round(acc, 4), "flags": done.flags,
                        "rejected": done.rejected, "shares": done.shares, "skipped": done.skipped})
        if on_round is not None:
            on_round(summary[-1])

    params = run_rounds(coordinator, participants, params, task.rounds - task.round, record.fit, record.seed, closed)
    model = register_model(client, record, params, [p.dataset_digest for p in participants], summary)
    record.rounds.extend(summary)
    record.model = model
    book.save(record)
    client._after_write(None)
    return {"taskId": task_id, "rounds": summary, "model": model, "status": fed.task(task_id).status}


def coordinator_of(client: Client, task_id: int,
                   cost: LedgerCost | None = None) -> tuple[Coordinator, TaskRecord, TaskInfo]:
    """The coordinator of ``task_id`` as this home's acting account, its ``RoundServer`` set up as the task record
    says, attached to the task; ``cost`` meters its chain, statements and content store. Returns it with the task
    record and the task as the chain sees it. Raises NotFoundError (this home did not create the task),
    InvalidInputError (the task is over, or coordinated by another account)."""
    fed = contract_of(client)
    record = _book(client).load(fed.chain.chain_id, task_id)
    task = fed.task(task_id)
    if task.status not in ("open", "running"):
        raise InvalidInputError(f"task {task_id} is {task.status}")
    trainer = make_trainer(record.trainer)
    validation = read_split(record.validation["path"], record.n_features, record.n_classes)
    server = RoundServer(trainer, validation, aggregator=record.aggregator, quorum=task.quorum, fit=record.fit,
                         seed=record.seed)
    contract, record_statement, blobs = fed, _recorder(client), client.blobs
    if cost is not None:
        contract, record_statement, blobs = metered(contract, record_statement, blobs, cost)
    coordinator = Coordinator(client.account(), contract, server, record_statement, blobs)
    coordinator.attach(task_id)
    return coordinator, record, task


def register_model(client: Client, record: TaskRecord, params: list[np.ndarray], datasets: list[str],
                   summary: list[dict[str, Any]], **hyperparameters: Any) -> dict[str, Any]:
    """Register a task's final model in the log, trained on ``datasets`` (digests registered in this log), with
    the task's terms and ``hyperparameters`` in its statement. Returns its id, name, log index and path."""
    work = _book(client).workdir(record.chain_id, record.task_id)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"federated-model-task-{record.task_id}.npz"
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, *params)
    os.replace(tmp, path)
    metrics = {"validationAccuracy": summary[-1]["validationAccuracy"]} if summary else {}
    reg = client.register_model(
        path, trained_on=sorted(set(datasets)), framework="numpy", format="npz", metrics=metrics,
        hyperparameters={"trainer": record.trainer, **record.fit, "aggregator": record.aggregator,
                         "federatedTask": record.task_id, "chainId": record.chain_id, "contract": record.contract,
                         **hyperparameters},
    )
    return {"id": reg.digest, "name": reg.name, "logIndex": reg.log_index, "path": str(path)}


def model_function(predicate: dict[str, Any]) -> Callable[[np.ndarray, Any], np.ndarray] | None:
    """How to compute a model a federation registered (its file holds parameters only, ``arr_0``..``arr_n`` of
    an ``.npz``): ``fn(x, params)`` giving class probabilities with the task's trainer, or None when the model
    statement ``predicate`` is not of a federated model."""
    hyper = predicate.get("hyperparameters") or {}
    if predicate.get("format") != "npz" or "federatedTask" not in hyper or not isinstance(hyper.get("trainer"), dict):
        return None
    trainer = make_trainer(hyper["trainer"])

    def fn(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
        return trainer.predict_proba([params[f"arr_{i}"] for i in range(len(params))], x)

    return fn


def status(client: Client, task_id: int) -> dict[str, Any]:
    """The task as the chain sees it (terms, state, each participant's stake and rewards owed) and this home's
    notes (round summaries, the final model)."""
    fed = contract_of(client)
    task = fed.task(task_id)
    members = []
    for address in fed.participants(task_id):
        m = fed.participant(task_id, address)
        members.append({"account": address, "stake": str(m.stake), "state": m.state,
                        "withdrawable": str(fed.withdrawable(address, task.token))})
    rounds = [fed.round_info(task_id, r).to_json() for r in range(1, task.round + 1)]
    record = _book(client).find(fed.chain.chain_id, task_id)
    return {"task": task.to_json(), "participants": members, "rounds": rounds,
            "local": {"rounds": record.rounds, "model": record.model} if record else None}


def claim(client: Client, task_id: int) -> dict[str, Any]:
    """As a participant of a finished (or cancelled) task: reclaim the stake unless slashed and withdraw every
    reward owed in the task's token."""
    fed = contract_of(client)
    account = client.account()
    member = fed.participant(task_id, account.address)
    if member.state == "none":
        raise InvalidInputError(f"{account.address} did not join task {task_id}")
    record = _book(client).find(fed.chain.chain_id, task_id)
    trainer = make_trainer(record.trainer) if record else None
    participant = Participant(account, None, "", trainer, record.n_classes if record else 0)  # type: ignore[arg-type]
    out = participant.claim(_context(client, task_id))
    client._after_write(None)
    return out

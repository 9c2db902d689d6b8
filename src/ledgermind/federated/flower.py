"""Federated tasks on Flower (flwr 1.41): a ServerApp/ClientApp pair for federations across machines.

The roles are those of ``coordinator``; only the messages travel through Flower's Message API:

- The **ServerApp** is the task's ``Coordinator`` and its ``RoundServer``, acting from the home that created the
  task (``service.coordinator_of``). Its strategy, ``LedgerStrategy``, first sends every connected node a **join**
  message (task, contract, architecture): the node checks the contract against its own deployment record and the
  architecture against the digest on chain, registers its data file as a dataset in its own log, stakes, and
  answers with its account and a signature binding that account to its Flower node id. Then, per round:

  1. ``Coordinator.start_round`` on chain, and a **train** message (global arrays, round, fit config, seed) to the
     node of every active party;
  2. each ClientApp, a ``Participant`` with its own home, account and data, trains, publishes, commits on chain and
     signs its ``update`` statement (``Participant.submit``), keeps the salt in the node's Flower state and
     replies with the update's arrays;
  3. the server publishes the updates it received in its content store, waits for the commit phase to end, and
     sends a **reveal** message to their nodes; each reveals on chain;
  4. the server waits for the reveals and ``Coordinator.close_round``: every update is checked against the digest
     revealed on chain, the ``RoundServer`` aggregates, flags and scores, the contract pays and slashes, the
     ``round`` statement is signed.

  A node that does not answer by the chain's commit (reveal) deadline sits the round out; the contract's quorum
  decides whether the model moves. The chain, not Flower, is the authority on who committed and revealed what.
  After the last round the final model is registered in the coordinator's log.

**Configuration.** Run config (``flwr run --run-config``, or ``make_server_app(config)``): ``RUN_CONFIG``, i.e.
``home`` (the coordinator's ledgermind home), ``account``, ``rpc-url`` (the chain every party reaches),
``task-id``, ``rounds`` (0: every remaining one), ``min-nodes`` (nodes to wait for, at most ``wait-nodes``
seconds; 0: the task's maximum of participants) and ``join-timeout`` (seconds). Node config
(``flower-supernode --node-config``, or ``make_client_app(nodes)`` per simulated partition): ``NODE_CONFIG``, i.e.
``home``, ``account``, ``data`` (the party's CSV file), ``stake`` (default: the task's minimum), ``rpc-url`` and
``attack`` (a poisoner, for demonstrations). Passwords come from the environment or the home's ``config.toml``,
never from Flower's configuration. A party's home finds the Federation contract through the deployment record
the coordinator wrote (``copy_deployments``).

**Running it.** ``write_app(folder)`` writes the Flower App (a ``pyproject.toml`` naming ``server_app`` and
``client_app``; ledgermind with its ``flower`` extra must be installed where SuperLink and SuperNodes run). Keep
Flower's runtime dependency installation disabled (it would resolve dependencies again with ``uv``, e.g. pull a
CUDA torch)::

    flower-superlink --insecure --host 0.0.0.0 --port 9093 --disable-runtime-dependency-installation
    flower-supernode --insecure --superlink HOST:9093 --node-config 'home="/srv/a" data="/srv/a/party.csv"'
    flwr run APP_DIR CONNECTION --run-config 'home="/srv/coordinator" task-id=1 rpc-url="http://chain:8545"'

With Flower's simulation engine: ``flwr.simulation.run_simulation(make_server_app(run_config),
make_client_app([node_config, ...]), num_supernodes=N)``.

**Cost.** Each party sends 2 transactions per round (commit, reveal) and signs 1 statement; the coordinator sends
2 (start, finalize or abort) and signs 1. Every round summary carries what ``metering.LedgerCost`` counted on both
sides beside the round's wall time and the parties' training time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

try:
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import Result, Strategy
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(f"the Flower engine needs flwr: pip install 'ledgermind[flower]' ({e})") from None

from ledgermind.errors import InvalidInputError, LedgermindError
from ledgermind.federated import service
from ledgermind.federated.coordinator import (
    Coordinator,
    Participant,
    TaskContext,
    architecture_digest,
    chain_time,
    party_seed,
    wait_commit_phase,
)
from ledgermind.federated.local import TaskBook, TaskRecord, make_trainer, read_split
from ledgermind.federated.metering import LedgerCost, metered
from ledgermind.federated.onchain import FederationContract, TaskInfo
from ledgermind.federated.server import ServerRound
from ledgermind.statements.dsse import recover_signer

if TYPE_CHECKING:
    from ledgermind.client import Client

log = logging.getLogger(__name__)

NDArrays = list[np.ndarray]

#: Flower message types of the three exchanges (all in Flower's ``train`` category).
JOIN, TRAIN, REVEAL = "train.join", "train", "train.reveal"

#: Every run config key the ServerApp reads, with its default (Flower only accepts overrides of declared keys).
RUN_CONFIG: dict[str, Any] = {
    "home": "", "account": "", "rpc-url": "", "task-id": 0, "rounds": 0, "min-nodes": 0, "wait-nodes": 60.0,
    "join-timeout": 300.0,
}
#: The node config keys a ClientApp reads (``data`` is needed to join; the rest are optional).
NODE_CONFIG = ("home", "account", "data", "stake", "rpc-url", "attack")

_STATE = "ledgermind"  # the node's ConfigRecord in context.state: commit salts waiting for their reveal
_MARGIN = 2.0  # seconds given to a Flower exchange beyond the chain deadline it serves


# ---------------------------------------------------------------------- server side
@dataclass
class _Party:
    """What one party reported in a round (train and reveal replies)."""

    train_seconds: float = 0.0
    handler_seconds: float = 0.0
    cost: LedgerCost = field(default_factory=LedgerCost)


@dataclass
class _Round:
    """The open round, between its train message and its close."""

    number: int
    params: NDArrays
    started: float
    cost: LedgerCost  # the coordinator's meter when it started
    received: dict[str, str] = field(default_factory=dict)  # address -> digest of the update that arrived
    parties: dict[str, _Party] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # address -> why nothing usable came back


class LedgerStrategy(Strategy):
    """The Flower strategy of a ledgermind task: rounds started, judged and paid on chain by ``coordinator``
    (attached to the task, its contract, recorder and content store metered by ``cost``).

    ``architecture`` is what the task committed to on chain (nodes check it before joining); ``fit`` the local
    training config sent every round; ``seed`` the task's seed (the ``k``-th participant in joining order trains
    round ``r`` with ``party_seed(seed, r, k)``, as in the in-process engine); ``on_round`` gets each round's
    summary. ``start`` runs the whole protocol (see the module docstring); the other methods are its steps.
    """

    def __init__(self, coordinator: Coordinator, architecture: Mapping[str, Any], fit: Mapping[str, Any], *,
                 seed: int = 0, cost: LedgerCost | None = None,
                 on_round: Callable[[dict[str, Any]], None] | None = None) -> None:
        if coordinator.ctx is None:
            raise InvalidInputError("attach the coordinator to its task first")
        self.coordinator = coordinator
        self.ctx: TaskContext = coordinator.ctx
        self.architecture = dict(architecture)
        self.fit = dict(fit)
        self.seed = seed
        self.cost = cost or LedgerCost()
        self.on_round = on_round
        self.members: dict[int, str] = {}  # node id -> party address (joined, active)
        self.datasets: dict[str, str] = {}  # party address -> its registered dataset digest
        self.samples: dict[str, int] = {}  # party address -> the sample count it joined with
        self.order: list[str] = []  # the task's participants in joining order (seeds)
        self.history: list[dict[str, Any]] = []
        self._round: _Round | None = None

    # ------------------------------------------------------------------ Flower's Strategy interface
    def summary(self) -> None:
        log.info("ledgermind task %d on chain %d (%s): aggregator %s, fit %s", self.ctx.task_id, self.ctx.chain_id,
                 self.ctx.contract.address, self.coordinator.server.aggregator_name, self.fit)

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        """Start the next round on chain with ``arrays`` as the global model; one train message per active party."""
        params = arrays.to_numpy_ndarrays()
        started, before = time.perf_counter(), self.cost.copy()
        r = self.coordinator.start_round(params)
        self._round = _Round(r, params, started, before)
        fit = {"task-id": self.ctx.task_id, "round": r, "epochs": int(self.fit.get("epochs", 1)),
               "lr": float(self.fit.get("lr", 0.1)), "batch-size": int(self.fit.get("batch_size", 32))}
        return [Message(RecordDict({"arrays": arrays, "config": ConfigRecord(
                    {**dict(config), **fit, "seed": party_seed(self.seed, r, self._order_of(address))})}),
                        dst_node_id=node, message_type=TRAIN, group_id=str(r))
                for node, address in self.members.items()]

    def configure_reveal(self, replies: Iterable[Message]) -> list[Message]:
        """Publish every update that arrived in the coordinator's content store, wait for the end of the commit
        phase, and ask the parties whose update arrived to reveal."""
        state = self._open_round()
        for msg, address in self._from_members(replies, state):
            content = msg.content
            if "arrays" not in content.array_records:
                state.errors[address] = "no update in the reply"
                continue
            state.received[address] = published = self.ctx.publish(content["arrays"].to_numpy_ndarrays())
            claimed = str(content.config_records.get("config", ConfigRecord()).get("update-digest", ""))
            if claimed != published:  # the chain decides (close_round rejects what was not published); say why
                log.warning("round %d: %s committed to %s but sent arrays hashing to %s", state.number, address,
                            claimed[:12], published[:12])
            metrics = _metrics(msg)  # its sample count stays the one it joined with (the FedAvg weight)
            state.parties[address] = _Party(float(metrics.get("train-seconds", 0.0)),
                                            float(metrics.get("handler-seconds", 0.0)), LedgerCost.from_metrics(metrics))
        with self.cost.pause():
            wait_commit_phase(self.ctx, state.number)
        content = RecordDict({"config": ConfigRecord({"task-id": self.ctx.task_id, "round": state.number})})
        return [Message(content, dst_node_id=node, message_type=REVEAL, group_id=str(state.number))
                for node, address in self.members.items() if address in state.received]

    def aggregate_train(self, server_round: int,
                        replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """With the reveal replies in: wait for the reveals on chain, close the round (check, aggregate, flag,
        score, pay, slash, record). Returns the new global model and the round's metrics."""
        state = self._open_round()
        for msg, address in self._from_members(replies, state):
            metrics = _metrics(msg)
            party = state.parties.setdefault(address, _Party())
            party.cost = party.cost + LedgerCost.from_metrics(metrics)
            party.handler_seconds += float(metrics.get("handler-seconds", 0.0))
        with self.cost.pause():
            self.coordinator.wait_for_reveals(state.number)
        closing, before = time.perf_counter(), self.cost.copy()
        done = self.coordinator.close_round(state.number, state.params, self.samples)
        server_seconds = time.perf_counter() - closing - self.cost.since(before).seconds  # the RoundServer's work
        self.members = {node: a for node, a in self.members.items() if a not in done.flags}  # slashed on chain
        summary = self._summarize(done, state, server_seconds)
        self.history.append(summary)
        if self.on_round is not None:
            self.on_round(summary)
        metrics = MetricRecord({"validation-accuracy": summary["validationAccuracy"], "updates": len(state.received),
                                "flagged": len(done.flags), "rejected": len(done.rejected),
                                **self.cost.since(state.cost).to_metrics("coordinator-")})
        return ArrayRecord(done.params), metrics

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        return []  # the server judges every round on the approved validation set (RoundServer)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return None

    # ------------------------------------------------------------------ the protocol
    def configure_join(self, grid: Grid) -> list[Message]:
        """One join message per connected node: the task, the contract, and the architecture to check."""
        content = ConfigRecord({"task-id": self.ctx.task_id, "chain-id": self.ctx.chain_id,
                                "contract": self.ctx.contract.address,
                                "architecture": json.dumps(self.architecture, sort_keys=True)})
        return [Message(RecordDict({"config": content}), dst_node_id=node, message_type=JOIN, group_id="join")
                for node in grid.get_node_ids()]

    def aggregate_join(self, replies: Iterable[Message]) -> dict[int, str]:
        """Keep the nodes whose party is an active member of the task and signed ``join_claim`` for that node;
        returns node id -> address."""
        contract, task_id = self.ctx.contract, self.ctx.task_id
        self.order = contract.participants(task_id)
        active = {a.lower() for a in self.order if contract.participant(task_id, a).state == "active"}
        for msg in replies:
            node = msg.metadata.src_node_id
            if msg.has_error():
                log.warning("node %d did not join task %d: %s", node, task_id, msg.error.reason)
                continue
            reply = msg.content.config_records.get("config", ConfigRecord())
            address = str(reply.get("address", ""))
            claim = join_claim(task_id, self.ctx.chain_id, contract.address, node, address)
            try:
                signer = recover_signer(claim, bytes(reply.get("signature", b"")))
            except LedgermindError as e:
                signer = f"nobody ({e})"
            if address.lower() not in active:
                log.warning("node %d (%s) is not an active participant of task %d", node, address, task_id)
            elif signer.lower() != address.lower():
                log.warning("node %d claims %s but its join answer is signed by %s", node, address, signer)
            elif address in self.members.values():
                log.warning("node %d also acts for %s: keeping the first node", node, address)
            else:
                self.members[node] = address
                self.datasets[address] = str(reply.get("dataset", ""))
                self.samples[address] = int(reply.get("samples", 0))
        return dict(self.members)

    def start(self, grid: Grid, initial_arrays: ArrayRecord, num_rounds: int = 3, timeout: float = 3600,
              train_config: ConfigRecord | None = None, evaluate_config: ConfigRecord | None = None,
              evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None) -> Result:
        """Join, then ``num_rounds`` rounds (see the module docstring). ``timeout`` bounds the join exchange; each
        round's exchanges are bounded by its commit and reveal deadlines on chain. Raises InvalidInputError when
        no node is an active party of the task, ChainError when the chain refuses a round."""
        self.summary()
        if not self.aggregate_join(grid.send_and_receive(self.configure_join(grid), timeout=timeout)):
            raise InvalidInputError(f"no connected node is an active participant of task {self.ctx.task_id}")
        result = Result(arrays=initial_arrays)
        for server_round in range(1, num_rounds + 1):
            messages = list(self.configure_train(server_round, result.arrays, train_config or ConfigRecord(), grid))
            r = self._open_round().number
            replies = grid.send_and_receive(messages, timeout=self._until(r, "commit_deadline"))
            reveals = self.configure_reveal(replies)
            revealed = grid.send_and_receive(reveals, timeout=self._until(r, "reveal_deadline")) if reveals else []
            arrays, metrics = self.aggregate_train(server_round, revealed)
            result.arrays = arrays or result.arrays
            if metrics is not None:
                result.train_metrics_clientapp[r] = metrics
            if evaluate_fn is not None and (m := evaluate_fn(r, result.arrays)) is not None:
                result.evaluate_metrics_serverapp[r] = m
        return result

    # ------------------------------------------------------------------ helpers
    def _open_round(self) -> _Round:
        if self._round is None:
            raise InvalidInputError("no round is open: configure_train starts one")
        return self._round

    def _order_of(self, address: str) -> int:
        return self.order.index(address) if address in self.order else len(self.order)

    def _from_members(self, replies: Iterable[Message], state: _Round) -> Iterator[tuple[Message, str]]:
        """The replies of member nodes that carry no error (errors are noted in the round's state)."""
        for msg in replies:
            address = self.members.get(msg.metadata.src_node_id)
            if address is None:
                continue
            if msg.has_error():
                state.errors[address] = msg.error.reason
            else:
                yield msg, address

    def _until(self, r: int, deadline: str) -> float:
        """Seconds until the round's ``deadline`` by the chain's clock, plus a margin (Flower's wait)."""
        with self.cost.pause():
            info = self.ctx.contract.round_info(self.ctx.task_id, r)
            return max(float(getattr(info, deadline)) - chain_time(self.ctx.contract), 0.0) + _MARGIN

    def _summarize(self, done: ServerRound, state: _Round, server_seconds: float) -> dict[str, Any]:
        server = self.coordinator.server
        coordinator = self.cost.since(state.cost)
        parties = state.parties
        return {
            "round": done.round, "engine": "flower",
            "validationAccuracy": round(server.trainer.score(done.params, server.validation.X, server.validation.y), 4),
            "flags": done.flags, "rejected": done.rejected, "shares": done.shares, "skipped": done.skipped,
            "errors": state.errors, "updates": state.received,
            "cost": {
                "roundSeconds": round(time.perf_counter() - state.started, 6),
                "trainSeconds": round(max((p.train_seconds for p in parties.values()), default=0.0), 6),
                "serverSeconds": round(server_seconds, 6),
                "coordinator": coordinator.to_json(),
                # handlerSeconds: the party's whole time in its train and reveal handlers (opening its home,
                # reading its data, training, ledger)
                "parties": {a: {**p.cost.to_json(), "trainSeconds": round(p.train_seconds, 6),
                                "handlerSeconds": round(p.handler_seconds, 6)} for a, p in parties.items()},
                "transactions": coordinator.transactions + sum(p.cost.transactions for p in parties.values()),
                "gas": coordinator.gas + sum(p.cost.gas for p in parties.values()),
                # parties act in parallel: the round waits for the coordinator's share plus the slowest party's
                "ledgerSeconds": round(coordinator.seconds + max((p.cost.seconds for p in parties.values()),
                                                                 default=0.0), 6),
                "ledgerSecondsTotal": round(coordinator.seconds + sum(p.cost.seconds for p in parties.values()), 6),
            },
        }


def _metrics(msg: Message) -> MetricRecord:
    """A reply's metrics (none if a node sent none: what it reports is informative, the chain decides)."""
    return msg.content.metric_records.get("metrics", MetricRecord())


def run_task(grid: Grid, client: Client, task_id: int, *, rounds: int | None = None, min_nodes: int | None = None,
             wait_nodes: float = 60.0, join_timeout: float = 300.0,
             on_round: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run ``task_id``'s rounds over ``grid`` as its coordinator (``client``'s acting account, from the home that
    created the task), then register the final model. ``rounds``: how many (default: every remaining one);
    ``min_nodes``: nodes to wait for (at most ``wait_nodes`` seconds) before the join exchange (default: the
    task's maximum of participants), which waits ``join_timeout`` seconds at most for their answers. Returns what
    ``service.run`` returns, each round with its cost. Raises NotFoundError (this home did not create the task),
    InvalidInputError, ChainError."""
    cost = LedgerCost()
    coordinator, record, task = service.coordinator_of(client, task_id, cost)
    ctx = coordinator.ctx
    assert ctx is not None  # attached by coordinator_of
    params = ctx.fetch(task.initial_weights.hex()) if task.round == 0 else _global_model(ctx, task)
    architecture = {"trainer": record.trainer, "features": record.n_features, "classes": record.n_classes}
    strategy = LedgerStrategy(coordinator, architecture, record.fit, seed=record.seed, cost=cost, on_round=on_round)
    _wait_for_nodes(grid, min_nodes or (task.max_participants if task.status == "open" else task.active), wait_nodes)
    remaining = task.rounds - task.round
    result = strategy.start(grid, ArrayRecord(params), num_rounds=min(rounds or remaining, remaining),
                            timeout=join_timeout)
    # lineage reaches the parties' datasets registered in this log; those in the parties' own logs (the usual case
    # across machines) are named by digest in the model's statement
    local = []
    for digest in sorted(set(strategy.datasets.values())):
        with contextlib.suppress(LedgermindError):
            local.append(client.registry.resolve(digest, "dataset").digest)
    model = service.register_model(client, record, result.arrays.to_numpy_ndarrays(), local, strategy.history,
                                   engine="flower", participantDatasets=dict(sorted(strategy.datasets.items())))
    record.rounds.extend(strategy.history)
    record.model = model
    TaskBook(client.settings.home / "federations").save(record)
    client._after_write(None)
    return {"taskId": task_id, "rounds": strategy.history, "model": model,
            "status": coordinator.contract.task(task_id).status}


def _global_model(ctx: TaskContext, task: TaskInfo) -> NDArrays:
    """The global model after the last closed round of a task that already ran some (resuming)."""
    info = ctx.contract.round_info(ctx.task_id, task.round)
    return ctx.fetch((info.aggregated_digest if info.status == "finalized" else info.global_digest).hex())


def _wait_for_nodes(grid: Grid, wanted: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while len(list(grid.get_node_ids())) < wanted and time.monotonic() < deadline:
        time.sleep(0.2)


def make_server_app(config: Mapping[str, Any] | None = None,
                    on_round: Callable[[dict[str, Any]], None] | None = None) -> ServerApp:
    """The ServerApp: ``run_task`` from the coordinator's home. ``config`` holds run config keys (``RUN_CONFIG``)
    for engines that pass none (``run_simulation``); a run's own values take precedence. ``on_round`` gets each
    round's summary (in the ServerApp's process)."""
    app = ServerApp()
    defaults = {**RUN_CONFIG, **dict(config or {})}

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        # the run's own values win; the App's declared defaults do not hide the factory's config
        settings = {**defaults, **{k: v for k, v in dict(context.run_config).items() if v != RUN_CONFIG.get(k)}}
        task_id = int(settings["task-id"])
        if task_id <= 0:
            raise InvalidInputError("run config 'task-id' is missing")
        with _open(settings["home"], settings["account"], settings["rpc-url"]) as client:
            out = run_task(grid, client, task_id, rounds=int(settings["rounds"]) or None,
                           min_nodes=int(settings["min-nodes"]) or None, wait_nodes=float(settings["wait-nodes"]),
                           join_timeout=float(settings["join-timeout"]), on_round=on_round)
        log.info("ledgermind task %d %s; model %s", task_id, out["status"], out["model"]["id"])

    return app


# ---------------------------------------------------------------------- client side
def make_client_app(nodes: Sequence[Mapping[str, Any]] | Mapping[int, Mapping[str, Any]] | None = None) -> ClientApp:
    """The ClientApp: one party per node. Its settings are the node config (``NODE_CONFIG``) over
    ``nodes[partition-id]`` when given (Flower's simulation engine gives each virtual node only its partition id),
    with the run config's ``rpc-url`` as the default chain."""
    app = ClientApp()
    table = dict(enumerate(nodes)) if isinstance(nodes, Sequence) else dict(nodes or {})

    def settings(context: Context) -> dict[str, Any]:
        node = dict(context.node_config)
        out = {**table.get(int(node.get("partition-id", -1)), {}),
               **{k: v for k, v in node.items() if k in NODE_CONFIG and v != ""}}
        if not out.get("rpc-url") and context.run_config.get("rpc-url"):
            out["rpc-url"] = context.run_config["rpc-url"]
        return out

    @app.train("join")
    def join(msg: Message, context: Context) -> Message:
        answer = join_task(settings(context), msg.content["config"], context.node_id)
        return Message(RecordDict({"config": ConfigRecord(answer)}), reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return Message(train_round(settings(context), msg.content, context.state), reply_to=msg)

    @app.train("reveal")
    def reveal(msg: Message, context: Context) -> Message:
        return Message(reveal_round(settings(context), msg.content["config"], context.state), reply_to=msg)

    return app


def join_claim(task_id: int, chain_id: int, contract: str, node_id: int, address: str) -> bytes:
    """What a party signs (EIP-191) in its join answer: that Flower node ``node_id`` acts for its account in this
    task, so the server sends a party's rounds only to the node holding its key."""
    return (f"ledgermind federated task {task_id} on chain {chain_id} ({contract.lower()}): "
            f"Flower node {node_id} acts for {address.lower()}").encode()


def join_task(node: Mapping[str, Any], task: Mapping[str, Any], node_id: int) -> dict[str, Any]:
    """A node's answer to a join message: join ``task`` (unless its party already did) after checking that the
    contract is the one this home trusts and the architecture is the one committed on chain; remember the task's
    model in this home (a participant ``TaskRecord``). Returns the party's address, dataset digest and samples,
    whether it joined now, and its signature of ``join_claim`` for ``node_id``. Raises InvalidInputError (another
    contract or model, no data file, no chain URL), ChainError (the chain refused the join)."""
    from eth_account.messages import encode_defunct

    task_id = int(task["task-id"])
    with _open_party(node) as client:
        fed = _federation(client)
        if fed.address.lower() != str(task["contract"]).lower() or fed.chain.chain_id != int(task["chain-id"]):
            raise InvalidInputError(f"the join message names contract {task['contract']} on chain "
                                    f"{task['chain-id']}, this home trusts {fed.address} on chain {fed.chain.chain_id}")
        architecture = json.loads(str(task["architecture"]))
        on_chain, described = fed.task(task_id).model_digest.hex(), architecture_digest(architecture)
        if described != on_chain:
            raise InvalidInputError(f"task {task_id} committed to model {on_chain[:12]}, the join message describes "
                                    f"{described[:12]}")
        book = TaskBook(client.settings.home / "federations")
        record = book.find(fed.chain.chain_id, task_id)
        if record is None:
            record = TaskRecord(fed.chain.chain_id, fed.address, task_id, "participant", int(architecture["features"]),
                                int(architecture["classes"]), dict(architecture["trainer"]), {})
            book.save(record)
        account = client.account()
        local = record.participants.get(account.address)
        if local is not None and fed.participant(task_id, account.address).state != "none":
            split = read_split(local["path"], record.n_features, record.n_classes)
            out = {"address": account.address, "dataset": local["dataset"], "samples": len(split), "joined": False}
        elif not node.get("data"):
            raise InvalidInputError(f"node config 'data' is missing: the CSV file {account.address} trains on")
        else:
            stake = node.get("stake")
            joined = service.join(client, task_id, str(node["data"]), int(stake) if stake not in (None, "") else None)
            out = {"address": account.address, "dataset": joined["dataset"], "samples": joined["samples"],
                   "joined": True}
        claim = join_claim(task_id, fed.chain.chain_id, fed.address, node_id, account.address)
        out["signature"] = bytes(account.sign_message(encode_defunct(primitive=claim)).signature)
    return out


def train_round(node: Mapping[str, Any], content: RecordDict, state: RecordDict) -> RecordDict:
    """A node's answer to a train message: train from the global arrays, publish, commit, sign the ``update``
    statement (``Participant.submit``), keep the salt in ``state``; reply with the update, its digest, the sample
    count, the training time and the ledger cost. Raises ChainError when the chain refuses the commit (e.g. the
    party was slashed), InvalidInputError when this home has not joined the task."""
    entered = time.perf_counter()
    config = content["config"]
    task_id, r = int(config["task-id"]), int(config["round"])
    cost = LedgerCost()
    with _open_party(node) as client:
        ctx = _party_context(client, task_id, cost)
        participant = _participant(client, ctx, node.get("attack"))
        fit = {"epochs": int(config["epochs"]), "lr": float(config["lr"]), "batch_size": int(config["batch-size"])}
        started = time.perf_counter()
        update = participant.train(content["arrays"].to_numpy_ndarrays(), fit, int(config["seed"]))
        trained = time.perf_counter() - started
        update_digest = participant.submit(ctx, r, update)
    pending = state.config_records.get(_STATE, ConfigRecord())
    pending[f"{task_id}/{r}/digest"], pending[f"{task_id}/{r}/salt"] = participant.pending[r]
    state[_STATE] = pending  # the salt outlives this process: a SuperNode runs every message in a new one
    return RecordDict({
        "arrays": ArrayRecord(update),
        "metrics": MetricRecord({"num-examples": len(participant.data), "train-seconds": trained,
                                 "handler-seconds": time.perf_counter() - entered, **cost.to_metrics()}),
        "config": ConfigRecord({"address": participant.address, "update-digest": update_digest}),
    })


def reveal_round(node: Mapping[str, Any], config: ConfigRecord, state: RecordDict) -> RecordDict:
    """A node's answer to a reveal message: reveal the round's commitment on chain with the salt kept in
    ``state``. Raises InvalidInputError if this node committed nothing in that round."""
    entered = time.perf_counter()
    task_id, r = int(config["task-id"]), int(config["round"])
    pending = state.config_records.get(_STATE, ConfigRecord())
    key = f"{task_id}/{r}/"
    if key + "salt" not in pending:
        raise InvalidInputError(f"this node committed nothing in round {r} of task {task_id}")
    update_digest, salt = str(pending[key + "digest"]), bytes(pending[key + "salt"])
    cost = LedgerCost()
    with _open_party(node) as client:
        account = client.account()
        # what Participant.reveal does, with the salt this node kept
        _party_context(client, task_id, cost).contract.reveal(account, task_id, r, update_digest, salt)
    del pending[key + "digest"], pending[key + "salt"]
    state[_STATE] = pending
    return RecordDict({"config": ConfigRecord({"address": account.address, "revealed": update_digest}),
                       "metrics": MetricRecord({"handler-seconds": time.perf_counter() - entered,
                                                **cost.to_metrics()})})


def _party_context(client: Client, task_id: int, cost: LedgerCost) -> TaskContext:
    """The party's context on ``task_id``: its home's contract, log and content store, metered by ``cost``."""
    contract, record, blobs = metered(_federation(client), service._recorder(client), client.blobs, cost)
    return TaskContext(contract, task_id, record, blobs)


def _participant(client: Client, ctx: TaskContext, attack: Any) -> Participant:
    account = client.account()
    record = TaskBook(client.settings.home / "federations").load(ctx.chain_id, ctx.task_id)
    local = record.participants.get(account.address)
    if local is None:
        raise InvalidInputError(f"{account.address} has not joined task {ctx.task_id} from this home")
    split = read_split(local["path"], record.n_features, record.n_classes)
    return Participant(account, split, local["dataset"], make_trainer(record.trainer), record.n_classes,
                       str(attack) if attack else None)


@contextlib.contextmanager
def _open(home: Any, account: Any, rpc_url: Any) -> Iterator[Client]:
    from ledgermind.client import Client
    from ledgermind.config import load_settings

    client = Client(settings=load_settings(str(home) if home else None, account=str(account) if account else None,
                                           rpc_url=str(rpc_url) if rpc_url else None))
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def _open_party(node: Mapping[str, Any]) -> Iterator[Client]:
    """A party's home. It must reach the task's chain by URL: without one, its home would open an embedded chain
    of its own (and deploy contracts there) instead of failing."""
    with _open(node.get("home"), node.get("account"), node.get("rpc-url")) as client:
        if not client.settings.rpc_url:
            raise InvalidInputError(f"party home {client.settings.home} has no chain URL: set 'rpc-url' in the node "
                                    "or run config (or LEDGERMIND_RPC_URL, or rpc_url in the home's config.toml)")
        yield client


def _federation(client: Client) -> FederationContract:
    """The Federation contract of a party's home. Raises ChainError, saying that a party's home needs the
    coordinator's deployment record (``copy_deployments``) when it has none."""
    from ledgermind.chain.connection import ChainError

    try:
        return service.contract_of(client)
    except ChainError as e:
        raise ChainError(f"{e} (a party's home needs the coordinator's deployment record: see "
                         "ledgermind.federated.flower.copy_deployments)") from None


# ---------------------------------------------------------------------- setup
def write_app(folder: str | os.PathLike[str], defaults: Mapping[str, Any] | None = None) -> Path:
    """Write the Flower App for ``flwr run`` into ``folder`` (created): a ``pyproject.toml`` naming this module's
    ``server_app`` and ``client_app``, with the run config keys and their defaults (``defaults`` overrides
    them). Returns the folder. Raises InvalidInputError for an unknown key. The app carries no code: ledgermind
    must be installed where it runs."""
    out = Path(folder).expanduser()
    values = {**RUN_CONFIG, **dict(defaults or {})}
    unknown = set(values) - set(RUN_CONFIG)
    if unknown:
        raise InvalidInputError(f"unknown run config keys {sorted(unknown)}, expected some of {sorted(RUN_CONFIG)}")
    config = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())  # JSON scalars are TOML scalars
    out.mkdir(parents=True, exist_ok=True)
    (out / "pyproject.toml").write_text(f'''# A Flower App running ledgermind federated tasks (ledgermind.federated.flower.write_app).
# Its code is the installed ledgermind package: keep Flower's runtime dependency installation disabled.
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "ledgermind-federation"
version = "1.0.0"
description = "ledgermind federated task: rounds started, judged, paid and slashed on chain, recorded in the log"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "ledgermind"

[tool.flwr.app.components]
serverapp = "ledgermind.federated.flower:server_app"
clientapp = "ledgermind.federated.flower:client_app"

[tool.flwr.app.config]
{config}
''')
    return out


def copy_deployments(source_home: str | os.PathLike[str], target_home: str | os.PathLike[str]) -> list[Path]:
    """Copy the contract deployment records (one JSON file per chain id) of ``source_home`` (the coordinator's,
    which deployed) into ``target_home``, so a party's home finds the same Federation, token and registries.
    Each record is checked against the code on chain whenever it is used. Returns the files written."""
    from ledgermind.config import load_settings

    src = load_settings(source_home).deployments_dir
    dst = load_settings(target_home).deployments_dir
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(src.glob("*.json")):
        tmp = dst / (path.name + ".tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dst / path.name)
        written.append(dst / path.name)
    return written


@dataclass(frozen=True)
class LocalFederation:
    """A coordinator's home and one home per party on this machine, all on one chain (``local_federation``)."""

    task_id: int
    rpc_url: str
    coordinator_home: Path
    homes: list[Path]  # one per party, in the order of ``data``
    accounts: list[str]
    data: list[Path]  # each party's CSV file

    def run_config(self, **extra: Any) -> dict[str, Any]:
        """The ServerApp's run config for this task."""
        return {"home": str(self.coordinator_home), "task-id": self.task_id, "rpc-url": self.rpc_url, **extra}

    def node_configs(self, attacks: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
        """One node config per party (``attacks``: party index -> attack, for demonstrations)."""
        return [{"home": str(h), "data": str(d), "rpc-url": self.rpc_url,
                 **({"attack": attacks[k]} if attacks and k in attacks else {})}
                for k, (h, d) in enumerate(zip(self.homes, self.data))]


def local_federation(folder: str | os.PathLike[str], rpc_url: str, *, parties: int = 3,
                     fund: Callable[[str], None] | None = None, tokens: int = 1000 * 10**18,
                     party_tokens: int = 100 * 10**18, **terms: Any) -> LocalFederation:
    """Prepare a federation on one machine for demonstrations, tests and benchmarks: a coordinator's home in
    ``folder/coordinator`` deploys the contracts on the development chain at ``rpc_url``, mints itself ``tokens``
    demo tokens and creates a task (``terms`` as ``service.create`` takes them; ``parties`` data files); a home
    per party in ``folder/party-K`` gets the deployment record and ``party_tokens``. ``fund(address)`` pays for
    gas where the chain does not fund accounts itself. Nobody joins yet: the join exchange of a Flower run does."""
    from ledgermind.config import load_settings

    root = Path(folder).expanduser()
    fund = fund or (lambda address: None)
    with _open(root / "coordinator", None, rpc_url) as coordinator:
        fund(coordinator.account().address)
        coordinator.deploy()
        coordinator.faucet(amount=tokens)
        created = service.create(coordinator, parties=parties, **{"reward_pool": 30 * 10**18,
                                                                  "min_stake": 10 * 10**18, **terms})
        homes, accounts = [], []
        for k in range(parties):
            home = root / f"party-{k + 1}"
            copy_deployments(root / "coordinator", home)
            with _open(home, None, rpc_url) as party:
                accounts.append(party.account().address)
            fund(accounts[-1])
            coordinator.faucet(accounts[-1], amount=party_tokens)
            homes.append(load_settings(home).home)
    return LocalFederation(int(created["taskId"]), rpc_url, root / "coordinator", homes, accounts,
                           [Path(p) for p in created["partyFiles"]])


#: The apps ``flwr run`` loads (``write_app``): all their settings come from the run and node configs.
server_app = make_server_app()
client_app = make_client_app()

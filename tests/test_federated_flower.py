"""Federated tasks on Flower: the ServerApp/ClientApp pair of ``ledgermind.federated.flower`` on a real chain.

One embedded chain is served over JSON-RPC by this process; the coordinator and every party have their own home
(their own account, log and content store) and reach the chain by its URL, as on separate machines. Two engines:

- Flower's simulation engine (Ray): one smoke test, a 3-party, 2-round task end to end;
- a ``flower-superlink`` and three ``flower-supernode`` processes on loopback (insecure), the run started with
  ``flwr run`` and runtime dependency installation disabled; one party scales its updates, is flagged and
  slashed on chain, the others are paid.

Both are marked slow (Ray starts in 10-40 s; every SuperNode message runs in a fresh ClientApp process). The
join answer's checks run without an engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledgermind import Client
from ledgermind.chain.connection import Chain
from ledgermind.chain.rpc_server import NodeServer
from ledgermind.config import load_settings
from ledgermind.errors import InvalidInputError
from ledgermind.federated import flower, service
from ledgermind.federated.local import TaskBook
from ledgermind.statements import FEDERATION

TOKEN = 10**18
BIN = Path(sys.executable).parent  # flower-superlink, flower-supernode, flwr (and what they spawn) live here


@pytest.fixture()
def chain_url(tmp_path):
    chain = Chain.connect(tmp_path / "chain")
    with NodeServer(chain.embedded, port=0) as server:
        yield chain, server.url
    chain.close()


def federation(root: Path, chain: Chain, url: str) -> flower.LocalFederation:
    """A 3-party, 2-round task on breast-cancer data, created by its coordinator; nobody has joined yet."""
    return flower.local_federation(root, url, parties=3, fund=chain.ensure_funds, rounds=2,
                                   reward_pool=30 * TOKEN, min_stake=10 * TOKEN, commit_window=600,
                                   reveal_window=600)


def open_home(home: Path, url: str) -> Client:
    return Client(settings=load_settings(home, rpc_url=url))


def federation_statements(home: Path, url: str) -> list[dict]:
    """The predicates of the federation/v1 statements in a home's log, in log order."""
    with open_home(home, url) as lm:
        size = lm.log_info()["size"]
        statements = [lm.ledger.read(i).statement for i in range(size)]
    return [s.predicate for s in statements if s.predicate_type == FEDERATION]


@pytest.mark.slow
def test_simulation_engine_runs_a_task_end_to_end(tmp_path, chain_url, monkeypatch):
    """Flower's simulation engine (Ray): join, 2 rounds of train/commit/reveal/close, rewards credited on chain,
    every step a statement in the log of the account that took it."""
    from flwr.simulation import run_simulation

    chain, url = chain_url
    monkeypatch.setenv("LEDGERMIND_AUTO_ANCHOR", "0")
    monkeypatch.setenv("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # Ray's future default; silences its warning
    fed = federation(tmp_path, chain, url)
    rounds: list[dict] = []
    run_simulation(flower.make_server_app(fed.run_config(), on_round=rounds.append),
                   flower.make_client_app(fed.node_configs()), num_supernodes=3,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})

    with open_home(fed.coordinator_home, url) as lm:
        status = service.status(lm, fed.task_id)
        record = TaskBook(lm.settings.home / "federations").load(lm.chain().chain_id, fed.task_id)
    assert status["task"]["status"] == "finished"
    assert [r["status"] for r in status["rounds"]] == ["finalized", "finalized"]
    assert all(r["reveals"] == 3 for r in status["rounds"])
    owed = {p["account"]: int(p["withdrawable"]) for p in status["participants"]}
    assert sorted(owed) == sorted(fed.accounts) and all(v > 0 for v in owed.values())
    assert sum(owed.values()) <= 30 * TOKEN
    # the round summaries the ServerApp kept, with what each round cost on the ledger
    assert [r["round"] for r in rounds] == [1, 2] and record.rounds == rounds and record.model is not None
    for r in rounds:
        assert not r["flags"] and not r["rejected"] and not r["errors"] and sorted(r["updates"]) == sorted(fed.accounts)
        assert r["cost"]["coordinator"]["transactions"] == 2  # start, finalize
        assert all(p["transactions"] == 2 and p["statements"] == 1 for p in r["cost"]["parties"].values())
    assert rounds[-1]["validationAccuracy"] > 0.9

    # the coordinator's log: a round statement per round, naming every update, the same digests as on chain
    verdicts = [p for p in federation_statements(fed.coordinator_home, url) if p["action"] == "round"]
    assert [v["round"] for v in verdicts] == [1, 2]
    for v, on_chain in zip(verdicts, status["rounds"]):
        assert sorted(v["updates"]) == sorted(fed.accounts)
        assert "0x" + v["aggregatedModel"] == on_chain["aggregated_digest"]
    # each party's own log: its join and one update statement per round, signed by its account
    for home, account in zip(fed.homes, fed.accounts):
        mine = federation_statements(home, url)
        assert [p["action"] for p in mine] == ["join", "update", "update"]
        assert {p["account"] for p in mine} == {account}
    # a party collects its stake and rewards from its own home
    with open_home(fed.homes[0], url) as lm:
        claim = service.claim(lm, fed.task_id)
    assert claim["paid"] == str(10 * TOKEN + owed[fed.accounts[0]])


# ---------------------------------------------------------------------- SuperLink + SuperNodes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}: {log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port}: {log.read_text()[-3000:]}")


class Processes:
    """Processes started by this test, each in its own session, all killed by ``stop`` (whatever happened)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, *args: str, flwr_home: Path) -> tuple[subprocess.Popen, Path]:
        log = self.folder / f"{name}.log"
        with log.open("w") as out:
            proc = subprocess.Popen([str(BIN / args[0]), *args[1:]], stdout=out, stderr=subprocess.STDOUT,
                                    env={**self.env, "FLWR_HOME": str(flwr_home)}, start_new_session=True)
        self.started.append((proc, log))
        return proc, log

    def stop(self) -> None:
        # a whole session each: the ServerApp and ClientApp processes a SuperLink or SuperNode spawned go too
        for signum in (signal.SIGTERM, signal.SIGKILL):
            for proc, _ in self.started:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signum)
            for proc, _ in self.started:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=15)

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-4000:]}" for _, log in self.started)


@pytest.fixture()
def processes(tmp_path):
    env = {**os.environ, "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", ""), "LEDGERMIND_AUTO_ANCHOR": "0",
           "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1", "PYTHONUNBUFFERED": "1"}
    procs = Processes(tmp_path, env)
    try:
        yield procs
    finally:
        procs.stop()


def flwr(flwr_home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "flwr"), *args], capture_output=True, text=True, timeout=120,
                          env={**env, "FLWR_HOME": str(flwr_home)})


@pytest.mark.slow
def test_superlink_and_supernodes_flag_and_slash_a_poisoner(tmp_path, chain_url, processes):
    """A SuperLink and three SuperNodes as separate processes on loopback; the run started with ``flwr run``.
    The party that scales its updates is flagged in the first round and slashed on chain; the others are paid."""
    chain, url = chain_url
    fed = federation(tmp_path / "homes", chain, url)
    attacker = fed.accounts[1]
    app = flower.write_app(tmp_path / "app")

    link = free_port()
    superlink, link_log = processes.start("superlink", "flower-superlink", "--insecure", "--host", "127.0.0.1",
                                          "--port", str(link), "--disable-runtime-dependency-installation",
                                          flwr_home=tmp_path / "flwr-superlink")
    wait_for_port(link, superlink, link_log)
    nodes = []
    for k, node in enumerate(fed.node_configs({1: "scale"})):
        port = free_port()
        settings = " ".join(f"{key}={json.dumps(value)}" for key, value in node.items())
        nodes.append((port, *processes.start(f"supernode-{k + 1}", "flower-supernode", "--insecure", "--superlink",
                                             f"127.0.0.1:{link}", "--host", "127.0.0.1", "--port", str(port),
                                             "--node-config", settings, flwr_home=tmp_path / f"flwr-node-{k + 1}")))
    for port, proc, log in nodes:
        wait_for_port(port, proc, log)

    user = tmp_path / "flwr-user"  # flwr run's own FLWR_HOME: the SuperLink connection
    user.mkdir()
    (user / "config.toml").write_text(f'[superlink]\ndefault = "local-test"\n\n[superlink.local-test]\n'
                                      f'address = "127.0.0.1:{link}"\ninsecure = true\n')
    run_config = " ".join(f"{k}={json.dumps(v)}" for k, v in fed.run_config(**{"min-nodes": 3}).items())
    started = flwr(user, processes.env, "run", str(app), "local-test", "--run-config", run_config, "--format", "json")
    assert started.returncode == 0, started.stderr + started.stdout
    run_id = json.loads(started.stdout)["run-id"]

    def run_status() -> str:
        listed = flwr(user, processes.env, "ls", "local-test", "--run-id", run_id, "--format", "json")
        runs = json.loads(listed.stdout).get("runs", []) if listed.returncode == 0 else []
        return runs[0]["status"] if runs else "unknown"

    # the ServerApp saves the coordinator's task record with the registered model as its last step; asking Flower
    # (a CLI process each time) only now and then catches a run that failed before
    book = TaskBook(fed.coordinator_home / "federations")
    chain_id = chain.chain_id
    status, deadline, asked = "running", time.monotonic() + 600, time.monotonic()  # a bound on a hung run
    while time.monotonic() < deadline:
        record = book.find(chain_id, fed.task_id)
        if record is not None and record.model is not None:
            break
        if time.monotonic() - asked > 30:
            status, asked = run_status(), time.monotonic()
            if status.startswith("finished"):
                break
        time.sleep(1)
    while not status.startswith("finished") and time.monotonic() < deadline:
        status = run_status()
    if status != "finished:completed":
        shown = flwr(user, processes.env, "log", run_id, "local-test", "--show")
        pytest.fail(f"run {run_id} is {status}\n{shown.stdout[-6000:]}\n{processes.logs()}")

    with open_home(fed.coordinator_home, url) as lm:
        task = service.status(lm, fed.task_id)
        record = TaskBook(lm.settings.home / "federations").load(lm.chain().chain_id, fed.task_id)
    assert task["task"]["status"] == "finished"
    states = {p["account"]: p["state"] for p in task["participants"]}
    owed = {p["account"]: int(p["withdrawable"]) for p in task["participants"]}
    assert states[attacker] == "slashed" and owed[attacker] == 0
    assert all(states[a] == "active" and owed[a] > 0 for a in fed.accounts if a != attacker)
    assert [r["round"] for r in record.rounds] == [1, 2]
    assert list(record.rounds[0]["flags"]) == [attacker] and not record.rounds[1]["flags"]
    assert attacker not in record.rounds[1]["updates"]  # slashed: no longer asked to train

    verdicts = [p for p in federation_statements(fed.coordinator_home, url) if p["action"] == "round"]
    assert [v["round"] for v in verdicts] == [1, 2]
    assert verdicts[0]["flags"][attacker].startswith("cosine to the reference update")


def test_a_node_joins_only_the_contract_and_model_it_can_check(tmp_path, chain_url, monkeypatch):
    """The ClientApp's join answer, without an engine: a join message naming another contract or another model
    than the one committed on chain is refused and nothing moves; the right one joins once, signed for its node."""
    from ledgermind.statements.dsse import recover_signer

    chain, url = chain_url
    monkeypatch.setenv("LEDGERMIND_AUTO_ANCHOR", "0")
    fed = federation(tmp_path, chain, url)
    node = fed.node_configs()[0]
    with open_home(fed.coordinator_home, url) as lm:
        contract = service.contract_of(lm)
        record = TaskBook(lm.settings.home / "federations").load(contract.chain.chain_id, fed.task_id)
    architecture = {"trainer": record.trainer, "features": record.n_features, "classes": record.n_classes}
    task = {"task-id": fed.task_id, "chain-id": contract.chain.chain_id, "contract": contract.address,
            "architecture": json.dumps(architecture)}

    with pytest.raises(InvalidInputError, match="this home trusts"):
        flower.join_task(node, {**task, "contract": "0x" + "11" * 20}, node_id=7)
    with pytest.raises(InvalidInputError, match=f"task {fed.task_id} committed to model"):
        flower.join_task(node, {**task, "architecture": json.dumps({**architecture, "features": 31})}, node_id=7)
    with pytest.raises(InvalidInputError, match="no chain URL"):
        flower.join_task({k: v for k, v in node.items() if k != "rpc-url"}, task, node_id=7)
    assert contract.task(fed.task_id).participants == 0

    first = flower.join_task(node, task, node_id=7)
    again = flower.join_task(node, task, node_id=7)
    assert first["joined"] and not again["joined"] and first["address"] == again["address"] == fed.accounts[0]
    assert first["samples"] == again["samples"] > 0 and first["dataset"] == again["dataset"]
    claim = flower.join_claim(fed.task_id, contract.chain.chain_id, contract.address, 7, fed.accounts[0])
    assert recover_signer(claim, first["signature"]) == fed.accounts[0]
    assert recover_signer(flower.join_claim(fed.task_id, contract.chain.chain_id, contract.address, 8,
                                            fed.accounts[0]), first["signature"]) != fed.accounts[0]
    assert contract.participant(fed.task_id, fed.accounts[0]).state == "active"
    assert contract.task(fed.task_id).participants == 1

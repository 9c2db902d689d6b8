"""Load on a whole node: many concurrent clients reading, writing signed statements and paying for inference.

``ledgermind up`` runs in its own process (embedded chain JSON-RPC, REST API) on a fresh home where a dataset and a
scikit-learn model trained on it are registered; a provider process (``python -m ledgermind.inference.server``)
serves the model on the same home (same log, same chain) for 1 wei per row through payment channels. Then N client
threads, each with its own account, keep-alive connection and (for paid inference) its own payment channel, run
for S seconds, each request picked at random: reads of the API (node, assets, lineage, log pages, an entry with its
inclusion proof, statements by predicate type), signed writes (an event statement signed by the client, in an
EIP-712 signed request), and paid inference with a voucher and a checked receipt.

Pass criteria: no errors (every answer a 200, every receipt checks out), and nothing lost: after the node is
stopped with SIGTERM, every acknowledged write and every receipt is at its log index, byte for byte. In the same run
the same clients hit ``GET /healthz`` for a few seconds: the HTTP and framework floor to read the numbers against.

    python bench/bench_node_load.py [--clients 64] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "node_load.json"
sys.path.insert(0, str(ROOT / "src"))

MIX = {"read": 0.5, "write": 0.3, "infer": 0.2}  # share of requests of each kind
PRICE, DEPOSIT = 1, 10**15


@dataclass
class Node:
    """A running node and provider on a prepared home."""

    home: Path
    api_url: str
    rpc_url: str
    provider_url: str
    model: str
    dataset: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def stop(self) -> list[int]:
        """SIGTERM the provider, then the node (each finishes its requests in flight); their exit codes."""
        codes = []
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            codes.append(proc.wait(timeout=120))
        self.procs.clear()
        return codes


def start(tmp: Path) -> Node:
    """Register a dataset and a model in a new home under ``tmp``, start ``ledgermind up`` and a provider on it."""
    os.environ["LEDGERMIND_AUTO_ANCHOR"] = "0"  # anchoring is measured elsewhere; here it would only add noise
    import joblib
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ledgermind import Client

    home = tmp / "home"
    X, y = load_breast_cancer(return_X_y=True)
    model_file = tmp / "breast_cancer_lr.joblib"
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), model_file)
    data = tmp / "breast_cancer.csv"
    np.savetxt(data, np.c_[X, y], delimiter=",", header=",".join([f"f{i}" for i in range(30)] + ["label"]), comments="")
    with Client(home) as lm:
        d = lm.register_dataset(data, licence="BSD-3-Clause")
        m = lm.register_model(model_file, trained_on=[d.digest], metrics={"accuracy": 0.95})
        lm.deploy()
    env = {**os.environ, "LEDGERMIND_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    up = subprocess.Popen([sys.executable, "-m", "ledgermind.cli.app", "up", "--api-port", "0", "--rpc-port", "0",
                           "--rate", "1000000", "--burst", "1000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env)
    lines = [up.stdout.readline() for _ in range(2)]
    urls = [re.search(r"http://[0-9.:]+", line) for line in lines]
    if not all(urls):
        raise SystemExit(f"ledgermind up did not start: {''.join(lines)}{up.stderr.read()}")
    provider = subprocess.Popen([sys.executable, "-m", "ledgermind.inference.server", m.digest, "--home", str(home),
                                 "--path", str(model_file), "--price", str(PRICE), "--port", "0",
                                 "--settle-interval", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
    line = provider.stdout.readline()
    if not line:
        up.send_signal(signal.SIGTERM)
        raise SystemExit(f"provider did not start: {provider.stderr.read()}")
    return Node(home, urls[1].group(0), urls[0].group(0), json.loads(line)["url"], m.digest, d.digest, [up, provider])


class Client:
    """One load client: its own account, HTTP connection and payment channel."""

    def __init__(self, node: Node, channels: Any, provider: str, inputs: list[list[list[float]]], seed: int) -> None:
        import httpx
        from eth_account import Account

        from ledgermind.inference.client import InferenceClient, Payer
        from ledgermind.node.signing import NodeSession

        self.account = Account.create()
        self.session = NodeSession(node.api_url, self.account)
        self.node, self.inputs, self.rng = node, inputs, random.Random(seed)
        channel = Payer(self.account, channels).open(provider, DEPOSIT)
        self.infer = InferenceClient([node.provider_url], channels={provider: channel},
                                     http=httpx.Client(timeout=60))
        self.reads = [
            ("/v1/node", {}), ("/v1/assets", {}), (f"/v1/assets/{node.model}/lineage", {}),
            ("/v1/log/entries", {"order": "desc", "limit": 20}), ("/v1/statements", {"predicate": "event/v1",
                                                                                       "order": "desc", "limit": 20}),
            (f"/v1/assets/{node.dataset}", {}),
        ]

    def close(self) -> None:
        self.session.close()
        self.infer.close()

    def one(self, kind: str) -> tuple[bool, str | None, tuple[str, int, bytes] | None]:
        """One request of ``kind``: (ok, error, (what, log index, entry bytes) of an acknowledged write)."""
        from ledgermind.node.signing import event_envelope
        from ledgermind.statements.dsse import Envelope

        if kind == "read":
            path, params = self.rng.choice(self.reads)
            if path == "/v1/log/entries" and self.rng.random() < 0.5:
                size = self.session.get("/v1/log").json()["size"]
                path, params = f"/v1/log/entries/{self.rng.randrange(size)}", {}
            r = self.session.get(path, **params)
            return r.status_code == 200, None if r.status_code == 200 else f"GET {path}: {r.status_code} {r.text[:200]}", None
        if kind == "write":
            env = event_envelope(self.account, "load", "tick", {"n": self.rng.randrange(10**9)})
            r = self.session.post("/v1/statements", {"envelope": env})
            if r.status_code != 200:
                return False, f"POST /v1/statements: {r.status_code} {r.text[:200]}", None
            return True, None, ("statement", r.json()["logIndex"], Envelope.from_json(env).to_bytes())
        if kind == "healthz":
            r = self.session.get("/healthz")
            return r.status_code == 200, None if r.status_code == 200 else f"healthz {r.status_code}", None
        result = self.infer.infer(self.node.model, self.rng.choice(self.inputs))
        return True, None, ("receipt", result.log_index, Envelope.from_json(result.envelope).to_bytes())


def load(clients: list[Client], seconds: float, mix: dict[str, float]) -> dict[str, Any]:
    """Every client sends requests back to back for ``seconds``, each of a kind drawn from ``mix``. Returns
    counts, rates, latency percentiles per kind, errors, and the acknowledged writes and receipts."""
    kinds, weights = list(mix), list(mix.values())
    lat: dict[str, list[float]] = {k: [] for k in kinds}
    errors: list[str] = []
    acked: list[tuple[str, int, bytes]] = []
    lock = threading.Lock()
    begin = threading.Barrier(len(clients) + 1)
    deadline = [0.0]

    def run(c: Client) -> None:
        mine: list[tuple[str, float]] = []
        my_acks, my_errors = [], []
        begin.wait()
        while time.monotonic() < deadline[0]:
            kind = c.rng.choices(kinds, weights)[0]
            t0 = time.perf_counter()
            try:
                ok, error, ack = c.one(kind)
            except Exception as e:  # noqa: BLE001 - every failure counts, whatever its kind
                ok, error, ack = False, f"{kind}: {type(e).__name__}: {str(e)[:200]}", None
            mine.append((kind, time.perf_counter() - t0))
            if ack:
                my_acks.append(ack)
            if not ok:
                my_errors.append(error or kind)
        with lock:
            for kind, t in mine:
                lat[kind].append(t)
            acked.extend(my_acks)
            errors.extend(my_errors)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + seconds
    t0 = time.perf_counter()
    begin.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    per_kind = {k: {"requests": len(v), "rps": len(v) / wall,
                    "p50_ms": 1e3 * statistics.median(v) if v else None,
                    "p99_ms": 1e3 * sorted(v)[int(0.99 * (len(v) - 1))] if v else None} for k, v in lat.items()}
    total = sum(len(v) for v in lat.values())
    return {"clients": len(clients), "seconds": wall, "requests": total, "rps": total / wall, "kinds": per_kind,
            "errors": len(errors), "error_samples": sorted(set(errors))[:10], "acked": acked}


def check_log(home: Path, acked: list[tuple[str, int, bytes]]) -> dict[str, Any]:
    """After the node stopped: is every acknowledged write and receipt at its index, byte for byte?"""
    from ledgermind import Client as LM
    from ledgermind.log.fsck import fsck

    with LM(home) as lm:
        store = lm.ledger.store
        missing = [(what, i) for what, i, entry in acked if i >= store.size() or store.entry(i) != entry]
        report = fsck(store)
        return {"acknowledged": len(acked), "lost": len(missing), "lost_samples": missing[:10],
                "log_size": store.size(), "fsck_ok": report.ok}


def prepare(node: Node, n: int) -> list[Client]:
    """``n`` clients, each with a payment channel to the provider opened on chain."""
    import httpx
    from sklearn.datasets import load_breast_cancer

    from ledgermind.chain.connection import Chain
    from ledgermind.chain.deployments import Deployments
    from ledgermind.inference.channels import PaymentChannels

    X, _ = load_breast_cancer(return_X_y=True)
    inputs = [[row.tolist()] for row in X]
    chain = Chain.connect(node.home / "chain")  # through the node: a development chain funds new accounts
    contract = PaymentChannels(chain, Deployments(node.home / "deployments").require(chain, "PaymentChannels").address)
    provider = httpx.get(f"{node.provider_url}/v1/models/{node.model}").json()["provider"]
    try:
        return [Client(node, contract, provider, inputs, seed) for seed in range(n)]
    finally:
        chain.close()


def run(clients: int, seconds: float, floor_seconds: float = 5.0) -> dict[str, Any]:
    """The whole benchmark; returns its result (also what the test version asserts on)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-node-load-"))
    node = start(tmp)
    try:
        pool = prepare(node, clients)
        floor = load(pool, floor_seconds, {"healthz": 1.0}) if floor_seconds else None
        main = load(pool, seconds, MIX)
        for c in pool:
            c.close()
    finally:
        codes = node.stop()
    acked = main.pop("acked")
    if floor:
        floor.pop("acked")
    checked = check_log(node.home, acked)
    shutil.rmtree(tmp, ignore_errors=True)
    return {"node": main, "floor_healthz": floor, "exit_codes": codes, "log": checked}


def _table(r: dict[str, Any]) -> None:
    n = r["node"]
    print(f"\n{n['clients']} clients, {n['seconds']:.1f} s: {n['requests']} requests ({n['rps']:.0f}/s), "
          f"errors {n['errors']}")
    print(f"{'kind':<8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for kind, k in n["kinds"].items():
        print(f"{kind:<8} {k['requests']:>9} {k['rps']:>8.1f} {k['p50_ms'] or 0:>8.1f} {k['p99_ms'] or 0:>8.1f}")
    if r["floor_healthz"]:
        f = r["floor_healthz"]
        print(f"{'healthz':<8} {f['requests']:>9} {f['rps']:>8.1f} {f['kinds']['healthz']['p50_ms']:>8.1f} "
              f"{f['kinds']['healthz']['p99_ms']:>8.1f}   (floor: same clients, GET /healthz only)")
    lg = r["log"]
    print(f"acknowledged writes + receipts {lg['acknowledged']}, lost {lg['lost']}, fsck "
          f"{'ok' if lg['fsck_ok'] else 'FAILED'}, exit codes {r['exit_codes']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--floor-seconds", type=float, default=5.0)
    args = parser.parse_args()
    load_before = os.getloadavg()
    result = run(args.clients, args.seconds, args.floor_seconds)
    ok = result["node"]["errors"] == 0 and result["log"]["lost"] == 0 and result["log"]["fsck_ok"]
    import fastapi
    import uvicorn

    out = {"benchmark": "node_load", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pass": ok,
           "criteria": "no errors; every acknowledged write and receipt in the log after SIGTERM; fsck ok",
           "mix": MIX, "price_wei_per_row": PRICE, "parameters": vars(args), "loadavg_before": load_before,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "fastapi": fastapi.__version__,
                       "uvicorn": uvicorn.__version__}, **result}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    _table(result)
    print(f"{'PASS' if ok else 'FAIL'}; results in {RESULTS.relative_to(ROOT)}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()

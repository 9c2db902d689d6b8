"""``ledgermind demo``: the provenance story in one narrated run on the local ledger.

A hospital registers a patient dataset, trains a small model on it (plain Python logistic regression,
so the demo needs nothing beyond the core install), registers the model with its lineage, mints both
as tokens and anchors the log on the (embedded) chain, verifies the model, shows that a tampered copy
fails, and verifies an exported bundle offline.
"""

from __future__ import annotations

import csv
import json
import math
import random
import shutil
import time
from pathlib import Path

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ledgermind.cli.output import lineage_tree, out, print_report
from ledgermind.client import Client


def _step(n: int, text: str) -> None:
    out.print(f"\n[bold cyan]{n}.[/] [bold]{text}[/]")


def make_dataset(path: Path, rows: int = 600, seed: int = 7) -> None:
    """Synthetic patient records: age, blood pressure, cholesterol, glucose -> heart-disease label."""
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["age", "systolic_bp", "cholesterol", "glucose", "label"])
        for _ in range(rows):
            age = rng.randint(25, 85)
            bp = rng.gauss(120 + 0.4 * (age - 50), 12)
            chol = rng.gauss(200 + 0.8 * (age - 50), 25)
            glu = rng.gauss(100, 18)
            risk = 0.06 * (age - 55) + 0.04 * (bp - 125) + 0.02 * (chol - 210) + 0.03 * (glu - 100)
            label = int(rng.random() < 1 / (1 + math.exp(-risk)))
            w.writerow([age, round(bp, 1), round(chol, 1), round(glu, 1), label])


def train_model(data: Path, folder: Path, epochs: int = 60) -> dict[str, float]:
    """Fit a standardized logistic regression by gradient descent; write weights and config; return metrics."""
    with data.open() as f:
        rows = [[float(v) for v in r] for r in list(csv.reader(f))[1:]]
    xs, ys = [r[:-1] for r in rows], [r[-1] for r in rows]
    n_features = len(xs[0])
    mean = [sum(x[j] for x in xs) / len(xs) for j in range(n_features)]
    std = [math.sqrt(sum((x[j] - mean[j]) ** 2 for x in xs) / len(xs)) or 1.0 for j in range(n_features)]
    zs = [[(x[j] - mean[j]) / std[j] for j in range(n_features)] for x in xs]
    split = int(0.8 * len(zs))
    w, b, lr = [0.0] * n_features, 0.0, 0.5
    for _ in range(epochs):
        gw, gb = [0.0] * n_features, 0.0
        for z, y in zip(zs[:split], ys[:split]):
            p = 1 / (1 + math.exp(-(sum(wi * zi for wi, zi in zip(w, z)) + b)))
            for j in range(n_features):
                gw[j] += (p - y) * z[j]
            gb += p - y
        w = [wi - lr * g / split for wi, g in zip(w, gw)]
        b -= lr * gb / split
    correct = sum(
        int((sum(wi * zi for wi, zi in zip(w, z)) + b > 0) == bool(y)) for z, y in zip(zs[split:], ys[split:])
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.json").write_text(json.dumps({"w": w, "b": b, "mean": mean, "std": std}))
    (folder / "config.json").write_text(json.dumps({"type": "logistic-regression", "features": n_features, "epochs": epochs}))
    return {"accuracy": round(correct / (len(zs) - split), 4)}


def run_demo(client: Client, workdir: Path | None = None) -> bool:
    """Run the narrated demo; return True if every expected outcome happened."""
    started = time.perf_counter()
    work = (workdir or client.settings.home / "demo").expanduser()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    out.print(Panel.fit(
        f"ledgermind demo: provenance of a model back to its data\nledger home: {escape(str(client.settings.home))}",
        border_style="cyan",
    ))

    _step(1, "A hospital prepares a patient dataset")
    data = work / "patients.csv"
    make_dataset(data)
    out.print(f"wrote {escape(str(data))} (600 synthetic records)")

    _step(2, "It registers the dataset: fingerprint, signed statement, appended to the log")
    ds = client.register_dataset(
        data, name="patients-2026", licence="CC-BY-4.0", source="St. Example Hospital", consent=True, contains_pii=False
    )
    out.print(f"dataset id [cyan]{ds.digest}[/] at log index {ds.log_index}, signed by {ds.signer}")

    _step(3, "A model is trained on it and registered with its lineage and metrics")
    model_dir = work / "heart-risk-model"
    metrics = train_model(data, model_dir)
    model = client.register_model(
        model_dir, trained_on=[ds.digest], name="heart-risk", framework="python", format="json",
        hyperparameters={"epochs": 60, "learning_rate": 0.5}, metrics=metrics, code_rev="demo",
    )
    out.print(f"model id [cyan]{model.digest}[/] at log index {model.log_index}, accuracy {metrics['accuracy']}")
    out.print(lineage_tree(client.lineage(model.digest)))

    _step(4, "Both are minted as ERC-721 tokens with their lineage, and the log is anchored on chain")
    chain = client.chain()
    client.deploy()  # idempotent; the embedded chain is ours to deploy on
    owned = {t["id"] for t in client.owned()}
    for asset in (ds, model):  # a second demo run finds them minted already
        if asset.digest not in owned:
            client.mint(asset.digest)
    anchored = client.anchor()["anchored"]
    out.print(f"tokens owned by {model.signer}: {len(client.owned())} on chain {chain.chain_id} ({chain.describe})")
    out.print(f"tree size {anchored['treeSize']} anchored in {anchored['contract']} (tx {anchored['txHash']})")

    _step(5, "Anyone verifies the model against the log and the chain")
    good = client.verify(model_dir)
    print_report(good.to_json())

    _step(6, "A tampered copy (one byte of the weights changed) fails verification")
    copy = work / "tampered-model"
    shutil.copytree(model_dir, copy)
    weights = (copy / "weights.json").read_bytes()
    (copy / "weights.json").write_bytes(weights[:-2] + (b"0" if weights[-2:-1] != b"0" else b"1") + weights[-1:])
    bad = client.verify(copy, expect=model.digest)
    print_report(bad.to_json())

    _step(7, "The model is exported as a bundle and verified offline, with no access to the log or chain")
    bundle = client.export_bundle(model.digest, work / "heart-risk.bundle.json")
    log_key = client.log_info()["publicKey"]  # a verifier pins the log's key it trusts
    out.print(f"bundle {escape(str(bundle))}; pinned log key {escape(log_key)}")
    offline = Client.verify_bundle(bundle, model_dir, log_key=log_key)
    print_report(offline.to_json())
    offline_bad = Client.verify_bundle(bundle, copy, log_key=log_key)
    out.print(f"offline check of the tampered copy: [bold red]{'FAILED' if not offline_bad.ok else 'passed?!'}[/]")

    fsck = client.fsck()
    table = Table(title="summary", box=None)
    table.add_column("step")
    table.add_column("result")
    table.add_row("dataset registered", f"log #{ds.log_index}")
    table.add_row("model registered with lineage", f"log #{model.log_index}")
    table.add_row("minted and anchored", f"tree size {anchored['treeSize']} on chain {chain.chain_id}")
    table.add_row("verify original", "PASS" if good.ok else "FAIL")
    table.add_row("verify tampered copy", "FAIL (as expected)" if not bad.ok else "PASS (unexpected)")
    table.add_row("offline bundle verify", "PASS" if offline.ok else "FAIL")
    table.add_row("log fsck", f"ok, {fsck.size} entries" if fsck.ok else "FAIL")
    table.add_row("time", f"{time.perf_counter() - started:.1f} s")
    out.print()
    out.print(table)
    return good.ok and not bad.ok and offline.ok and not offline_bad.ok and fsck.ok

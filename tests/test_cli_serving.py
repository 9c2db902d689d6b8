"""Serving from the command line, as users run it: ``ledgermind serve`` in its own process (real HTTP on
loopback, the embedded chain served by it), buyers in other processes paying through payment channels, holders
downloading private datasets, and receipts checked offline. Bad input: one line, exit 1, no money moves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from ledgermind.statements import ACCESS

from .conftest import InProcessCLI as CLI
from .test_cli import one_line_error

pytestmark = pytest.mark.chain

X, Y = load_breast_cancer(return_X_y=True)
GWEI = 10**9


class Served:
    def __init__(self, cli: CLI, proc: subprocess.Popen[str], info: dict) -> None:
        self.cli, self.proc, self.info = cli, proc, info
        self.url = info["url"]

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        _, stderr = self.proc.communicate(timeout=60)
        return stderr


def start_serving(cli: CLI, *args: str) -> Served:
    env = {**os.environ, "LEDGERMIND_HOME": str(cli.home), "LEDGERMIND_AUTO_ANCHOR": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "ledgermind.cli.app", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()  # the JSON line comes once the port listens
    if not line:
        raise AssertionError(f"serve did not start: {proc.communicate(timeout=30)[1]}")
    return Served(cli, proc, json.loads(line))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    joblib.dump(LogisticRegression(max_iter=5000).fit(X, Y), root / "model.joblib")
    (root / "records.csv").write_text("age,bp,label\n51,130.5,1\n38,118.0,0\n64,142.2,1\n")
    (root / "row.json").write_text(json.dumps([X[0].tolist()]))
    cli = CLI(root / "home")
    data = cli.json("register", "dataset", str(root / "records.csv"), "--private", "--mint")
    model = cli.json("register", "model", str(root / "model.joblib"), "--trained-on", data["id"], "--mint")
    buyer = cli("account", "new").stdout.strip()
    served = start_serving(cli, model["id"], "--path", str(root / "model.joblib"), "--price", "1gwei", "--announce")
    yield {"root": root, "cli": cli, "served": served, "model": model["id"], "data": data["id"], "buyer": buyer}
    if served.proc.poll() is None:
        served.stop()


def test_paid_inference_with_discovery_receipts_and_settlement(world):
    cli, root, model = world["cli"], world["root"], world["model"]
    buyer = ["--account", cli("account", "new").stdout.strip()]  # its own: the other tests use world["buyer"]
    assert world["served"].info["models"][0]["id"] == model
    assert cli.json("providers", model) == [{"provider": world["served"].info["provider"],
                                             "endpoint": world["served"].url, "price": str(GWEI),
                                             "token": "0x" + "00" * 20}]
    first = cli.json(*buyer, "infer", model, "-i", f"@{root / 'row.json'}", "--deposit", "0.001ether",
                     "--receipt", str(root / "receipt.json"))
    assert first["outputs"] == [int(Y[0])] and first["price"] == str(GWEI)
    # the second call reuses the channel: the client remembered what it promised on it
    second = cli.json(*buyer, "infer", model, "-i", json.dumps(X[:3].tolist()))
    assert second["price"] == str(3 * GWEI)
    (channel,) = cli.json(*buyer, "channel", "status")
    assert channel["issued"] == str(4 * GWEI) and channel["paid"] == "0"

    report = cli.json(*buyer, "receipt", "verify", str(root / "receipt.json"), "--model", model)
    assert report["ok"] and {c["check"] for c in report["checks"] if c["status"] == "PASS"} >= {
        "signature", "inclusion", "checkpoint", "model"}
    # a receipt naming another model, or a tampered one, fails
    wrong = cli(*buyer, "receipt", "verify", str(root / "receipt.json"), "--model", world["data"], "--json", ok=False)
    assert not json.loads(wrong.stdout)["ok"]
    bundle = json.loads((root / "receipt.json").read_text())
    bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0] = "AA" * 32
    (root / "tampered.json").write_text(json.dumps(bundle))
    assert cli(*buyer, "receipt", "verify", str(root / "tampered.json"), ok=False).returncode == 1

    # the provider redeems everything it served in one transaction, then pulls the money
    settled = cli.json("settle")  # other tests' channels too, if they ran first
    assert [s["amount"] for s in settled if s["channelId"] == channel["channelId"]] == [str(4 * GWEI)]
    assert cli.json("settle") == []
    paid = cli.json("market", "withdraw")
    assert str(sum(int(s["amount"]) for s in settled)) in [r["amount"] for r in paid]


def test_private_dataset_only_for_holders(world):
    cli, root, data = world["cli"], world["root"], world["data"]
    buyer = ["--account", world["buyer"]]
    url = world["served"].url
    target = root / "downloaded.csv"
    one_line_error(cli(*buyer, "download", data, "--from", url, "-o", str(target), ok=False), "403", "no licence")
    assert not target.exists()
    cli("market", "sell", data, "--price", "0.01ether")
    cli(*buyer, "market", "buy", data)
    assert cli.json(*buyer, "download", data, "--from", url, "-o", str(target))["path"] == str(target)
    assert target.read_bytes() == (root / "records.csv").read_bytes()
    # both decisions are statements in the provider's log, signed by the provider
    shown = cli.json("show", data)
    decisions = [cli.json("log", "entry", str(s["logIndex"]))["statement"]["predicate"]
                 for s in shown["statements"] if s["predicateType"] == ACCESS]
    assert [(d["holder"], d["granted"]) for d in decisions] == [(world["buyer"], False), (world["buyer"], True)]


def test_licence_holders_call_without_paying(world):
    cli, root, model = world["cli"], world["root"], world["model"]
    buyer = ["--account", world["buyer"]]
    one_line_error(cli(*buyer, "infer", model, "-i", f"@{root / 'row.json'}", "--access", ok=False), "403")
    cli("market", "sell", model, "--licence", "1d", "--price", "1gwei")
    cli(*buyer, "market", "buy", model, "--licence")
    answer = cli.json(*buyer, "infer", model, "-i", f"@{root / 'row.json'}", "--access")
    assert answer["price"] == "0" and answer["outputs"] == [int(Y[0])]


def test_bad_input(world, tmp_path):
    cli, root, model = world["cli"], world["root"], world["model"]
    buyer = ["--account", world["buyer"]]
    url = world["served"].url
    # a channel to the provider exists whatever ran before in this worker; a refused request leaves it as it was
    cli.json(*buyer, "infer", model, "-i", f"@{root / 'row.json'}", "--deposit", "0.001ether")
    channels_before = cli.json(*buyer, "channel", "status")
    cases = [
        ((*buyer, "infer", model, "-i", "[[1, 2"), "--input is not JSON"),
        ((*buyer, "infer", model, "-i", "@" + str(tmp_path / "none.json")), "no such input file"),
        ((*buyer, "infer", model, "-i", "[[1, 2]]", "--provider", url), "must have shape [rows, 30]"),
        ((*buyer, "infer", "f" * 64, "-i", "[[1]]"), "no provider announced"),
        ((*buyer, "infer", "nope", "-i", "[[1]]"), "no asset 'nope'"),
        ((*buyer, "infer", model, "-i", "[[1]]", "--provider", "http://127.0.0.1:9"), "every provider failed"),
        ((*buyer, "download", "ab" * 32, "--from", url), "404"),
        ((*buyer, "receipt", "verify", str(tmp_path / "none.json")), "no such receipt bundle"),
        (("serve", "nope"), "no registered asset matches"),
        (("serve", model, "--path", str(root / "records.csv")), "refusing to serve"),
        (("serve",  "--no-datasets"), "nothing to serve"),
        (("serve", model, "--path", str(root / "model.joblib"), "--port", str(int(url.rsplit(":", 1)[1]))),
         "cannot listen"),
    ]
    for args, words in cases:
        one_line_error(cli(*args, ok=False), words)
    assert cli.json(*buyer, "channel", "status") == channels_before


def test_stops_cleanly_on_sigterm(world, tmp_path):
    """A provider stops on SIGTERM, releasing the embedded chain, which then opens in-process again. Its own home
    and process: the module's provider keeps serving the other tests, whatever order they run in."""
    cli = CLI(tmp_path / "home")
    data = cli.json("register", "dataset", str(world["root"] / "records.csv"), "--mint")["id"]
    model = cli.json("register", "model", str(world["root"] / "model.joblib"), "--trained-on", data, "--mint")["id"]
    served = start_serving(cli, model, "--path", str(world["root"] / "model.joblib"), "--price", "1gwei", "--announce")
    stderr = served.stop()
    assert served.proc.returncode == 0 and "Traceback" not in stderr
    assert cli.json("providers", model)[0]["endpoint"] == served.url


def test_channel_open_status_close(world):
    """A client opens a channel to a provider itself and sees it; closing it before it expires reclaims nothing
    (the provider may still redeem what it served). Reclaiming after expiry (Payer.reclaim under it) is
    tested on the embedded chain with time travel in test_inference."""
    cli = world["cli"]
    payer = ["--account", cli("account", "new").stdout.strip()]
    provider = world["served"].info["provider"]
    opened = cli.json(*payer, "channel", "open", provider, "--deposit", "0.0001ether", "--duration", "1d")
    (row,) = cli.json(*payer, "channel", "status")
    assert (row["channelId"], row["recipient"].lower(), row["deposit"], row["closed"]) == (
        opened["channelId"], provider.lower(), str(10**14), False)
    assert cli.json(*payer, "channel", "close") == []
    assert cli.json(*payer, "channel", "status")[0]["closed"] is False
    one_line_error(cli(*payer, "channel", "open", provider, "--deposit", "lots", ok=False), "amount")
    one_line_error(cli(*payer, "channel", "open", provider, "--deposit", "1gwei", "--duration", "0", ok=False),
                   "duration")

"""The domain examples in ``examples/``, each run as users run it (``python examples/NAME.py --home DIR``, a real
subprocess on the embedded chain), then checked from the outside: its exit status, what it printed, and what it
left in the home's log and chain, read back through ``Client``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledgermind import Client
from ledgermind.statements import ACCESS, EVENT, GOVERNANCE

pytestmark = [pytest.mark.slow, pytest.mark.chain]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERMIND_") or k == "LEDGERMIND_SHARED_DATA"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--home", str(home), *args],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def statements(lm: Client) -> list[dict[str, Any]]:
    """Every statement in the home's log, re-verified on read, with its signer."""
    return [{**(e := lm.entry(i))["statement"], "signer": e["signer"]} for i in range(lm.log_info()["size"])]


def events(lm: Client, kind: str) -> list[dict[str, Any]]:
    return [s for s in statements(lm) if s["predicateType"] == EVENT and s["predicate"]["type"] == kind]


def only_model(lm: Client) -> str:
    (model,) = lm.assets("model")
    assert lm.verify(model["id"]).ok
    return model["id"]


def test_healthcare(tmp_path):
    out = run_example("healthcare", tmp_path / "home")
    assert "lab without a licence: refused (403)" in out and "copy verifies: True" in out
    assert "verify model: PASS" in out
    with Client(tmp_path / "home") as lm:
        (records,) = [a for a in lm.assets("dataset") if a["name"] == "hospital-1 patient records"]
        decisions = [s["predicate"]["granted"] for s in statements(lm) if s["predicateType"] == ACCESS]
        assert decisions == [False, True]  # refused without a licence, granted with one; both signed
        recorded = lm.entry(records["logIndex"])["statement"]["predicate"]
        assert recorded["consent"] is True and recorded["containsPii"] is False
        model = only_model(lm)
        assert records["id"] in {p["id"] for p in lm.lineage(model)["parents"]}
        assert len(lm.lineage(model)["parents"]) == 3


def test_finance(tmp_path):
    out = run_example("finance", tmp_path / "home")
    assert "listing before approval refused" in out and "lineage approved: True" in out
    with Client(tmp_path / "home") as lm:
        model = only_model(lm)
        acts = [s for s in statements(lm) if s["predicateType"] == GOVERNANCE]
        votes = {s["signer"] for s in acts if s["predicate"]["action"] == "vote"}
        assert len(votes) == 2 and [s["predicate"]["action"] for s in acts][-1] == "execute"
        (listing,) = [item for item in lm.listings() if item["id"] == model]
        assert listing["licence"]
        assert lm.gov_status(model)["lineageApproved"]


def test_finance_without_its_data_says_so_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "finance.py"), "--home", str(tmp_path / "home"),
                           "--data", str(tmp_path / "missing.csv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "pass --data PATH" in proc.stderr
    assert not (tmp_path / "home").exists()


def test_supply_chain(tmp_path):
    out = run_example("supply_chain", tmp_path / "home")
    assert "sales table rebuilt from the log: PASS" in out
    with Client(tmp_path / "home") as lm:
        sold = events(lm, "sold")
        assert len(sold) == 52 and len(events(lm, "shipped")) == 26 and len(events(lm, "received")) == 52
        assert len({s["signer"] for s in sold}) == 2  # each store signs its own sales
        (parent,) = lm.lineage(only_model(lm))["parents"]
        assert parent["name"] == "weekly-sales-from-events"
        rows = (tmp_path / "home" / "files" / "weekly-sales.csv").read_text().splitlines()[1:]
        assert sorted(int(r.split(",")[2]) for r in rows) == sorted(s["predicate"]["data"]["units"] for s in sold)


def test_energy(tmp_path):
    out = run_example("energy", tmp_path / "home")
    assert "verify demand model: PASS" in out
    with Client(tmp_path / "home") as lm:
        trades = events(lm, "trade")
        assert len(trades) == 24 and len({s["signer"] for s in trades}) == 2
        owed = sum(int(s["predicate"]["data"]["wh"]) * int(s["predicate"]["data"]["priceWeiPerWh"]) for s in trades)
        assert f"metered trades: {owed / 1e18:.6f}" in out and f"withdrew {owed / 1e18:.6f}" in out
        last = {s["signer"]: int(s["predicate"]["data"]["voucher"]["amount"]) for s in trades}  # cumulative
        assert sum(last.values()) == owed
        only_model(lm)


def test_real_estate(tmp_path):
    out = run_example("real_estate", tmp_path / "home")
    assert "verifies the bundle offline: PASS" in out and "one byte changed: FAIL" in out
    with Client(tmp_path / "home") as lm:
        assert len(events(lm, "transfer")) == 150
        model = only_model(lm)
        (valuation,) = events(lm, "valuation")
        assert valuation["subject"][0]["digest"]["sha256"] == model
        files = tmp_path / "home" / "files"
        key = lm.log_info()["publicKey"]
    report = Client.verify_bundle(files / "valuation-model.bundle.json", files / "valuation-model.joblib", log_key=key)
    assert report.ok


def test_intellectual_property(tmp_path):
    out = run_example("intellectual_property", tmp_path / "home")
    assert "customers paid 0.007 for 7 uses" in out
    assert "author A 0.0019, co-author 0.0006, author B 0.0005, studio 0.004" in out
    with Client(tmp_path / "home") as lm:
        model = only_model(lm)
        works = {p["id"] for p in lm.lineage(model)["parents"]}
        assert len(works) == 2 and {a["id"] for a in lm.assets("dataset")} == works
        listed = {item["id"] for item in lm.listings() if item["access"]}
        assert listed == works - {next(w for w in works if "city" in lm.show(w)["name"])} | {model}

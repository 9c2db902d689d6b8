"""The CLI as a user runs it: a real subprocess, a real home. Bad input gives one line, exit != 0,
no traceback, and leaves the log as it was."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading

import pytest

from ledgermind.log.tiles import decode_bundle, encode_bundle
from ledgermind.statements import EVENT, make_statement, sign_envelope, utc_now

from .conftest import CLI


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def log_size(cli) -> int:
    db = sqlite3.connect(cli.home / "log.sqlite")
    try:
        return db.execute("SELECT max(size) FROM checkpoints").fetchone()[0] or 0
    finally:
        db.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One home with a dataset and a model registered through the CLI, copied by each test."""
    root = tmp_path_factory.mktemp("template")
    files = {"data": root / "data.csv", "model": root / "model"}
    files["data"].write_text("age,bp,label\n51,130.5,1\n38,118.0,0\n64,142.2,1\n")
    files["model"].mkdir()
    (files["model"] / "weights.bin").write_bytes(bytes(range(256)) * 8)
    (files["model"] / "config.json").write_text('{"layers": 2}')
    cli = CLI(root / "home")
    data = cli.json("register", "dataset", str(files["data"]), "--licence", "CC0-1.0", "--consent", "--no-pii")
    model = cli.json("register", "model", str(files["model"]), "--trained-on", data["id"][:8], "--param", "epochs=3")
    return root, {"data": data, "model": model}


@pytest.fixture()
def populated(template, cli, files):
    """The template's home, copied into this test's home; ``files`` hold the same bytes."""
    root, ids = template
    shutil.copytree(root / "home", cli.home)
    shutil.copyfile(root / "data.csv", files["data"])
    return ids


def test_demo_is_the_main_command(cli, tmp_path):
    proc = cli("demo", "--workdir", str(tmp_path / "demo"))
    assert "verified" in proc.stdout and "FAIL (as expected)" in proc.stdout
    for row in ("5 of 5 executed", ": slashed", "5 contributors paid per sale", "10 requests, receipt verified",
                "paid, 40.000 LMPAY", "guard caught the wash trading", "offline bundle verify"):
        assert row in proc.stdout
    # the state it leaves is the story it told: every kind of statement is in the log, signed by its actor
    from ledgermind.client import Client
    from ledgermind.statements import ALERT, FEDERATION, GOVERNANCE, INFERENCE_RECEIPT, MARKET, ORACLE

    with Client(cli.home) as lm:
        entries = [lm.ledger.read(i) for i in range(lm.ledger.store.size())]
        assert lm.fsck().ok
    kinds = {e.statement.predicate_type for e in entries}
    assert {ALERT, FEDERATION, GOVERNANCE, INFERENCE_RECEIPT, MARKET, ORACLE} <= kinds
    assert len({e.signer for e in entries}) == 8  # coordinator, five hospitals, buyer, oracle node
    assert "created development account" in proc.stderr or "account" in proc.stderr or proc.stderr == ""


def test_register_verify_lineage_bundle_round_trip(cli, files, populated, tmp_path):
    assert populated["data"]["created"] and populated["model"]["logIndex"] == 1
    again = cli.json("register", "dataset", str(files["data"]))
    assert again["created"] is False and again["logIndex"] == 0
    tree = cli.json("lineage", "model")
    assert tree["parents"][0]["id"] == populated["data"]["id"] and tree["parents"][0]["relation"] == "trainedOn"
    text = cli("lineage", populated["model"]["id"]).stdout
    assert "trainedOn" in text and "data.csv" in text
    report = cli.json("verify", str(files["model"]))
    statuses = {c["check"]: c["status"] for c in report["checks"]}
    assert report["ok"] and statuses.pop("anchor") == "SKIP" and set(statuses.values()) == {"PASS"}
    assert len(statuses) == 6
    cli("bundle", "model", "-o", str(tmp_path / "m.bundle.json"))
    key = cli.json("log", "info")["publicKey"]
    offline = subprocess.run(
        [sys.executable, "-m", "ledgermind.cli.app", "--home", str(tmp_path / "empty-home"), "verify", "--bundle",
         str(tmp_path / "m.bundle.json"), str(files["model"]), "--log-key", key, "--json"],
        capture_output=True, text=True,
    )
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["ok"]
    assert not (tmp_path / "empty-home").exists()  # offline verification touches no ledger


def test_every_read_command_has_json(cli, populated):
    assert cli.json("list")[0]["kind"] == "dataset"
    assert cli.json("show", "data.csv")["statement"]["predicate"]["licence"] == "CC0-1.0"
    assert cli.json("log", "info")["size"] == 2
    assert cli.json("log", "checkpoint")["checkpoint"].splitlines()[1] == "2"
    assert cli.json("log", "entry", "1")["inclusionProof"]["treeSize"] == "2"
    assert cli.json("log", "fsck")["ok"]
    assert cli.json("account", "list")[0]["default"]
    assert cli("log", "checkpoint").stdout.startswith("ledgermind.local/")


def test_modified_file_fails_verify_with_both_digests(cli, files, populated):
    registered = cli.json("register", "dataset", str(files["other"]))
    files["other"].write_text("age,bp,label\n99,1,1\n")
    proc = cli("verify", str(files["other"]), ok=False)
    assert proc.returncode == 1
    assert "FAIL fingerprint" in proc.stdout
    assert registered["id"] in proc.stdout and "computed sha256:" in proc.stdout
    copy = files["model"].parent / "copy"
    copy.mkdir()
    (copy / "x").write_text("y")
    proc = cli("verify", str(copy), "--id", "model", ok=False)
    assert "added: x" in proc.stdout and "removed: weights.bin" in proc.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["register", "dataset", "/no/such/file.csv"], ["no such file"]),
        (["register", "model", "{model}", "--trained-on", "nosuch"], ["unknown dataset", "nosuch"]),
        (["register", "model", "{model}", "--trained-on", "data.csv", "--metrics", "/no/metrics.json"], ["metrics"]),
        (["register", "model", "{model}", "--trained-on", "data.csv", "--param", "novalue"], ["key=value"]),
        (["verify", "feedbeef"], ["no registered asset"]),
        (["verify", "/no/such/dir/"], ["no such file"]),
        (["lineage", "nosuch"], ["no registered asset"]),
        (["show", "0000000000"], ["no registered asset"]),
        (["bundle", "nosuch", "-o", "{tmp}/b.json"], ["no registered asset"]),
        (["log", "entry", "999"], ["no entry 999"]),
        (["event", "energy", "reading", "--data", "{{not json"], ["--data is not JSON"]),
        (["event", "energy", "reading", "--related", "nosuch"], ["no registered asset"]),
        (["submit", "/no/envelope.json"], ["no such file"]),
        (["submit", "{data}"], ["envelope is not JSON"]),
        (["verify", "--bundle", "{data}"], ["is not JSON"]),
        (["verify", "--bundle", "/no/bundle.json"], ["no such bundle"]),
        (["list", "--kind", "robot"], ["--kind"]),
        (["verify"], ["give a PATH or ID"]),
    ],
)
def test_bad_input_gives_one_line_and_appends_nothing(cli, files, populated, tmp_path, args, words):
    args = [a.format(model=files["model"], data=files["data"], tmp=tmp_path) for a in args]
    before = log_size(cli)
    one_line_error(cli(*args, ok=False), *words)
    assert log_size(cli) == before


def test_usage_errors_exit_2(cli):
    proc = cli("register", "dataset", ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert cli("no-such-command", ok=False).returncode == 2


def test_submit_checks_signature_and_statement(cli, populated, tmp_path, accounts):
    st = make_statement([("batch-9", populated["data"]["id"])], EVENT,
                        {"domain": "supply-chain", "type": "received", "time": utc_now(), "data": {"ok": True}})
    env = sign_envelope(st.to_bytes(), accounts[0])
    good = tmp_path / "good.json"
    good.write_bytes(env.to_bytes())
    forged = json.loads(env.to_bytes())
    forged["signatures"][0]["keyid"] = accounts[1].address
    bad_sig = tmp_path / "forged.json"
    bad_sig.write_text(json.dumps(forged))
    malformed = json.loads(env.to_bytes())
    malformed["payloadType"] = "text/plain"
    bad_type = tmp_path / "type.json"
    bad_type.write_text(json.dumps(malformed))
    unknown = make_statement([("x", "ab" * 32)], EVENT, {"domain": "d", "type": "t", "time": utc_now()}).to_json()
    unknown["predicateType"] = "https://example.com/whatever/v1"
    import rfc8785

    bad_stmt = tmp_path / "stmt.json"
    bad_stmt.write_bytes(sign_envelope(rfc8785.dumps(unknown), accounts[0]).to_bytes())

    before = log_size(cli)
    one_line_error(cli("submit", str(bad_sig), ok=False), "signature was made by")
    one_line_error(cli("submit", str(bad_type), ok=False), "payloadType")
    one_line_error(cli("submit", str(bad_stmt), ok=False), "unknown predicateType")
    assert log_size(cli) == before
    r = cli.json("submit", str(good))
    assert r["logIndex"] == before and r["signer"] == accounts[0].address
    assert [s["predicateType"].rsplit("/", 2)[-2] for s in cli.json("show", "data.csv")["statements"]] == ["dataset", "event"]


def test_locked_database_is_a_clear_error_and_nothing_is_appended(cli, files, populated, home):
    holder = sqlite3.connect(home / "log.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        import os

        env_backup = os.environ.get("LEDGERMIND_BUSY_TIMEOUT")
        os.environ["LEDGERMIND_BUSY_TIMEOUT"] = "0.3"
        try:
            proc = cli("register", "dataset", str(files["other"]), ok=False)
        finally:
            if env_backup is None:
                del os.environ["LEDGERMIND_BUSY_TIMEOUT"]
            else:
                os.environ["LEDGERMIND_BUSY_TIMEOUT"] = env_backup
        one_line_error(proc, "locked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert log_size(cli) == 2
    assert cli.json("register", "dataset", str(files["other"]))["logIndex"] == 2


def test_fsck_reports_a_tampered_row_by_index(cli, populated, home):
    db = sqlite3.connect(home / "log.sqlite")
    entries = decode_bundle(db.execute("SELECT data FROM bundles WHERE id = 0").fetchone()[0])
    tampered = entries[1].replace(b'"payload":"ey', b'"payload":"eY')
    assert tampered != entries[1]
    entries[1] = tampered
    db.execute("UPDATE bundles SET data = ? WHERE id = 0", (encode_bundle(entries),))
    db.commit()
    db.close()
    proc = cli("log", "fsck", ok=False)
    assert "entry 1 does not match its stored leaf hash" in proc.stdout
    report = json.loads(cli("log", "fsck", "--json", ok=False).stdout)
    assert report["tamperedIndices"] == [1] and not report["ok"]
    # verify of the model now fails on its signature or inclusion proof, never passes
    proc = cli("verify", "model", ok=False)
    assert "FAIL" in proc.stdout or "error:" in proc.stderr


def test_concurrent_cli_registrations_all_land(cli, tmp_path):
    paths = []
    for i in range(4):
        p = tmp_path / f"d{i}.csv"
        p.write_text(f"x\n{i}\n")
        paths.append(p)
    cli.json("account", "new", "--default")  # create the account before the race
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda p=p: results.append(cli("register", "dataset", str(p), ok=None))) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert sorted(a["logIndex"] for a in cli.json("list")) == [0, 1, 2, 3]
    assert cli.json("log", "fsck")["ok"]


def test_private_keys_never_appear_in_output_or_the_log(cli, files, home):
    from eth_account import Account

    outputs = [cli("account", "new", "--default"), cli("account", "list"), cli("register", "dataset", str(files["data"]))]
    outputs.append(cli("log", "entry", "0", "--json"))
    keyfile = next((home / "keystore").glob("UTC--*"))
    assert oct(keyfile.stat().st_mode & 0o777) == "0o600"
    key = Account.decrypt(json.loads(keyfile.read_text()), "").hex()
    db = sqlite3.connect(home / "log.sqlite")
    stored = b"".join(bytes(b) for (b,) in db.execute("SELECT data FROM bundles"))
    db.close()
    for text in [o.stdout + o.stderr for o in outputs] + [stored.decode(errors="replace")]:
        assert key.removeprefix("0x") not in text.lower()

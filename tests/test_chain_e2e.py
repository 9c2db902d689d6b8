"""End to end on a chain: the embedded one (in-process) and a real anvil from npm, same scenario.

Register a dataset and a model, mint both, anchor, verify (the anchor checked on chain), export a
bundle and verify it offline and against the chain; then the failure modes: wrong chain id,
unreachable RPC, missing deployment, reverts, unminted parents.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledgermind import Client
from ledgermind.chain.connection import ChainError
from ledgermind.errors import InvalidInputError, NotFoundError

from .anvil import free_port, running_anvil

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def anvil_url():
    with running_anvil() as url:
        yield url


@pytest.fixture(params=["embedded", "anvil"])
def chain_home(request, tmp_path, monkeypatch):
    """A home whose chain is the embedded one, or anvil through --rpc-url; deployed on anvil explicitly."""
    home = tmp_path / "home"
    if request.param == "anvil":
        url = request.getfixturevalue("anvil_url")
        monkeypatch.setenv("LEDGERMIND_RPC_URL", url)
        with Client(home) as lm:
            lm.deploy()
    return request.param, home


def statuses(report):
    return {c.name: c.status for c in report.checks}


def test_register_mint_anchor_verify_bundle(chain_home, files, tmp_path):
    kind, home = chain_home
    with Client(home) as lm:
        data = lm.register_dataset(files["data"], licence="CC0-1.0")
        assert lm.last_anchor and "anchored" in lm.last_anchor  # the first write anchors (zero setup)
        token = lm.mint(data.digest)
        model = lm.register_model(files["model"], trained_on=[data.digest], metrics={"accuracy": 0.9})
        model_token = lm.mint(model.digest)
        assert model_token["parents"] == [token["tokenId"]]
        assert model_token["chainId"] == (1337 if kind == "embedded" else 31337)
        owned = {a["name"] for a in lm.owned()}
        assert owned == {"data.csv", "model"}
        info = lm.anchor()
        assert info["anchored"]["treeSize"] == 2 and info["anchored"]["status"] == "anchored"

        report = lm.verify(files["model"])
        assert report.ok, report.to_json()
        s = statuses(report)
        assert s["anchor"] == "PASS" and s["consistency"] == "PASS" and s["inclusion"] == "PASS"

        bundle_path = lm.export_bundle(model.digest, tmp_path / "model.bundle.json")
        vkey = lm.log_info()["publicKey"]
    bundle = json.loads(bundle_path.read_text())
    assert bundle["anchor"]["treeSize"] == "2" and bundle["anchor"]["chainId"] == model_token["chainId"]
    assert "anchorConsistency" in bundle["verificationMaterial"]["tlogEntries"][0]

    offline = Client.verify_bundle(bundle_path, files["model"], log_key=vkey)
    assert offline.ok
    anchor_check = next(c for c in offline.checks if c.name == "anchor")
    assert anchor_check.status == "SKIP" and "offline" in anchor_check.detail

    if kind == "anvil":
        online = Client.verify_bundle(bundle_path, files["model"], log_key=vkey, rpc_url=bundle_url(home))
        assert statuses(online)["anchor"] == "PASS", online.to_json()
        # a root the chain never saw: the anchor check fails on chain
        forged = dict(bundle)
        forged["anchor"] = {**bundle["anchor"], "treeSize": "1"}
        p = tmp_path / "forged.json"
        p.write_text(json.dumps(forged))
        assert not Client.verify_bundle(p, files["model"], log_key=vkey, rpc_url=bundle_url(home)).ok


def bundle_url(home: Path) -> str:
    import os

    return os.environ["LEDGERMIND_RPC_URL"]


def test_minting_a_model_needs_minted_parents(chain_home, files):
    _, home = chain_home
    with Client(home) as lm:
        data = lm.register_dataset(files["data"])
        model = lm.register_model(files["model"], trained_on=[data.digest])
        with pytest.raises(ChainError, match="parent dataset 'data.csv' .* is not minted"):
            lm.mint(model.digest)
        lm.mint(data.digest)
        with pytest.raises(InvalidInputError, match="already minted"):
            lm.mint(data.digest)
        with pytest.raises(NotFoundError):
            lm.mint("f" * 64)
        assert lm.mint(model.digest)["parents"]


def test_an_account_without_the_operator_role_gets_the_revert_reason(chain_home, files):
    kind, home = chain_home
    with Client(home) as lm:
        lm.register_dataset(files["data"])
        lm.deploy()
        outsider = lm.new_account(password="")
    with Client(home, account=outsider) as lm:
        lm.register_dataset(files["other"])
        with pytest.raises(ChainError, match="access_control: account is missing role"):
            lm.anchor()
        assert lm.log_info()["size"] == 2  # the log is not affected


def test_wrong_chain_id_unreachable_rpc_and_missing_deployment(anvil_url, files, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LEDGERMIND_CHAIN_ID", "1")
    with Client(home) as lm, pytest.raises(ChainError, match="wrong chain: expected chain id 1, .* reports 1337"):
        lm.chain()  # the embedded chain
    monkeypatch.setenv("LEDGERMIND_RPC_URL", anvil_url)
    monkeypatch.setenv("LEDGERMIND_CHAIN_ID", "1")
    with Client(home) as lm, pytest.raises(ChainError, match="wrong chain: expected chain id 1"):
        lm.chain()
    monkeypatch.delenv("LEDGERMIND_CHAIN_ID")
    with Client(home) as lm:
        # registering works without a deployment; the anchor waits and says why
        r = lm.register_dataset(files["data"])
        assert r.log_index == 0
        assert lm.last_anchor["queued"] and "run 'ledgermind deploy'" in lm.last_anchor["reason"]
        with pytest.raises(ChainError, match="no AssetRegistry deployment"):
            lm.owned()
    monkeypatch.setenv("LEDGERMIND_RPC_URL", f"http://127.0.0.1:{free_port()}")
    with Client(home) as lm:
        r = lm.register_dataset(files["other"])  # still works: the log does not need the chain
        assert r.log_index == 1
        assert lm.last_anchor["queued"] and "cannot reach the RPC" in lm.last_anchor["reason"]
        with pytest.raises(ChainError, match="cannot reach the RPC at .*: connection refused"):
            lm.anchor()


def test_cli_chain_errors_are_one_line(tmp_path, files):
    port = free_port()
    env_home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "ledgermind.cli.app", "--home", str(env_home), "--rpc-url", f"http://127.0.0.1:{port}",
         "deploy"], capture_output=True, text=True,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "development account" not in line]
    assert len(lines) == 1 and "cannot reach the RPC" in lines[0] and "connection refused" in lines[0]
    proc = subprocess.run(
        [sys.executable, "-m", "ledgermind.cli.app", "--home", str(env_home), "--rpc-url", "ftp://nowhere", "deploy"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1 and "must start with http://" in proc.stderr


def test_anchor_policy_every_n_entries_and_recovery_after_an_outage(tmp_path, anvil_url, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LEDGERMIND_RPC_URL", anvil_url)
    monkeypatch.setenv("LEDGERMIND_ANCHOR_EVERY", "3")
    monkeypatch.setenv("LEDGERMIND_ANCHOR_INTERVAL", "1e9")
    paths = []
    for i in range(7):
        p = tmp_path / f"d{i}.csv"
        p.write_text(f"x\n{i}\n")
        paths.append(p)
    with Client(home) as lm:
        first = lm.deploy()
        assert lm.deploy() == first  # idempotent: same addresses, nothing redeployed
        for p in paths[:4]:
            lm.register_dataset(p)
        assert [a["treeSize"] for a in lm.anchors() if a["status"] == "anchored"] == [1, 4]
    # the chain goes away: registering keeps working, the entries wait in the log
    monkeypatch.setenv("LEDGERMIND_RPC_URL", f"http://127.0.0.1:{free_port()}")
    with Client(home) as lm:
        for p in paths[4:]:
            lm.register_dataset(p)
        assert lm.last_anchor["queued"]
        assert lm.log_info()["size"] == 7
    # it comes back: the next anchor covers everything that waited
    monkeypatch.setenv("LEDGERMIND_RPC_URL", anvil_url)
    with Client(home) as lm:
        assert lm.anchor()["anchored"]["treeSize"] == 7
        assert lm.verify(str(paths[5])).ok

"""``ledgermind up`` as a user runs it: a subprocess that prints its URLs, serves the chain's JSON-RPC and the API,
and on SIGTERM, with signed writes still arriving, stops cleanly: exit 0, the chain released, the log consistent,
and every write it acknowledged in the log."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import httpx
import pytest
from eth_account import Account

from ledgermind.node.signing import NodeSession, event_envelope

from .conftest import InProcessCLI

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def _start(home) -> tuple[subprocess.Popen[str], str, str]:
    env = {**os.environ, "LEDGERMIND_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "ledgermind.cli.app", "up", "--api-port", "0", "--rpc-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = [proc.stdout.readline() for _ in range(3)]
    urls = [re.search(r"http://[0-9.:]+", line) for line in lines]
    assert all(urls), "".join(lines) + proc.stderr.read() if proc.poll() is not None else lines
    return proc, urls[0].group(0), urls[1].group(0)


def test_up_serves_and_stops_on_sigterm_leaving_the_home_consistent(tmp_path):
    home = tmp_path / "home"
    proc, rpc_url, api_url = _start(home)
    try:
        chain_id = httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).json()["result"]
        assert int(chain_id, 16) == 1337
        acked: list[tuple[int, str]] = []
        stop = threading.Event()

        def writer() -> None:
            actor = Account.create()
            with NodeSession(api_url, actor) as s:
                while not stop.is_set():
                    try:
                        r = s.post("/v1/statements", {"envelope": event_envelope(actor, "test", "tick")})
                    except httpx.TransportError:
                        return  # the node went away mid-request: not acknowledged
                    if r.status_code != 200:
                        return
                    acked.append((r.json()["logIndex"], actor.address))

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for t in threads:
            t.start()
        while len(acked) < 20:
            assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, proc.stderr.read()
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "ledgermind up: stopped" in proc.stderr.read()
    assert not (home / "chain" / "node.json").exists()
    cli = InProcessCLI(home)
    assert cli.json("log", "fsck")["ok"] is True
    size = cli.json("log", "info")["size"]
    assert len(acked) >= 20 and max(i for i, _ in acked) < size
    for index, signer in acked[:: max(1, len(acked) // 10)]:
        assert cli.json("log", "entry", str(index))["signer"] == signer
    # the chain was released: the next command opens it in-process
    assert cli.json("anchor")["chainId"] == 1337


def test_up_attaches_to_an_external_chain(tmp_path):
    """With --rpc-url, no chain is served: the API reports the external chain, and anchors land on it."""
    from ledgermind.accounts import DEV_PASSWORD, Keystore
    from ledgermind.cli.up import start_up
    from ledgermind.config import load_settings

    from .anvil import running_anvil

    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    with running_anvil() as url:
        cli = InProcessCLI(tmp_path / "home")
        operator = cli("account", "new", "--default").stdout.strip()
        cli("--rpc-url", url, "deploy")
        data = cli.json("--rpc-url", url, "register", "dataset", str(tmp_path / "data.csv"))
        settings = load_settings(tmp_path / "home", rpc_url=url, auto_anchor=False)
        up = start_up(settings, api_port=0)
        try:
            assert up.rpc_url is None and not (tmp_path / "home" / "chain" / "node.json").exists()
            account = Keystore(settings.keystore_dir).unlock(operator, DEV_PASSWORD)
            with NodeSession(up.api_url, account) as s:
                assert s.info["chainId"] == 31337 and s.info["rpcUrl"] == url
                assert [a["id"] for a in s.get("/v1/assets").json()["items"]] == [data["id"]]
                anchored = s.post("/v1/anchors", {}).json()["anchored"]
                assert anchored["chainId"] == 31337 and anchored["status"] == "anchored"
        finally:
            up.stop()
        assert cli.json("--rpc-url", url, "verify", data["id"])["ok"] is True

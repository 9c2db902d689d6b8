"""``ledgermind guard`` and ``ledgermind alerts`` from the command line: ``guard watch`` as a real process that
scans on an interval, picks up new blocks, and stops cleanly on SIGTERM; bad input gives one line and exit 1 with
nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from .conftest import InProcessCLI
from .test_cli import log_size, one_line_error


def test_watch_scans_until_sigterm(home):
    cli = InProcessCLI(home)
    cli("guard", "scan")  # a first scan: the embedded chain exists, the index has its genesis block
    env = {**os.environ, "LEDGERMIND_HOME": str(home), "LEDGERMIND_AUTO_ANCHOR": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "ledgermind.cli.app", "guard", "watch", "--interval", "0.2", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = json.loads(proc.stdout.readline())  # the first scan is done
        assert first["head"] == 0 and first["alerts"] == []
        second = json.loads(proc.stdout.readline())  # and it keeps scanning
        assert second["sync"]["blocks"] == 0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped after" in err and "Traceback" not in err
    for line in out.splitlines():
        assert "alerts" in json.loads(line)


def test_bad_input_is_one_line(home, files):
    cli = InProcessCLI(home)
    assert cli.json("alerts") == []
    assert cli("alerts").stdout.strip() == "no alerts"
    one_line_error(cli("alerts", "show", "abcdef0123", ok=False), "no alert")
    cli("register", "dataset", str(files["data"]))
    cli("guard", "scan")
    size = log_size(cli)
    one_line_error(cli("alerts", "show", "abcdef0123", ok=False), "no alert 'abcdef0123'")
    one_line_error(cli("alerts", "show", "xyz", ok=False), "alert id must be 6 to 64 hex characters")
    one_line_error(cli("guard", "scan", "--rpc-url", "http://127.0.0.1:9", ok=False), "cannot reach the RPC")
    one_line_error(cli("--rpc-url", "ftp://x", "guard", "health", ok=False), "must start with http")
    one_line_error(cli("guard", "watch", "--interval", "0", ok=False), "interval must be positive")
    assert "expected one of wash-trading" in cli("alerts", "--kind", "phishing", ok=False).stderr
    assert log_size(cli) == size


@pytest.mark.parametrize("args", [("guard", "scan"), ("guard", "health")])
def test_text_output(home, args):
    proc = InProcessCLI(home)(*args)
    assert proc.stdout.startswith("chain 1337 ") and proc.stderr == ""


@pytest.mark.chain
def test_scan_and_health_on_anvil(home):
    """On an external chain with nothing of ours deployed: only health, and the backlog from ``txpool_status``."""
    from .anvil import running_anvil

    cli = InProcessCLI(home)
    with running_anvil() as url:
        scanned = cli.json("guard", "scan", "--rpc-url", url)
        assert (scanned["chainId"], scanned["watched"], scanned["alerts"]) == (31337, {}, [])
        health = cli.json("--rpc-url", url, "guard", "health")
        assert health["profile"]["pending"] == {"current": 0, "median": 0, "samples": 2}

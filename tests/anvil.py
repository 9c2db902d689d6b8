"""A real anvil node (npm package @foundry-rs/anvil; its binary ships inside the package) for tests.

The repository's package.json pins it; ``anvil_binary`` runs ``npm install`` once if it is missing, so the
README's test command works on a fresh machine that has Node and npm.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent


def anvil_binary() -> Path:
    found = sorted(ROOT.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    if found:
        return found[0]
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("anvil is needed for the external-chain tests: install Node.js and npm, then run 'npm install'")
    with open(ROOT / ".npm-install.lock", "w") as lock:  # xdist workers: one installs, the others wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = sorted(ROOT.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
        if not found:
            subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=ROOT, check=True)
            found = sorted(ROOT.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    if not found:
        raise RuntimeError("npm install did not provide the anvil binary (node_modules/@foundry-rs/anvil-*/bin/anvil)")
    return found[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc(url: str, method: str, params: list | None = None) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["result"]


@contextmanager
def running_anvil(*args: str) -> Iterator[str]:
    """Start anvil on a free loopback port; yield its URL; stop it."""
    port = free_port()
    proc = subprocess.Popen(
        [str(anvil_binary()), "--port", str(port), "--host", "127.0.0.1", "--silent", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                rpc(url, "eth_chainId")
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"anvil exited: {proc.stderr.read().decode()[-500:]}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("anvil did not answer within 30 s") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()

"""SIGKILL the node while transactions stream in: every receipt it ever returned must still be there after a
restart, in the same block, and the chain must carry on from there."""

from __future__ import annotations

import random
import select
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

KILLS = 6


class _Node:
    """``python -m ledgermind.chain.rpc_server`` on a chain folder, in a child process."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ledgermind.chain.rpc_server", "--chain-dir", str(folder), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            self.proc.kill()
            raise AssertionError(f"the node did not start: {line!r} {self.proc.stderr.read()[-2000:]}")
        self.url = line
        self.w3 = Web3(Web3.HTTPProvider(line, request_kwargs={"timeout": 60}))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.proc.stdout.close()
        self.proc.stderr.close()


def _stream(node: _Node, key: str, seen: list[tuple[bytes, int, bytes]], stop: threading.Event) -> None:
    """Send signed transfers one after another, remembering each receipt the node returns, until it dies."""
    account = Account.from_key(key)
    w3 = node.w3
    try:
        nonce = w3.eth.get_transaction_count(account.address)
        while not stop.is_set():
            tx = {"chainId": 1337, "nonce": nonce, "to": "0x" + "42" * 20, "value": 1, "gas": 21_000,
                  "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 1}
            tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            receipt = w3.eth.get_transaction_receipt(tx_hash)
            seen.append((bytes(tx_hash), receipt["blockNumber"], bytes(receipt["blockHash"])))
            nonce += 1
    except Exception:  # noqa: BLE001 - the node was killed under us: that is the point
        return


@pytest.mark.slow
def test_receipts_survive_sigkill_and_the_chain_continues(tmp_path: Path) -> None:
    folder = tmp_path / "chain"
    rng = random.Random(20240611)
    seen: list[tuple[bytes, int, bytes]] = []
    node = _Node(folder)
    key = (folder / "faucet.key").read_text().strip()  # the test signs as the faucet; the key is never printed
    for _ in range(KILLS):
        stop = threading.Event()
        sender = threading.Thread(target=_stream, args=(node, key, seen, stop))
        sender.start()
        # kill at a random moment: mid-request, mid-execution or mid-commit
        stop.wait(rng.uniform(0.05, 0.6))
        node.kill()
        stop.set()
        sender.join()
        node = _Node(folder)
        _check_every_receipt(node.w3, seen)
    before = node.w3.eth.block_number  # one more transaction: the restarted chain carries on
    account = Account.from_key(key)
    tx = {"chainId": 1337, "nonce": node.w3.eth.get_transaction_count(account.address), "to": "0x" + "42" * 20,
          "value": 1, "gas": 21_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 1}
    receipt = node.w3.eth.get_transaction_receipt(node.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
    assert receipt["blockNumber"] == before + 1
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(timeout=60) == 0
    assert len(seen) >= KILLS, "too few transactions went through to test anything"
    with sqlite3.connect(folder / "chain.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _check_every_receipt(w3: Web3, seen: list[tuple[bytes, int, bytes]]) -> None:
    for tx_hash, number, block_hash in seen:
        receipt: Any = w3.eth.get_transaction_receipt(tx_hash)
        assert (receipt["blockNumber"], bytes(receipt["blockHash"])) == (number, block_hash), tx_hash.hex()
        assert bytes(w3.eth.get_block(number)["hash"]) == block_hash

"""Transactions per second of the embedded chain (durable, on SQLite) against eth-tester in memory and anvil.

    python bench/bench_chain.py [--n 300] [--rounds 3] [--estimates 100] [--anvil PATH | --no-anvil]

Two workloads, each transaction signed beforehand (untimed) with an explicit gas limit: plain ETH transfers
(21,000 gas) and calls of a tiny storage contract (store a new non-zero word and emit an event, ~30k gas),
deployed from inline bytecode. Candidates, each on a fresh chain every round, rounds interleaved so that noise
from neighbours hits all alike (best of ``--rounds`` reported):

1. ``embedded engine``: ``EmbeddedChain.send_raw_transaction`` (execute, mine, commit with fsync) in-process.
2. ``eth-tester engine``: ``EthereumTester.send_raw_transaction`` on its in-memory py-evm chain: the reference.
   Target: the embedded engine within 2x of it (durability costs one SQLite commit per block).
3. ``embedded web3``: web3.py on ``EmbeddedChain.w3`` (in-process JSON-RPC), send then fetch the receipt.
4. ``embedded HTTP``: web3.py over HTTP to ``NodeServer`` on loopback, send then fetch the receipt.
5. ``eth-tester web3``: web3.py on ``EthereumTesterProvider`` (in memory), send then fetch the receipt.
6. ``anvil HTTP``: web3.py over HTTP to anvil 1.7.1 (auto-mining), send then poll the receipt every 2 ms (anvil
   answers before it mines).

Also ``eth_estimateGas`` calls/s for the contract call on the three web3 chains (the embedded chain estimates in
2-3 executions; eth-tester's binary search takes ~15). Anvil comes from npm (``npm install
@foundry-rs/anvil@1.7.1`` into a temp folder, the binary called directly) unless ``--anvil`` names a binary.
Prints a table and writes ``bench/results/chain.json`` with every round, the parameters and the versions.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_hash.auto import keccak
from web3 import Web3

from ledgermind.chain.embedded import EmbeddedChain
from ledgermind.chain.rpc_server import NodeServer

RESULTS = Path(__file__).resolve().parent / "results" / "chain.json"
ANVIL_VERSION = "1.7.1"
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's well-known dev account 0
TRANSFER_GAS, CALL_GAS, DEPLOY_GAS = 21_000, 100_000, 200_000
MAX_FEE, TIP = 10**11, 10**9
TO = "0x" + "42" * 20
# A storage contract (the one tests/test_embedded_chain.py assembles): calldata x != 0 stores x in slot 0 and
# emits Stored(x); no calldata returns slot 0. Init code (12 bytes) + runtime (107 bytes).
CONTRACT = bytes.fromhex(
    "606b600c600039606b6000f336600f5760005460005260206000f35b60003580603c576308c379a060e01b6000526020600452600460"
    "2452637a65726f60e01b60445260646000fd5b806000556000527f" + keccak(b"Stored(uint256)").hex() + "60206000a100"
)


class Chain:
    """One candidate chain: how to send a signed transaction and get its receipt, and how to estimate gas."""

    def __init__(self, name: str, chain_id: int, key: str, send: Callable[[bytes], Any],
                 receipt: Callable[[Any], Any] | None, w3: Web3 | None, close: Callable[[], None]) -> None:
        self.name, self.chain_id, self.account = name, chain_id, Account.from_key(key)
        self.send, self.receipt, self.w3, self.close = send, receipt, w3, close
        self.nonce = 0

    def sign(self, count: int, **tx: Any) -> list[bytes]:
        out = []
        for i in range(count):
            full = {"chainId": self.chain_id, "nonce": self.nonce, "maxFeePerGas": MAX_FEE, "maxPriorityFeePerGas": TIP,
                    "value": 0, **{k: (v(i) if callable(v) else v) for k, v in tx.items()}}
            out.append(bytes(self.account.sign_transaction(full).raw_transaction))
            self.nonce += 1
        return out

    def deploy(self) -> str:
        raw = self.sign(1, gas=DEPLOY_GAS, data=CONTRACT)[0]
        address = self._receipt_of(self.send(raw))["contractAddress"]
        if address is None:
            raise RuntimeError(f"{self.name}: the contract did not deploy")
        return address

    def _receipt_of(self, tx_hash: Any) -> Any:
        if self.receipt is not None:
            return self.receipt(tx_hash)
        assert self.w3 is not None
        return self.w3.eth.get_transaction_receipt(tx_hash)


def _engine_embedded(folder: Path) -> Chain:
    chain = EmbeddedChain(folder)
    return Chain("embedded engine", chain.chain_id, chain.faucet.key.hex(), chain.send_raw_transaction,
                 lambda h: chain.w3.eth.get_transaction_receipt(h), None, chain.close)


def _engine_tester() -> Chain:
    from eth_tester import EthereumTester, PyEVMBackend

    tester = EthereumTester(PyEVMBackend())
    key = tester.backend.account_keys[0].to_hex()
    return Chain("eth-tester engine", tester.backend.chain.chain_id, key,
                 lambda raw: tester.send_raw_transaction("0x" + raw.hex()),
                 lambda h: _camel(tester.get_transaction_receipt(h)), None, lambda: None)


def _camel(receipt: dict[str, Any]) -> dict[str, Any]:
    """eth-tester's receipt keys (snake_case) as JSON-RPC names them."""
    return {"contractAddress": receipt["contract_address"], "status": receipt["status"]}


def _web3_embedded(folder: Path) -> Chain:
    chain = EmbeddedChain(folder)
    w3 = chain.w3
    return Chain("embedded web3", chain.chain_id, chain.faucet.key.hex(), w3.eth.send_raw_transaction,
                 None, w3, chain.close)


def _http_embedded(folder: Path) -> Chain:
    chain = EmbeddedChain(folder)
    node = NodeServer(chain, port=0).start()
    w3 = Web3(Web3.HTTPProvider(node.url))

    def close() -> None:
        node.stop()
        chain.close()

    return Chain("embedded HTTP", chain.chain_id, chain.faucet.key.hex(), w3.eth.send_raw_transaction, None, w3, close)


def _web3_tester() -> Chain:
    from eth_tester import EthereumTester, PyEVMBackend

    tester = EthereumTester(PyEVMBackend())
    w3 = Web3(Web3.EthereumTesterProvider(tester))
    return Chain("eth-tester web3", w3.eth.chain_id, tester.backend.account_keys[0].to_hex(),
                 w3.eth.send_raw_transaction, None, w3, lambda: None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _anvil(binary: str) -> Chain:
    from web3.exceptions import TransactionNotFound

    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--silent"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
    deadline = time.monotonic() + 60
    while True:
        try:
            chain_id = w3.eth.chain_id
            break
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("anvil did not start") from None
            time.sleep(0.05)

    def receipt(tx_hash: Any) -> Any:
        while True:  # anvil answers before it mines: poll every few ms
            try:
                return w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                time.sleep(0.002)

    def close() -> None:
        proc.terminate()
        proc.wait(timeout=30)

    return Chain("anvil HTTP", chain_id, ANVIL_KEY, w3.eth.send_raw_transaction, receipt, w3, close)


def _install_anvil(folder: Path) -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: install Node.js, or pass --anvil PATH or --no-anvil")
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", f"@foundry-rs/anvil@{ANVIL_VERSION}"],
                   cwd=folder, check=True, timeout=600)
    binary = folder / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not binary.exists():
        raise RuntimeError(f"the anvil binary is not where npm should put it: {binary}")
    return str(binary)


def _measure(chain: Chain, workload: str, n: int, address: str) -> float:
    """Transactions per second for ``n`` pre-signed transactions, each sent and (but for engines) its receipt read."""
    if workload == "transfer":
        raws = chain.sign(n, to=TO, value=1, gas=TRANSFER_GAS)
    else:  # a new non-zero word every time: the same storage cost for every call
        raws = chain.sign(n, to=address, gas=CALL_GAS, data=lambda i: (chain.nonce + 1).to_bytes(32, "big"))
    engine = chain.name.endswith("engine")
    start = time.perf_counter()
    if engine:
        for raw in raws:
            chain.send(raw)
    else:
        for raw in raws:
            chain._receipt_of(chain.send(raw))
    elapsed = time.perf_counter() - start
    last = chain._receipt_of(chain.send(chain.sign(1, to=TO, value=1, gas=TRANSFER_GAS)[0]))
    if last["status"] != 1:
        raise RuntimeError(f"{chain.name}: a transaction failed")
    if workload == "call" and chain.w3 is not None:  # every call stored its word: the last one is there
        stored = int.from_bytes(chain.w3.eth.call({"to": address}), "big")
        if stored == 0:
            raise RuntimeError(f"{chain.name}: the contract calls stored nothing")
    return n / elapsed


def _estimates(chain: Chain, address: str, n: int) -> float:
    assert chain.w3 is not None
    tx = {"from": chain.account.address, "to": address, "data": (7).to_bytes(32, "big")}
    chain.w3.eth.estimate_gas(tx)  # warm
    start = time.perf_counter()
    for _ in range(n):
        chain.w3.eth.estimate_gas(tx)
    return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="transactions per workload per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--estimates", type=int, default=100, help="eth_estimateGas calls per round")
    parser.add_argument("--anvil", help="an anvil binary (default: npm install @foundry-rs/anvil into a temp folder)")
    parser.add_argument("--no-anvil", action="store_true")
    parser.add_argument("--tmp", default=None, help="folder for the chains' files (default: the system temp dir)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-chain-", dir=args.tmp))
    anvil = None if args.no_anvil else (args.anvil or _install_anvil(work))
    load_before = os.getloadavg()
    factories: list[tuple[str, Callable[[Path], Chain]]] = [
        ("embedded engine", _engine_embedded),
        ("eth-tester engine", lambda _: _engine_tester()),
        ("embedded web3", _web3_embedded),
        ("embedded HTTP", _http_embedded),
        ("eth-tester web3", lambda _: _web3_tester()),
    ]
    if anvil:
        factories.append(("anvil HTTP", lambda _: _anvil(anvil)))
    rounds: dict[str, dict[str, list[float]]] = {name: {"transfer": [], "call": [], "estimate": []} for name, _ in factories}
    try:
        for r in range(args.rounds):
            for name, factory in factories:
                folder = work / f"{name.replace(' ', '-')}-{r}"
                chain = factory(folder)
                try:
                    address = chain.deploy()
                    for workload in ("transfer", "call"):
                        rounds[name][workload].append(_measure(chain, workload, args.n, address))
                    if chain.w3 is not None and args.estimates:
                        rounds[name]["estimate"].append(_estimates(chain, address, args.estimates))
                finally:
                    chain.close()
                shutil.rmtree(folder, ignore_errors=True)
                print(f"round {r + 1}/{args.rounds} {name:18} "
                      + " ".join(f"{w} {v[-1]:8.1f}" for w, v in rounds[name].items() if v), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best = {name: {w: max(v) for w, v in by.items() if v} for name, by in rounds.items()}
    ratio = {w: best["eth-tester engine"][w] / best["embedded engine"][w] for w in ("transfer", "call")}
    print()
    print(f"{'chain':20} {'transfers/s':>12} {'calls/s':>10} {'estimateGas/s':>14}")
    for name, by in best.items():
        est = f"{by['estimate']:14.1f}" if "estimate" in by else f"{'-':>14}"
        print(f"{name:20} {by['transfer']:12.1f} {by['call']:10.1f} {est}")
    print()
    for w, x in ratio.items():
        print(f"eth-tester in memory / embedded on SQLite, {w}s: {x:.2f}x (target <= 2x) "
              f"{'PASS' if x <= 2 else 'FAIL'}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "chain",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "params": {"n": args.n, "rounds": args.rounds, "estimates": args.estimates, "transfer_gas": TRANSFER_GAS,
                   "call_gas": CALL_GAS, "storage": "SQLite WAL, synchronous=FULL, one commit per block"},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg_1_5_15min": {"before": load_before, "after": os.getloadavg()}},
        "versions": {p: version(p) for p in ("web3", "eth-tester", "py-evm", "coincurve", "eth-account")}
        | ({"anvil": ANVIL_VERSION} if anvil else {}),
        "best_per_second": best,
        "rounds_per_second": rounds,
        "eth_tester_over_embedded": ratio,
        "target": "embedded engine within 2x of eth-tester in memory",
        "target_met": all(x <= 2 for x in ratio.values()),
    }
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")
    return 0 if doc["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Gas per anchored statement (AnchorRegistry) beside the gas of one AssetRegistry mint per statement.

    python bench/bench_gas.py [--repeats 5] [--anvil PATH | --no-anvil]

Deploys the committed artifacts (``ledgermind.contracts.load``) on two chains and reads ``gasUsed`` from the
receipts of real transactions:

1. py-evm: eth-tester's default VM (Prague) through ``Web3(EthereumTesterProvider())``, the embedded chain.
2. anvil 1.7.1 over HTTP (``npm install @foundry-rs/anvil@1.7.1`` into a temp folder, the binary called directly)
   unless ``--anvil`` names a binary or ``--no-anvil`` skips it.

Anchors: one operator anchors one log. The log's first anchor is reported on its own (it creates the log's
storage: three fresh slots instead of one). Then, for batches of 1, 100, 10,000 and 100,000 statements,
``--repeats`` anchors per batch size, each at the cumulative tree size, with fresh random roots and checkpoint
hashes: gas per statement = gas of the anchor / batch size. Calldata makes gas vary by a few units (a zero
byte costs 4 gas, a non-zero byte 16), so the table shows the largest; the JSON has every value.

Mints, one per registered statement: a dataset (no parents) and a model with 2 parents to an owner that
already holds tokens (the steady state); also a dataset to a new owner (its first token: a fresh balance slot,
but index 0 in its token list, which costs no write) and a model with the most parents, 32 (what a mint's gas
limit must cover). The metadata URI has the form ``ledgermind.registry.onchain`` writes,
``ledgermind://<log origin>/entries/<index>`` (55 bytes here: 2 storage slots of text; each further 32 bytes
of URI costs ~22,100 gas).

Gas does not depend on the machine, so one pass is enough; the script checks that both chains agree.
References, not measured here (GUIDE.md): an OpenZeppelin-style ERC-721 mint ~153k gas, creating an Ocean
Protocol data NFT ~592k. Targets: one anchor <= 60,000 gas (21,000 base included); <= 6 gas per statement
in a batch of 10,000. Writes ``bench/results/gas.json`` and exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from web3 import Web3

from ledgermind.contracts import EVM_VERSION, load

RESULTS = Path(__file__).resolve().parent / "results" / "gas.json"
ANVIL_VERSION = "1.7.1"
BATCHES = (1, 100, 10_000, 100_000)
ANCHOR_TARGET = 60_000  # gas per anchor, 21,000 base included
PER_STATEMENT_TARGET = 6.0  # gas per statement in a batch of 10,000
ORIGIN = "ledgermind.example.org/log"  # a plausible log origin for the metadata URI
REFERENCES = {"OpenZeppelin-style ERC-721 mint": 153_000, "Ocean Protocol data NFT creation": 592_000}
DATASET, MODEL = 1, 2
DEPLOY_GAS = 8_000_000
TX_GAS = 2_000_000  # explicit: estimation would add a round trip and is not what is measured


class Chain:
    """A web3 connection whose dev accounts can send transactions, and a fast receipt wait."""

    def __init__(self, name: str, w3: Web3, poll: float) -> None:
        self.name, self.w3, self.poll = name, w3, poll
        self.accounts = w3.eth.accounts

    def send(self, fn: Any, sender: str, gas: int = TX_GAS) -> Any:
        """Send ``fn`` (a web3 contract function or constructor) from ``sender``; return its receipt.

        Raises RuntimeError if the transaction reverted.
        """
        tx = fn.transact({"from": sender, "gas": gas})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx, timeout=120, poll_latency=self.poll)
        if receipt.status != 1:
            raise RuntimeError(f"{self.name}: {getattr(fn, 'fn_name', 'constructor')} reverted")
        return receipt

    def deploy(self, name: str) -> Any:
        art = load(name)
        receipt = self.send(
            self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(),
            self.accounts[0],
            gas=DEPLOY_GAS,
        )
        return self.w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])


@contextmanager
def py_evm_chain() -> Iterator[tuple[Chain, dict[str, str]]]:
    from web3 import EthereumTesterProvider

    w3 = Web3(EthereumTesterProvider())
    fork = w3.provider.ethereum_tester.backend.chain.get_vm().fork
    yield (
        Chain("py-evm", w3, poll=0.001),
        {"client": "eth-tester " + version("eth-tester") + " / py-evm " + version("py-evm"), "hardfork": fork},
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def anvil_chain(binary: str) -> Iterator[tuple[Chain, dict[str, str]]]:
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        deadline = time.monotonic() + 60
        while not w3.is_connected():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil ({binary}) did not start on port {port}")
            time.sleep(0.05)
        info = w3.provider.make_request("anvil_nodeInfo", [])["result"]
        # anvil answers eth_sendTransaction before it mines: poll receipts every few ms
        yield Chain("anvil", w3, poll=0.003), {"client": w3.client_version, "hardfork": str(info["hardFork"])}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def install_anvil(folder: Path) -> str:
    """``npm install @foundry-rs/anvil`` into ``folder`` and return the binary's path (install scripts do not
    run, so the platform package's binary is called directly). Raises RuntimeError without npm."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: install Node.js, or pass --anvil PATH or --no-anvil")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", f"@foundry-rs/anvil@{ANVIL_VERSION}"],
        cwd=folder,
        check=True,
        timeout=600,
    )
    binary = folder / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not binary.exists():
        raise RuntimeError(f"no anvil binary where npm should have put it: {binary}")
    return str(binary)


def measure(chain: Chain, repeats: int, seed: int) -> dict[str, Any]:
    """Every gas figure of one chain; see the module docstring for what is sent."""
    rng = random.Random(seed)

    def rand32() -> bytes:
        return rng.randbytes(32)

    admin, operator, owner, newcomer = chain.accounts[:4]
    anchors, assets = chain.deploy("AnchorRegistry"), chain.deploy("AssetRegistry")
    chain.send(anchors.functions.grantRole(anchors.functions.OPERATOR_ROLE().call(), operator), admin)

    log_id, size = rand32(), 1
    first = chain.send(anchors.functions.anchor(log_id, size, rand32(), rand32()), operator).gasUsed
    per_batch: dict[str, list[int]] = {}
    for batch in BATCHES:
        per_batch[str(batch)] = []
        for _ in range(repeats):
            size += batch
            receipt = chain.send(anchors.functions.anchor(log_id, size, rand32(), rand32()), operator)
            per_batch[str(batch)].append(receipt.gasUsed)
    assert anchors.functions.latest(log_id).call()[0] == size  # every anchor landed

    def mint(to: str, kind: int, parents: list[int]) -> tuple[int, int]:
        """Mint a fresh digest; return (token id, gas used)."""
        digest = rand32()
        uri = metadata_uri(rng.randrange(1_000_000, 10_000_000))
        receipt = chain.send(assets.functions.mint(to, digest, kind, uri, sorted(parents)), admin)
        token = int.from_bytes(digest, "big")
        assert assets.functions.ownerOf(token).call() == to
        return token, receipt.gasUsed

    datasets = [mint(owner, DATASET, [])[0] for _ in range(32)]  # the owner holds tokens from here on
    mints = {
        "dataset": [mint(owner, DATASET, [])[1] for _ in range(repeats)],
        "model_2_parents": [mint(owner, MODEL, datasets[:2])[1] for _ in range(repeats)],
        "dataset_first_token_of_owner": [mint(newcomer, DATASET, [])[1]],
        "model_32_parents": [mint(owner, MODEL, datasets)[1]],
    }
    return {"first_anchor_of_a_log": first, "anchor": per_batch, "mint": mints}


def metadata_uri(index: int) -> str:
    return f"ledgermind://{ORIGIN}/entries/{index}"


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.4f}"


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    names = list(results)
    head = (
        f"{'operation':<44}{'statements/tx':>14}"
        + "".join(f"{n + ' gas/tx':>16}{'gas/statement':>15}" for n in names)
        + "  target / reference"
    )
    lines = [head, "-" * len(head)]

    def row(label: str, per_tx: int, get: Callable[[dict[str, Any]], list[int] | int], note: str = "") -> None:
        cells = ""
        for n in names:
            value = get(results[n])
            worst = max(value) if isinstance(value, list) else value
            cells += f"{fmt(worst):>16}{fmt(worst / per_tx):>15}"
        lines.append(f"{label:<44}{per_tx:>14,}{cells}  {note}")

    row("anchor: first of a new log", 1, lambda r: r["first_anchor_of_a_log"])
    for batch in BATCHES:
        note = (
            f"<= {ANCHOR_TARGET:,} gas/anchor"
            if batch == 1
            else (f"<= {PER_STATEMENT_TARGET:g} gas/statement" if batch == 10_000 else "")
        )
        row(f"anchor: batch of {batch:,} statements", batch, lambda r, b=batch: r["anchor"][str(b)], note)
    ref_lines = [f"{k} ~{v // 1000}k" for k, v in REFERENCES.items()]
    row("mint: dataset, no parents", 1, lambda r: r["mint"]["dataset"], ref_lines[0])
    row("mint: model, 2 parents", 1, lambda r: r["mint"]["model_2_parents"], ref_lines[1])
    row("mint: dataset, owner's first token", 1, lambda r: r["mint"]["dataset_first_token_of_owner"])
    row("mint: model, 32 parents (the most)", 1, lambda r: r["mint"]["model_32_parents"])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="anchors per batch size and mints per kind (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random roots, hashes and digests")
    parser.add_argument("--anvil", help="an anvil binary (default: npm install @foundry-rs/anvil into a temp folder)")
    parser.add_argument("--no-anvil", action="store_true", help="measure on py-evm only")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    results: dict[str, dict[str, Any]] = {}
    chains: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="ledgermind-bench-gas-") as work:
        factories = [("py-evm", py_evm_chain)]
        if not args.no_anvil:
            binary = args.anvil or install_anvil(Path(work))
            factories.append(("anvil", lambda: anvil_chain(binary)))
        for name, factory in factories:
            with factory() as (chain, info):
                results[name] = measure(chain, args.repeats, args.seed)
                chains[name] = info

    reference = results["py-evm"]
    agree = all(r == reference for r in results.values())
    anchor_worst = max(max(v) for v in reference["anchor"].values())
    per_statement_10k = max(reference["anchor"]["10000"]) / 10_000
    met = {
        "anchor_gas": {"worst": anchor_worst, "limit": ANCHOR_TARGET, "met": anchor_worst <= ANCHOR_TARGET},
        "gas_per_statement_at_10000": {
            "worst": per_statement_10k,
            "limit": PER_STATEMENT_TARGET,
            "met": per_statement_10k <= PER_STATEMENT_TARGET,
        },
    }

    print(
        f"EVM version of the contracts: {EVM_VERSION}; chains: "
        + "; ".join(f"{n}: {c['client']} ({c['hardfork']})" for n, c in chains.items())
    )
    print("\n".join(table(results)))
    print(f"\nchains agree on every figure: {agree}")
    for key, m in met.items():
        print(f"{key}: worst {fmt(m['worst'])} vs limit {fmt(m['limit'])} -> {'met' if m['met'] else 'MISSED'}")

    doc = {
        "benchmark": "gas",
        "date": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "params": {
            "batches": list(BATCHES),
            "repeats": args.repeats,
            "seed": args.seed,
            "metadata_uri_bytes": len(metadata_uri(1_000_000)),
            "tx_gas_limit": TX_GAS,
        },
        "contracts": {
            n: {
                "evmVersion": load(n)["evmVersion"],
                "compiler": load(n)["compiler"]["version"],
                "integrity": load(n)["integrity"],
            }
            for n in ("AnchorRegistry", "AssetRegistry")
        },
        "chains": chains,
        "versions": {"web3": version("web3"), "python": platform.python_version()}
        | ({"anvil": ANVIL_VERSION} if "anvil" in results else {}),
        "gas": results,
        "gas_per_statement": {str(b): max(reference["anchor"][str(b)]) / b for b in BATCHES},
        "references_not_measured_here": REFERENCES,
        "chains_agree": agree,
        "targets": met,
        "target_met": all(m["met"] for m in met.values()) and agree,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0 if doc["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

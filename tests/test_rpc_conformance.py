"""The node against Ethereum's JSON-RPC conformance cases (ethereum/execution-apis ``tests/``).

The cases run against a known chain: ``genesis.json`` plus the 54 blocks of ``chain.rlp`` (proof-of-work blocks
1-35 from Homestead to Gray Glacier, the merge at 36, Shanghai, Cancun with blob transactions, Prague with
EIP-7702 set-code transactions, then Osaka and the BPO forks from block 48). We build an embedded chain from
that genesis and import every block: py-evm executes each one and the import checks its state, transaction
and receipt roots, so the node answers from exactly the chain the cases expect. Two things are taken on trust:
proof-of-work seals (py-evm's ethash check is not used) and Osaka: py-evm stops at Prague, so blocks 48-54 are
executed with Prague rules, which is only accepted because every root of those blocks still matches.

Each case is sent over real HTTP and the whole response must equal the expected one: result or error, error
code and message, every field. The data is read from ``../shared/data`` (or ``$LEDGERMIND_SHARED_DATA``), never
copied into the repository.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
import rlp

from ledgermind.chain.embedded import EmbeddedChain, ExecutionError, iter_rlp_blocks
from ledgermind.chain.genesis import from_geth_genesis
from ledgermind.chain.rpc_server import NodeServer

def _shared_data() -> Path:
    """The shared data folder: $LEDGERMIND_SHARED_DATA, else ../shared/data beside the checkout, else /work/shared/data."""
    candidates = [Path(os.environ["LEDGERMIND_SHARED_DATA"])] if os.environ.get("LEDGERMIND_SHARED_DATA") else []
    candidates += [Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")]
    return next((c for c in candidates if c.is_dir()), candidates[0])


DATA = _shared_data()
CASES = DATA / "execution-apis-tests"
HEAD = 0x36


def _cases() -> list[Path]:
    return sorted(CASES.glob("*/*.io")) if CASES.is_dir() else []


def _exchanges(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The (request line, expected response) pairs of a case file: ``>>`` sends, ``<<`` expects."""
    lines = path.read_text().splitlines()
    requests_ = [line[3:] for line in lines if line.startswith(">> ")]
    expected = [json.loads(line[3:]) for line in lines if line.startswith("<< ")]
    assert requests_ and len(requests_) == len(expected), f"malformed case {path}"
    return list(zip(requests_, expected))


READ_CASES = [p for p in _cases() if p.parent.name != "eth_sendRawTransaction"]
SEND_CASES = [p for p in _cases() if p.parent.name == "eth_sendRawTransaction"]


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def test_the_conformance_data_is_there() -> None:
    assert CASES.is_dir(), f"no conformance cases at {CASES}: set LEDGERMIND_SHARED_DATA to the shared data folder"
    assert len(READ_CASES) >= 39 and len(SEND_CASES) == 4


def _genesis(raw: bytes) -> Any:
    """The conformance genesis, its timestamp forks placed on the blocks of ``raw``."""
    timestamps = {}
    for block in iter_rlp_blocks(raw):
        header = rlp.decode(block)[0]
        timestamps[int.from_bytes(header[8], "big")] = int.from_bytes(header[11], "big")
    return from_geth_genesis(CASES / "genesis.json", timestamps)


@pytest.fixture(scope="session")
def imported_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chain folder holding the conformance chain, every block imported and checked (built once)."""
    raw = (CASES / "chain.rlp").read_bytes()
    genesis = _genesis(raw)
    folder = tmp_path_factory.mktemp("conformance") / "chain"
    with EmbeddedChain(folder, genesis=genesis) as chain:
        assert chain.import_blocks(raw) == HEAD
        head_hash = json.loads((CASES / "headfcu.json").read_text())["params"][0]["headBlockHash"]
        assert "0x" + chain.head().hash.hex() == head_hash
    return folder


def _node_on_copy(template: Path, where: Path) -> tuple[EmbeddedChain, NodeServer]:
    shutil.copytree(template, where)
    chain = EmbeddedChain(where)
    return chain, NodeServer(chain, port=0).start()


@pytest.fixture(scope="module")
def read_node(imported_chain: Path, tmp_path_factory: pytest.TempPathFactory):
    chain, node = _node_on_copy(imported_chain, tmp_path_factory.mktemp("read") / "chain")
    yield node
    node.stop()
    chain.close()


def _check(url: str, path: Path) -> None:
    for request, expected in _exchanges(path):
        response = requests.post(url, data=request, headers={"Content-Type": "application/json"}, timeout=60)
        assert response.status_code == 200
        got = response.json()
        # the shape first, for a clear message: a result where a result is expected, the same error code
        assert ("error" in got) == ("error" in expected), f"{_case_id(path)}: got {got}, expected {expected}"
        if "error" in expected:
            assert got["error"]["code"] == expected["error"]["code"], f"{_case_id(path)}: {got['error']}"
        assert got == expected


@pytest.mark.parametrize("path", READ_CASES, ids=_case_id)
def test_read_case(read_node: NodeServer, path: Path) -> None:
    _check(read_node.url, path)


def test_send_cases_are_accepted_and_mined_in_nonce_order(imported_chain: Path, tmp_path: Path) -> None:
    """The four raw transactions come from one sender with nonces 2, 3, 1, 0 (in file order): the node accepts
    the later nonces, as a node's queue does, and mines all four once nonce 0 arrives."""
    chain, node = _node_on_copy(imported_chain, tmp_path / "chain")
    try:
        hashes = []
        for path in SEND_CASES:
            _check(node.url, path)
            hashes.extend(expected["result"] for _, expected in _exchanges(path))
        mined = {chain.w3.eth.get_transaction(h)["nonce"]: chain.w3.eth.get_transaction_receipt(h) for h in hashes}
        assert {nonce: r["blockNumber"] for nonce, r in mined.items()} == {n: HEAD + 1 + n for n in range(4)}
    finally:
        node.stop()
        chain.close()


def test_a_block_with_a_tampered_state_root_is_rejected_and_the_chain_stops_before_it(tmp_path: Path) -> None:
    raw = (CASES / "chain.rlp").read_bytes()
    blocks = list(iter_rlp_blocks(raw))
    header, *body = rlp.decode(blocks[2])  # block 3
    header[3] = bytes(b ^ 0xFF for b in header[3])  # flip every bit of its state root
    tampered = b"".join(blocks[:2]) + rlp.encode([header, *body]) + b"".join(blocks[3:])
    with EmbeddedChain(tmp_path / "chain", genesis=_genesis(raw)) as chain:
        with pytest.raises(ExecutionError, match="block 3 .* rejected"):
            chain.import_blocks(tampered)
        assert chain.head().block_number == 2
        assert chain.import_blocks(raw) == HEAD - 2  # the genuine blocks still import, after the two kept

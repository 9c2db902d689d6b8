"""The embedded chain and its JSON-RPC node, from the user's side: web3.py in-process and over real HTTP,
raw JSON-RPC requests, a second process, a restart, and ethers.js in node."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from eth_hash.auto import keccak
from web3 import Web3

from ledgermind.chain.embedded import EmbeddedChain, ExecutionError
from ledgermind.chain.rpc_server import NodeServer
from ledgermind.errors import InvalidInputError, StorageError

# ---------------------------------------------------------------------------------------------- a tiny contract
# No calldata: return storage slot 0. A 32-byte word x: revert Error("zero") if x == 0, else store it and emit
# Stored(uint256 x). Assembled below from opcodes, so the test depends on no compiler.
_OPS = {
    "STOP": 0x00, "SHL": 0x1B, "CALLDATALOAD": 0x35, "CALLDATASIZE": 0x36, "CODECOPY": 0x39, "DUP1": 0x80,
    "SLOAD": 0x54, "SSTORE": 0x55, "MSTORE": 0x52, "JUMPI": 0x57, "JUMPDEST": 0x5B, "LOG1": 0xA1,
    "RETURN": 0xF3, "REVERT": 0xFD,
}
STORED_TOPIC = keccak(b"Stored(uint256)")


def _assemble(program: list[Any]) -> bytes:
    """Opcode names, ("push", value, size), ("label", name) for a JUMPDEST, ("ref", name) to push a label."""
    size = {str: 1}
    labels, pc = {}, 0
    for item in program:
        if isinstance(item, tuple) and item[0] == "label":
            labels[item[1]] = pc
        pc += size.get(type(item)) or {"label": 1, "ref": 2}.get(item[0]) or 1 + item[2]
    out = bytearray()
    for item in program:
        if isinstance(item, str):
            out.append(_OPS[item])
        elif item[0] == "label":
            out.append(_OPS["JUMPDEST"])
        elif item[0] == "ref":
            out += bytes([0x60, labels[item[1]]])
        else:
            value, n = item[1], item[2]
            out.append(0x5F + n)
            out += (value if isinstance(value, bytes) else value.to_bytes(n, "big")).rjust(n, b"\0")
    return bytes(out)


def _push(value: int | bytes, n: int = 1) -> tuple[str, int | bytes, int]:
    return ("push", value, n)


RUNTIME = _assemble([
    "CALLDATASIZE", ("ref", "store"), "JUMPI",
    _push(0), "SLOAD", _push(0), "MSTORE", _push(32), _push(0), "RETURN",
    ("label", "store"), _push(0), "CALLDATALOAD", "DUP1", ("ref", "ok"), "JUMPI",
    _push(0x08C379A0, 4), _push(0xE0), "SHL", _push(0), "MSTORE",  # Error(string) selector
    _push(0x20), _push(4), "MSTORE", _push(4), _push(0x24), "MSTORE",  # offset, length
    _push(b"zero", 4), _push(0xE0), "SHL", _push(0x44), "MSTORE", _push(0x64), _push(0), "REVERT",
    ("label", "ok"), "DUP1", _push(0), "SSTORE", _push(0), "MSTORE",
    _push(STORED_TOPIC, 32), _push(32), _push(0), "LOG1", "STOP",
])
INIT = _assemble([_push(len(RUNTIME)), _push(12), _push(0), "CODECOPY", _push(len(RUNTIME)), _push(0), "RETURN"])
assert len(INIT) == 12
ZERO_REVERT_DATA = (
    bytes.fromhex("08c379a0") + (32).to_bytes(32, "big") + (4).to_bytes(32, "big") + b"zero".ljust(32, b"\0")
)


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _send(w3: Web3, account: Any, gas: int = 200_000, **tx: Any) -> dict[str, Any]:
    """Sign locally with an explicit gas limit, send raw, return the receipt (mined at once)."""
    full = {
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "gas": gas,
        "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
        "maxPriorityFeePerGas": 10**9,
        "value": 0,
        **tx,
    }
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(full).raw_transaction)
    return w3.eth.get_transaction_receipt(tx_hash)


def _deploy(w3: Web3, account: Any) -> str:
    receipt = _send(w3, account, data=INIT + RUNTIME)
    assert receipt["status"] == 1
    return receipt["contractAddress"]


def rpc(url: str, method: str, *params: Any, rid: Any = 1) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}
    return requests.post(url, json=body, timeout=30).json()


@pytest.fixture()
def chain(tmp_path: Path):
    with EmbeddedChain(tmp_path / "chain") as c:
        yield c


@pytest.fixture()
def node(chain: EmbeddedChain):
    with NodeServer(chain, port=0) as n:
        yield n


@pytest.fixture()
def user(chain: EmbeddedChain):
    account = Account.create()
    chain.fund(account.address, 10**18)
    return account


# ---------------------------------------------------------------------------------------------- the store
def test_the_store_reads_its_own_writes_and_keeps_only_what_was_committed(tmp_path: Path) -> None:
    from ledgermind.chain.kvdb import SQLiteKV

    db = SQLiteKV(tmp_path / "kv.sqlite")
    db[b"a"] = b"1"
    db[b"b"] = b"2"
    assert db[b"a"] == b"1" and b"b" in db and db.dirty
    db.commit()
    del db[b"a"]
    db[b"c"] = b"3"
    assert b"a" not in db and db[b"c"] == b"3"
    with pytest.raises(KeyError):
        db[b"a"]
    db.rollback()  # back to the last commit
    assert db[b"a"] == b"1" and b"c" not in db
    del db[b"b"]
    db[b"d"] = b"4"
    db.commit()
    db[b"uncommitted"] = b"lost"
    db.close()
    db = SQLiteKV(tmp_path / "kv.sqlite")
    assert (db[b"a"], b"b" in db, db[b"d"], b"uncommitted" in db) == (b"1", False, b"4", False)
    with pytest.raises(KeyError):
        del db[b"missing"]
    db.close()


# ---------------------------------------------------------------------------------------------- the chain itself
def test_a_new_folder_is_a_funded_dev_chain_with_a_private_faucet_key(chain: EmbeddedChain) -> None:
    w3 = chain.w3
    assert chain.chain_id == w3.eth.chain_id == 1337
    assert w3.eth.block_number == 0
    assert w3.eth.get_balance(chain.faucet.address) == 10**27
    key_file = chain.path / "faucet.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = chain.faucet.key.hex().removeprefix("0x")
    assert secret not in repr(chain) + repr(chain.provider) + repr(chain.faucet)
    assert w3.eth.accounts == []  # the node holds no keys


def test_fund_pays_from_the_faucet_and_is_mined_at_once(chain: EmbeddedChain) -> None:
    to = Account.create().address
    tx_hash = chain.fund(to, 12345)
    assert chain.w3.eth.get_balance(to) == 12345
    assert chain.w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    with pytest.raises(InvalidInputError):
        chain.fund(to, -1)


def test_state_blocks_receipts_code_and_logs_survive_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "chain"
    with EmbeddedChain(folder) as chain:
        user = Account.create()
        chain.fund(user.address, 10**18)
        address = _deploy(chain.w3, user)
        stored = _send(chain.w3, user, to=address, data=_word(42))
        head = chain.w3.eth.get_block("latest")
        balance = chain.w3.eth.get_balance(user.address)
    with EmbeddedChain(folder) as chain:
        w3 = chain.w3
        assert w3.eth.get_block("latest") == head
        assert w3.eth.get_balance(user.address) == balance
        assert bytes(w3.eth.get_code(address)) == RUNTIME
        assert int.from_bytes(w3.eth.call({"to": address}), "big") == 42
        assert w3.eth.get_transaction_receipt(stored["transactionHash"]) == stored
        logs = w3.eth.get_logs({"fromBlock": 0, "address": address, "topics": [STORED_TOPIC]})
        assert [(log["transactionHash"], int.from_bytes(log["data"], "big")) for log in logs] == [
            (stored["transactionHash"], 42)
        ]
        # the chain continues where it stopped
        assert _send(w3, user, to=address, data=_word(43))["blockNumber"] == head["number"] + 1


def test_the_chain_id_is_stored_and_checked_on_reopen(tmp_path: Path) -> None:
    folder = tmp_path / "chain"
    EmbeddedChain(folder, chain_id=31337).close()
    with pytest.raises(StorageError, match="has chain id 31337, not 1337"):
        EmbeddedChain(folder, chain_id=1337)
    with EmbeddedChain(folder) as chain:  # not asking: the stored id wins
        assert chain.chain_id == chain.w3.eth.chain_id == 31337


def test_one_process_at_a_time_with_a_one_line_error_naming_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "chain"
    with EmbeddedChain(folder):
        with pytest.raises(StorageError, match=rf"in use by another process \(pid {os.getpid()}\)"):
            EmbeddedChain(folder)
        code = "from ledgermind.chain.embedded import EmbeddedChain\nimport sys\ntry:\n    EmbeddedChain(sys.argv[1])\n" \
               "except Exception as e:\n    print(e, file=sys.stderr)\n    sys.exit(3)\n"
        proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 3
        assert proc.stderr == (
            f"the embedded chain in {folder} is in use by another process (pid {os.getpid()}); "
            f"stop it or use --rpc-url URL of its node\n"
        )
    EmbeddedChain(folder).close()  # released by close()


def test_the_node_command_serves_the_home_chain_and_names_its_url_to_others(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledgermind.chain.rpc_server", "--home", str(home), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "the node printed no URL"
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert rpc(url, "eth_chainId")["result"] == "0x539"
        record = json.loads((home / "chain" / "node.json").read_text())
        assert record == {"pid": proc.pid, "url": url, "chain_id": 1337}
        with pytest.raises(StorageError, match=rf"\(pid {proc.pid}\); stop it or use --rpc-url {url}$"):
            EmbeddedChain(home / "chain")
        account = Account.create()
        assert "result" in rpc(url, "ledgermind_fund", account.address, hex(10**18))
        assert rpc(url, "eth_getBalance", account.address, "latest")["result"] == hex(10**18)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert not (home / "chain" / "node.json").exists()


# ---------------------------------------------------------------------------------------------- web3.py over HTTP
def test_web3_over_http_sends_reads_calls_estimates_and_filters_logs(node: NodeServer, user: Any) -> None:
    w3 = Web3(Web3.HTTPProvider(node.url))
    assert w3.is_connected() and w3.eth.chain_id == 1337
    address = _deploy(w3, user)
    assert bytes(w3.eth.get_code(address)) == RUNTIME
    receipt = _send(w3, user, to=address, data=_word(7))
    assert receipt["status"] == 1 and receipt["blockNumber"] == w3.eth.block_number
    assert receipt["logs"][0]["topics"] == [STORED_TOPIC]
    assert int.from_bytes(w3.eth.call({"to": address}), "big") == 7
    assert int.from_bytes(w3.eth.get_storage_at(address, 0), "big") == 7
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": address})
    assert [log["transactionHash"] for log in logs] == [receipt["transactionHash"]]
    assert w3.eth.get_logs({"fromBlock": 0, "topics": [keccak(b"Other()")]}) == []
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    assert block["hash"] == receipt["blockHash"] and block["transactions"][0]["hash"] == receipt["transactionHash"]
    assert w3.eth.get_transaction(receipt["transactionHash"])["to"] == address
    # a signing middleware filling gas and fees itself, as applications use web3
    from web3.middleware import SignAndSendRawMiddlewareBuilder

    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(user), layer=0)
    tx_hash = w3.eth.send_transaction({"from": user.address, "to": address, "data": _word(8)})
    assert w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)["status"] == 1
    fees = w3.eth.fee_history(2, "latest", [50])
    assert len(fees["baseFeePerGas"]) == 3 and len(fees["reward"]) == 2
    assert w3.eth.gas_price > w3.eth.get_block("latest")["baseFeePerGas"] > 0


def test_estimate_gas_is_the_minimum_within_geth_tolerance(chain: EmbeddedChain, user: Any) -> None:
    w3 = chain.w3
    address = _deploy(w3, user)
    assert w3.eth.estimate_gas({"from": user.address, "to": Account.create().address, "value": 1}) == 21_000
    _send(w3, user, to=address, data=_word(9))
    estimate = w3.eth.estimate_gas({"from": user.address, "to": address, "data": _word(10)})
    # 3 % less runs out of gas (the estimate is within 1.5 % of the least that works) and changes nothing
    assert _send(w3, user, gas=estimate * 97 // 100, to=address, data=_word(10))["status"] == 0
    assert _send(w3, user, gas=estimate, to=address, data=_word(10))["status"] == 1


def test_reverts_are_code_3_with_reason_and_data_in_web3_and_raw(node: NodeServer, chain: EmbeddedChain, user: Any) -> None:
    from web3.exceptions import ContractLogicError

    address = _deploy(chain.w3, user)
    for method in ("eth_call", "eth_estimateGas"):
        response = rpc(node.url, method, {"from": user.address, "to": address, "data": "0x" + _word(0).hex()})
        assert response["error"] == {"code": 3, "message": "execution reverted: zero", "data": "0x" + ZERO_REVERT_DATA.hex()}
    with pytest.raises(ContractLogicError, match="execution reverted: zero") as info:
        chain.w3.eth.call({"to": address, "data": _word(0)})
    assert info.value.data == "0x" + ZERO_REVERT_DATA.hex()
    # a reverted transaction is still mined, with status 0
    assert _send(chain.w3, user, to=address, data=_word(0))["status"] == 0


def test_a_nonce_gap_waits_until_it_is_filled(chain: EmbeddedChain, user: Any) -> None:
    w3 = chain.w3
    nonce = w3.eth.get_transaction_count(user.address)
    to = Account.create().address
    signed = [
        user.sign_transaction({"chainId": 1337, "nonce": nonce + i, "to": to, "value": 1 + i, "gas": 21_000,
                               "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1})
        for i in range(2)
    ]
    later = w3.eth.send_raw_transaction(signed[1].raw_transaction)  # arrives first, as threads may deliver it
    assert w3.eth.get_transaction_count(user.address) == nonce
    first = w3.eth.send_raw_transaction(signed[0].raw_transaction)
    blocks = [w3.eth.get_transaction_receipt(h)["blockNumber"] for h in (first, later)]
    assert blocks[1] == blocks[0] + 1 and w3.eth.get_balance(to) == 3


def test_block_and_log_filters_report_what_is_new(chain: EmbeddedChain, user: Any) -> None:
    w3 = chain.w3
    address = _deploy(w3, user)
    blocks = w3.eth.filter("latest")
    logs = w3.eth.filter({"address": address})
    receipt = _send(w3, user, to=address, data=_word(5))
    assert blocks.get_new_entries() == [receipt["blockHash"]]
    assert [log["transactionHash"] for log in logs.get_new_entries()] == [receipt["transactionHash"]]
    assert logs.get_new_entries() == [] and blocks.get_new_entries() == []
    assert [log["transactionHash"] for log in logs.get_all_entries()] == [receipt["transactionHash"]]
    assert w3.eth.uninstall_filter(blocks.filter_id) is True


# ---------------------------------------------------------------------------------------------- the protocol
def test_batches_answer_each_request_in_order_and_skip_notifications(node: NodeServer, chain: EmbeddedChain) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": "two", "method": "no_such_method"},
        {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # a notification: no answer
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": ["0x1234"]},
        42,
    ]
    answers = requests.post(node.url, json=batch, timeout=30).json()
    assert answers[0] == {"jsonrpc": "2.0", "id": 1, "result": "0x539"}
    assert answers[1]["id"] == "two" and answers[1]["error"]["code"] == -32601
    assert answers[2]["id"] == 3 and answers[2]["error"]["code"] == -32602
    assert answers[3] == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
    assert len(answers) == 4
    w3 = Web3(Web3.HTTPProvider(node.url))
    with w3.batch_requests() as b:
        b.add(w3.eth.get_block(0))
        b.add(w3.eth.get_balance(chain.faucet.address))
        block, balance = b.execute()
    assert block["number"] == 0 and balance == 10**27


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"', -32700),  # malformed JSON
        (b"[]", -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":5}', -32600),
        (b'{"id":1,"method":"eth_chainId"}', -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0xnothex","latest"]}', -32602),
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[]}', -32602),
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[1,2]}', -32602),
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":{"a":1}}', -32602),
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["soon",false]}', -32602),
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x' + b"00" * 20 + b'","0xffff"]}', -32000),
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0xdeadbeef"]}', -32000),
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction","params":[{}]}', -32000),
        (b'{"jsonrpc":"2.0","id":1,"method":"debug_traceTransaction","params":[]}', -32601),
    ],
)
def test_errors_have_standard_codes_and_never_a_server_error(node: NodeServer, body: bytes, code: int) -> None:
    response = requests.post(node.url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 200
    answer = response.json()
    assert answer["error"]["code"] == code, answer
    assert "Traceback" not in response.text
    if code == -32700:
        assert answer["id"] is None


def test_rejected_transactions_say_why_in_geth_words(node: NodeServer, chain: EmbeddedChain, user: Any) -> None:
    def raw(**tx: Any) -> str:
        full = {"chainId": 1337, "nonce": 0, "to": user.address, "value": 1, "gas": 21_000, "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 1, **tx}
        return "0x" + bytes(user.sign_transaction(full).raw_transaction).hex()

    _send(chain.w3, user, to=user.address)  # nonce 0 is used
    assert rpc(node.url, "eth_sendRawTransaction", raw())["error"] == {"code": -32000, "message": "nonce too low: tx: 0 state: 1"}
    error = rpc(node.url, "eth_sendRawTransaction", raw(nonce=1, value=10**21))["error"]
    assert error["code"] == -32000 and error["message"].startswith("insufficient funds")
    error = rpc(node.url, "eth_sendRawTransaction", raw(nonce=1, chainId=5))["error"]
    assert error == {"code": -32000, "message": "invalid chain id for signer: have 5 want 1337"}


def test_http_cors_get_and_oversized_bodies(node: NodeServer) -> None:
    preflight = requests.options(node.url, headers={"Origin": "https://dapp.example",
                                                     "Access-Control-Request-Headers": "content-type"}, timeout=30)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    answer = requests.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=30)
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    got = requests.get(node.url, timeout=30)
    assert got.status_code == 405 and got.json()["error"]["code"] == -32600
    big = requests.post(node.url, data=b"[" + b" " * (6 * 1024 * 1024) + b"]", timeout=60)
    assert big.status_code == 413 and big.json()["error"]["code"] == -32600


def test_the_node_serves_loopback_only_unless_told(chain: EmbeddedChain) -> None:
    with pytest.raises(InvalidInputError, match="loopback"):
        NodeServer(chain, host="0.0.0.0", port=0)


def test_a_given_genesis_must_match_the_stored_one_on_reopen(tmp_path: Path) -> None:
    from ledgermind.chain.genesis import dev_genesis

    folder = tmp_path / "chain"
    EmbeddedChain(folder, genesis=dev_genesis(77)).close()
    with pytest.raises(StorageError, match="another genesis"):
        EmbeddedChain(folder, genesis=dev_genesis(77, accounts=2))
    with EmbeddedChain(folder) as chain:
        assert chain.chain_id == 77
        with pytest.raises(ExecutionError):
            chain.send_raw_transaction(b"\x02garbage")


# ---------------------------------------------------------------------------------------------- ethers.js
_ETHERS_SCRIPT = r"""
import { ethers } from "ethers";
const provider = new ethers.JsonRpcProvider(process.env.RPC_URL, undefined, { pollingInterval: 20 });
const wallet = new ethers.Wallet(process.env.KEY, provider);
const network = await provider.getNetwork();
const blockNumber = await provider.getBlockNumber();
const before = await provider.getBalance(wallet.address);
const tx = await wallet.sendTransaction({ to: process.env.TO, value: 12345n });
const receipt = await tx.wait();
let revert = null;
try { await provider.call({ to: process.env.CONTRACT, data: ethers.zeroPadValue("0x00", 32) }); }
catch (e) { revert = { code: e.code, reason: e.reason, data: e.data }; }
console.log(JSON.stringify({
  chainId: network.chainId.toString(), blockNumber, receiptBlock: receipt.blockNumber, before: before.toString(),
  received: (await provider.getBalance(process.env.TO)).toString(), status: receipt.status, hash: tx.hash,
  stored: BigInt(await provider.call({ to: process.env.CONTRACT })).toString(), revert,
}));
provider.destroy();
"""


@pytest.fixture(scope="session")
def ethers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the ethers.js check needs node and npm on PATH (Node 18+); install them, e.g. apt-get install nodejs npm")
    folder = tmp_path_factory.mktemp("ethers")
    proc = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "ethers@6"], cwd=folder, capture_output=True,
        text=True, timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(f"npm install ethers@6 failed (is the npm registry reachable?): {proc.stderr[-2000:]}")
    (folder / "check.mjs").write_text(_ETHERS_SCRIPT)
    return folder


@pytest.mark.slow
def test_ethers_js_reads_and_sends_through_the_node(ethers_dir: Path, node: NodeServer, chain: EmbeddedChain, user: Any) -> None:
    address = _deploy(chain.w3, user)
    _send(chain.w3, user, to=address, data=_word(5))
    to = Account.create().address
    balance, head = chain.w3.eth.get_balance(user.address), chain.w3.eth.block_number
    env = {**os.environ, "RPC_URL": node.url, "KEY": user.key.hex(), "TO": to, "CONTRACT": address}
    proc = subprocess.run(["node", "check.mjs"], cwd=ethers_dir, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["chainId"] == "1337" and out["before"] == str(balance)
    assert out["status"] == 1 and out["received"] == "12345" and out["stored"] == "5"
    assert out["blockNumber"] == head and out["receiptBlock"] == head + 1 == chain.w3.eth.block_number
    assert chain.w3.eth.get_transaction_receipt(out["hash"])["status"] == 1
    assert out["revert"] == {"code": "CALL_EXCEPTION", "reason": "zero", "data": "0x" + ZERO_REVERT_DATA.hex()}

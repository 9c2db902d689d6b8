"""The embedded chain's JSON-RPC node: standard Ethereum JSON-RPC over HTTP on loopback, and the same code
in-process as a web3 provider.

What web3.py, ethers.js and wallets use is there: chain and block data, state reads, calls, gas estimates, fee
data, raw transactions, receipts, logs and filters, with geth's shapes and error codes (checked against the
execution-apis conformance cases in ``tests/test_rpc_conformance.py``): -32700 malformed JSON (id null),
-32600 invalid request, -32601 unknown method, -32602 invalid params, 3 for a revert ("execution reverted:
<reason>", revert data in ``data``), -32000 for a rejected transaction or a missing block, -32603 for an
unexpected failure (logged, never a traceback to the client, never an HTTP 500).

The node holds no keys (``eth_accounts`` is empty; transactions arrive signed) and logs no request bodies.
The one dev method, ``ledgermind_fund(address, wei)``, pays from the chain's faucet. Requests are answered one
at a time under the chain's lock; HTTP connections are served by threads.

Run a node: ``python -m ledgermind.chain.rpc_server --home DIR [--port 8545]`` prints its URL, serves until
SIGTERM/SIGINT, and writes ``node.json`` (pid, URL) into the chain folder while it runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import rlp
from web3.providers.base import JSONBaseProvider

from ledgermind.chain.embedded import DEFAULT_PRIORITY_FEE, NODE_FILE, ExecutionError
from ledgermind.errors import InvalidInputError, LedgermindError

if TYPE_CHECKING:
    from ledgermind.chain.embedded import EmbeddedChain

log = logging.getLogger("ledgermind.chain.rpc")

CLIENT_VERSION = "ledgermind/v0.1.0/py-evm"
MAX_BODY = 5 * 1024 * 1024  # geth's limit for an HTTP request body
MAX_BATCH = 1000
MAX_FILTERS = 1000
FILTER_TIMEOUT = 300.0  # seconds without a poll before a filter is dropped, as geth
ZERO_ADDRESS = b"\x00" * 20
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
PANIC_REASONS = {  # solidity's panic codes, worded as geth words them
    0x00: "generic panic", 0x01: "assert(false)", 0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero", 0x21: "enum overflow", 0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array", 0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory", 0x51: "uninitialized function",
}


class RpcError(Exception):
    """A JSON-RPC error response: ``code``, one-line ``message``, optional ``data`` (hex string)."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def _invalid(index: int, why: str) -> RpcError:
    return RpcError(-32602, f"invalid argument {index}: {why}")


# ---------------------------------------------------------------------------------------------- decoding
def _hexstr(value: Any, index: int) -> str:
    if not isinstance(value, str) or value[:2] not in ("0x", "0X"):
        raise _invalid(index, f"hex string without 0x prefix: {str(value)[:80]!r}")
    return value[2:]


def _quantity(value: Any, index: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value  # lenient: some clients send JSON numbers
    digits = _hexstr(value, index)
    if not digits or len(digits) > 64:
        raise _invalid(index, f"hex number must have 1 to 64 digits: {value!r}")
    try:
        return int(digits, 16)
    except ValueError:
        raise _invalid(index, f"invalid hex number {value!r}") from None


def _data(value: Any, index: int) -> bytes:
    digits = _hexstr(value, index)
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise _invalid(index, f"invalid hex data {str(value)[:80]!r}") from None


def _fixed(value: Any, index: int, size: int, what: str) -> bytes:
    raw = _data(value, index)
    if len(raw) != size:
        raise _invalid(index, f"hex string has length {2 * len(raw)}, want {2 * size} for {what}")
    return raw


def _address(value: Any, index: int) -> bytes:
    return _fixed(value, index, 20, "common.Address")


def _hash(value: Any, index: int) -> bytes:
    return _fixed(value, index, 32, "common.Hash")


def _storage_slot(value: Any, index: int) -> int:
    """A storage key: 32-byte hex data or a quantity ("0x0"), as geth accepts both."""
    return _quantity(value, index)


# ---------------------------------------------------------------------------------------------- encoding
def _q(n: int) -> str:
    return hex(n)


def _d(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _h32(n: int) -> str:
    return "0x" + n.to_bytes(32, "big").hex()


def revert_message(data: bytes) -> str:
    """geth's message for a revert: the Error(string) reason or the Panic(uint256) meaning when present."""
    if data[:4] == ERROR_SELECTOR and len(data) >= 68:
        # decoded leniently, as geth does: contracts (and the conformance chain) leave the string unpadded
        offset = 4 + int.from_bytes(data[4:36], "big")
        if offset + 32 <= len(data):
            length = int.from_bytes(data[offset : offset + 32], "big")
            text = data[offset + 32 : offset + 32 + length]
            if len(text) == length:
                return "execution reverted: " + text.decode("utf-8", errors="replace")
    if data[:4] == PANIC_SELECTOR and len(data) == 36:
        code = int.from_bytes(data[4:], "big")
        return "execution reverted: " + PANIC_REASONS.get(code, f"unknown panic code: {code:#x}")
    return "execution reverted"


def _rejection(message: str) -> str:
    """py-evm's words for a rejected transaction in geth's words, which clients and people know."""
    import re

    m = re.match(r"Invalid transaction nonce: Expected (\d+), but got (\d+)", message)
    if m:
        state, tx = int(m.group(1)), int(m.group(2))
        return f"nonce too {'low' if tx < state else 'high'}: tx: {tx} state: {state}"
    if "cannot afford txn gas" in message or "enough balance" in message:
        return "insufficient funds for gas * price + value"
    if message.startswith("Transaction exceeds gas limit"):
        return "exceeds block gas limit"
    return message


# ---------------------------------------------------------------------------------------------- filters
class _Filter:
    __slots__ = ("kind", "criteria", "last_block", "last_poll")

    def __init__(self, kind: str, criteria: dict[str, Any] | None, last_block: int) -> None:
        self.kind = kind  # "block", "pending" or "logs"
        self.criteria = criteria
        self.last_block = last_block
        self.last_poll = time.monotonic()


# ---------------------------------------------------------------------------------------------- the handler
_METHODS: dict[str, Callable[..., Any]] = {}
_ARITY: dict[str, tuple[int, float]] = {}  # method -> (required params, most params)


def _method(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        import inspect

        params = list(inspect.signature(fn).parameters.values())[1:]  # after the handler
        positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        least = sum(1 for p in positional if p.default is p.empty)
        most = float("inf") if any(p.kind is p.VAR_POSITIONAL for p in params) else len(positional)
        _METHODS[name] = fn
        _ARITY[name] = (least, most)
        return fn

    return register


class RpcHandler:
    """Answers JSON-RPC requests (bytes in, bytes out) against one embedded chain."""

    def __init__(self, chain: EmbeddedChain) -> None:
        self.chain = chain
        self.evm = chain.evm
        self._filters: dict[str, _Filter] = {}

    # ------------------------------------------------------------------ protocol
    def handle_bytes(self, body: bytes) -> bytes | None:
        """The response to a request body (single or batch); None when every request was a notification."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            try:  # orjson refuses integers beyond 64 bits, which JSON allows
                request = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                return _dumps(_error_response(None, RpcError(-32700, "parse error")))
        if isinstance(request, list):
            if not request:
                return _dumps(_error_response(None, RpcError(-32600, "empty batch")))
            if len(request) > MAX_BATCH:
                return _dumps(_error_response(None, RpcError(-32600, f"batch too large (over {MAX_BATCH})")))
            responses = [r for r in (self.handle_object(item) for item in request) if r is not None]
            return _dumps(responses) if responses else None
        response = self.handle_object(request)
        return None if response is None else _dumps(response)

    def handle_object(self, request: Any) -> dict[str, Any] | None:
        """One decoded request object to its response object (None for a notification)."""
        if not isinstance(request, dict):
            return _error_response(None, RpcError(-32600, "invalid request"))
        has_id = "id" in request
        rid = request.get("id")
        method = request.get("method")
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str) or isinstance(rid, (dict, list)):
            return _error_response(rid, RpcError(-32600, "invalid request"))
        params = request.get("params", [])
        if params is None:
            params = []
        try:
            if not isinstance(params, list):
                raise RpcError(-32602, "non-array args")
            fn = _METHODS.get(method)
            if fn is None:
                raise RpcError(-32601, f"the method {method} does not exist/is not available")
            least, most = _ARITY[method]
            if len(params) < least:
                raise RpcError(-32602, f"missing value for required argument {len(params)}")
            if len(params) > most:
                raise RpcError(-32602, f"too many arguments, want at most {most}")
            with self.chain.lock:
                result = fn(self, *params)
            response: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "result": result}
        except RpcError as e:
            response = _error_response(rid, e)
        except LedgermindError as e:  # a closed chain, a storage failure: say it, in one line
            response = _error_response(rid, RpcError(-32000, str(e)))
        except Exception as e:  # noqa: BLE001 - the client gets a JSON-RPC error, never a traceback
            log.exception("internal error in %s", method)
            response = _error_response(rid, RpcError(-32603, f"internal error: {type(e).__name__}"))
        return response if has_id else None

    # ------------------------------------------------------------------ blocks
    def _head(self) -> Any:
        return self.evm.get_canonical_head()

    def _header(self, ref: Any, index: int, *, missing_ok: bool = False) -> Any:
        """The header a block parameter names: tag, number, hash, or an EIP-1898 object.

        Returns None for a block that does not exist when ``missing_ok``; raises -32000 "header not found" otherwise.
        """
        from eth.exceptions import HeaderNotFound

        head = self._head()
        require_canonical = False
        if ref is None or ref in ("latest", "pending", "safe", "finalized"):
            return head  # blocks are final as soon as they are mined: there is no pending block either
        if ref == "earliest":
            return self.evm.get_canonical_block_header_by_number(0)
        if isinstance(ref, dict):
            if "blockHash" in ref:
                block_hash = _hash(ref["blockHash"], index)
                require_canonical = bool(ref.get("requireCanonical", False))
            elif "blockNumber" in ref:
                return self._header(ref["blockNumber"], index, missing_ok=missing_ok)
            else:
                raise _invalid(index, "block object needs blockHash or blockNumber")
        elif isinstance(ref, str) and len(ref) == 66:
            block_hash = _hash(ref, index)
        else:
            if isinstance(ref, str) and not ref.startswith("0x"):
                raise _invalid(index, f"invalid block tag {ref!r}")
            number = _quantity(ref, index)
            if number > head.block_number:
                if missing_ok:
                    return None
                raise RpcError(-32000, "header not found")
            return self.evm.get_canonical_block_header_by_number(number)
        try:
            header = self.evm.get_block_header_by_hash(block_hash)
        except HeaderNotFound:
            if missing_ok:
                return None
            raise RpcError(-32000, "header for hash not found") from None
        if require_canonical and self._canonical_hash(header.block_number) != header.hash:
            raise RpcError(-32000, f"hash {_d(block_hash)} is not currently canonical")
        return header

    def _canonical_hash(self, number: int) -> bytes | None:
        from eth.exceptions import HeaderNotFound

        try:
            return self.evm.get_canonical_block_hash(number)
        except HeaderNotFound:
            return None

    def _block(self, header: Any) -> Any:
        return self.evm.get_block_by_header(header)

    def _state(self, ref: Any, index: int) -> Any:
        return self.evm.get_vm(self._header(ref, index)).state

    # ------------------------------------------------------------------ serialization
    def _tx_json(self, block: Any, tx: Any, index: int) -> dict[str, Any]:
        header = block.header
        type_id = getattr(tx, "type_id", None) or 0
        out: dict[str, Any] = {
            "blockHash": _d(header.hash),
            "blockNumber": _q(header.block_number),
            "blockTimestamp": _q(header.timestamp),
            "from": _d(tx.sender),
            "gas": _q(tx.gas),
            "gasPrice": _q(self._effective_gas_price(tx, header)),
        }
        if type_id >= 2:
            out["maxFeePerGas"] = _q(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = _q(tx.max_priority_fee_per_gas)
        if type_id == 3:
            out["maxFeePerBlobGas"] = _q(tx.max_fee_per_blob_gas)
        out.update(
            {
                "hash": _d(tx.hash),
                "input": _d(tx.data),
                "nonce": _q(tx.nonce),
                "to": _d(tx.to) if tx.to else None,
                "transactionIndex": _q(index),
                "value": _q(tx.value),
                "type": _q(type_id),
            }
        )
        if type_id >= 1:
            out["accessList"] = [
                {"address": _d(address), "storageKeys": [_h32(k) for k in keys]} for address, keys in tx.access_list
            ]
            out["chainId"] = _q(tx.chain_id)
        elif tx.v >= 35:  # EIP-155: the chain id is folded into v
            out["chainId"] = _q((tx.v - 35) // 2)
        if type_id == 3:
            out["blobVersionedHashes"] = [_d(h) for h in tx.blob_versioned_hashes]
        if type_id == 4:
            out["authorizationList"] = [
                {
                    "chainId": _q(a.chain_id), "address": _d(a.address), "nonce": _q(a.nonce),
                    "yParity": _q(a.y_parity), "r": _q(a.r), "s": _q(a.s),
                }
                for a in tx.authorization_list
            ]
        if type_id >= 1:
            out.update({"v": _q(tx.y_parity), "r": _q(tx.r), "s": _q(tx.s), "yParity": _q(tx.y_parity)})
        else:
            out.update({"v": _q(tx.v), "r": _q(tx.r), "s": _q(tx.s)})
        return out

    @staticmethod
    def _effective_gas_price(tx: Any, header: Any) -> int:
        type_id = getattr(tx, "type_id", None) or 0
        base_fee = getattr(header, "base_fee_per_gas", None)
        if type_id < 2 or base_fee is None:
            return tx.gas_price
        return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)

    def _max_blob_gas(self, number: int) -> int:
        fork = [name for start, name in self.chain.spec.forks if start <= number][-1]
        return (6 if fork == "cancun" else 9) * 2**17  # EIP-4844's 6 blobs a block, EIP-7691's 9 from Prague

    def _blob_base_fee(self, header: Any) -> int:
        return self.evm.get_vm(header).state.blob_base_fee

    def _receipts_json(self, block: Any, only: int | None = None) -> list[dict[str, Any]]:
        """Receipts of ``block`` (or of its transaction at index ``only``), with logs, as geth shapes them."""
        from eth._utils.address import generate_contract_address

        header = block.header
        receipts = block.get_receipts(self.evm.chaindb)
        out = []
        log_index = 0
        previous_gas = 0
        for index, (tx, receipt) in enumerate(zip(block.transactions, receipts)):
            gas_used = receipt.gas_used - previous_gas
            previous_gas = receipt.gas_used
            first_log = log_index
            log_index += len(receipt.logs)
            if only is not None and index != only:
                continue
            type_id = getattr(tx, "type_id", None) or 0
            entry: dict[str, Any] = {}
            if type_id == 3:
                blob_gas = len(tx.blob_versioned_hashes) * 2**17
                entry["blobGasPrice"] = _q(self._blob_base_fee(header))
                entry["blobGasUsed"] = _q(blob_gas)
            entry.update(
                {
                    "blockHash": _d(header.hash),
                    "blockNumber": _q(header.block_number),
                    "contractAddress": _d(generate_contract_address(tx.sender, tx.nonce)) if not tx.to else None,
                    "cumulativeGasUsed": _q(receipt.gas_used),
                    "effectiveGasPrice": _q(self._effective_gas_price(tx, header)),
                    "from": _d(tx.sender),
                    "gasUsed": _q(gas_used),
                    "logs": self._logs_json(block, tx, index, receipt.logs, first_log),
                    "logsBloom": _h256(receipt.bloom),
                }
            )
            if len(receipt.state_root) == 32:  # before Byzantium a receipt carries the state root, not a status
                entry["root"] = _d(receipt.state_root)
            else:
                entry["status"] = "0x1" if receipt.state_root == b"\x01" else "0x0"
            entry.update(
                {
                    "to": _d(tx.to) if tx.to else None,
                    "transactionHash": _d(tx.hash),
                    "transactionIndex": _q(index),
                    "type": _q(type_id),
                }
            )
            out.append(entry)
        return out

    @staticmethod
    def _logs_json(block: Any, tx: Any, tx_index: int, logs: Sequence[Any], first_index: int) -> list[dict[str, Any]]:
        header = block.header
        return [
            {
                "address": _d(entry.address),
                "topics": [_h32(t) for t in entry.topics],
                "data": _d(entry.data),
                "blockNumber": _q(header.block_number),
                "transactionHash": _d(tx.hash),
                "transactionIndex": _q(tx_index),
                "blockHash": _d(header.hash),
                "blockTimestamp": _q(header.timestamp),
                "logIndex": _q(first_index + i),
                "removed": False,
            }
            for i, entry in enumerate(logs)
        ]

    def _block_json(self, block: Any, full: bool) -> dict[str, Any]:
        h = block.header
        out: dict[str, Any] = {
            "hash": _d(h.hash),
            "parentHash": _d(h.parent_hash),
            "sha3Uncles": _d(h.uncles_hash),
            "miner": _d(h.coinbase),
            "stateRoot": _d(h.state_root),
            "transactionsRoot": _d(h.transaction_root),
            "receiptsRoot": _d(h.receipt_root),
            "logsBloom": _h256(h.bloom),
            "difficulty": _q(h.difficulty),
            "number": _q(h.block_number),
            "gasLimit": _q(h.gas_limit),
            "gasUsed": _q(h.gas_used),
            "timestamp": _q(h.timestamp),
            "extraData": _d(h.extra_data),
            "mixHash": _d(h.mix_hash),
            "nonce": _d(h.nonce),
            "size": _q(len(rlp.encode(block))),
        }
        for attr, key, fmt in (
            ("base_fee_per_gas", "baseFeePerGas", _q),
            ("withdrawals_root", "withdrawalsRoot", _d),
            ("blob_gas_used", "blobGasUsed", _q),
            ("excess_blob_gas", "excessBlobGas", _q),
            ("parent_beacon_block_root", "parentBeaconBlockRoot", _d),
            ("requests_hash", "requestsHash", _d),
        ):
            value = getattr(h, attr, None)
            if value is not None:
                out[key] = fmt(value)
        if full:
            out["transactions"] = [self._tx_json(block, tx, i) for i, tx in enumerate(block.transactions)]
        else:
            out["transactions"] = [_d(tx.hash) for tx in block.transactions]
        out["uncles"] = [_d(u.hash) for u in block.uncles]
        if hasattr(block, "withdrawals") and getattr(h, "withdrawals_root", None) is not None:
            out["withdrawals"] = [
                {"index": _q(w.index), "validatorIndex": _q(w.validator_index), "address": _d(w.address),
                 "amount": _q(w.amount)}
                for w in block.withdrawals
            ]
        return out

    # ------------------------------------------------------------------ transactions in calls
    def _call_tx(self, obj: Any, index: int) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise _invalid(index, "transaction call object expected")
        tx: dict[str, Any] = {}
        if obj.get("from") is not None:
            tx["from"] = _address(obj["from"], index)
        if obj.get("to") is not None:
            tx["to"] = _address(obj["to"], index)
        for key, name in (
            ("gas", "gas"), ("gasPrice", "gas_price"), ("maxFeePerGas", "max_fee_per_gas"),
            ("maxPriorityFeePerGas", "max_priority_fee_per_gas"), ("value", "value"),
        ):
            if obj.get(key) is not None:
                tx[name] = _quantity(obj[key], index)
        data, input_ = obj.get("data"), obj.get("input")
        if data is not None and input_ is not None and data != input_:
            raise _invalid(index, 'both "data" and "input" are set and not equal')
        if input_ is not None or data is not None:
            tx["data"] = _data(input_ if input_ is not None else data, index)
        if obj.get("gasPrice") is not None and (
            obj.get("maxFeePerGas") is not None or obj.get("maxPriorityFeePerGas") is not None
        ):
            raise _invalid(index, "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
        if obj.get("chainId") is not None and _quantity(obj["chainId"], index) != self.chain.chain_id:
            raise _invalid(index, f"chainId does not match node's (have={self.chain.chain_id})")
        if obj.get("accessList"):
            try:
                tx["access_list"] = tuple(
                    (_address(item["address"], index), tuple(_storage_slot(k, index) for k in item.get("storageKeys", [])))
                    for item in obj["accessList"]
                )
            except (KeyError, TypeError):
                raise _invalid(index, "malformed accessList") from None
        return tx

    def _execution_error(self, e: ExecutionError) -> RpcError:
        if e.reverted and e.data:
            return RpcError(3, revert_message(e.data), _d(e.data))
        return RpcError(-32000, str(e))

    # ------------------------------------------------------------------ logs
    def _log_criteria(self, obj: Any, index: int) -> dict[str, Any]:
        if obj is None:
            obj = {}
        if not isinstance(obj, dict):
            raise _invalid(index, "filter object expected")
        criteria: dict[str, Any] = {"addresses": None, "topics": []}
        address = obj.get("address")
        if address is not None:
            addresses = address if isinstance(address, list) else [address]
            criteria["addresses"] = {_address(a, index) for a in addresses} or None
        topics = obj.get("topics") or []
        if not isinstance(topics, list) or len(topics) > 4:
            raise _invalid(index, "topics must be a list of at most 4 positions")
        for position in topics:
            if position is None or position == []:
                criteria["topics"].append(None)  # wildcard
            else:
                options = position if isinstance(position, list) else [position]
                criteria["topics"].append({int.from_bytes(_hash(t, index), "big") for t in options})
        if obj.get("blockHash") is not None:
            if obj.get("fromBlock") is not None or obj.get("toBlock") is not None:
                raise _invalid(index, "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
            criteria["block_hash"] = _hash(obj["blockHash"], index)
        else:
            criteria["from"] = obj.get("fromBlock")
            criteria["to"] = obj.get("toBlock")
        return criteria

    def _range(self, criteria: dict[str, Any], index: int) -> tuple[int, int]:
        head = self._head().block_number

        def bound(ref: Any) -> int:
            if ref is None or ref in ("latest", "pending", "safe", "finalized"):
                return head
            if ref == "earliest":
                return 0
            return _quantity(ref, index)

        start, end = bound(criteria["from"]), bound(criteria["to"])
        if start > head or end > head:
            raise RpcError(-32602, "block range extends beyond current head block")
        if start > end:
            raise RpcError(-32602, "invalid block range params")
        return start, end

    def _logs_in(self, header: Any, criteria: dict[str, Any]) -> list[dict[str, Any]]:
        if not _bloom_may_match(header.bloom, criteria):
            return []
        block = self._block(header)
        out = []
        first = 0
        for index, (tx, receipt) in enumerate(zip(block.transactions, block.get_receipts(self.evm.chaindb))):
            out.extend(e for e in self._logs_json(block, tx, index, receipt.logs, first) if _log_matches(e, criteria))
            first += len(receipt.logs)
        return out

    def _logs(self, criteria: dict[str, Any], index: int, start: int | None = None) -> list[dict[str, Any]]:
        if "block_hash" in criteria:
            header = self._header({"blockHash": _d(criteria["block_hash"])}, index, missing_ok=True)
            if header is None:
                raise RpcError(-32000, "unknown block")
            return self._logs_in(header, criteria)
        first, last = self._range(criteria, index)
        if start is not None:
            first = max(first, start)
        out: list[dict[str, Any]] = []
        for number in range(first, last + 1):
            out.extend(self._logs_in(self.evm.get_canonical_block_header_by_number(number), criteria))
        return out

    # ------------------------------------------------------------------ fees
    def _next_header(self) -> Any:
        """The header the next block will have (its base fee and blob fee are what a transaction pays now)."""
        return self.evm.create_header_from_parent(self._head())

    def _new_filter(self, kind: str, criteria: dict[str, Any] | None) -> str:
        now = time.monotonic()
        for fid in [f for f, flt in self._filters.items() if now - flt.last_poll > FILTER_TIMEOUT]:
            del self._filters[fid]
        if len(self._filters) >= MAX_FILTERS:
            del self._filters[next(iter(self._filters))]
        fid = "0x" + secrets.token_hex(16)
        self._filters[fid] = _Filter(kind, criteria, self._head().block_number)
        return fid


def _h256(bloom: int) -> str:
    return "0x" + bloom.to_bytes(256, "big").hex()


def _bloom_may_match(bloom_int: int, criteria: dict[str, Any]) -> bool:
    from eth_bloom import BloomFilter

    bloom = BloomFilter(bloom_int)
    if criteria["addresses"] and not any(a in bloom for a in criteria["addresses"]):
        return False
    for options in criteria["topics"]:
        if options and not any(t.to_bytes(32, "big") in bloom for t in options):
            return False
    return True


def _log_matches(entry: dict[str, Any], criteria: dict[str, Any]) -> bool:
    if criteria["addresses"] and bytes.fromhex(entry["address"][2:]) not in criteria["addresses"]:
        return False
    topics = entry["topics"]
    for position, options in enumerate(criteria["topics"]):
        if options is None:
            continue
        if position >= len(topics) or int(topics[position], 16) not in options:
            return False
    return True


def _error_response(rid: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": error.to_json()}


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # an id beyond 64 bits
        return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------- methods
@_method("web3_clientVersion")
def _client_version(h: RpcHandler) -> str:
    return f"{CLIENT_VERSION}/python{sys.version_info.major}.{sys.version_info.minor}"


@_method("web3_sha3")
def _sha3(h: RpcHandler, data: Any) -> str:
    from eth_hash.auto import keccak

    return _d(keccak(_data(data, 0)))


@_method("net_version")
def _net_version(h: RpcHandler) -> str:
    return str(h.chain.chain_id)


@_method("net_listening")
def _net_listening(h: RpcHandler) -> bool:
    return True


@_method("net_peerCount")
def _net_peer_count(h: RpcHandler) -> str:
    return "0x0"


@_method("eth_chainId")
def _chain_id(h: RpcHandler) -> str:
    return _q(h.chain.chain_id)


@_method("eth_syncing")
def _syncing(h: RpcHandler) -> bool:
    return False


@_method("eth_mining")
def _mining(h: RpcHandler) -> bool:
    return False


@_method("eth_accounts")
def _accounts(h: RpcHandler) -> list[str]:
    return []  # the node holds no keys


@_method("eth_blockNumber")
def _block_number(h: RpcHandler) -> str:
    return _q(h._head().block_number)


@_method("eth_gasPrice")
def _gas_price(h: RpcHandler) -> str:
    return _q((getattr(h._next_header(), "base_fee_per_gas", None) or 0) + DEFAULT_PRIORITY_FEE)


@_method("eth_maxPriorityFeePerGas")
def _max_priority_fee(h: RpcHandler) -> str:
    return _q(DEFAULT_PRIORITY_FEE)


@_method("eth_blobBaseFee")
def _blob_base_fee(h: RpcHandler) -> str:
    header = h._next_header()
    if getattr(header, "excess_blob_gas", None) is None:
        raise RpcError(-32000, "blobs are not enabled on this chain's fork")
    return _q(h._blob_base_fee(header))


@_method("eth_feeHistory")
def _fee_history(h: RpcHandler, count: Any, newest: Any, percentiles: Any = None) -> dict[str, Any]:
    blocks = _quantity(count, 0)
    if blocks < 1:
        raise _invalid(0, "block count must be at least 1")
    blocks = min(blocks, 1024)
    last = h._header(newest, 1)
    if percentiles is not None:
        if not isinstance(percentiles, list) or not all(isinstance(p, (int, float)) and 0 <= p <= 100 for p in percentiles):
            raise _invalid(2, "reward percentiles must be numbers between 0 and 100")
        if any(b < a for a, b in zip(percentiles, percentiles[1:])):
            raise _invalid(2, "reward percentiles must be ascending")
    first = max(0, last.block_number - blocks + 1)
    base_fees, ratios, blob_fees, blob_ratios, rewards = [], [], [], [], []
    for number in range(first, last.block_number + 1):
        header = h.evm.get_canonical_block_header_by_number(number)
        base_fees.append(_q(getattr(header, "base_fee_per_gas", None) or 0))
        ratios.append(header.gas_used / header.gas_limit if header.gas_limit else 0.0)
        has_blobs = getattr(header, "excess_blob_gas", None) is not None
        blob_fees.append(_q(h._blob_base_fee(header) if has_blobs else 0))
        blob_ratios.append((header.blob_gas_used / h._max_blob_gas(number)) if has_blobs else 0.0)
        if percentiles is not None:
            rewards.append([_q(r) for r in _rewards(h, header, percentiles)])
    if last.block_number == h._head().block_number:
        following = h._next_header()
    else:
        following = h.evm.get_canonical_block_header_by_number(last.block_number + 1)
    base_fees.append(_q(getattr(following, "base_fee_per_gas", None) or 0))
    has_blobs = getattr(following, "excess_blob_gas", None) is not None
    blob_fees.append(_q(h._blob_base_fee(following) if has_blobs else 0))
    out: dict[str, Any] = {
        "oldestBlock": _q(first),
        "baseFeePerGas": base_fees,
        "gasUsedRatio": ratios,
        "baseFeePerBlobGas": blob_fees,
        "blobGasUsedRatio": blob_ratios,
    }
    if percentiles is not None:
        out["reward"] = rewards
    return out


def _rewards(h: RpcHandler, header: Any, percentiles: Sequence[float]) -> list[int]:
    """Effective tips at the given percentiles of gas used in the block, as geth computes them."""
    block = h._block(header)
    if not block.transactions:
        return [0 for _ in percentiles]
    base_fee = getattr(header, "base_fee_per_gas", None) or 0
    receipts = block.get_receipts(h.evm.chaindb)
    used, previous, tips = [], 0, []
    for tx, receipt in zip(block.transactions, receipts):
        used.append(receipt.gas_used - previous)
        previous = receipt.gas_used
        tips.append(h._effective_gas_price(tx, header) - base_fee)
    ordered = sorted(zip(tips, used))
    out, i, cumulative = [], 0, ordered[0][1]
    for p in percentiles:
        threshold = header.gas_used * p / 100
        while cumulative < threshold and i < len(ordered) - 1:
            i += 1
            cumulative += ordered[i][1]
        out.append(max(0, ordered[i][0]))
    return out


@_method("eth_getBalance")
def _get_balance(h: RpcHandler, address: Any, block: Any = "latest") -> str:
    return _q(h._state(block, 1).get_balance(_address(address, 0)))


@_method("eth_getCode")
def _get_code(h: RpcHandler, address: Any, block: Any = "latest") -> str:
    return _d(h._state(block, 1).get_code(_address(address, 0)))


@_method("eth_getStorageAt")
def _get_storage_at(h: RpcHandler, address: Any, slot: Any, block: Any = "latest") -> str:
    return _h32(h._state(block, 2).get_storage(_address(address, 0), _storage_slot(slot, 1)))


@_method("eth_getTransactionCount")
def _get_transaction_count(h: RpcHandler, address: Any, block: Any = "latest") -> str:
    return _q(h._state(block, 1).get_nonce(_address(address, 0)))


@_method("eth_call")
def _call(h: RpcHandler, tx: Any, block: Any = "latest", overrides: Any = None, *_: Any) -> str:
    if overrides:
        raise _invalid(2, "state overrides are not supported by this node")
    call = h._call_tx(tx, 0)
    header = h._header(block, 1)
    try:
        result = h.chain.call(call, header)
    except ExecutionError as e:
        raise RpcError(-32000, _rejection(str(e))) from None
    if result.reverted:
        if result.output:
            raise RpcError(3, revert_message(result.output), _d(result.output))
        raise RpcError(-32000, "execution reverted")
    if result.error is not None:
        raise RpcError(-32000, result.error)
    return _d(result.output)


@_method("eth_estimateGas")
def _estimate_gas(h: RpcHandler, tx: Any, block: Any = "latest", overrides: Any = None) -> str:
    if overrides:
        raise _invalid(2, "state overrides are not supported by this node")
    call = h._call_tx(tx, 0)
    header = h._header(block, 1)
    try:
        return _q(h.chain.estimate_gas(call, header))
    except ExecutionError as e:
        if e.reverted:
            raise h._execution_error(e) from None
        raise RpcError(-32000, _rejection(str(e))) from None


@_method("eth_sendRawTransaction")
def _send_raw_transaction(h: RpcHandler, raw: Any) -> str:
    data = _data(raw, 0)
    if not data:
        raise _invalid(0, "empty transaction")
    try:
        return _d(h.chain.send_raw_transaction(data))
    except ExecutionError as e:
        raise RpcError(-32000, _rejection(str(e))) from None


@_method("eth_sendTransaction")
def _send_transaction(h: RpcHandler, *_: Any) -> Any:
    raise RpcError(-32000, "unknown account: this node holds no keys; sign locally and use eth_sendRawTransaction")


def _lookup(h: RpcHandler, tx_hash: bytes) -> tuple[Any, int] | None:
    from eth.exceptions import TransactionNotFound

    try:
        number, index = h.evm.chaindb.get_transaction_index(tx_hash)
    except TransactionNotFound:
        return None
    return h.evm.get_canonical_block_by_number(number), index


@_method("eth_getTransactionByHash")
def _get_transaction_by_hash(h: RpcHandler, tx_hash: Any) -> dict[str, Any] | None:
    found = _lookup(h, _hash(tx_hash, 0))
    if found is None:
        return None
    block, index = found
    return h._tx_json(block, block.transactions[index], index)


@_method("eth_getTransactionReceipt")
def _get_transaction_receipt(h: RpcHandler, tx_hash: Any) -> dict[str, Any] | None:
    found = _lookup(h, _hash(tx_hash, 0))
    if found is None:
        return None
    block, index = found
    return h._receipts_json(block, only=index)[0]


@_method("eth_getBlockReceipts")
def _get_block_receipts(h: RpcHandler, block: Any) -> list[dict[str, Any]] | None:
    header = h._header(block, 0, missing_ok=True)
    return None if header is None else h._receipts_json(h._block(header))


def _block_by(h: RpcHandler, ref: Any, full: Any) -> dict[str, Any] | None:
    if not isinstance(full, bool):
        raise _invalid(1, "full transactions flag must be a boolean")
    header = h._header(ref, 0, missing_ok=True)
    return None if header is None else h._block_json(h._block(header), full)


@_method("eth_getBlockByNumber")
def _get_block_by_number(h: RpcHandler, number: Any, full: Any = False) -> dict[str, Any] | None:
    if isinstance(number, str) and len(number) == 66:
        raise _invalid(0, "block number expected, got a hash")
    return _block_by(h, number, full)


@_method("eth_getBlockByHash")
def _get_block_by_hash(h: RpcHandler, block_hash: Any, full: Any = False) -> dict[str, Any] | None:
    return _block_by(h, {"blockHash": _d(_hash(block_hash, 0))}, full)


def _tx_in_block(h: RpcHandler, ref: Any, index: Any) -> dict[str, Any] | None:
    header = h._header(ref, 0, missing_ok=True)
    i = _quantity(index, 1)
    if header is None:
        return None
    block = h._block(header)
    return h._tx_json(block, block.transactions[i], i) if i < len(block.transactions) else None


@_method("eth_getTransactionByBlockHashAndIndex")
def _tx_by_hash_index(h: RpcHandler, block_hash: Any, index: Any) -> dict[str, Any] | None:
    return _tx_in_block(h, {"blockHash": _d(_hash(block_hash, 0))}, index)


@_method("eth_getTransactionByBlockNumberAndIndex")
def _tx_by_number_index(h: RpcHandler, number: Any, index: Any) -> dict[str, Any] | None:
    return _tx_in_block(h, number, index)


def _count(h: RpcHandler, ref: Any, what: str) -> str | None:
    header = h._header(ref, 0, missing_ok=True)
    return None if header is None else _q(len(getattr(h._block(header), what)))


@_method("eth_getBlockTransactionCountByHash")
def _tx_count_by_hash(h: RpcHandler, block_hash: Any) -> str | None:
    return _count(h, {"blockHash": _d(_hash(block_hash, 0))}, "transactions")


@_method("eth_getBlockTransactionCountByNumber")
def _tx_count_by_number(h: RpcHandler, number: Any) -> str | None:
    return _count(h, number, "transactions")


@_method("eth_getUncleCountByBlockHash")
def _uncle_count_by_hash(h: RpcHandler, block_hash: Any) -> str | None:
    return _count(h, {"blockHash": _d(_hash(block_hash, 0))}, "uncles")


@_method("eth_getUncleCountByBlockNumber")
def _uncle_count_by_number(h: RpcHandler, number: Any) -> str | None:
    return _count(h, number, "uncles")


@_method("eth_getLogs")
def _get_logs(h: RpcHandler, criteria: Any) -> list[dict[str, Any]]:
    return h._logs(h._log_criteria(criteria, 0), 0)


@_method("eth_newFilter")
def _new_filter(h: RpcHandler, criteria: Any) -> str:
    parsed = h._log_criteria(criteria, 0)
    if "block_hash" not in parsed:
        h._range({**parsed, "to": None}, 0)  # reject a bad fromBlock now, not at the first poll
    return h._new_filter("logs", parsed)


@_method("eth_newBlockFilter")
def _new_block_filter(h: RpcHandler) -> str:
    return h._new_filter("block", None)


@_method("eth_newPendingTransactionFilter")
def _new_pending_filter(h: RpcHandler, *_: Any) -> str:
    return h._new_filter("pending", None)


def _get_filter(h: RpcHandler, fid: Any) -> _Filter:
    flt = h._filters.get(fid) if isinstance(fid, str) else None
    if flt is None:
        raise RpcError(-32000, "filter not found")
    flt.last_poll = time.monotonic()
    return flt


@_method("eth_getFilterChanges")
def _get_filter_changes(h: RpcHandler, fid: Any) -> list[Any]:
    flt = _get_filter(h, fid)
    head = h._head().block_number
    since, flt.last_block = flt.last_block, head
    if flt.kind == "pending":
        return []  # transactions are mined as they arrive: nothing is ever pending
    if flt.kind == "block":
        return [_d(h.evm.get_canonical_block_hash(n)) for n in range(since + 1, head + 1)]
    criteria = flt.criteria or {}
    if "block_hash" in criteria:
        return []
    try:
        return h._logs(criteria, 0, start=since + 1)
    except RpcError:  # the filter's range is over, or not reached yet
        return []


@_method("eth_getFilterLogs")
def _get_filter_logs(h: RpcHandler, fid: Any) -> list[dict[str, Any]]:
    flt = _get_filter(h, fid)
    if flt.kind != "logs":
        raise RpcError(-32000, "filter not found")
    return h._logs(flt.criteria or {}, 0)


@_method("eth_uninstallFilter")
def _uninstall_filter(h: RpcHandler, fid: Any) -> bool:
    return h._filters.pop(fid, None) is not None if isinstance(fid, str) else False


@_method("evm_mine")
def _evm_mine(h: RpcHandler, *_: Any) -> str:
    h.chain.mine(1)
    return "0x0"


@_method("ledgermind_fund")
def _fund(h: RpcHandler, address: Any, wei: Any) -> str:
    try:
        return _d(h.chain.fund(_d(_address(address, 0)), _quantity(wei, 1)))
    except ExecutionError as e:
        raise RpcError(-32000, str(e)) from None


# ---------------------------------------------------------------------------------------------- web3 in-process
class EmbeddedProvider(JSONBaseProvider):
    """A web3 provider answering in-process through the node's JSON-RPC code (no socket, same answers)."""

    def __init__(self, chain: EmbeddedChain) -> None:
        super().__init__()
        self._rpc = RpcHandler(chain)

    def make_request(self, method: Any, params: Any) -> Any:
        response = self._rpc.handle_bytes(self.encode_rpc_request(method, params))
        return self.decode_rpc_response(response or b"null")

    def make_batch_request(self, requests: list[tuple[Any, Any]]) -> Any:
        body = b"[" + b",".join(self.encode_rpc_request(m, p) for m, p in requests) + b"]"
        response = self.decode_rpc_response(self._rpc.handle_bytes(body) or b"[]")
        return sorted(response, key=lambda r: r.get("id", 0)) if isinstance(response, list) else response

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True

    def __repr__(self) -> str:
        return f"EmbeddedProvider({self._rpc.chain!r})"


# ---------------------------------------------------------------------------------------------- HTTP
class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse one connection
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, 40 ms delayed-ACK stalls
    server_version = "ledgermind-node"
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._cors()
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _cors(self) -> None:
        # browser wallets and dapps call the node from pages on other origins
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
        self.send_header(
            "Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers") or "Content-Type"
        )
        self.send_header("Access-Control-Max-Age", "600")

    def do_OPTIONS(self) -> None:  # noqa: N802 - the http.server naming
        self._send(204)

    def do_GET(self) -> None:  # noqa: N802
        body = _dumps(_error_response(None, RpcError(-32600, "send JSON-RPC requests with POST")))
        self._send(405, body)

    def do_POST(self) -> None:  # noqa: N802
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(411, _dumps(_error_response(None, RpcError(-32600, "Content-Length required"))))
            self.close_connection = True
            return
        if length > MAX_BODY:
            self._send(413, _dumps(_error_response(None, RpcError(-32600, f"request body over {MAX_BODY} bytes"))))
            self.close_connection = True
            return
        body = self.rfile.read(length)
        try:
            response = self.server.rpc.handle_bytes(body)
        except Exception:  # noqa: BLE001 - handle_bytes already answers errors; this is the last line of defence
            log.exception("unexpected failure answering a request")
            response = _dumps(_error_response(None, RpcError(-32603, "internal error")))
        self._send(200, response or b"")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # malformed HTTP (bad request line, oversized headers): a JSON body, not http.server's HTML page
        try:
            self._send(code, _dumps(_error_response(None, RpcError(-32600, message or "bad request"))))
        except Exception:  # noqa: BLE001 - the connection is already broken
            pass
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server signature
        pass  # no access log: request bodies carry nothing secret, but we keep the node quiet


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    rpc: RpcHandler


class NodeServer:
    """A JSON-RPC node for one embedded chain on ``host:port`` (port 0 picks a free port).

    ``start()`` serves in a background thread and returns at once; ``url`` is then set. ``stop()`` (or leaving the
    ``with`` block) stops serving; it does not close the chain. Binds to loopback only unless ``allow_remote``.
    Raises InvalidInputError for a non-loopback host without ``allow_remote``, OSError if the port is taken.
    """

    def __init__(
        self, chain: EmbeddedChain, host: str = "127.0.0.1", port: int = 8545, *, allow_remote: bool = False
    ) -> None:
        if not allow_remote and not _is_loopback(host):
            raise InvalidInputError(f"the node serves loopback only; {host!r} is not (pass allow_remote=True)")
        self.chain = chain
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> NodeServer:
        if self._server is not None:
            return self
        server_class = _Server
        if ":" in self.host:
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        self._server = server_class((self.host, self.port), _HTTPHandler)
        self._server.rpc = RpcHandler(self.chain)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="ledgermind-node", daemon=True
        )
        self._thread.start()
        self._write_record()
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._remove_record()
        self._stopped.set()

    def wait(self) -> None:
        """Block until ``stop()`` is called (from a signal handler or another thread)."""
        self._stopped.wait()

    def _record_path(self) -> Path:
        return self.chain.path / NODE_FILE

    def _write_record(self) -> None:
        path = self._record_path()
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "url": self.url, "chain_id": self.chain.chain_id}))
        os.replace(tmp, path)

    def _remove_record(self) -> None:
        path = self._record_path()
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> NodeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"NodeServer({self.url}, chain_id={self.chain.chain_id})"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(chain: EmbeddedChain, host: str = "127.0.0.1", port: int = 8545) -> NodeServer:
    """Start a node for ``chain`` on ``host:port`` and return it (serving in a background thread)."""
    return NodeServer(chain, host, port).start()


# ---------------------------------------------------------------------------------------------- command line
def main(argv: Iterable[str] | None = None) -> int:
    """``python -m ledgermind.chain.rpc_server``: serve a home's embedded chain until SIGTERM or SIGINT."""
    from ledgermind.chain.embedded import EmbeddedChain

    parser = argparse.ArgumentParser(prog="python -m ledgermind.chain.rpc_server", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--home", help="ledgermind home; the chain lives in HOME/chain (default: $LEDGERMIND_HOME or ~/.ledgermind)")
    where.add_argument("--chain-dir", help="the chain folder itself")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8545, help="0 picks a free port")
    parser.add_argument("--chain-id", type=int, default=None, help="for a new chain (default 1337); checked on reopen")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.chain_dir:
        folder = Path(args.chain_dir)
    else:
        home = Path(args.home or os.environ.get("LEDGERMIND_HOME") or "~/.ledgermind").expanduser()
        folder = home / "chain"
    try:
        chain = EmbeddedChain(folder, args.chain_id)
    except LedgermindError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        node = NodeServer(chain, args.host, args.port).start()
    except (OSError, LedgermindError) as e:
        chain.close()
        print(f"error: cannot serve on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=node.stop, daemon=True).start())
    print(node.url, flush=True)
    try:
        node.wait()
    finally:
        node.stop()
        chain.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

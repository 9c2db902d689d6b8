"""A connection to an EVM chain: the embedded one (in-process, or through a running ``ledgermind node``)
or any chain behind an RPC URL (anvil, Geth, Besu, an L2).

Transactions are signed locally by the actor's account (keys never leave the process), sent raw,
and awaited with fast receipt polling. Failures become one ``ChainError`` with a one-line reason:
an unreachable RPC, a wrong chain id, a revert (with its reason), an account without funds.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.errors import LedgermindError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

EMBEDDED_CHAIN_ID = 1337
RECEIPT_POLL = 0.003  # anvil answers before it mines: poll every few ms, not web3's 0.1 s
RECEIPT_TIMEOUT = 120.0
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei when the chain has no opinion


class ChainError(LedgermindError):
    """A chain operation failed; the message is one line saying why."""


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    status: int
    logs: list[Any]
    contract_address: str | None


def node_record(chain_dir: Path) -> dict[str, Any] | None:
    """The running ``ledgermind node`` serving this home's embedded chain, if its process is alive."""
    path = chain_dir / "node.json"
    try:
        record = json.loads(path.read_text())
        os.kill(int(record["pid"]), 0)
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Chain:
    """One chain connection. Build it with ``Chain.connect``; ``close()`` releases an embedded chain."""

    def __init__(self, w3: Web3, chain_id: int, kind: str, url: str | None = None, embedded: Any = None) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.kind = kind  # "embedded" (in-process), "node" (our node over HTTP) or "rpc"
        self.url = url
        self.embedded = embedded

    @property
    def describe(self) -> str:
        where = "in-process" if self.kind == "embedded" else self.url
        return f"chain {self.chain_id} ({where})"

    @classmethod
    def connect(
        cls, chain_dir: Path, rpc_url: str | None = None, expected_chain_id: int | None = None, timeout: float = 10.0
    ) -> Chain:
        """Connect to ``rpc_url``, else to this home's running node, else open the embedded chain in-process.

        Raises ChainError if the RPC cannot be reached or reports another chain id than ``expected_chain_id``.
        """
        if rpc_url is None:
            record = node_record(chain_dir)
            if record is not None:
                chain = cls._http(record["url"], "node", timeout)
            else:
                from ledgermind.chain.embedded import EmbeddedChain

                embedded = EmbeddedChain(chain_dir)
                chain = cls(embedded.w3, embedded.chain_id, "embedded", embedded=embedded)
        else:
            chain = cls._http(rpc_url, "rpc", timeout)
        if expected_chain_id is not None and chain.chain_id != expected_chain_id:
            chain.close()
            raise ChainError(f"wrong chain: expected chain id {expected_chain_id}, {chain.describe} reports {chain.chain_id}")
        return chain

    @classmethod
    def _http(cls, url: str, kind: str, timeout: float) -> Chain:
        from web3 import Web3

        if not url.startswith(("http://", "https://")):
            raise ChainError(f"RPC URL must start with http:// or https://, got {url!r}")
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        try:
            chain_id = w3.eth.chain_id
        except Exception as e:  # connection refused, DNS, timeout, garbage: all mean "not reachable"
            raise ChainError(f"cannot reach the RPC at {url}: {_network_reason(e)}") from e
        return cls(w3, chain_id, kind, url=url)

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.close()
            self.embedded = None

    # ------------------------------------------------------------------ reads
    def code_at(self, address: str) -> bytes:
        return bytes(self.w3.eth.get_code(address))

    def genesis_hash(self) -> str:
        return self.w3.eth.get_block(0)["hash"].hex()

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(address))

    # ------------------------------------------------------------------ funds
    def ensure_funds(self, address: str, minimum: int = 10**17) -> None:
        """Top up a local account on development chains (embedded faucet, anvil); on others say what is missing."""
        if self.balance(address) >= minimum:
            return
        amount = 100 * 10**18
        if self.embedded is not None:
            self.embedded.fund(address, amount)
            return
        try:  # anvil, hardhat: a dev-only method that sets the balance outright
            self.w3.provider.make_request("anvil_setBalance", [address, hex(amount)])
            if self.balance(address) >= minimum:
                return
        except Exception:  # noqa: BLE001 - not a dev chain: fall through to the clear error
            pass
        if self.kind == "node":
            self.w3.provider.make_request("ledgermind_fund", [address, hex(amount)])
            if self.balance(address) >= minimum:
                return
        raise ChainError(
            f"account {address} has {self.balance(address) / 1e18:.4f} ETH on {self.describe}: fund it to pay for gas"
        )

    # ------------------------------------------------------------------ transactions
    def _fees(self) -> dict[str, int]:
        block = self.w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas") or 0)
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except Exception:  # noqa: BLE001 - not every node implements eth_maxPriorityFeePerGas
            tip = DEFAULT_PRIORITY_FEE
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def send(self, account: LocalAccount, tx: dict[str, Any], gas: int) -> Receipt:
        """Sign ``tx`` with ``account`` and send it with an explicit gas limit; wait for its receipt.

        Raises ChainError with the revert reason if it reverts.
        """
        full = {
            "chainId": self.chain_id,
            "from": account.address,
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            "gas": gas,
            "value": 0,
            **self._fees(),
            **tx,
        }
        full.pop("from")
        signed = account.sign_transaction(full)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Exception as e:  # eth-tester raises TransactionFailed, RPC nodes a JSON-RPC error
            raise ChainError(f"transaction rejected by {self.describe}: {revert_reason(e)}") from e
        receipt = self.wait(tx_hash)
        if receipt.status != 1:
            reason = self._replay_reason(account.address, tx, receipt.block_number)
            raise ChainError(f"transaction {receipt.tx_hash} reverted: {reason}")
        return receipt

    def transact(self, account: LocalAccount, call: Any, gas: int, value: int = 0) -> Receipt:
        """Send a web3 contract function call (``contract.functions.f(...)``) as a signed transaction."""
        tx = call.build_transaction({"from": account.address, "gas": gas, "value": value, "chainId": self.chain_id,
                                     "maxFeePerGas": 1, "maxPriorityFeePerGas": 1, "nonce": 0})
        return self.send(account, {"to": tx["to"], "data": tx["data"], "value": value}, gas)

    def deploy(self, account: LocalAccount, bytecode: str, abi: list[Any], args: tuple = (), gas: int = 6_000_000) -> Receipt:
        data = self.w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args).data_in_transaction
        receipt = self.send(account, {"data": data}, gas)
        if not receipt.contract_address:
            raise ChainError(f"deployment transaction {receipt.tx_hash} created no contract")
        return receipt

    def wait(self, tx_hash: Any, timeout: float = RECEIPT_TIMEOUT) -> Receipt:
        from web3.exceptions import TransactionNotFound

        deadline = time.monotonic() + timeout
        while True:
            try:
                r = self.w3.eth.get_transaction_receipt(tx_hash)
                if r is not None and r.get("blockNumber") is not None:
                    return Receipt(
                        tx_hash=_hex(r["transactionHash"]),
                        block_number=int(r["blockNumber"]),
                        block_hash=_hex(r["blockHash"]),
                        gas_used=int(r["gasUsed"]),
                        status=int(r["status"]),
                        logs=list(r["logs"]),
                        contract_address=r.get("contractAddress"),
                    )
            except TransactionNotFound:
                pass
            if time.monotonic() > deadline:
                raise ChainError(f"no receipt for {_hex(tx_hash)} after {timeout:g} s on {self.describe}")
            time.sleep(RECEIPT_POLL)

    def _replay_reason(self, sender: str, tx: dict[str, Any], block: int) -> str:
        """Why a mined transaction reverted: replayed as a call in the context of its own block (its timestamp
        decides time-based checks, and a reverted transaction changed no state), then of the block before."""
        call = {"from": sender, **{k: v for k, v in tx.items() if k in ("to", "data", "value")}}
        for at in (block, block - 1):
            try:
                self.w3.eth.call(call, at)
            except Exception as e:  # noqa: BLE001 - the exception is the reason we are after
                return revert_reason(e)
        return "no reason given (out of gas?)"

    def call(self, fn: Any) -> Any:
        """Run a read-only contract call; a revert becomes a ChainError with its reason."""
        try:
            return fn.call()
        except Exception as e:  # noqa: BLE001
            raise ChainError(f"call failed on {self.describe}: {revert_reason(e)}") from e


def revert_reason(e: BaseException) -> str:
    """One line from web3's ContractLogicError, eth-tester's TransactionFailed, or an RPC error."""
    msg = getattr(e, "message", None) or (e.args[0] if e.args else repr(e))
    if isinstance(msg, dict):
        msg = msg.get("message", str(msg))
    msg = str(msg)
    for prefix in ("execution reverted: ", "execution reverted"):
        if msg.startswith(prefix):
            return msg[len(prefix):].strip() or "execution reverted (no reason)"
    return _short(msg)


def _network_reason(e: BaseException) -> str:
    text = str(e)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Read timed out", "timed out"),
        ("Name or service not known", "unknown host"),
        ("No address associated", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("Connection reset", "connection reset"),
    ):
        if needle in text:
            return reason
    return _short(e)


def _short(e: Any) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = value.hex() if hasattr(value, "hex") and not isinstance(value, str) else str(value)
    return text if text.startswith("0x") else "0x" + text


Factory = Callable[[], Chain]

"""The embedded chain: a py-evm chain (eth-tester's py-evm backend) whose state lives in one SQLite file.

Zero setup: ``EmbeddedChain(home / "chain")`` creates a post-merge dev chain (chain id 1337, funded dev
accounts, a faucet) on first use and resumes from its stored head afterwards. Every transaction is mined into
its own block, and the block is committed to disk (``synchronous=FULL``) before the transaction's hash is
returned, so a transaction whose hash or receipt anyone has seen survives a crash or SIGKILL of the process.
A transaction with a future nonce waits in memory until the gap closes, as in a node's queue.

Folder layout: ``chain.sqlite`` (headers, bodies, receipts, state: see ``kvdb``), ``chain.lock`` (the pid
of the process holding the chain), ``faucet.key`` (0600) and, while a node serves the chain, ``node.json``.
One process at a time: a second open fails with a StorageError naming the holder.

Layers: ``evm`` is the py-evm chain; ``tester`` an ``EthereumTester`` on the same chain for in-process tests
that want eth-tester's API (it auto-mines, and its blocks are committed too); ``provider``/``w3`` answer
through the node's JSON-RPC code. Thread safety: every method takes ``lock``; code that drives ``tester`` or
``evm`` directly from several threads must hold it too.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rlp
from eth.db.atomic import AtomicDB
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils import ValidationError as EVMValidationError

from ledgermind.chain.genesis import (
    DEFAULT_CHAIN_ID,
    ChainSpec,
    Genesis,
    dev_genesis,
    dev_key,
)
from ledgermind.chain.kvdb import SQLiteKV
from ledgermind.errors import (
    InvalidInputError,
    LedgermindError,
    NotFoundError,
    StorageError,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from ledgermind.chain.rpc_server import EmbeddedProvider

DB_FILE = "chain.sqlite"
LOCK_FILE = "chain.lock"
FAUCET_FILE = "faucet.key"
NODE_FILE = "node.json"  # written by a running node: {"pid": ..., "url": ...}
SPEC_KEY = b"ledgermind:chain-spec"  # py-evm's own keys are hashes or "v1:"-prefixed: no collision
FAUCET_KEY = b"ledgermind:faucet-address"  # set for dev chains, whose faucet key is derived from the chain id
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei: what the node suggests and the faucet pays
MAX_QUEUED_PER_SENDER = 64  # transactions waiting for a nonce gap to close, per sender

log = logging.getLogger("ledgermind.chain.embedded")


class ExecutionError(LedgermindError):
    """The chain rejected a transaction (encoding, signature, chain id, nonce, funds), or a call or gas estimate
    failed in the EVM: a revert (``reverted`` True, ``data`` the revert data) or another VM error."""

    def __init__(self, message: str, *, reverted: bool = False, data: bytes = b"") -> None:
        super().__init__(message)
        self.reverted = reverted
        self.data = data


@dataclass(frozen=True)
class CallResult:
    """The outcome of running a transaction without keeping its effects."""

    output: bytes  # return data, or revert data when ``reverted``
    gas_used: int  # gas the execution consumed, intrinsic gas included, before refunds
    error: str | None  # None on success
    reverted: bool


def _chain_class(spec: ChainSpec) -> type:
    from eth.chains.base import MiningChain

    class LedgermindChain(MiningChain):  # type: ignore[misc]
        chain_id = spec.chain_id
        vm_configuration = spec.vm_configuration()

        def create_header_from_parent(self, parent_header: Any, **header_params: Any) -> Any:
            # a constant gas limit, as eth-tester's chain: blocks never shrink under a one-tx-per-block load
            header_params.setdefault("gas_limit", parent_header.gas_limit)
            return super().create_header_from_parent(parent_header, **header_params)

        def get_transaction_builder(self) -> Any:  # eth-tester's backend calls this
            return self.get_vm().get_transaction_builder()

    return LedgermindChain


def _genesis_hash(genesis: Genesis) -> bytes:
    """The hash block 0 of ``genesis`` has, computed in memory."""
    chain = _chain_class(genesis.spec).from_genesis(AtomicDB(), genesis.params, genesis.state)
    return chain.get_canonical_head().hash


class _DurableBackend(PyEVMBackend):
    """eth-tester's py-evm backend on our chain and database: it commits the database after every block it
    mines (before eth-tester hands out the block or transaction hash), and finds transactions through
    py-evm's hash index instead of scanning every block."""

    def __init__(self, chain: Any, kv: SQLiteKV) -> None:  # noqa: D107 - PyEVMBackend.__init__ builds its own chain
        self.chain = chain
        self.account_keys = ()  # the node holds no keys: eth_accounts is empty, every transaction comes signed
        self._kv = kv

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("an embedded chain cannot be reset: delete its folder instead")

    def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = b"\x00" * 20) -> tuple[bytes, ...]:
        try:
            hashes = super().mine_blocks(num_blocks, coinbase)
        except Exception:
            self._discard_pending()
            raise
        self._kv.commit()
        return hashes

    def apply_withdrawals(self, withdrawals_list: Any) -> None:
        super().apply_withdrawals(withdrawals_list)
        self._kv.commit()

    def revert_to_snapshot(self, snapshot: Any) -> None:
        super().revert_to_snapshot(snapshot)
        self._kv.commit()

    def _discard_pending(self) -> None:
        """Forget a half-built block: back to a fresh block on the committed head."""
        self._kv.rollback()
        self.chain.header = self.chain.create_header_from_parent(self.chain.get_canonical_head())

    def _find(self, transaction_hash: bytes) -> tuple[Any, Any, int]:
        from eth.exceptions import TransactionNotFound as EVMTransactionNotFound
        from eth_tester.exceptions import TransactionNotFound

        try:
            number, index = self.chain.chaindb.get_transaction_index(transaction_hash)
        except EVMTransactionNotFound:
            raise TransactionNotFound(f"No transaction found for transaction hash: 0x{transaction_hash.hex()}") from None
        block = self.chain.get_canonical_block_by_number(number)
        return block, block.transactions[index], index

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        from eth_tester.backends.pyevm.serializers import serialize_transaction

        block, transaction, index = self._find(transaction_hash)
        return serialize_transaction(block, transaction, index, False)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        from eth_tester.backends.pyevm.serializers import serialize_transaction_receipt

        block, transaction, index = self._find(transaction_hash)
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(block, receipts, transaction, index, False, self.chain.get_vm())


class _FolderLock:
    """An exclusive ``flock`` on ``chain.lock``, holding our pid; released by ``release()`` or process exit."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StorageError(
                f"the embedded chain in {folder} is in use by another process (pid {holder}); "
                f"stop it or use --rpc-url {_node_url(folder, holder) or 'URL of its node'}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _node_url(folder: Path, pid: str) -> str | None:
    """The URL of the node serving the chain, if the holder of the lock wrote one."""
    try:
        record = json.loads((folder / NODE_FILE).read_text())
        return str(record["url"]) if str(record.get("pid")) == pid else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the mode above is filtered by the umask; this is not
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class EmbeddedChain:
    """A durable py-evm chain in ``path`` (a folder, created if missing), auto-mining one block per transaction.

    ``chain_id``: for a new folder, the id of the dev chain to create (default 1337); for an existing one, the id
    it must have (None accepts the stored one). ``genesis``: create the chain from this genesis instead of a dev
    genesis (see ``genesis.from_geth_genesis``); on reopen it must match the stored spec.

    Raises StorageError if another process has the folder open, if the stored chain has another chain id or
    genesis than asked, or if the database cannot be used.
    """

    def __init__(
        self, path: str | os.PathLike[str], chain_id: int | None = None, *, genesis: Genesis | None = None
    ) -> None:
        self.path = Path(path).expanduser()
        if genesis is not None and chain_id is not None and genesis.spec.chain_id != chain_id:
            raise InvalidInputError(f"chain_id {chain_id} contradicts the genesis' chain id {genesis.spec.chain_id}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create the chain folder {self.path}: {e}") from e
        self.lock = threading.RLock()
        self._folder_lock = _FolderLock(self.path)
        self._kv: SQLiteKV | None = None
        try:
            self._kv = SQLiteKV(self.path / DB_FILE)
            self.spec = self._open_or_create(chain_id, genesis)
            self.evm = _chain_class(self.spec)(AtomicDB(self._kv))
            self.tester = EthereumTester(_DurableBackend(self.evm, self._kv), auto_mine_transactions=True)
        except BaseException:
            self._release()
            raise
        self._queued: dict[bytes, dict[int, bytes]] = {}  # sender -> nonce -> raw transaction
        self._provider: EmbeddedProvider | None = None
        self._w3: Web3 | None = None
        self._closed = False

    # ------------------------------------------------------------------ opening
    def _open_or_create(self, chain_id: int | None, genesis: Genesis | None) -> ChainSpec:
        assert self._kv is not None
        try:
            stored = ChainSpec.from_json(self._kv[SPEC_KEY])
        except KeyError:
            stored = None
        except InvalidInputError as e:
            raise StorageError(f"the embedded chain in {self.path} cannot be opened: {e}") from e
        if stored is not None:
            if chain_id is not None and chain_id != stored.chain_id:
                raise StorageError(
                    f"the embedded chain in {self.path} has chain id {stored.chain_id}, not {chain_id}; "
                    f"use another folder for another chain"
                )
            if genesis is not None and (genesis.spec != stored or _genesis_hash(genesis) != self._stored_genesis_hash()):
                raise StorageError(f"the embedded chain in {self.path} was created from another genesis")
            if FAUCET_KEY in self._kv and not (self.path / FAUCET_FILE).exists():
                self._store_faucet(dev_key(stored.chain_id, 0))  # a dev chain whose key file was deleted
            return stored
        genesis = genesis or dev_genesis(chain_id if chain_id is not None else DEFAULT_CHAIN_ID)
        _chain_class(genesis.spec).from_genesis(AtomicDB(self._kv), genesis.params, genesis.state)
        self._kv[SPEC_KEY] = genesis.spec.to_json()
        if genesis.faucet_key is not None:
            from eth_keys import keys

            self._kv[FAUCET_KEY] = keys.PrivateKey(genesis.faucet_key).public_key.to_canonical_address()
            self._store_faucet(genesis.faucet_key)
        self._kv.commit()  # genesis and spec in one transaction: a folder has both or neither
        return genesis.spec

    def _stored_genesis_hash(self) -> bytes:
        from eth.db.chain import ChainDB

        assert self._kv is not None
        return ChainDB(AtomicDB(self._kv)).get_canonical_block_hash(0)

    def _store_faucet(self, key: bytes) -> None:
        _write_private(self.path / FAUCET_FILE, "0x" + key.hex() + "\n")

    # ------------------------------------------------------------------ identity
    @property
    def chain_id(self) -> int:
        return self.spec.chain_id

    @property
    def faucet(self) -> LocalAccount:
        """The funded dev account that funds local accounts (``fund``). Raises NotFoundError on a chain created
        from a genesis file, which has no faucet."""
        from eth_account import Account

        try:
            text = (self.path / FAUCET_FILE).read_text().strip()
        except FileNotFoundError:
            raise NotFoundError(f"the chain in {self.path} has no faucet (it was not created as a dev chain)") from None
        return Account.from_key(text)

    # ------------------------------------------------------------------ web3
    @property
    def provider(self) -> EmbeddedProvider:
        """A web3 provider answering in-process with the same JSON-RPC code the HTTP node runs."""
        if self._provider is None:
            from ledgermind.chain.rpc_server import EmbeddedProvider

            self._provider = EmbeddedProvider(self)
        return self._provider

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            from web3 import Web3

            self._w3 = Web3(self.provider)
        return self._w3

    # ------------------------------------------------------------------ reads
    def head(self) -> Any:
        """The header of the latest (committed) block."""
        with self.lock:
            self._check_open()
            return self.evm.get_canonical_head()

    # ------------------------------------------------------------------ writes
    def send_raw_transaction(self, raw: bytes) -> bytes:
        """Accept a signed transaction; returns its hash.

        A transaction with the sender's next nonce is executed and mined in a new block, and the block is durable
        before this returns. One with a later nonce waits in memory (as in a node's queue) until the gap is
        filled, then is mined; it is lost if the process dies before that, like a node's unjournaled pool.
        Raises ExecutionError if the chain rejects it (decoding, signature, chain id, nonce too low, funds).
        """
        with self.lock:
            self._check_open()
            vm = self.evm.get_vm()  # the block being built, on the committed head
            tx = self._decode(vm, raw)
            try:  # recovering the sender checks the signature; py-evm checks the rest when it executes
                sender = tx.sender
            except Exception as e:  # noqa: BLE001 - eth-keys raises several kinds for a bad signature
                raise ExecutionError(f"invalid transaction signature: {e}") from e
            chain_id = getattr(tx, "chain_id", None)
            if chain_id is None and getattr(tx, "v", 0) >= 35:
                chain_id = (tx.v - 35) // 2
            if chain_id is not None and chain_id != self.chain_id:
                raise ExecutionError(f"invalid chain id for signer: have {chain_id} want {self.chain_id}")
            expected = vm.state.get_nonce(sender)
            if tx.nonce > expected:
                queue = self._queued.setdefault(sender, {})
                if tx.nonce not in queue and len(queue) >= MAX_QUEUED_PER_SENDER:
                    raise ExecutionError(f"too many queued transactions for 0x{sender.hex()} (nonce gap at {expected})")
                queue[tx.nonce] = raw
                return tx.hash
            self._mine(tx)
            self._drain_queue(sender)
            return tx.hash

    @staticmethod
    def _decode(vm: Any, raw: bytes) -> Any:
        builder = vm.get_transaction_builder()
        try:
            return builder.decode(raw)
        except Exception as first:  # noqa: BLE001 - rlp and py-evm raise many kinds for malformed bytes
            if raw[:1] == b"\x03":  # a blob transaction in its network form (with blobs): unwrap it as eth-tester does
                try:
                    from eth_account.typed_transactions import BlobTransaction

                    blob_tx = BlobTransaction.from_bytes(raw)
                    blob_tx.blob_data = None
                    return builder.decode(b"\x03" + blob_tx.payload())
                except Exception:  # noqa: BLE001
                    pass
            raise ExecutionError(f"invalid transaction encoding: {first}") from first

    def _mine(self, tx: Any) -> None:
        """Execute ``tx`` in the block being built and mine that block (eth-tester's backend commits it).

        This goes to eth-tester's backend, not through ``EthereumTester``: its per-block bookkeeping (serializing
        each block for its in-memory filters) cost a third of the time, and the node has its own filters.
        """
        # py-evm dates a block when it starts building it, i.e. when the previous one was mined, which may be long
        # ago: date it now, as a node does when it mines (never earlier than set, e.g. by evm_increaseTime)
        header = self.evm.header
        parent = self.evm.get_canonical_head()
        timestamp = max(header.timestamp, int(time.time()), parent.timestamp + 1)
        if timestamp != header.timestamp:
            self.evm.header = header.copy(timestamp=timestamp)
        try:
            self.evm.apply_transaction(tx)
        except EVMValidationError as e:
            raise ExecutionError(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from e
        self.tester.backend.mine_blocks(1)

    def _drain_queue(self, sender: bytes) -> None:
        """Mine the sender's queued transactions that now have the next nonce, in order."""
        queue = self._queued.get(sender)
        while queue:
            expected = self.evm.get_vm().state.get_nonce(sender)
            for stale in [n for n in queue if n < expected]:
                del queue[stale]  # replaced by a transaction with the same nonce that was mined meanwhile
            raw = queue.pop(expected, None)
            if raw is None:
                break
            try:
                self._mine(self._decode(self.evm.get_vm(), raw))
            except ExecutionError as e:  # its sender can no longer pay, say: dropped, as a node's pool drops it
                log.info("dropped queued transaction of 0x%s nonce %d: %s", sender.hex(), expected, e)
        if not queue:
            self._queued.pop(sender, None)

    def mine(self, blocks: int = 1) -> None:
        """Mine empty blocks (durable when this returns)."""
        with self.lock:
            self._check_open()
            self.tester.backend.mine_blocks(blocks)

    def fund(self, address: str | bytes, wei: int) -> bytes:
        """Send ``wei`` from the faucet to ``address``; returns the transaction hash once it is mined and durable.

        Raises NotFoundError if the chain has no faucet, ExecutionError if the transfer fails (faucet empty).
        """
        from eth_utils import to_canonical_address

        if wei < 0:
            raise InvalidInputError(f"cannot fund a negative amount ({wei} wei)")
        to = to_canonical_address(address)
        faucet = self.faucet
        with self.lock:
            self._check_open()
            vm = self.evm.get_vm()  # the block being built: its base fee is what the transfer pays
            state = vm.state
            tip = DEFAULT_PRIORITY_FEE
            tx = {
                "chainId": self.chain_id,
                "nonce": state.get_nonce(to_canonical_address(faucet.address)),
                "to": to,
                "value": wei,
                "gas": 21_000 if not state.get_code(to) else 200_000,  # a contract's receive() needs more
                "maxFeePerGas": 2 * vm.get_header().base_fee_per_gas + tip,
                "maxPriorityFeePerGas": tip,
            }
            tx_hash = self.send_raw_transaction(bytes(faucet.sign_transaction(tx).raw_transaction))
            receipt = self.evm.get_transaction_receipt(tx_hash)
            if not receipt.state_root == b"\x01":  # status 1: success (py-evm keeps status in state_root)
                raise ExecutionError(f"funding 0x{to.hex()} failed: the account rejected the transfer")
            return tx_hash

    def import_blocks(self, data: bytes) -> int:
        """Import RLP-encoded blocks (concatenated, as in geth's ``chain.rlp``), each executed and checked
        against its roots, each committed. Blocks already present are skipped; returns how many were new.

        Raises InvalidInputError for undecodable data, ExecutionError for a block the rules reject.
        """
        count = 0
        with self.lock:
            self._check_open()
            try:
                raws = list(iter_rlp_blocks(data))
                numbers = [int.from_bytes(rlp.decode(raw)[0][8], "big") for raw in raws]
            except (rlp.DecodingError, IndexError, TypeError) as e:
                raise InvalidInputError(f"undecodable block data: {e}") from e
            for raw, number in zip(raws, numbers):
                try:
                    block = rlp.decode(raw, sedes=self.evm.get_vm_class_for_block_number(number).get_block_class())
                except (rlp.DecodingError, rlp.DeserializationError) as e:
                    raise InvalidInputError(f"block {number} does not decode under its fork's rules: {e}") from e
                if self.evm.chaindb.header_exists(block.hash):
                    continue
                try:
                    self.evm.import_block(block)
                except EVMValidationError as e:
                    self._kv.rollback()
                    self.evm.header = self.evm.create_header_from_parent(self.evm.get_canonical_head())
                    raise ExecutionError(f"block {number} (0x{block.hash.hex()}) rejected: {e}") from e
                self._kv.commit()
                count += 1
        return count

    # ------------------------------------------------------------------ execution without effects
    def call(self, tx: Mapping[str, Any], header: Any = None) -> CallResult:
        """Run ``tx`` on the state after ``header`` (default: the head) in that block's context, keep nothing.

        ``tx`` keys (all optional): from, to (20 bytes; None creates), gas, gas_price, max_fee_per_gas,
        max_priority_fee_per_gas, value, data, access_list. Without fee fields the block's base fee is taken as 0,
        as geth does, so calls cost nothing. Raises ExecutionError if the transaction is invalid (funds, gas).
        """
        with self.lock:
            self._check_open()
            return self._run(tx, self.evm.get_canonical_head() if header is None else header, tx.get("gas"))

    def estimate_gas(self, tx: Mapping[str, Any], header: Any = None) -> int:
        """The smallest gas limit (within 1.5 %) with which ``tx`` succeeds, found in a few executions.

        One run at the cap (``tx["gas"]`` or the block gas limit) gives the gas actually consumed; then the
        consumed gas, then 64/63 of it (the all-but-one-64th rule for calls), then a binary search. Raises
        ExecutionError if the transaction fails even at the cap (``reverted`` tells a revert).
        """
        with self.lock:
            self._check_open()
            header = self.evm.get_canonical_head() if header is None else header
            cap = int(tx.get("gas") or header.gas_limit)
            first = self._run(tx, header, cap)
            if first.error is not None:
                if first.reverted:
                    raise ExecutionError("execution reverted", reverted=True, data=first.output)
                if "out of gas" in first.error.lower():
                    raise ExecutionError(f"gas required exceeds allowance ({cap})")
                raise ExecutionError(first.error)

            def ok(gas: int) -> bool:
                try:
                    return self._run(tx, header, gas).error is None
                except ExecutionError:  # below the intrinsic gas or the calldata floor
                    return False

            lo, hi = first.gas_used - 1, cap
            if ok(first.gas_used):
                return first.gas_used
            optimistic = min(cap, (first.gas_used + 2300) * 64 // 63)
            if optimistic < cap and ok(optimistic):
                hi = optimistic
            else:
                lo = max(lo, optimistic)
            while hi - lo > 1 and (hi - lo) * 1000 > hi * 15:  # stop within 1.5 % of the answer, like geth
                mid = (lo + hi) // 2
                if ok(mid):
                    hi = mid
                else:
                    lo = mid
            return hi

    def _run(self, tx: Mapping[str, Any], header: Any, gas: int | None) -> CallResult:
        from eth.exceptions import Revert
        from eth.vm.spoof import SpoofTransaction

        fee_fields = ("gas_price", "max_fee_per_gas", "max_priority_fee_per_gas")
        if not any(tx.get(k) for k in fee_fields) and getattr(header, "base_fee_per_gas", None):
            header = header.copy(base_fee_per_gas=0)  # geth's NoBaseFee: a call without a price runs for free
        vm = self.evm.get_vm(header)
        state = vm.state
        sender = tx.get("from") or b"\x00" * 20
        gas = int(gas if gas is not None else header.gas_limit)
        fields = {
            "nonce": state.get_nonce(sender),
            "gas": gas,
            "to": tx.get("to") or b"",
            "value": int(tx.get("value") or 0),
            "data": bytes(tx.get("data") or b""),
        }
        builder = vm.get_transaction_builder()
        if tx.get("max_fee_per_gas") is not None or tx.get("max_priority_fee_per_gas") is not None:
            tip = int(tx.get("max_priority_fee_per_gas") or 0)
            max_fee = tx.get("max_fee_per_gas")
            max_fee = int(max_fee) if max_fee is not None else tip + 2 * (header.base_fee_per_gas or 0)
            unsigned = builder.new_unsigned_dynamic_fee_transaction(
                chain_id=self.chain_id, max_priority_fee_per_gas=tip, max_fee_per_gas=max_fee,
                access_list=tuple(tx.get("access_list") or ()), **fields,
            )
        elif tx.get("access_list") and hasattr(builder, "new_unsigned_access_list_transaction"):
            unsigned = builder.new_unsigned_access_list_transaction(
                chain_id=self.chain_id, gas_price=int(tx.get("gas_price") or 0),
                access_list=tuple(tx["access_list"]), **fields,
            )
        else:
            unsigned = builder.create_unsigned_transaction(gas_price=int(tx.get("gas_price") or 0), **fields)
        spoofed = SpoofTransaction(unsigned, from_=sender)
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(spoofed)
        except EVMValidationError as e:
            raise ExecutionError(str(e)) from e
        finally:
            state.revert(snapshot)
        gas_used = gas - computation.get_gas_remaining()
        if computation.is_error:
            error = computation.error
            reverted = isinstance(error, Revert)
            return CallResult(
                output=computation.output if reverted else b"",
                gas_used=gas_used,
                error=str(error) or type(error).__name__,
                reverted=reverted,
            )
        return CallResult(output=computation.output, gas_used=gas_used, error=None, reverted=False)

    # ------------------------------------------------------------------ lifecycle
    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"the embedded chain in {self.path} is closed")

    def _release(self) -> None:
        if self._kv is not None:
            self._kv.close()
            self._kv = None
        self._folder_lock.release()

    def close(self) -> None:
        """Close the database and release the folder. Every returned transaction is already durable. Idempotent."""
        with self.lock:
            if getattr(self, "_closed", True):
                return
            self._closed = True
            self._release()

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddedChain({str(self.path)!r}, chain_id={self.chain_id})"


def iter_rlp_blocks(data: bytes) -> Iterator[bytes]:
    """The RLP items of a concatenation of RLP-encoded blocks, one by one."""
    from rlp.codec import consume_length_prefix

    pos = 0
    while pos < len(data):
        _, _, length, start = consume_length_prefix(data, pos)
        yield data[pos : start + length]
        pos = start + length

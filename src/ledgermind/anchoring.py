"""Anchoring: the log's signed checkpoints, written to the AnchorRegistry contract on a chain.

Checkpoints to anchor are queued in LEDGERMIND_HOME/anchors.sqlite and sent by ``Anchorer.run``:
automatically once ``every_entries`` new entries or ``every_seconds`` have passed, and on demand. If
the chain is unreachable the anchor stays queued and is retried with exponential backoff: nothing is
lost and the log keeps accepting statements. Only the newest queued checkpoint needs a transaction:
it covers every entry before it, so older queued ones are marked superseded.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.errors import LedgermindError
from ledgermind.log.store import LogStore
from ledgermind.sqlite import open_db

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledgermind.chain.connection import Chain
    from ledgermind.chain.deployments import Deployments

ANCHOR_GAS = 150_000
BACKOFF_FIRST, BACKOFF_MAX = 2.0, 600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS anchors (
    chain_id INTEGER NOT NULL, tree_size INTEGER NOT NULL, root TEXT NOT NULL, checkpoint_hash TEXT NOT NULL,
    status TEXT NOT NULL, contract TEXT, tx_hash TEXT, block_number INTEGER, block_hash TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0, last_error TEXT,
    queued_at REAL NOT NULL, anchored_at REAL,
    PRIMARY KEY (chain_id, tree_size));
CREATE TABLE IF NOT EXISTS outages (
    target TEXT PRIMARY KEY, attempts INTEGER NOT NULL, next_try REAL NOT NULL, last_error TEXT NOT NULL);
"""


def log_id(vkey: str) -> bytes:
    """The log's 32-byte id on chain: SHA-256 of its verifier key (binds the origin and the public key)."""
    return hashlib.sha256(vkey.encode()).digest()


def checkpoint_hash(note: bytes) -> bytes:
    """SHA-256 of the exact signed checkpoint note, so anyone can match a note to its anchor."""
    return hashlib.sha256(note).digest()


@dataclass(frozen=True)
class Anchor:
    chain_id: int
    tree_size: int
    root: str
    checkpoint_hash: str
    status: str  # pending, anchored, superseded
    contract: str | None
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    attempts: int
    next_try: float
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id, "treeSize": self.tree_size, "rootHash": self.root,
            "checkpointHash": self.checkpoint_hash, "status": self.status, "contract": self.contract,
            "txHash": self.tx_hash, "blockNumber": self.block_number, "blockHash": self.block_hash,
            "attempts": self.attempts, "lastError": self.last_error,
        }


class AnchorQueue:
    """Queued and completed anchors, per chain id. Usable from any thread: a provider serving from a thread
    pool anchors from whichever thread appended last."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.db = open_db(self.path, _SCHEMA, "anchor queue", any_thread=True)
        self._transaction = threading.Lock()  # one BEGIN ... COMMIT at a time on the shared connection

    def close(self) -> None:
        self.db.close()

    def _rows(self, sql: str, args: tuple = ()) -> list[Anchor]:
        cols = "chain_id, tree_size, root, checkpoint_hash, status, contract, tx_hash, block_number, block_hash, attempts, next_try, last_error"
        return [Anchor(*r) for r in self.db.execute(f"SELECT {cols} FROM anchors {sql}", args)]

    def enqueue(self, chain_id: int, tree_size: int, root: bytes, cp_hash: bytes) -> bool:
        """Queue a checkpoint unless one at least as large is queued or anchored. Returns True if queued."""
        top = self.db.execute(
            "SELECT max(tree_size) FROM anchors WHERE chain_id = ? AND status IN ('pending', 'anchored')", (chain_id,)
        ).fetchone()[0]
        if top is not None and top >= tree_size:
            return False
        self.db.execute(
            "INSERT OR IGNORE INTO anchors (chain_id, tree_size, root, checkpoint_hash, status, queued_at) "
            "VALUES (?, ?, ?, ?, 'pending', ?)",
            (chain_id, tree_size, root.hex(), cp_hash.hex(), time.time()),
        )
        return True

    def pending(self, chain_id: int) -> list[Anchor]:
        return self._rows("WHERE chain_id = ? AND status = 'pending' ORDER BY tree_size", (chain_id,))

    def anchored(self, chain_id: int) -> list[Anchor]:
        return self._rows("WHERE chain_id = ? AND status = 'anchored' ORDER BY tree_size", (chain_id,))

    def latest(self, chain_id: int) -> Anchor | None:
        rows = self._rows("WHERE chain_id = ? AND status = 'anchored' ORDER BY tree_size DESC LIMIT 1", (chain_id,))
        return rows[0] if rows else None

    def all(self) -> list[Anchor]:
        return self._rows("ORDER BY chain_id, tree_size")

    def last_queued_at(self, chain_id: int) -> float:
        row = self.db.execute("SELECT max(queued_at) FROM anchors WHERE chain_id = ?", (chain_id,)).fetchone()
        return row[0] or 0.0

    def mark_anchored(self, a: Anchor, contract: str, tx_hash: str, block_number: int, block_hash: str) -> None:
        with self._transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE anchors SET status = 'anchored', contract = ?, tx_hash = ?, block_number = ?, block_hash = ?, "
                "attempts = attempts + 1, last_error = NULL, anchored_at = ? WHERE chain_id = ? AND tree_size = ?",
                (contract, tx_hash, block_number, block_hash, time.time(), a.chain_id, a.tree_size),
            )
            self.db.execute(
                "UPDATE anchors SET status = 'superseded' WHERE chain_id = ? AND status = 'pending' AND tree_size < ?",
                (a.chain_id, a.tree_size),
            )
            self.db.execute("COMMIT")

    def mark_failed(self, a: Anchor, error: str) -> None:
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** a.attempts)
        self.db.execute(
            "UPDATE anchors SET attempts = attempts + 1, last_error = ?, next_try = ? WHERE chain_id = ? AND tree_size = ?",
            (error, time.time() + delay, a.chain_id, a.tree_size),
        )

    def outage(self, target: str) -> tuple[int, float, str] | None:
        """(attempts, next try time, last error) while the chain at ``target`` could not be reached."""
        row = self.db.execute("SELECT attempts, next_try, last_error FROM outages WHERE target = ?", (target,)).fetchone()
        return tuple(row) if row else None  # type: ignore[return-value]

    def record_outage(self, target: str, error: str) -> float:
        """Note a failed connection; returns when to try again (exponential backoff)."""
        attempts = (self.outage(target) or (0, 0.0, ""))[0]
        next_try = time.time() + min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempts)
        self.db.execute("INSERT OR REPLACE INTO outages VALUES (?, ?, ?, ?)", (target, attempts + 1, next_try, error))
        return next_try

    def clear_outage(self, target: str) -> None:
        self.db.execute("DELETE FROM outages WHERE target = ?", (target,))

    def forget_chain(self, chain_id: int) -> None:
        """Drop anchored records of a chain that was reset (they point at blocks that no longer exist)."""
        self.db.execute("DELETE FROM anchors WHERE chain_id = ? AND status != 'pending'", (chain_id,))


@dataclass(frozen=True)
class AnchorPolicy:
    every_entries: int = 1000
    every_seconds: float = 60.0


class Anchorer:
    """Decides when to anchor and sends the anchors. Connects to the chain only when there is work."""

    def __init__(
        self,
        store: LogStore,
        queue: AnchorQueue,
        deployments: Deployments,
        connect: Callable[[], Chain],
        account: Callable[[], LocalAccount],
        policy: AnchorPolicy = AnchorPolicy(),
    ) -> None:
        self.store = store
        self.queue = queue
        self.deployments = deployments
        self.connect = connect
        self.account = account
        self.policy = policy
        self.log_id = log_id(store.verifier.vkey())

    def due(self, chain_id: int, now: float | None = None) -> bool:
        """Has the policy's threshold been reached since the newest queued or anchored checkpoint?"""
        now = time.time() if now is None else now
        size = self.store.size()
        rows = self.queue._rows("WHERE chain_id = ? AND status IN ('pending', 'anchored') ORDER BY tree_size DESC LIMIT 1", (chain_id,))
        last_size = rows[0].tree_size if rows else 0
        if size <= last_size:
            return any(a.next_try <= now for a in self.queue.pending(chain_id))
        return size - last_size >= self.policy.every_entries or now - self.queue.last_queued_at(chain_id) >= self.policy.every_seconds

    def request(self, chain_id: int) -> bool:
        """Queue the latest checkpoint for ``chain_id``. Returns False if it is already queued or anchored."""
        cp = self.store.latest_checkpoint()
        if cp is None:
            return False
        return self.queue.enqueue(chain_id, cp.size, cp.root, checkpoint_hash(cp.note))

    def run(self, chain: Chain, force: bool = False) -> Anchor | None:
        """Send the newest pending anchor of ``chain`` if its retry time has come (or ``force``).

        Returns the anchor it completed, None if there was nothing to do. Chain failures are recorded
        on the queued anchor (for the backoff) and re-raised as ChainError.
        """
        from ledgermind.chain.connection import ChainError
        from ledgermind.chain.deployments import contract

        pending = self.queue.pending(chain.chain_id)
        if not pending:
            return None
        target = pending[-1]
        if not force and target.next_try > time.time():
            return None
        try:
            account = self.account()
            deployment = self._deployment(chain, account)
            registry = contract(chain, deployment)
            chain.ensure_funds(account.address)
            receipt = chain.transact(
                account,
                registry.functions.anchor(self.log_id, target.tree_size, bytes.fromhex(target.root),
                                          bytes.fromhex(target.checkpoint_hash)),
                ANCHOR_GAS,
            )
        except LedgermindError as e:
            adopted = self._adopt(chain, target)  # another process may have anchored the same checkpoint
            if adopted is not None:
                return adopted
            self.queue.mark_failed(target, str(e))
            raise ChainError(f"anchor of tree size {target.tree_size} queued for retry: {e}") from e
        self.queue.mark_anchored(target, deployment.address, receipt.tx_hash, receipt.block_number, receipt.block_hash)
        return self.queue.latest(chain.chain_id)

    def _adopt(self, chain: Chain, target: Anchor) -> Anchor | None:
        """If the chain already holds ``target`` (anchored by another process), record that anchor."""
        from ledgermind.chain.deployments import contract

        try:
            deployment = self.deployments.require(chain, "AnchorRegistry")
            registry = contract(chain, deployment)
            if bytes(chain.call(registry.functions.root_at(self.log_id, target.tree_size))).hex() != target.root:
                return None
            for event in registry.events.Anchored().get_logs(from_block=0, argument_filters={"log_id": self.log_id}):
                if int(event["args"]["tree_size"]) == target.tree_size:
                    block = chain.w3.eth.get_block(event["blockNumber"])
                    self.queue.mark_anchored(target, deployment.address, "0x" + bytes(event["transactionHash"]).hex(),
                                             int(event["blockNumber"]), "0x" + bytes(block["hash"]).hex())
                    return self.queue.latest(chain.chain_id)
        except LedgermindError:
            return None
        return None

    def _deployment(self, chain: Chain, account: LocalAccount):
        from ledgermind.chain.connection import ChainError

        try:
            return self.deployments.require(chain, "AnchorRegistry")
        except ChainError:
            if chain.kind == "rpc":
                raise  # on someone else's chain, deploying is an explicit decision
            # the embedded chain is ours: zero setup means deploying on first use
            return self.deployments.deploy(chain, account)["AnchorRegistry"]


def check_anchor_on_chain(chain: Chain, contract_address: str, log: bytes, tree_size: int, root: bytes,
                          tx_hash: str | None = None) -> tuple[bool, str]:
    """Does the AnchorRegistry at ``contract_address`` hold ``root`` for ``tree_size``? Returns (ok, detail)."""
    from ledgermind.chain.deployments import Deployment, contract

    registry = contract(chain, Deployment("AnchorRegistry", contract_address, 0, "", ""))
    try:
        stored = bytes(chain.call(registry.functions.root_at(log, tree_size)))
    except LedgermindError as e:
        return False, str(e)
    if stored != root:
        got = "nothing" if stored == bytes(32) else stored.hex()
        return False, f"chain {chain.chain_id} holds {got} for tree size {tree_size}, expected {root.hex()}"
    detail = f"root of tree size {tree_size} is anchored in {contract_address} on chain {chain.chain_id}"
    if tx_hash:
        detail += f" (tx {tx_hash})"
    return True, detail

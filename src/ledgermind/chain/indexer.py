"""Follow a chain's blocks, transactions and token transfers into a local SQLite index, incrementally.

``ChainIndex(path).sync(chain)`` reads every block after the last one indexed, with its transactions (sender,
recipient, value, gas, status, calldata, the contract a creation made), every event log in their receipts (address,
topics, data: raw, undecoded) and, decoded because every detector needs them, the ERC-20/ERC-721 ``Transfer``
events; it commits them in runs of consecutive blocks: a process killed mid-way resumes after the last run
committed. An index file written before logs and calldata were kept is rebuilt from the chain on open (it holds
nothing else).

Reorganisations: before going on, the hash of the last indexed block is compared with the chain's block at that
height; if they differ (a dev chain reverted to a snapshot, an L2 reorganised), the index walks back to the
newest block both agree on, deletes everything after it, and indexes the new branch. ``SyncResult.reorg`` says
how deep that went. Deeper than ``MAX_REORG`` is refused: rebuild the index (delete its file).

The index knows nothing about what the transactions mean; ``transactions()``, ``transfers()`` and ``logs()`` hand out
plain rows for the detectors (``ledgermind.guard``), which decode the events of the contracts they watch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.chain.connection import ChainError
from ledgermind.errors import StorageError
from ledgermind.sqlite import open_db

if TYPE_CHECKING:
    from ledgermind.chain.connection import Chain

MAX_REORG = 128
COMMIT_BLOCKS = 64  # blocks per transaction: one commit per block cost more than reading the block (~13 ms fsync)
TRANSFER_TOPIC = bytes.fromhex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY, hash TEXT NOT NULL, parent_hash TEXT NOT NULL, timestamp INTEGER NOT NULL,
    gas_used INTEGER NOT NULL, gas_limit INTEGER NOT NULL, base_fee TEXT, tx_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    hash TEXT PRIMARY KEY, block INTEGER NOT NULL, position INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    sender TEXT NOT NULL, recipient TEXT, value TEXT NOT NULL, gas_used INTEGER NOT NULL, gas_price TEXT,
    status INTEGER NOT NULL, selector TEXT, created TEXT, input TEXT
);
CREATE INDEX IF NOT EXISTS txs_block ON txs (block);
CREATE INDEX IF NOT EXISTS txs_sender ON txs (sender);
CREATE INDEX IF NOT EXISTS txs_recipient ON txs (recipient);
CREATE TABLE IF NOT EXISTS transfers (
    tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    token TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL, value TEXT NOT NULL, nft INTEGER NOT NULL,
    PRIMARY KEY (tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS transfers_block ON transfers (block);
CREATE TABLE IF NOT EXISTS logs (
    tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    address TEXT NOT NULL, topic0 TEXT, topics TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS logs_block ON logs (block);
CREATE INDEX IF NOT EXISTS logs_address ON logs (address, topic0);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class SyncResult:
    """What one ``sync`` did: blocks and transactions added, the head reached, and how many blocks a reorganisation
    removed (0 if none)."""

    blocks: int
    transactions: int
    transfers: int
    head: int | None
    reorg: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value) if str(value).startswith("0x") else "0x" + str(value)


def _address(topic: Any) -> str:
    return "0x" + bytes(topic)[-20:].hex()


class ChainIndex:
    """The index of one chain in the SQLite file ``path`` (WAL). One writer at a time; reads are safe meanwhile."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.db = open_db(self.path, _SCHEMA, "chain index")
        self._block_receipts = True  # until the node says it has no eth_getBlockReceipts
        if "input" not in {row[1] for row in self.db.execute("PRAGMA table_info(txs)")}:
            # written by a version that kept neither calldata nor logs: the index is a cache of the chain, rebuild it
            self.db.executescript("DROP TABLE blocks; DROP TABLE txs; DROP TABLE transfers; DELETE FROM meta;")
            self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ChainIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads
    def head(self) -> tuple[int, str] | None:
        row = self.db.execute("SELECT number, hash FROM blocks ORDER BY number DESC LIMIT 1").fetchone()
        return (int(row[0]), row[1]) if row else None

    def chain_id(self) -> int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'chain_id'").fetchone()
        return int(row[0]) if row else None

    def blocks(self, since: int = 0) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM blocks WHERE number >= ? ORDER BY number", (since,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def transactions(self, since_block: int = 0, until_block: int = 2**62) -> list[dict[str, Any]]:
        """Indexed transactions, oldest first: hash, block, timestamp, sender, recipient (None for a creation),
        value (int, wei), gas_used, gas_price, status (1 ok, 0 reverted), selector (4-byte call, or None),
        created, input (0x calldata of a call; None for a creation). ``until_block`` (inclusive) bounds them."""
        cur = self.db.execute("SELECT * FROM txs WHERE block >= ? AND block <= ? ORDER BY block, position",
                              (since_block, until_block))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        for r in rows:
            r["value"] = int(r["value"])
        return rows

    def transfers(self, since_block: int = 0, until_block: int = 2**62) -> list[dict[str, Any]]:
        """Indexed token transfers (ERC-20 amounts, or ERC-721 token ids with ``nft`` set), oldest first."""
        cur = self.db.execute("SELECT * FROM transfers WHERE block >= ? AND block <= ? ORDER BY block, log_index",
                              (since_block, until_block))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        for r in rows:
            r["value"] = int(r["value"])
            r["nft"] = bool(r["nft"])
        return rows

    def logs(self, addresses: list[str] | None = None, since_block: int = 0,
             until_block: int = 2**62) -> list[dict[str, Any]]:
        """Raw event logs, oldest first: tx_hash, log_index, block, timestamp, address (lowercase), topics (list of
        0x hex words), data (0x hex). ``addresses`` keeps only the logs of those contracts."""
        sql = "SELECT * FROM logs WHERE block >= ? AND block <= ?"
        args: list[Any] = [since_block, until_block]
        if addresses is not None:
            sql += f" AND address IN ({','.join('?' * len(addresses))})"
            args += [a.lower() for a in addresses]
        cur = self.db.execute(sql + " ORDER BY block, log_index", args)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        for r in rows:
            r["topics"] = r["topics"].split(",") if r["topics"] else []
            del r["topic0"]
        return rows

    # ------------------------------------------------------------------ sync
    def sync(self, chain: Chain, max_blocks: int | None = None) -> SyncResult:
        """Index the blocks the chain has that the index has not (at most ``max_blocks`` of them), after undoing
        a reorganisation if there was one. Raises ChainError (chain unreachable, another chain than before, a
        reorganisation deeper than MAX_REORG) and StorageError (the index file)."""
        known = self.chain_id()
        if known is not None and known != chain.chain_id:
            raise ChainError(f"{self.path} indexes chain {known}, not {chain.describe}: use another index file")
        if known is None:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('chain_id', ?)", (str(chain.chain_id),))
        try:
            tip = int(chain.w3.eth.block_number)
        except Exception as e:  # noqa: BLE001 - any RPC failure: the chain did not answer
            raise ChainError(f"cannot read the head of {chain.describe}: {e}") from e
        reorg = self._undo_reorg(chain)
        head = self.head()
        start = 0 if head is None else head[0] + 1
        stop = tip if max_blocks is None else min(tip, start + max_blocks - 1)
        blocks = txs = transfers = 0
        batch: list[tuple[Any, ...]] = []
        for number in range(start, stop + 1):
            batch.append(self._read_block(chain, number))
            if len(batch) == COMMIT_BLOCKS or number == stop:
                self._write(batch)
                blocks += len(batch)
                txs += sum(len(b[1]) for b in batch)
                transfers += sum(len(b[2]) for b in batch)
                batch = []
        head = self.head()
        return SyncResult(blocks, txs, transfers, head[0] if head else None, reorg)

    def _undo_reorg(self, chain: Chain) -> int:
        head = self.head()
        if head is None:
            return 0
        number, depth = head[0], 0
        while True:
            ours = self.db.execute("SELECT hash FROM blocks WHERE number = ?", (number,)).fetchone()
            if ours is None:
                break
            theirs = chain.w3.eth.get_block(number) if number <= chain.w3.eth.block_number else None
            if theirs is not None and _hex(theirs["hash"]) == ours[0]:
                break
            depth += 1
            if depth > MAX_REORG:
                raise ChainError(f"the chain reorganised more than {MAX_REORG} blocks below the index's head: "
                                 f"delete {self.path} to rebuild it")
            number -= 1
        if depth:
            with self.db:
                self.db.execute("BEGIN")
                for table in ("blocks", "txs", "transfers", "logs"):
                    column = "number" if table == "blocks" else "block"
                    self.db.execute(f"DELETE FROM {table} WHERE {column} > ?", (number,))  # noqa: S608 - fixed names
        return depth

    def _read_block(self, chain: Chain, number: int) -> tuple[tuple[Any, ...], list[Any], list[Any], list[Any]]:
        w3 = chain.w3
        block = w3.eth.get_block(number, full_transactions=True)
        ts = int(block["timestamp"])
        tx_rows, transfer_rows, log_rows = [], [], []
        receipts = self._receipts(chain, number, block["transactions"])
        for position, tx in enumerate(block["transactions"]):
            receipt = receipts[position]
            data = bytes(tx.get("input") or b"")
            to = tx.get("to")
            tx_rows.append((
                _hex(tx["hash"]), number, position, ts, str(tx["from"]).lower(), str(to).lower() if to else None,
                str(int(tx["value"])), int(receipt["gasUsed"]), str(int(receipt.get("effectiveGasPrice") or 0)),
                int(receipt["status"]), "0x" + data[:4].hex() if to and len(data) >= 4 else None,
                str(receipt["contractAddress"]).lower() if receipt.get("contractAddress") else None,
                "0x" + data.hex() if to else None,
            ))
            for log in receipt["logs"]:
                topics = log["topics"]
                words = [_hex(t) for t in topics]
                log_rows.append((_hex(tx["hash"]), int(log["logIndex"]), number, ts, str(log["address"]).lower(),
                                 words[0] if words else None, ",".join(words), _hex(bytes(log["data"]))))
                if len(topics) < 3 or bytes(topics[0]) != TRANSFER_TOPIC:
                    continue
                nft = len(topics) == 4
                value = int.from_bytes(bytes(topics[3]), "big") if nft else int.from_bytes(bytes(log["data"]) or b"\0", "big")
                transfer_rows.append((_hex(tx["hash"]), int(log["logIndex"]), number, ts, str(log["address"]).lower(),
                                      _address(topics[1]), _address(topics[2]), str(value), int(nft)))
        row = (number, _hex(block["hash"]), _hex(block["parentHash"]), ts, int(block["gasUsed"]), int(block["gasLimit"]),
               str(block.get("baseFeePerGas")) if block.get("baseFeePerGas") is not None else None, len(tx_rows))
        return row, tx_rows, transfer_rows, log_rows

    def _receipts(self, chain: Chain, number: int, txs: list[Any]) -> list[Any]:
        """The receipts of a block's transactions, in order: one ``eth_getBlockReceipts`` call where the node has
        it (anvil, Geth, our node), else one call per transaction."""
        if not txs:
            return []
        if self._block_receipts:
            try:
                receipts = list(chain.w3.eth.get_block_receipts(number))
                if len(receipts) == len(txs):
                    return receipts
            except Exception:  # noqa: BLE001 - the node lacks the method: fall back for good
                pass
            self._block_receipts = False
        return [chain.w3.eth.get_transaction_receipt(tx["hash"]) for tx in txs]

    def _write(self, batch: list[tuple[tuple[Any, ...], list[Any], list[Any], list[Any]]]) -> None:
        """Commit a run of consecutive blocks in one transaction: all of them or none."""
        try:
            with self.db:
                self.db.execute("BEGIN")
                for block, tx_rows, transfer_rows, log_rows in batch:
                    self.db.execute("INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", block)
                    self.db.executemany("INSERT OR REPLACE INTO txs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tx_rows)
                    self.db.executemany("INSERT OR REPLACE INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", log_rows)
                    self.db.executemany("INSERT OR REPLACE INTO transfers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                        transfer_rows)
        except Exception as e:  # sqlite3 errors: disk full, locked too long
            raise StorageError(f"cannot write blocks {batch[0][0][0]}-{batch[-1][0][0]} to {self.path}: {e}") from e

"""The paying client's own record of its payment channels: which it opened, and how much it has promised on each.

A provider refuses a ticket book for a voucher amount it has seen with another book, so a client that forgets
what it signed (a new process, a crash) cannot go on paying through its channel. ``ChannelBook`` keeps, in one
SQLite file of the home, every channel the account opened and the highest voucher amount signed on it;
``BookedPayer`` opens channels through the book, and the ``BookedChannel`` it hands out writes each new amount
durably *before* the voucher leaves the process (once per ticket book). A crash can then only make the client
skip amounts (lose the unused tickets of its last book), never reuse one.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.inference.channels import ZERO_ADDRESS, PaymentChannels
from ledgermind.inference.client import DEFAULT_DURATION, PaidChannel, Payer
from ledgermind.sqlite import open_db

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    chain_id INTEGER NOT NULL,
    contract TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    token TEXT NOT NULL,
    deposit TEXT NOT NULL,
    expiry INTEGER NOT NULL,
    issued TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    PRIMARY KEY (chain_id, contract, channel_id)
)
"""


class ChannelBook:
    """Channels opened by this home's accounts, in ``path`` (SQLite, WAL, synchronous=FULL). Thread-safe."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db = open_db(self.path, _SCHEMA, "channel book")
        self._db.execute("PRAGMA synchronous=FULL")  # an issued amount must survive a crash
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def add(self, chain_id: int, contract: str, channel: PaidChannel, sender: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO channels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (chain_id, contract.lower(), channel.channel_id.hex(), sender.lower(), channel.recipient.lower(),
                 channel.token.lower(), str(channel.deposit), channel.expiry, str(channel.issued), int(time.time())),
            )

    def issued(self, chain_id: int, contract: str, channel_id: bytes, amount: int) -> None:
        """Record that a voucher for ``amount`` was issued (never lowers the recorded amount, even when several
        processes pay through one channel: the comparison is in the one UPDATE)."""
        text = str(amount)
        with self._lock:
            self._db.execute(
                # decimal strings of uint256 amounts: compare by length, then lexically
                "UPDATE channels SET issued = ? WHERE chain_id = ? AND contract = ? AND channel_id = ? AND "
                "(length(issued) < length(?) OR (length(issued) = length(?) AND issued < ?))",
                (text, chain_id, contract.lower(), channel_id.hex(), text, text, text),
            )

    def released(self, chain_id: int, contract: str, channel_id: bytes, amount: int, back_to: int) -> None:
        """Lower the recorded amount from ``amount`` to ``back_to`` (a book taken back unseen), if it is still
        ``amount``: another process that signed meanwhile keeps its higher amount."""
        with self._lock:
            self._db.execute(
                "UPDATE channels SET issued = ? WHERE chain_id = ? AND contract = ? AND channel_id = ? AND issued = ?",
                (str(back_to), chain_id, contract.lower(), channel_id.hex(), str(amount)),
            )

    def channels(self, chain_id: int, contract: str, sender: str | None = None) -> list[dict[str, Any]]:
        """The recorded channels on one PaymentChannels contract (of ``sender`` if given), newest first."""
        query = "SELECT * FROM channels WHERE chain_id = ? AND contract = ?"
        args: list[Any] = [chain_id, contract.lower()]
        if sender is not None:
            query += " AND sender = ?"
            args.append(sender.lower())
        with self._lock:
            cur = self._db.execute(query + " ORDER BY opened_at DESC", args)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        return [{"chainId": r["chain_id"], "contract": r["contract"], "channelId": "0x" + r["channel_id"],
                 "sender": r["sender"], "recipient": r["recipient"], "token": r["token"], "deposit": int(r["deposit"]),
                 "expiry": r["expiry"], "issued": int(r["issued"])} for r in rows]


class BookedChannel(PaidChannel):
    """A PaidChannel whose every signed voucher amount is in the book before the voucher leaves it."""

    def __init__(self, book: ChannelBook, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._book = book

    def _signed(self, amount: int) -> None:
        self._book.issued(self.chain_id, self.contract, self.channel_id, amount)

    def _released(self, amount: int, back_to: int) -> None:
        self._book.released(self.chain_id, self.contract, self.channel_id, amount, back_to)


class BookedPayer(Payer):
    """A Payer that records the channels it opens and resumes them from the book."""

    def __init__(self, account: LocalAccount, contract: PaymentChannels, book: ChannelBook) -> None:
        super().__init__(account, contract)
        self.book = book

    def _channel(self, info: Any, issued: int) -> BookedChannel:
        return BookedChannel(self.book, info.channel_id, key=self.account.key, chain_id=self.contract.chain_id,
                             contract=self.contract.address, recipient=info.recipient, deposit=info.deposit,
                             token=info.token, expiry=info.expiry, issued=issued)

    def open(self, recipient: str, deposit: int, *, token: str = ZERO_ADDRESS, duration: int = DEFAULT_DURATION,
             expiry: int | None = None, salt: bytes | None = None) -> BookedChannel:
        if expiry is None:
            expiry = max(int(time.time()), self.contract.now()) + duration
        info = self.contract.open(self.account, recipient, deposit, expiry, token=token, salt=salt)
        channel = self._channel(info, 0)
        self.book.add(self.contract.chain_id, self.contract.address, channel, self.account.address)
        return channel

    def usable(self, min_seconds_left: float = 600.0) -> dict[str, BookedChannel]:
        """The account's recorded channels still open on chain with at least ``min_seconds_left`` to run and
        some deposit left, by recipient (lowercase; the one with most left wins)."""
        out: dict[str, BookedChannel] = {}
        now = max(time.time(), self.contract.now())
        for rec in self.book.channels(self.contract.chain_id, self.contract.address, self.account.address):
            if rec["expiry"] < now + min_seconds_left or rec["issued"] >= rec["deposit"]:
                continue
            info = self.contract.channel(bytes.fromhex(rec["channelId"][2:]))
            if info.closed or info.expiry < now + min_seconds_left:
                continue
            channel = self._channel(info, max(rec["issued"], info.paid))
            best = out.get(rec["recipient"])
            if best is None or channel.remaining > best.remaining:
                out[rec["recipient"]] = channel
        return out

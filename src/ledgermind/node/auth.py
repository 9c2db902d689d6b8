"""Checking a signed node request (see ``ledgermind.node.signing`` for the scheme) and spending its nonce.

A request is refused (``Refused`` with status 401 and a one-line reason) when a header is missing or malformed,
when it expired or expires too far ahead, when its signature does not recover to the claimed signer (another
body, path, node or chain id was signed), or when the signer used its nonce before. Nonces are kept per signer in
SQLite, durably, until their request's expiry has passed (an expired request is refused anyway); a request is
served only once its nonce is durably spent.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path

from ledgermind.errors import SignatureError
from ledgermind.node.signing import (
    EXPIRY_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    NodeRequest,
    body_digest,
)
from ledgermind.sqlite import open_db

MAX_TTL = 3600  # a request may be signed at most an hour ahead of its expiry
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_UINT = re.compile(r"0|[1-9][0-9]{0,77}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    signer TEXT NOT NULL, nonce TEXT NOT NULL, expiry INTEGER NOT NULL, PRIMARY KEY (signer, nonce));
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces(expiry);
"""


class Refused(Exception):
    """A request the node will not serve: ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class NonceStore:
    """Spent nonces per signer, in SQLite (``synchronous=FULL``: a nonce acknowledged as spent stays spent). A
    thread of its own commits them: spends that arrive together share one transaction (group commit)."""

    def __init__(self, path: str | Path) -> None:
        self._queue: queue.Queue[tuple[str, int, int, Future[None]] | None] = queue.Queue()
        opened: Future[None] = Future()
        self._thread = threading.Thread(target=self._loop, args=(Path(path), opened), name="ledgermind-nonces",
                                        daemon=True)
        self._thread.start()
        opened.result()  # a StorageError if the file is not usable

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def spend(self, signer: str, nonce: int, expiry: int) -> Future[None]:
        """Record ``nonce`` as used by ``signer`` (until ``expiry``). The future fails with Refused(401) if it was
        used before, and succeeds once the spend is durable."""
        future: Future[None] = Future()
        self._queue.put((signer, nonce, expiry, future))
        return future

    def _loop(self, path: Path, opened: Future[None]) -> None:
        try:
            db = open_db(path, _SCHEMA, "nonce store")
            db.execute("PRAGMA synchronous=FULL")
        except BaseException as e:  # noqa: BLE001 - handed to the constructor
            opened.set_exception(e)
            return
        opened.set_result(None)
        purged = 0.0
        try:
            while (item := self._queue.get()) is not None:
                batch = [item]
                while len(batch) < 10_000:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._queue.put(None)  # stop after this batch
                        break
                    batch.append(nxt)
                purge = time.time() - purged > 60
                try:
                    fresh = self._commit(db, batch, purge)
                except BaseException as e:  # noqa: BLE001 - every waiting request learns why
                    for *_, future in batch:
                        future.set_exception(e)
                    continue
                purged = time.time() if purge else purged
                for (signer, nonce, _, future), ok in zip(batch, fresh):
                    if ok:
                        future.set_result(None)
                    else:
                        future.set_exception(Refused(401, f"replayed request: nonce {nonce} of {signer} was already used"))
        finally:
            db.close()

    @staticmethod
    def _commit(db: sqlite3.Connection, batch: list[tuple[str, int, int, Future[None]]], purge: bool) -> list[bool]:
        db.execute("BEGIN IMMEDIATE")
        try:
            if purge:  # an expired request is refused anyway: its nonce need not be kept
                db.execute("DELETE FROM nonces WHERE expiry < ?", (int(time.time()),))
            fresh = [db.execute("INSERT OR IGNORE INTO nonces VALUES (?, ?, ?)",
                                (signer.lower(), str(nonce), expiry)).rowcount == 1 for signer, nonce, expiry, _ in batch]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return fresh


def _header(headers: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = headers.get(name)
    if value is None:
        raise Refused(401, f"unsigned request: header {name} is missing (state changes must be signed, see GET /v1/node)")
    if not pattern.fullmatch(value):
        raise Refused(401, f"header {name} is not {what}")
    return value


def check_request(headers: Mapping[str, str], method: str, path: str, body: bytes, *, chain_id: int, node: str,
                  now: float | None = None) -> tuple[str, int, int]:
    """Check the signature headers of ``method path`` with ``body``; return (the signer's checksummed address,
    nonce, expiry). The caller spends the nonce (``NonceStore.spend``). ``headers`` is case-insensitive
    (Starlette's). Raises Refused(401)."""
    signer = _header(headers, SIGNER_HEADER, _ADDRESS, "a 0x-prefixed 20-byte address")
    nonce = int(_header(headers, NONCE_HEADER, _UINT, "a decimal uint256"))
    expiry = int(_header(headers, EXPIRY_HEADER, _UINT, "a decimal uint256 (unix seconds)"))
    signature = bytes.fromhex(_header(headers, SIGNATURE_HEADER, _SIGNATURE, "0x and 65 bytes of hex")[2:])
    if nonce >= 2**256 or expiry >= 2**63:
        raise Refused(401, "nonce or expiry out of range")
    now = time.time() if now is None else now
    if expiry < now:
        raise Refused(401, f"expired request: its signature expired at {expiry}, it is now {int(now)}")
    if expiry > now + MAX_TTL:
        raise Refused(401, f"request expires at {expiry}, more than {MAX_TTL} s ahead: sign it for a shorter time")
    request = NodeRequest(node, f"{method} {path}", body_digest(body), nonce, expiry)
    try:
        recovered = request.signer(chain_id, signature)
    except SignatureError as e:
        raise Refused(401, f"bad signature: {e}") from None
    if recovered.lower() != signer.lower():
        raise Refused(401, f"signature is not by {signer}: it does not cover this body, path, node "
                           f"({node}) and chain id ({chain_id})")
    return recovered, nonce, expiry

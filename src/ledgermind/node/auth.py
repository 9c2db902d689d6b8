"""Checking a signed node request (see ``ledgermind.node.signing`` for the scheme) and spending its nonce.

A request is refused (``Refused`` with status 401 and a one-line reason) when a header is missing or malformed,
when it expired or expires too far ahead, when its signature does not recover to the claimed signer (another
body, path, node or chain id was signed), or when the signer used its nonce before. Nonces are kept per signer in
SQLite, durably, until their request's expiry has passed (an expired request is refused anyway).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Mapping
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
    """Spent nonces per signer, in SQLite (``synchronous=FULL``: a nonce acknowledged as spent stays spent).
    Use it from the thread that opened it (the node's writer)."""

    def __init__(self, path: str | Path) -> None:
        self.db = open_db(path, _SCHEMA, "nonce store")
        self.db.execute("PRAGMA synchronous=FULL")
        self._purged = 0.0

    def close(self) -> None:
        self.db.close()

    def spend(self, signer: str, nonce: int, expiry: int, now: float) -> None:
        """Record ``nonce`` as used by ``signer``. Raises Refused(401) if it was used before."""
        if now - self._purged > 60:
            self.db.execute("DELETE FROM nonces WHERE expiry < ?", (int(now),))
            self._purged = now
        try:
            self.db.execute("INSERT INTO nonces VALUES (?, ?, ?)", (signer.lower(), str(nonce), expiry))
        except sqlite3.IntegrityError:
            raise Refused(401, f"replayed request: nonce {nonce} of {signer} was already used") from None


def _header(headers: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = headers.get(name)
    if value is None:
        raise Refused(401, f"unsigned request: header {name} is missing (state changes must be signed, see GET /v1/node)")
    if not pattern.fullmatch(value):
        raise Refused(401, f"header {name} is not {what}")
    return value


def verify_request(headers: Mapping[str, str], method: str, path: str, body: bytes, *, chain_id: int, node: str,
                   nonces: NonceStore, now: float | None = None) -> str:
    """Check the signature headers of ``method path`` with ``body`` and spend its nonce; return the signer's
    checksummed address. ``headers`` is case-insensitive (Starlette's). Raises Refused(401)."""
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
    nonces.spend(recovered, nonce, expiry, now)
    return recovered

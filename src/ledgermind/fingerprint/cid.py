"""IPFS CIDv1 of small files.

``ipfs add --cid-version=1`` stores a file of at most one chunk (262144 bytes with the default chunker) as a single
raw leaf, whose CID is ``CIDv1(base32, raw, sha2-256(content))``. Larger files become a UnixFS DAG whose CID depends
on chunking and layout choices, so we do not claim one for them.
"""

from __future__ import annotations

from multiformats import CID, multihash

from ledgermind.errors import InvalidInputError

__all__ = ["MAX_RAW_LEAF_SIZE", "raw_cid"]

MAX_RAW_LEAF_SIZE = 262144
"""Largest file that ``ipfs add --cid-version=1`` keeps as one raw block (default chunker ``size-262144``)."""


def raw_cid(sha256_hex: str, size: int) -> str | None:
    """Return the CIDv1 (base32, codec raw, sha2-256) of a file with this SHA-256 and size, or None if too large.

    Requires ``sha256_hex`` to be the plain SHA-256 of the content (true of the file digest at these sizes).
    Raises InvalidInputError if ``sha256_hex`` is not 64 hex chars.
    """
    if size > MAX_RAW_LEAF_SIZE:
        return None
    try:
        raw = bytes.fromhex(sha256_hex)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidInputError(f"expected a SHA-256 digest of 64 hex chars, got {sha256_hex!r}")
    return str(CID("base32", 1, "raw", multihash.wrap(raw, "sha2-256")))

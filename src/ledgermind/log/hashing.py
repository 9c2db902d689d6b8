"""RFC 9162 section 2.1 Merkle tree hashing (SHA-256, leaf prefix 0x00, node prefix 0x01).

Storage-free and chain-free: these functions are the whole definition of the tree our log builds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()
"""Root hash of the empty tree: SHA-256 of the empty string (RFC 9162 section 2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 hash of a leaf: ``SHA-256(0x00 || data)``."""
    return _sha256(LEAF_PREFIX + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return _sha256(NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) of RFC 9162 for the given leaf hashes, in O(n) time and O(log n) memory.

    This is the reference definition (used by tests and fsck); the log itself never rebuilds a tree.
    """
    stack: list[bytes] = []  # roots of perfect subtrees, largest first
    for count, h in enumerate(leaf_hashes, start=1):
        stack.append(h)
        # each trailing one bit of the new count closes a perfect subtree
        c = count
        while c & 1 == 0:
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            c >>= 1
    return fold_right(stack) if stack else EMPTY_ROOT


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hash a left-to-right list of perfect-subtree roots into one node: ``H(h0, H(h1, ... H(hk-1, hk)))``.

    This is how RFC 9162 joins the uneven right border of a tree. Requires a non-empty list.
    """
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h

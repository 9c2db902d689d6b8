"""Verification of RFC 9162 inclusion and consistency proofs, without any storage.

Semantics follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 and the reference verifier of
transparency-dev/merkle: a proof must have exactly the expected number of hashes, every hash must be
32 bytes, and a failure says what was expected and what was found.
"""

from __future__ import annotations

from collections.abc import Sequence

import hashlib

from ledgermind.log.hashing import HASH_SIZE, NODE_PREFIX

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """Base class: a proof did not verify. The message says what was expected and what was found."""


class LeafIndexError(ProofError):
    """The leaf index is not inside the tree (requires 0 <= index < size)."""


class SizeError(ProofError):
    """The tree sizes cannot be related by a proof (e.g. size2 < size1, or size1 == 0 < size2)."""


class HashLengthError(ProofError):
    """A hash (leaf, root or proof element) does not have the 32 bytes of SHA-256."""


class ProofLengthError(ProofError):
    """The proof has more or fewer hashes than the tree shape requires (garbage or truncation)."""


class RootMismatchError(ProofError):
    """The root recomputed from the proof differs from the expected root."""

    def __init__(self, expected: bytes, calculated: bytes, what: str = "root") -> None:
        self.expected_root = bytes(expected)
        self.calculated_root = bytes(calculated)
        super().__init__(f"{what} mismatch: expected {self.expected_root.hex()}, calculated {self.calculated_root.hex()}")


def _check_hash(name: str, h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise HashLengthError(f"{name} has {len(h)} bytes, expected {HASH_SIZE}")


def _check_proof(proof: Sequence[bytes] | None, want: int, context: str) -> list[bytes]:
    hashes = list(proof or ())
    if len(hashes) != want:
        raise ProofLengthError(f"proof has {len(hashes)} hashes, expected {want} for {context}")
    if any(len(h) != HASH_SIZE for h in hashes):  # name the culprit only on failure: this runs per proof
        i = next(i for i, h in enumerate(hashes) if len(h) != HASH_SIZE)
        _check_hash(f"proof[{i}]", hashes[i])
    return hashes


def decompose(index: int, size: int) -> tuple[int, int]:
    """Split the inclusion path of leaf ``index`` in a tree of ``size`` leaves into (inner, border) lengths.

    ``inner`` levels lie below the point where the paths to ``index`` and to ``size - 1`` meet; the
    ``border`` hashes are the left siblings on the tree's right border above it. Requires 0 <= index < size.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


# node_hash is inlined in these loops: they are the whole cost of verifying a proof
def _chain_inner(seed: bytes, hashes: Sequence[bytes], index: int) -> bytes:
    for h in hashes:
        seed = _sha256(NODE_PREFIX + seed + h if index & 1 == 0 else NODE_PREFIX + h + seed).digest()
        index >>= 1
    return seed


def _chain_inner_right(seed: bytes, hashes: Sequence[bytes], index: int) -> bytes:
    # only left siblings count: the result is the subtree as it was before the right siblings existed
    for h in hashes:
        if index & 1:
            seed = _sha256(NODE_PREFIX + h + seed).digest()
        index >>= 1
    return seed


def _chain_border(seed: bytes, hashes: Sequence[bytes]) -> bytes:
    for h in hashes:
        seed = _sha256(NODE_PREFIX + h + seed).digest()
    return seed


def root_from_inclusion_proof(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes] | None) -> bytes:
    """Return the root that ``proof`` implies for leaf ``index`` in a tree of ``size`` leaves.

    Requires 0 <= index < size. Raises LeafIndexError, HashLengthError or ProofLengthError.
    """
    if index < 0 or size < 0:
        raise LeafIndexError(f"index and size must be non-negative, got index {index}, size {size}")
    if index >= size:
        raise LeafIndexError(f"index {index} is beyond the tree: expected index < size {size}")
    _check_hash("leaf hash", leaf_hash)
    inner, border = decompose(index, size)
    hashes = _check_proof(proof, inner + border, f"index {index} in a tree of size {size}")
    h = _chain_inner(leaf_hash, hashes[:inner], index)
    return _chain_border(h, hashes[inner:])


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes] | None, root: bytes) -> bool:
    """Check that the leaf with hash ``leaf_hash`` sits at ``index`` in the tree of ``size`` leaves with ``root``.

    Returns True; raises a ProofError subclass (never returns False) when the proof does not verify.
    Requires 0 <= index < size, 32-byte hashes, and exactly the number of proof hashes the shape needs.
    """
    _check_hash("root", root)
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if calculated != root:
        raise RootMismatchError(root, calculated)
    return True


def root_from_consistency_proof(size1: int, size2: int, proof: Sequence[bytes] | None, root1: bytes) -> bytes:
    """Check ``proof`` against the older ``root1`` and return the root it implies for the tree of ``size2``.

    Requires 0 < size1 <= size2 (size1 == size2 needs an empty proof). Raises SizeError,
    HashLengthError, ProofLengthError, or RootMismatchError when the proof does not rebuild ``root1``.
    """
    if size1 < 0 or size2 < 0:
        raise SizeError(f"sizes must be non-negative, got size1 {size1}, size2 {size2}")
    if size2 < size1:
        raise SizeError(f"size2 {size2} is smaller than size1 {size1}: expected size1 <= size2")
    if size1 == size2:
        if proof:
            raise ProofLengthError(f"proof has {len(proof)} hashes, expected 0 for equal sizes {size1}")
        return root1
    if size1 == 0:
        raise SizeError("a consistency proof from the empty tree (size1 = 0) is meaningless: expected size1 > 0")
    if not proof:
        raise ProofLengthError(f"proof is empty, expected hashes for sizes {size1} -> {size2}")
    _check_hash("root1", root1)

    inner, border = decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros of size1
    inner -= shift
    # A size1 that is a power of two is itself a node of the newer tree: its root seeds the chain.
    # Otherwise the proof starts with the root of the last perfect subtree of the older tree.
    if size1 == 1 << shift:
        seed_given = 0
        hashes = _check_proof(proof, inner + border, f"sizes {size1} -> {size2}")
        seed = root1
    else:
        seed_given = 1
        hashes = _check_proof(proof, 1 + inner + border, f"sizes {size1} -> {size2}")
        seed = hashes[0]
    hashes = hashes[seed_given:]
    mask = (size1 - 1) >> shift

    hash1 = _chain_border(_chain_inner_right(seed, hashes[:inner], mask), hashes[inner:])
    if hash1 != root1:
        raise RootMismatchError(root1, hash1, what="root1")
    return _chain_border(_chain_inner(seed, hashes[:inner], mask), hashes[inner:])


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes] | None, root1: bytes, root2: bytes) -> bool:
    """Check that the tree of ``size2`` leaves with ``root2`` extends the tree of ``size1`` with ``root1``.

    Returns True; raises a ProofError subclass when it does not. Equal sizes need an empty proof and
    equal roots; size1 == 0 < size2 is rejected, as the reference verifier does.
    """
    calculated = root_from_consistency_proof(size1, size2, proof, root1)
    if size1 != size2:
        _check_hash("root2", root2)
    if calculated != root2:
        raise RootMismatchError(root2, calculated, what="root2")
    return True

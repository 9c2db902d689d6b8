"""The transparency log: RFC 9162 Merkle tree hashing, proofs, signed checkpoints and durable storage.

The hashing and verification functions here are storage-free and can be used on their own::

    from ledgermind.log import leaf_hash, verify_inclusion
    verify_inclusion(leaf_hash(entry), index, size, proof, root)   # True, or raises ProofError
"""

from ledgermind.log.checkpoint import Checkpoint, CheckpointError, NoteSigner, NoteVerifier
from ledgermind.log.hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash, root_from_leaf_hashes
from ledgermind.log.verify import (
    HashLengthError,
    LeafIndexError,
    ProofError,
    ProofLengthError,
    RootMismatchError,
    SizeError,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "CheckpointError",
    "HashLengthError",
    "LeafIndexError",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "ProofLengthError",
    "RootMismatchError",
    "SizeError",
    "leaf_hash",
    "node_hash",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

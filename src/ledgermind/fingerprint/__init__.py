"""Content fingerprints of files and folders: sharded SHA-256 file digests, manifests, asset digests, CIDs.

Example::

    with FingerprintCache(ledgermind_home / "fingerprints.sqlite") as cache:
        fp = fingerprint("model/", cache=cache, progress=lambda done, total: ...)
    fp.digest, fp.kind, fp.files, fp.hashed_files, fp.cached_files

Knows nothing about chains, logs or AI: it turns bytes on disk into digests.
"""

from __future__ import annotations

from ledgermind.fingerprint.cache import FingerprintCache
from ledgermind.fingerprint.cid import MAX_RAW_LEAF_SIZE, raw_cid
from ledgermind.fingerprint.manifest import (
    MANIFEST_TYPE,
    FileDigest,
    Fingerprint,
    asset_digest,
    canonical_manifest,
    diff_manifests,
    fingerprint,
    manifest_files,
)
from ledgermind.fingerprint.shards import SHARD_SIZE, digest_bytes, file_digest

__all__ = [
    "MANIFEST_TYPE",
    "MAX_RAW_LEAF_SIZE",
    "SHARD_SIZE",
    "FileDigest",
    "Fingerprint",
    "FingerprintCache",
    "asset_digest",
    "canonical_manifest",
    "diff_manifests",
    "digest_bytes",
    "file_digest",
    "fingerprint",
    "manifest_files",
    "raw_cid",
]

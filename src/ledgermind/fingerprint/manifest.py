"""Manifest of a file or folder and its asset digest.

A manifest lists every file of an asset with its size and file digest (see ``shards``)::

    {"type": "ledgermind/manifest/v1", "shardSize": 8388608,
     "files": [{"path": "weights/a.bin", "size": 123, "sha256": "<hex>"}, ...]}

Paths are relative, POSIX, and sorted by Unicode code point. A single file is a manifest of one entry named by the
file's base name. The asset digest is ``sha256(RFC 8785 canonical JSON of the manifest)``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from ledgermind.errors import InvalidInputError
from ledgermind.fingerprint.cache import CacheKey, FingerprintCache
from ledgermind.fingerprint.cid import raw_cid
from ledgermind.fingerprint.shards import (
    SHARD_SIZE,
    FileToHash,
    ProgressCallback,
    check_unchanged,
    hash_files,
    stat_existing,
)

__all__ = [
    "MANIFEST_TYPE",
    "FileDigest",
    "Fingerprint",
    "asset_digest",
    "canonical_manifest",
    "diff_manifests",
    "fingerprint",
    "manifest_files",
]

MANIFEST_TYPE = "ledgermind/manifest/v1"

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FileDigest:
    """One file of an asset: its relative POSIX path, size in bytes and file digest (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Fingerprint:
    """The content fingerprint of a file or folder. ``manifest`` must not be mutated."""

    digest: str
    """Asset digest: hex SHA-256 of the canonical JSON of ``manifest``."""
    manifest: dict[str, Any]
    kind: str
    """``"file"`` or ``"folder"``. Not in the manifest: a folder holding only ``x`` has the digest of the file ``x``."""
    size: int
    """Total bytes of all files."""
    cid: str | None
    """IPFS CIDv1 (raw leaf) of a single file of at most 262144 bytes, else None."""
    hashed_files: int
    """Files read and hashed during this call."""
    cached_files: int
    """Files whose digest came from the cache."""

    @property
    def files(self) -> list[FileDigest]:
        """The manifest's entries, sorted by path."""
        return [FileDigest(f["path"], f["size"], f["sha256"]) for f in self.manifest["files"]]


def fingerprint(
    path: str | os.PathLike[str],
    *,
    cache: FingerprintCache | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> Fingerprint:
    """Fingerprint the file or folder at ``path``.

    A folder is walked recursively; every regular file counts, hidden ones included. Symlinks are followed when
    they point inside the folder (the entry takes the link's path). With ``cache``, files whose stat is unchanged
    since a previous call are not read again. ``workers`` threads (default ``os.cpu_count()``) hash the shards of
    all files; ``progress(done_bytes, total_bytes)`` counts only the bytes hashed in this call.

    Raises NotFoundError if nothing exists at ``path``. Raises InvalidInputError if the folder contains no files,
    a symlink that points outside it, is broken or loops, or a special file (fifo, socket, device); if a file name
    is not valid UTF-8; if something cannot be read; or if a file changes while it is being hashed.
    """
    name = os.fspath(path)
    started_ns = time.time_ns()
    top = stat_existing(name)

    if stat.S_ISDIR(top.st_mode):
        kind = "folder"
        found = _walk_folder(name)
        if not found:
            raise InvalidInputError(f"folder {name} contains no files")
    elif stat.S_ISREG(top.st_mode):
        kind = "file"
        base = os.path.basename(os.path.abspath(name))
        _check_name(base, name)
        found = [_Found(base, name, os.path.realpath(name), top)]
    else:
        raise InvalidInputError(f"{name} is not a regular file or folder")

    keys = [CacheKey.of(f.real, f.st) for f in found]
    digests: list[str | None] = [cache.get(k) if cache is not None else None for k in keys]
    todo = [i for i, d in enumerate(digests) if d is None]
    to_hash = [FileToHash(found[i].path, found[i].st.st_size) for i in todo]
    fresh = hash_files(to_hash, workers=workers, progress=progress)
    for i, digest in zip(todo, fresh, strict=True):
        check_unchanged(found[i].path, found[i].st)
        digests[i] = digest
    if cache is not None and todo:
        cache.put_many(((keys[i], digests[i]) for i in todo), hashing_started_ns=started_ns)

    entries = sorted(
        ({"path": f.rel, "size": f.st.st_size, "sha256": d} for f, d in zip(found, digests, strict=True)),
        key=lambda e: e["path"],
    )
    manifest = {"type": MANIFEST_TYPE, "shardSize": SHARD_SIZE, "files": entries}
    total = sum(e["size"] for e in entries)
    cid = raw_cid(entries[0]["sha256"], total) if kind == "file" else None
    return Fingerprint(
        digest=asset_digest(manifest),
        manifest=manifest,
        kind=kind,
        size=total,
        cid=cid,
        hashed_files=len(todo),
        cached_files=len(found) - len(todo),
    )


def canonical_manifest(manifest: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON bytes of ``manifest``: what the asset digest hashes and what a store keeps."""
    return rfc8785.dumps(manifest)


def asset_digest(manifest: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``manifest``. Does not validate the manifest."""
    return hashlib.sha256(canonical_manifest(manifest)).hexdigest()


def manifest_files(manifest: Any) -> list[FileDigest]:
    """Validate a v1 manifest and return its entries.

    Checks the type and shard size, and that paths are relative POSIX paths without ``.``/``..``/empty parts,
    strictly sorted, and never both a file and a folder; that sizes are non-negative ints and digests 64 lowercase
    hex chars. Raises InvalidInputError naming the first problem.
    """
    if not isinstance(manifest, Mapping):
        raise InvalidInputError(f"manifest must be a JSON object, got {type(manifest).__name__}")
    if manifest.get("type") != MANIFEST_TYPE:
        raise InvalidInputError(f"manifest type must be {MANIFEST_TYPE!r}, got {manifest.get('type')!r}")
    if manifest.get("shardSize") != SHARD_SIZE:
        raise InvalidInputError(f"manifest shardSize must be {SHARD_SIZE}, got {manifest.get('shardSize')!r}")
    extra = set(manifest) - {"type", "shardSize", "files"}
    if extra:
        raise InvalidInputError(f"manifest has unknown keys: {', '.join(sorted(extra))}")
    raw_files = manifest.get("files")
    if not isinstance(raw_files, list):
        raise InvalidInputError("manifest files must be a list")

    files: list[FileDigest] = []
    for i, entry in enumerate(raw_files):
        if not isinstance(entry, Mapping) or set(entry) != {"path", "size", "sha256"}:
            raise InvalidInputError(f"manifest entry {i} must have exactly the keys path, size, sha256")
        path, size, digest = entry["path"], entry["size"], entry["sha256"]
        if not isinstance(path, str) or not _is_safe_relative(path):
            raise InvalidInputError(f"manifest entry {i} has an unsafe or malformed path: {path!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInputError(f"manifest entry {path} has a bad size: {size!r}")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise InvalidInputError(f"manifest entry {path} has a bad sha256: {digest!r}")
        if files and files[-1].path >= path:
            raise InvalidInputError(f"manifest paths must be sorted and unique: {files[-1].path!r} before {path!r}")
        files.append(FileDigest(path, size, digest))

    names = {f.path for f in files}
    for f in files:
        parts = f.path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in names:
                raise InvalidInputError(f"manifest path {'/'.join(parts[:depth])!r} is both a file and a folder")
    return files


def diff_manifests(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Describe how ``new`` differs from ``old``, one line per path, sorted by path.

    Lines are ``"changed: PATH"`` (size or digest differs), ``"added: PATH"`` or ``"removed: PATH"``; an empty list
    means same content. Raises InvalidInputError if either is not a valid v1 manifest.
    """
    before = {f.path: (f.size, f.sha256) for f in manifest_files(old)}
    after = {f.path: (f.size, f.sha256) for f in manifest_files(new)}
    lines = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            lines.append(f"removed: {path}")
        elif path not in before:
            lines.append(f"added: {path}")
        elif before[path] != after[path]:
            lines.append(f"changed: {path}")
    return lines


@dataclass(frozen=True)
class _Found:
    rel: str  # manifest path
    path: str  # path to open (may go through symlinks)
    real: str  # resolved path: the cache key
    st: os.stat_result


def _walk_folder(root: str) -> list[_Found]:
    """Every regular file under ``root``, following symlinks that stay inside it. Unsorted."""
    root_real = os.path.realpath(root)
    found: list[_Found] = []
    # (path to list, its real path, manifest prefix, real paths of the folders above it: a symlink to one loops)
    stack: list[tuple[str, str, str, frozenset[str]]] = [(root, root_real, "", frozenset([root_real]))]
    while stack:
        dir_path, dir_real, prefix, ancestors = stack.pop()
        try:
            with os.scandir(dir_path) as it:
                entries = list(it)
        except OSError as exc:
            raise InvalidInputError(f"cannot read folder {dir_path}: {exc.strerror}") from None
        for entry in entries:
            _check_name(entry.name, entry.path)
            rel = prefix + entry.name
            try:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if os.path.commonpath([root_real, target]) != root_real:
                        raise InvalidInputError(f"{entry.path} is a symlink to {target}, outside the folder {root}")
                    try:
                        st = os.stat(entry.path)
                    except FileNotFoundError:
                        raise InvalidInputError(f"{entry.path} is a broken symlink") from None
                    real = target
                elif entry.is_dir(follow_symlinks=False):
                    # a plain subfolder's real path is its parent's plus its name: no realpath call needed
                    sub_real = os.path.join(dir_real, entry.name)
                    stack.append((entry.path, sub_real, rel + "/", ancestors | {sub_real}))
                    continue
                else:
                    st = entry.stat(follow_symlinks=False)
                    real = os.path.join(dir_real, entry.name)
            except FileNotFoundError:
                raise InvalidInputError(f"{entry.path} disappeared while the folder was being read") from None
            except OSError as exc:
                raise InvalidInputError(f"cannot read {entry.path}: {exc.strerror}") from None

            if stat.S_ISREG(st.st_mode):
                found.append(_Found(rel, entry.path, real, st))
            elif stat.S_ISDIR(st.st_mode):  # a symlink to a folder inside root
                if real in ancestors:
                    raise InvalidInputError(f"{entry.path} is a symlink loop (it points to {real})")
                stack.append((entry.path, real, rel + "/", ancestors | {real}))
            else:
                raise InvalidInputError(f"{entry.path} is not a regular file (fifo, socket or device)")
    return found


def _check_name(name: str, where: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"file name is not valid UTF-8: {where!r}") from None


def _is_safe_relative(path: str) -> bool:
    return bool(path) and "\x00" not in path and all(part not in ("", ".", "..") for part in path.split("/"))

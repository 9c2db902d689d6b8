"""Parallel sharded SHA-256 of files: the ledgermind file digest.

The digest of a file of ``size`` bytes is:

- ``sha256(content)`` when ``size <= SHARD_SIZE`` (identical to ``sha256sum``);
- otherwise ``sha256(d_0 || d_1 || ... || d_n)`` where ``d_i = sha256(shard_i)`` and the shards are consecutive
  ``SHARD_SIZE``-byte slices of the content (the last one shorter).

The size is always recorded next to the digest, which keeps the two cases apart. Shards are hashed on a
``ThreadPoolExecutor``: hashlib releases the GIL for buffers larger than 2 KiB, so threads scale with cores.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledgermind.errors import InvalidInputError, NotFoundError

__all__ = [
    "SHARD_SIZE",
    "READ_SIZE",
    "FileToHash",
    "ProgressCallback",
    "check_unchanged",
    "combine",
    "digest_bytes",
    "file_digest",
    "hash_files",
    "resolve_workers",
    "same_file_state",
    "shard_count",
    "stat_existing",
    "stat_regular_file",
]

SHARD_SIZE = 8 * 1024 * 1024
"""Bytes per shard. Part of the digest definition: changing it changes every digest of a larger file."""

READ_SIZE = 1024 * 1024
"""Bytes per ``pread`` inside a shard task: large enough that hashlib drops the GIL, small enough to stay in cache."""

ProgressCallback = Callable[[int, int], None]
"""``progress(done_bytes, total_bytes)``; called from hashing threads, one call at a time."""

_EMPTY = hashlib.sha256(b"").digest()

# Bounds the queued tasks per worker, so a folder of a million files does not build a million futures.
_IN_FLIGHT_PER_WORKER = 4


@dataclass(frozen=True)
class FileToHash:
    """A regular file to hash and the size it had when it was stat'ed.

    Only ``size`` bytes are read; a file that grew or shrank meanwhile must be caught by the caller's re-stat
    (a shrunk file also fails here, on the short read).
    """

    path: str
    size: int


def resolve_workers(workers: int | None) -> int:
    """Return the thread count to use: ``workers``, or ``os.cpu_count()`` when None.

    Raises InvalidInputError if ``workers`` is not a positive int.
    """
    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    return workers


def digest_bytes(data: bytes | bytearray | memoryview) -> str:
    """Return the file digest (hex) that a file holding exactly ``data`` would have. Sequential, in memory."""
    view = memoryview(data).cast("B")
    if len(view) <= SHARD_SIZE:
        return hashlib.sha256(view).hexdigest()
    shard_digests = b"".join(
        hashlib.sha256(view[start : start + SHARD_SIZE]).digest() for start in range(0, len(view), SHARD_SIZE)
    )
    return hashlib.sha256(shard_digests).hexdigest()


def combine(size: int, shard_digests: Sequence[bytes]) -> str:
    """Return the file digest (hex) of a file of ``size`` bytes from its shard digests, in shard order.

    Requires ``len(shard_digests) == shard_count(size)``.
    """
    if size <= SHARD_SIZE:
        return shard_digests[0].hex()
    return hashlib.sha256(b"".join(shard_digests)).hexdigest()


def shard_count(size: int) -> int:
    """Number of shards of a file of ``size`` bytes (an empty file has one, empty, shard)."""
    return max(1, -(-size // SHARD_SIZE))


def file_digest(
    path: str | os.PathLike[str],
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> str:
    """Return the file digest (64 lowercase hex chars) of the regular file at ``path``; no cache.

    Symlinks are followed. ``progress(done_bytes, total_bytes)`` is called as shards complete.
    Raises NotFoundError if nothing exists at ``path``; InvalidInputError if it is not a regular file, cannot be
    read, or changes while it is being hashed.
    """
    name = os.fspath(path)
    before = stat_regular_file(name)
    [digest] = hash_files([FileToHash(name, before.st_size)], workers=workers, progress=progress)
    check_unchanged(name, before)
    return digest


def stat_existing(path: str) -> os.stat_result:
    """``os.stat(path)``, following symlinks. Raises NotFoundError if missing, InvalidInputError if unreadable."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise NotFoundError(f"no such file or folder: {path}") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None


def stat_regular_file(path: str) -> os.stat_result:
    """``os.stat(path)`` for a regular file. Raises NotFoundError if missing, InvalidInputError otherwise."""
    st = stat_existing(path)
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInputError(f"{path} is a folder, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(f"{path} is not a regular file")
    return st


def same_file_state(a: os.stat_result, b: os.stat_result) -> bool:
    """True if two stats of one path describe the same, unmodified file (as far as stat can tell)."""
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (
        b.st_dev,
        b.st_ino,
        b.st_size,
        b.st_mtime_ns,
        b.st_ctime_ns,
    )


def check_unchanged(path: str, before: os.stat_result) -> None:
    """Raise InvalidInputError if the file at ``path`` no longer matches ``before``.

    Called after hashing: a digest of a file that changed under the reader describes no version of it.
    """
    try:
        after = os.stat(path)
    except OSError:
        after = None
    if after is None or not same_file_state(before, after):
        raise InvalidInputError(f"{path} changed while it was being hashed; try again once it is complete")


def hash_files(
    files: Sequence[FileToHash],
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """Return the file digest (hex) of each file, in order, hashing all their shards on one thread pool.

    Requires each ``files[i].size`` to be the file's current size. ``progress(done, total)`` is called with
    ``total = sum of sizes``: once with ``done = 0`` before hashing, then after every shard.
    Raises InvalidInputError if a file cannot be read or is shorter than its recorded size; the first such error
    stops the remaining work.
    """
    n_workers = resolve_workers(workers)
    tracker = _Progress(progress, sum(f.size for f in files))
    tasks = [
        (file_index, shard_index, f.path, shard_index * SHARD_SIZE, min(SHARD_SIZE, f.size - shard_index * SHARD_SIZE))
        for file_index, f in enumerate(files)
        for shard_index in range(shard_count(f.size))
    ]
    shard_digests: list[list[bytes]] = [[_EMPTY] * shard_count(f.size) for f in files]

    def run(task: tuple[int, int, str, int, int]) -> None:
        file_index, shard_index, path, offset, length = task
        shard_digests[file_index][shard_index] = _hash_range(path, offset, length)
        tracker.advance(length)

    tracker.start()
    if n_workers == 1 or len(tasks) <= 1:
        for task in tasks:  # no pool: a lone small file should not pay for thread start-up
            run(task)
    else:
        _run_on_pool(run, tasks, n_workers)
    return [combine(f.size, digests) for f, digests in zip(files, shard_digests, strict=True)]


def _run_on_pool(run: Callable[[tuple], None], tasks: list[tuple], n_workers: int) -> None:
    pool = cf.ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="ledgermind-hash")
    try:
        pending: set[cf.Future[None]] = set()
        limit = n_workers * _IN_FLIGHT_PER_WORKER
        for task in tasks:
            if len(pending) >= limit:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    future.result()  # re-raises the first failure and stops submitting
            pending.add(pool.submit(run, task))
        for future in cf.as_completed(pending):
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _hash_range(path: str, offset: int, length: int) -> bytes:
    """SHA-256 of bytes ``[offset, offset + length)`` of the file at ``path``."""
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        position, end = offset, offset + length
        while position < end:
            try:
                piece = os.pread(fd, min(READ_SIZE, end - position), position)
            except OSError as exc:
                raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
            if not piece:
                raise InvalidInputError(f"{path} changed while it was being hashed (it is shorter than stat said)")
            h.update(piece)
            position += len(piece)
    finally:
        os.close(fd)
    return h.digest()


class _Progress:
    """Sums completed bytes across threads and reports them one call at a time, so ``done`` never goes back."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self._callback = callback
        self._total = total
        self._done = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._callback is not None:
            self._callback(0, self._total)

    def advance(self, n: int) -> None:
        if self._callback is None:
            return
        with self._lock:
            self._done += n
            self._callback(self._done, self._total)

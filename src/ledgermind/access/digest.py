"""The ledgermind file digest computed incrementally, for bytes that stream past once (encryption, decryption).

It equals ``ledgermind.fingerprint.file_digest`` of a file holding the same bytes (see ``fingerprint.shards``:
plain SHA-256 up to one shard, SHA-256 of the shard digests above), without writing the bytes anywhere first.
"""

from __future__ import annotations

import hashlib

from ledgermind.fingerprint.shards import SHARD_SIZE, combine


class StreamingDigest:
    """Feed bytes in order with ``update``; ``hexdigest()`` is the file digest of everything fed so far."""

    def __init__(self) -> None:
        self.size = 0
        self._shards: list[bytes] = []
        self._current = hashlib.sha256()
        self._in_current = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            take = min(len(view), SHARD_SIZE - self._in_current)
            self._current.update(view[:take])
            self._in_current += take
            self.size += take
            view = view[take:]
            if self._in_current == SHARD_SIZE:
                self._shards.append(self._current.digest())
                self._current, self._in_current = hashlib.sha256(), 0

    def hexdigest(self) -> str:
        shards = list(self._shards)
        if self._in_current or not shards:  # a partial last shard, or an empty file's one empty shard
            shards.append(self._current.digest())
        return combine(self.size, shards)

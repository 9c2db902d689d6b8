"""The ledger: signed statements in the transparency log.

Every state change in ledgermind is a statement signed by its actor; ``Ledger.submit`` verifies the
envelope (payload type, canonical JSON, statement schema, signature) and appends it only if all of
that holds, durably. ``submit_many`` verifies a batch on every core and appends it as one contiguous
run, or appends nothing if any envelope is bad.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from ledgermind import errors
from ledgermind.errors import LedgermindError
from ledgermind.log.store import LogStore, SignedCheckpoint
from ledgermind.statements import Envelope, SignedStatement, open_envelope

PARALLEL_THRESHOLD = 512  # below this, starting worker processes costs more than it saves
_CHUNK = 256


@dataclass(frozen=True)
class Appended:
    """Where a statement landed: its log index, and who signed it."""

    index: int
    signer: str
    statement: SignedStatement


@dataclass(frozen=True)
class InclusionProof:
    """An entry's inclusion proof against a signed checkpoint (Sigstore bundle field names on export)."""

    index: int
    tree_size: int
    root: bytes
    hashes: list[bytes]
    checkpoint: SignedCheckpoint


def _open_chunk(raws: list[bytes]) -> list[tuple[str | None, str, bytes | None]]:
    """Worker side, per envelope: (error class name or None, signer or message, entry if not the input)."""
    out: list[tuple[str | None, str, bytes | None]] = []
    for raw in raws:
        try:
            s = open_envelope(raw)
        except LedgermindError as e:
            out.append((type(e).__name__, str(e), None))
            continue
        out.append((None, s.signer, None if s.entry == raw else s.entry))
    return out


class Ledger:
    """Statements in a LogStore. The store is owned by the caller (close it there)."""

    def __init__(self, store: LogStore, workers: int | None = None) -> None:
        self.store = store
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def submit(self, envelope: bytes | Envelope) -> Appended:
        """Verify one envelope and append it; return once it is durable. Nothing is appended on error."""
        s = open_envelope(envelope)
        return Appended(self.store.append(s.entry), s.signer, s)

    def submit_many(self, envelopes: Sequence[bytes]) -> range:
        """Verify every envelope (in parallel when the batch is large), then append all as one run.

        Raises the first envelope's error, prefixed with its position, and appends nothing if any is bad.
        """
        raws = [bytes(e) for e in envelopes]
        if len(raws) >= PARALLEL_THRESHOLD and self.workers > 1:
            pool = self._get_pool()
            chunks = [raws[i : i + _CHUNK] for i in range(0, len(raws), _CHUNK)]
            results = [r for part in pool.map(_open_chunk, chunks) for r in part]
        else:
            results = _open_chunk(raws)
        entries = []
        for i, (error, info, entry) in enumerate(results):
            if error is not None:
                raise getattr(errors, error, LedgermindError)(f"envelope {i}: {info}")
            entries.append(raws[i] if entry is None else entry)
        return self.store.append_many(entries)

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the log's writer thread may hold locks at fork time
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def read(self, index: int) -> SignedStatement:
        """The statement at ``index``, re-verified from the stored bytes."""
        return open_envelope(self.store.entry(index))

    def prove(self, index: int) -> InclusionProof:
        """Inclusion proof of entry ``index`` against the log's latest signed checkpoint."""
        cp = self.store.latest_checkpoint()
        if cp is None or index >= cp.size:
            raise LedgermindError(f"entry {index} is not covered by a signed checkpoint yet")
        return InclusionProof(index, cp.size, cp.root, self.store.inclusion_proof(index, cp.size), cp)


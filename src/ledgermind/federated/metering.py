"""What the ledger costs a federated round: transactions, gas, contract reads and seconds spent in chain calls, in
signing and appending statements and in the content store, counted by wrapping a role's contract, recorder and
content store (``metered``). Waiting for other parties is not a cost: wrap such polling in ``LedgerCost.pause``.

Every engine uses it the same way: build the ``TaskContext`` or ``Coordinator`` from the wrapped parts, snapshot
the meter (``copy``) when a round starts and take ``since(snapshot)`` when it ends.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from ledgermind.federated.onchain import FederationContract

if TYPE_CHECKING:
    from ledgermind.chain.connection import Chain, Receipt
    from ledgermind.federated.coordinator import Recorder
    from ledgermind.store import BlobStore

_COUNTERS = ("transactions", "gas", "reads", "chain_seconds", "statements", "statement_seconds", "store_seconds")


@dataclass
class LedgerCost:
    """Transactions sent, the gas they used, contract reads, and seconds in chain calls (a transaction with its
    receipt, a read, a funding check), in statements (signing and durable append) and in the content store."""

    transactions: int = 0
    gas: int = 0
    reads: int = 0
    chain_seconds: float = 0.0
    statements: int = 0
    statement_seconds: float = 0.0
    store_seconds: float = 0.0
    paused: bool = False

    @property
    def seconds(self) -> float:
        return self.chain_seconds + self.statement_seconds + self.store_seconds

    def copy(self) -> LedgerCost:
        return replace(self)

    def since(self, before: LedgerCost) -> LedgerCost:
        """What was spent after the snapshot ``before`` (a ``copy()``)."""
        return LedgerCost(**{k: getattr(self, k) - getattr(before, k) for k in _COUNTERS})

    def __add__(self, other: LedgerCost) -> LedgerCost:
        return LedgerCost(**{k: getattr(self, k) + getattr(other, k) for k in _COUNTERS})

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """Count nothing inside (polling the chain while waiting for other parties is not a cost of the ledger)."""
        was, self.paused = self.paused, True
        try:
            yield
        finally:
            self.paused = was

    @contextlib.contextmanager
    def timing(self, counter: str) -> Iterator[None]:
        """Add the seconds spent inside to ``counter`` (one of the ``*_seconds`` fields), unless paused."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if not self.paused:
                setattr(self, counter, getattr(self, counter) + time.perf_counter() - start)

    def to_json(self) -> dict[str, Any]:
        return {"transactions": self.transactions, "gas": self.gas, "reads": self.reads,
                "statements": self.statements, "chainSeconds": round(self.chain_seconds, 6),
                "statementSeconds": round(self.statement_seconds, 6), "storeSeconds": round(self.store_seconds, 6),
                "seconds": round(self.seconds, 6)}

    def to_metrics(self, prefix: str = "ledger-") -> dict[str, int | float]:
        """Flat numbers (for a Flower ``MetricRecord``); ``from_metrics`` reads them back."""
        return {prefix + f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self) if f.name in _COUNTERS}

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any], prefix: str = "ledger-") -> LedgerCost:
        types = {f.name: (float if f.name.endswith("seconds") else int) for f in fields(cls)}
        return cls(**{k: types[k](metrics.get(prefix + k.replace("_", "-"), 0)) for k in _COUNTERS})


class MeteredChain:
    """A ``Chain`` that counts into ``cost`` what goes through it: ``transact``/``send``/``deploy`` (a transaction
    and its gas), ``call`` and ``ensure_funds`` (a read). Everything else is the wrapped chain's."""

    def __init__(self, chain: Chain, cost: LedgerCost) -> None:
        self._chain = chain
        self.cost = cost

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chain, name)

    def _sent(self, receipt: Receipt) -> Receipt:
        if not self.cost.paused:
            self.cost.transactions += 1
            self.cost.gas += receipt.gas_used
        return receipt

    def send(self, *args: Any, **kw: Any) -> Receipt:
        with self.cost.timing("chain_seconds"):
            return self._sent(self._chain.send(*args, **kw))

    def transact(self, *args: Any, **kw: Any) -> Receipt:
        with self.cost.timing("chain_seconds"):
            return self._sent(self._chain.transact(*args, **kw))

    def deploy(self, *args: Any, **kw: Any) -> Receipt:
        with self.cost.timing("chain_seconds"):
            return self._sent(self._chain.deploy(*args, **kw))

    def _read(self) -> None:
        if not self.cost.paused:
            self.cost.reads += 1

    def call(self, fn: Any) -> Any:
        with self.cost.timing("chain_seconds"):
            self._read()
            return self._chain.call(fn)

    def ensure_funds(self, *args: Any, **kw: Any) -> None:
        with self.cost.timing("chain_seconds"):
            self._read()
            self._chain.ensure_funds(*args, **kw)


class MeteredBlobs:
    """A content store whose writes and reads are timed into ``cost.store_seconds``."""

    def __init__(self, blobs: BlobStore, cost: LedgerCost) -> None:
        self._blobs = blobs
        self.cost = cost

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blobs, name)

    def put_bytes(self, data: bytes) -> str:
        with self.cost.timing("store_seconds"):
            return self._blobs.put_bytes(data)

    def open(self, digest: str) -> io.BytesIO:
        with self.cost.timing("store_seconds"), self._blobs.open(digest) as f:
            data = f.read()  # read whole here, so the time is the store's
        return io.BytesIO(data)


def metered_recorder(record: Recorder, cost: LedgerCost) -> Recorder:
    """``record`` counting statements and their signing + appending time into ``cost``."""

    def timed(*args: Any) -> int:
        with cost.timing("statement_seconds"):
            index = record(*args)
        if not cost.paused:
            cost.statements += 1
        return index

    return timed


def metered(contract: FederationContract, record: Recorder, blobs: BlobStore,
            cost: LedgerCost) -> tuple[FederationContract, Recorder, BlobStore]:
    """A role's contract, recorder and content store, each counting into ``cost``."""
    wrapped = FederationContract(MeteredChain(contract.chain, cost), contract.address)  # type: ignore[arg-type]
    return wrapped, metered_recorder(record, cost), MeteredBlobs(blobs, cost)  # type: ignore[return-value]


"""Reading statements back from the log for the API: each entry's signature is re-checked, and its statement is
shown as signed, whatever its predicate type (capabilities add types this process may not know)."""

from __future__ import annotations

from typing import Any

import orjson

from ledgermind.client import Client
from ledgermind.errors import StorageError
from ledgermind.log.store import LogStore
from ledgermind.statements import PREDICATE_NAMESPACE
from ledgermind.statements.dsse import Envelope

MAX_PAGE = 500


def predicate_type(name: str) -> str:
    """A predicate type from its full URI or its short form (``alert/v1``)."""
    return name if "://" in name else PREDICATE_NAMESPACE + name.strip("/")


def store_of(client: Client) -> LogStore:
    return client.ledger.store


def read_entry(store: LogStore, index: int) -> tuple[str, dict[str, Any], Envelope]:
    """(signer, statement JSON, envelope) of entry ``index``. Raises NotFoundError beyond the log, StorageError
    for an entry whose signature no longer verifies (the log was tampered with)."""
    raw = store.entry(index)
    try:
        env = Envelope.from_bytes(raw)
        signer = env.signer()
        statement = orjson.loads(env.payload)
    except Exception as e:  # noqa: BLE001 - any failure here means the stored entry is not what was accepted
        raise StorageError(f"log entry {index} does not verify: {e}") from None
    return signer, statement, env


def summary(store: LogStore, index: int, with_statement: bool = False) -> dict[str, Any]:
    signer, statement, _ = read_entry(store, index)
    subject = (statement.get("subject") or [{}])[0]
    return {"logIndex": index, "signer": signer, "predicateType": statement.get("predicateType", ""),
            "subject": {"name": subject.get("name", ""), "digest": (subject.get("digest") or {}).get("sha256", "")},
            "statement": statement if with_statement else None}


def statements(client: Client, *, predicate: str | None = None, subject: str | None = None,
               signer: str | None = None, start: int = 0, limit: int = 100, descending: bool = False,
               with_statement: bool = True) -> list[dict[str, Any]]:
    """Statements matching the filters, through the registry index, each read back from the log."""
    registry = client.registry
    registry.sync()
    rows = registry.index.statements(predicate_type(predicate) if predicate else None, subject, signer,
                                     start, min(limit, MAX_PAGE), descending)
    store = store_of(client)
    return [summary(store, i, with_statement) for i, *_ in rows]

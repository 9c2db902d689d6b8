"""Alerts: the guard's findings as signed ``alert/v1`` statements in the log, and the local list of them.

An ``Alert`` says what kind of abuse (or departure from the chain's normal profile) was found, about which
accounts, how strong it is against its threshold, from which feature values, with which transactions as evidence,
by which detector (name, version, parameters, digest) and up to which block. Its id is the SHA-256 of all of that
(not of the time it was raised), so the same finding is recorded once however often the guard scans. The
statement's subject is the alert itself: ``alert:<kind>:<case>`` with the id as digest.

``AlertBook`` is the guard's local list of the alerts in the log (``LEDGERMIND_HOME/guard.sqlite``): derived from
the log, caught up with ``sync``, never trusted for verification (``show`` re-reads the signed entry).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.sqlite import open_db
from ledgermind.statements import ALERT, canonical_json, make_statement, sign_envelope, utc_now

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledgermind.log.store import LogStore
    from ledgermind.statements import Envelope, Statement

KINDS = ("wash-trading", "sybil-cluster", "voucher-abuse", "fraud-score", "health")
# what alert/v1 accepts: a longer finding keeps the first ones in hash order (the same on every re-derivation)
MAX_SUBJECTS, MAX_EVIDENCE = 256, 1000


def detector_digest(name: str, version: str, params: dict[str, Any]) -> str:
    """SHA-256 of a detector's canonical description: what re-checking an alert must run again."""
    return hashlib.sha256(canonical_json({"name": name, "version": version, "params": params})).hexdigest()


def _round(x: float) -> float:
    # features travel as JSON numbers: 9 significant digits keep them exact through a round trip and comparable
    return float(f"{float(x):.9g}")


@dataclass(frozen=True)
class Alert:
    """One finding. ``features`` are plain numbers; ``evidence`` transaction hashes (0x, lowercase)."""

    kind: str
    case: str
    chain_id: int
    head: int
    subjects: tuple[str, ...]
    score: float
    threshold: float
    summary: str
    detector: str
    version: str
    params: dict[str, Any] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    digest: str | None = None  # a trained model's digest; by default the digest of name, version and params

    def predicate(self, raised_at: str | None = None) -> dict[str, Any]:
        """The ``alert/v1`` predicate (without ``raisedAt`` when ``raised_at`` is None: what the id covers)."""
        p: dict[str, Any] = {
            "kind": self.kind, "case": self.case, "chainId": self.chain_id, "head": self.head,
            "subjects": sorted({a.lower() for a in self.subjects})[:MAX_SUBJECTS], "score": _round(self.score),
            "threshold": _round(self.threshold), "summary": self.summary,
            "features": {k: _round(v) for k, v in sorted(self.features.items())},
            "evidence": sorted({h.lower() for h in self.evidence})[:MAX_EVIDENCE],
            "detector": {"name": self.detector, "version": self.version,
                         "digest": self.digest or detector_digest(self.detector, self.version, self.params),
                         "params": self.params},
        }
        if raised_at is not None:
            p["raisedAt"] = raised_at
        return p

    @property
    def id(self) -> str:
        return hashlib.sha256(canonical_json(self.predicate())).hexdigest()

    def statement(self, raised_at: str | None = None) -> Statement:
        """The alert as a validated in-toto statement. Raises InvalidInputError if it does not fit ``alert/v1``."""
        return make_statement([(f"alert:{self.kind}:{self.case}"[:1024], self.id)], ALERT,
                              self.predicate(raised_at or utc_now()))

    def sign(self, account: LocalAccount) -> Envelope:
        return sign_envelope(self.statement().to_bytes(), account)

    @classmethod
    def from_predicate(cls, p: dict[str, Any]) -> Alert:
        d = p["detector"]
        digest = d["digest"] if d["digest"] != detector_digest(d["name"], d["version"], d.get("params", {})) else None
        return cls(p["kind"], p["case"], p["chainId"], p["head"], tuple(p["subjects"]), p["score"], p["threshold"],
                   p["summary"], d["name"], d["version"], d.get("params", {}), dict(p.get("features", {})),
                   tuple(p.get("evidence", [])), digest)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, log_index INTEGER NOT NULL, kind TEXT NOT NULL, case_key TEXT NOT NULL,
    chain_id INTEGER NOT NULL, score REAL NOT NULL, threshold REAL NOT NULL, subjects TEXT NOT NULL,
    summary TEXT NOT NULL, signer TEXT NOT NULL, raised_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_case ON alerts (chain_id, kind, case_key);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class AlertBook:
    """The alerts found in one log, by id. ``sync`` reads the entries appended since the last call."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.db = open_db(self.path, _SCHEMA, "alert list")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AlertBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sync(self, store: LogStore) -> int:
        """Add the alert statements appended to ``store`` since the last sync; returns how many. A different log
        (another origin, or shorter than what was read) rebuilds the list."""
        size = store.size()
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        start = int(meta.get("read", 0))
        if meta.get("origin") not in (None, store.origin) or start > size:
            self.db.executescript("DELETE FROM alerts; DELETE FROM meta;")
            start = 0
        added = 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for index, entry in store.entries(start, size):
                row = _alert_row(index, entry)
                if row is not None:
                    added += self.db.execute("INSERT OR IGNORE INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                             row).rowcount
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('origin', ?), ('read', ?)", (store.origin, str(size)))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return added

    def known(self, alert_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone() is not None

    def list(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Recorded alerts, oldest first: id, logIndex, kind, case, chainId, score, threshold, subjects, summary,
        signer, raisedAt."""
        sql = "SELECT * FROM alerts" + (" WHERE kind = ?" if kind else "") + " ORDER BY log_index"
        return [_row_json(r) for r in self.db.execute(sql, (kind,) if kind else ())]

    def resolve(self, ref: str) -> dict[str, Any]:
        """The alert whose id is ``ref`` or starts with it (6+ hex characters). Raises InvalidInputError for a
        malformed reference, NotFoundError for no or several matches."""
        ref = ref.lower().removeprefix("sha256:")
        if len(ref) < 6 or any(c not in "0123456789abcdef" for c in ref):
            raise InvalidInputError(f"alert id must be 6 to 64 hex characters, got {ref!r}")
        rows = self.db.execute("SELECT * FROM alerts WHERE id LIKE ? ORDER BY log_index LIMIT 2", (ref + "%",)).fetchall()
        if not rows:
            raise NotFoundError(f"no alert {ref!r} in this log (ledgermind alerts lists them)")
        if len(rows) > 1:
            raise NotFoundError(f"alert id prefix {ref!r} is ambiguous: give more characters")
        return _row_json(rows[0])


def _alert_row(index: int, entry: bytes) -> tuple[Any, ...] | None:
    # entries were verified when they were appended; here only the routing fields are read
    try:
        env = json.loads(entry)
        statement = json.loads(base64.b64decode(env["payload"]))
        if statement["predicateType"] != ALERT:
            return None
        p = statement["predicate"]
        return (statement["subject"][0]["digest"]["sha256"], index, p["kind"], p["case"], p["chainId"], p["score"],
                p["threshold"], json.dumps(p["subjects"]), p["summary"], env["signatures"][0]["keyid"], p["raisedAt"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _row_json(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": r[0], "logIndex": r[1], "kind": r[2], "case": r[3], "chainId": r[4], "score": r[5],
            "threshold": r[6], "subjects": json.loads(r[7]), "summary": r[8], "signer": r[9], "raisedAt": r[10]}

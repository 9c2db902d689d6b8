"""The registry: datasets, models and domain events registered as signed statements, with lineage.

Registering fingerprints the asset, builds a versioned predicate, signs it with the actor's account,
appends it to the log, and indexes it. Registering the same bytes twice returns the first
registration (the first statement about a digest is the one that counts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.fingerprint import Fingerprint, FingerprintCache, fingerprint
from ledgermind.ledger import Ledger
from ledgermind.quality import inspect_dataset
from ledgermind.registry.index import AssetRow, RegistryIndex
from ledgermind.registry.schema import summarize
from ledgermind.statements import DATASET, EVALUATION, EVENT, MODEL, canonical_json, make_statement, sign_envelope, utc_now
from ledgermind.store import BlobStore

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

MAX_MANIFEST_FILES = 1000  # larger folders are bound by their digest alone; the statement stays small

_FORMATS = {
    ".onnx": ("onnx", "onnx"),
    ".pkl": ("scikit-learn", "pickle"),
    ".joblib": ("scikit-learn", "joblib"),
    ".pt": ("pytorch", "torch"),
    ".pth": ("pytorch", "torch"),
    ".safetensors": (None, "safetensors"),
    ".npz": ("numpy", "npz"),
    ".json": (None, "json"),
    ".h5": ("keras", "hdf5"),
}


@dataclass(frozen=True)
class Registration:
    """The outcome of a register call. ``created`` is False when the bytes were already registered."""

    digest: str
    kind: str
    name: str
    log_index: int
    signer: str
    created: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.digest,
            "kind": self.kind,
            "name": self.name,
            "logIndex": self.log_index,
            "signer": self.signer,
            "created": self.created,
        }


class Registry:
    def __init__(self, ledger: Ledger, index: RegistryIndex, blobs: BlobStore, cache: FingerprintCache | None) -> None:
        self.ledger = ledger
        self.index = index
        self.blobs = blobs
        self.cache = cache

    # ------------------------------------------------------------------ helpers
    def sync(self) -> None:
        self.index.sync(self.ledger.store)

    def resolve(self, ref: str, kind: str | None = None) -> AssetRow:
        self.sync()
        row = self.index.resolve(ref)
        if kind and row.kind != kind:
            raise InvalidInputError(f"{ref!r} is a {row.kind}, expected a {kind}")
        return row

    def _fingerprint(self, path: str | Path, progress: Callable[[int, int], None] | None) -> tuple[Path, Fingerprint]:
        p = Path(path).expanduser()
        return p, fingerprint(p, cache=self.cache, progress=progress)

    def _existing(self, digest: str, kind: str) -> Registration | None:
        self.sync()
        row = self.index.asset(digest)
        if row is None:
            return None
        if row.kind != kind:
            raise InvalidInputError(f"these bytes are already registered as a {row.kind} ({digest[:12]}), not a {kind}")
        return Registration(row.digest, row.kind, row.name, row.log_index, row.signer, created=False)

    def _append(self, subjects: list[tuple[str, str]], ptype: str, predicate: dict[str, Any], account: LocalAccount) -> tuple[int, str]:
        statement = make_statement(subjects, ptype, predicate)
        appended = self.ledger.submit(sign_envelope(statement.to_bytes(), account))
        self.sync()
        return appended.index, appended.signer

    def _file_facts(self, fp: Fingerprint) -> dict[str, Any]:
        facts: dict[str, Any] = {"size": fp.size, "cid": fp.cid}
        if len(fp.manifest["files"]) <= MAX_MANIFEST_FILES:
            facts["manifest"] = fp.manifest
        return facts

    def _register(
        self, kind: str, ptype: str, path: Path, fp: Fingerprint, name: str, predicate: dict[str, Any],
        account: LocalAccount, store: bool,
    ) -> Registration:
        existing = self._existing(fp.digest, kind)
        if existing is None:
            index, signer = self._append([(name, fp.digest)], ptype, predicate, account)
            existing = Registration(fp.digest, kind, name, index, signer, created=True)
        if store:
            self.blobs.put_asset(path, fp)
        self.index.remember_path(path, fp.digest)
        return existing

    # ------------------------------------------------------------------ registration
    def register_dataset(
        self,
        path: str | Path,
        account: LocalAccount,
        *,
        name: str | None = None,
        source: str | None = None,
        licence: str | None = None,
        consent: bool | None = None,
        contains_pii: bool | None = None,
        store: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Registration:
        """Register a dataset file or folder. Raises NotFoundError / InvalidInputError on bad input."""
        p, fp = self._fingerprint(path, progress)
        name = name or p.name
        schema, rows = summarize(p, [f.path for f in fp.files])
        try:
            quality = inspect_dataset(p)
        except InvalidInputError as e:  # an unreadable table is worth a note, not a refusal
            quality = {"tables": [], "issues": [str(e)]}
        found = sorted({kind for t in quality["tables"] for kinds in t.get("pii", {}).values() for kind in kinds})
        if contains_pii is False and found:
            quality["issues"].append(f"registered as holding no personal data, but the detectors found: {', '.join(found)}")
        predicate: dict[str, Any] = {
            "name": name,
            "source": source,
            "licence": licence,
            "schema": schema,
            "rows": rows,
            "consent": consent,
            "containsPii": contains_pii,
            "quality": quality if quality["tables"] or quality["issues"] else None,
            **self._file_facts(fp),
            "registeredAt": utc_now(),
        }
        return self._register("dataset", DATASET, p, fp, name, _drop_none(predicate), account, store)

    def register_model(
        self,
        path: str | Path,
        account: LocalAccount,
        *,
        trained_on: list[str],
        parents: list[str] = (),  # type: ignore[assignment]
        name: str | None = None,
        framework: str | None = None,
        format: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        code_rev: str | None = None,
        store: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Registration:
        """Register a model with its lineage. Every dataset and parent must already be registered."""
        datasets = [self._ref(r, "dataset") for r in trained_on]
        parent_refs = [self._ref(r, "model") for r in parents]
        p, fp = self._fingerprint(path, progress)
        guess = _FORMATS.get(p.suffix.lower(), (None, None)) if p.is_file() else (None, "folder")
        predicate: dict[str, Any] = {
            "name": name or p.name,
            "framework": framework or guess[0],
            "format": format or guess[1],
            "hyperparameters": hyperparameters or {},
            "trainingDatasets": datasets,
            "parentModels": parent_refs,
            "codeRevision": code_rev,
            "metrics": _numbers(metrics or {}),
            **self._file_facts(fp),
            "registeredAt": utc_now(),
        }
        if any(r["digest"] == fp.digest for r in datasets + parent_refs):
            raise InvalidInputError("a model cannot list itself in its own lineage")
        return self._register("model", MODEL, p, fp, predicate["name"], _drop_none(predicate), account, store)

    def _ref(self, ref: str, kind: str) -> dict[str, Any]:
        try:
            row = self.resolve(ref, kind)
        except NotFoundError as e:
            raise NotFoundError(f"unknown {kind} {ref!r}: register it first ({e})") from e
        return {"digest": row.digest, "name": row.name, "logIndex": row.log_index}

    def record_event(
        self,
        account: LocalAccount,
        *,
        domain: str,
        type: str,
        data: dict[str, Any] | None = None,
        related: list[str] = (),  # type: ignore[assignment]
        subject: tuple[str, str] | None = None,
    ) -> Registration:
        """Record a domain event about registered assets (``related``) or an explicit (name, digest) subject."""
        refs = [self._ref_any(r) for r in related]
        data = data or {}
        canonical_json(data)  # rejects NaN and non-JSON values with a clear error
        if subject is None:
            subject = (refs[0]["name"], refs[0]["digest"]) if refs else (f"{domain}/{type}", _digest_of(data))
        predicate = {"domain": domain, "type": type, "time": utc_now(), "data": data, "related": refs}
        index, signer = self._append([subject], EVENT, predicate, account)
        return Registration(subject[1], "event", subject[0], index, signer, created=True)

    def record_evaluation(
        self, account: LocalAccount, *, model: str, dataset: str, metrics: dict[str, float]
    ) -> Registration:
        m, d = self._ref(model, "model"), self._ref(dataset, "dataset")
        predicate = {"model": m, "dataset": d, "metrics": _numbers(metrics), "evaluatedAt": utc_now()}
        index, signer = self._append([(m["name"], m["digest"])], EVALUATION, predicate, account)
        return Registration(m["digest"], "evaluation", m["name"], index, signer, created=True)

    def _ref_any(self, ref: str) -> dict[str, Any]:
        row = self.resolve(ref)
        return {"digest": row.digest, "name": row.name, "logIndex": row.log_index}

    # ------------------------------------------------------------------ reads
    def lineage(self, ref: str) -> dict[str, Any]:
        """The asset and, recursively, everything it was trained on or derived from."""
        root = self.resolve(ref)

        def node(row: AssetRow, relation: str | None, path: frozenset[str]) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": row.digest, "kind": row.kind, "name": row.name, "logIndex": row.log_index,
                "signer": row.signer, "registeredAt": row.registered_at,
            }
            if relation:
                out["relation"] = relation
            out["parents"] = []
            for parent, rel in self.index.parents(row.digest):
                prow = self.index.asset(parent)
                if prow is None or parent in path:  # never registered, or a cycle: show it, do not recurse
                    out["parents"].append({"id": parent, "relation": rel, "missing": prow is None})
                    continue
                out["parents"].append(node(prow, rel, path | {parent}))
            return out

        return node(root, None, frozenset({root.digest}))

    def assets(self, kind: str | None = None) -> list[AssetRow]:
        self.sync()
        return self.index.assets(kind)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidInputError(f"metric {k!r} must be a number, got {json.dumps(v)}")
        out[str(k)] = float(v) if isinstance(v, float) else v
    return out


def _digest_of(data: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(data)).hexdigest()

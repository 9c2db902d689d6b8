"""Verification of a registered asset, from the live log or offline from a bundle.

Each step is a Check with status PASS, FAIL or SKIP and a one-line detail; a report is ok only if
nothing failed. The same checks run online and offline: fingerprint of the bytes, the statement's
DSSE signature, its subject, the inclusion proof, the checkpoint's signature, and the lineage.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledgermind.errors import InvalidInputError, LedgermindError
from ledgermind.fingerprint import Fingerprint, diff_manifests
from ledgermind.log import CheckpointError, NoteVerifier, ProofError, leaf_hash, verify_inclusion
from ledgermind.statements import DATASET, MODEL, Envelope, SignedStatement, open_envelope

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.ledgermind.bundle.v1+json"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail}


@dataclass
class VerifyReport:
    target: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return any(c.status == PASS for c in self.checks) and not any(c.status == FAIL for c in self.checks)

    def add(self, name: str, ok: bool | None, detail: str) -> bool:
        self.checks.append(Check(name, SKIP if ok is None else PASS if ok else FAIL, detail))
        return bool(ok)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "ok": self.ok, "checks": [c.to_json() for c in self.checks]}

    def sort(self) -> None:
        """Put the checks in reading order: the bytes first, then the statement, the log, the lineage."""
        self.checks.sort(key=lambda c: _ORDER.index(c.name) if c.name in _ORDER else len(_ORDER))


_ORDER = ["log key", "fingerprint", "signature", "subject", "inclusion", "checkpoint", "consistency", "anchor"]


@dataclass(frozen=True)
class ProvenEntry:
    """A log entry with everything needed to check it without the log."""

    index: int
    entry: bytes
    tree_size: int
    root: bytes
    hashes: list[bytes]
    checkpoint_note: bytes


def check_fingerprint(report: VerifyReport, expected: str, fp: Fingerprint | None, manifest: dict[str, Any] | None) -> None:
    if fp is None:
        report.add("fingerprint", None, "no local bytes to hash (pass a PATH, or register with --store)")
        return
    if fp.digest == expected:
        report.add("fingerprint", True, f"sha256:{fp.digest} matches the registered digest")
        return
    detail = f"digest mismatch: registered sha256:{expected}, computed sha256:{fp.digest}"
    if manifest:
        changes = diff_manifests(manifest, fp.manifest)
        if changes:
            detail += " (" + "; ".join(changes[:5]) + (f"; {len(changes) - 5} more" if len(changes) > 5 else "") + ")"
    report.add("fingerprint", False, detail)


def check_entry(report: VerifyReport, proven: ProvenEntry, verifier: NoteVerifier, label: str = "") -> SignedStatement | None:
    """Signature, inclusion and checkpoint checks of one entry; returns its statement if it opened."""
    prefix = f"{label} " if label else ""
    statement = None
    try:
        statement = open_envelope(proven.entry)
        report.add(f"{prefix}signature", True, f"statement at log index {proven.index} signed by {statement.signer}")
    except LedgermindError as e:
        report.add(f"{prefix}signature", False, str(e))
    try:
        cp = verifier.open_checkpoint(proven.checkpoint_note)
        if (cp.size, cp.root) != (proven.tree_size, proven.root):
            raise CheckpointError(
                f"checkpoint is for size {cp.size} root {cp.root.hex()[:16]}, proof claims size {proven.tree_size} "
                f"root {proven.root.hex()[:16]}"
            )
        report.add(f"{prefix}checkpoint", True, f"signed by log {verifier.name} (key {verifier.key_id.hex()}), size {cp.size}")
    except CheckpointError as e:
        report.add(f"{prefix}checkpoint", False, str(e))
    try:
        verify_inclusion(leaf_hash(proven.entry), proven.index, proven.tree_size, proven.hashes, proven.root)
        report.add(
            f"{prefix}inclusion", True,
            f"entry {proven.index} is in the tree of size {proven.tree_size} (root {proven.root.hex()[:16]}...)",
        )
    except ProofError as e:
        report.add(f"{prefix}inclusion", False, str(e))
    return statement


def check_subject(report: VerifyReport, statement: SignedStatement | None, digest: str) -> None:
    if statement is None:
        report.add("subject", False, "statement could not be read")
        return
    got = statement.statement.digest
    report.add("subject", got == digest, f"statement is about sha256:{got}" + ("" if got == digest else f", expected {digest}"))


def lineage_refs(statement: SignedStatement | None) -> list[str]:
    if statement is None or statement.statement.predicate_type != MODEL:
        return []
    p = statement.statement.predicate
    return [r["digest"] for r in p.get("trainingDatasets", []) + p.get("parentModels", [])]


def is_asset(statement: SignedStatement | None) -> bool:
    return statement is not None and statement.statement.predicate_type in (DATASET, MODEL)


# ---------------------------------------------------------------------- bundles
def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def bundle_entry(proven: ProvenEntry, origin: str, vkey: str) -> dict[str, Any]:
    """One entry in Sigstore bundle shape: the DSSE envelope and its tlog entry with inclusion proof."""
    env = Envelope.from_bytes(proven.entry)
    return {
        "dsseEnvelope": env.to_json(),
        "verificationMaterial": {
            "tlogEntries": [
                {
                    "logIndex": str(proven.index),
                    "logId": {"origin": origin, "publicKey": vkey},
                    "inclusionProof": {
                        "logIndex": str(proven.index),
                        "rootHash": _b64(proven.root),
                        "treeSize": str(proven.tree_size),
                        "hashes": [_b64(h) for h in proven.hashes],
                        "checkpoint": {"envelope": proven.checkpoint_note.decode()},
                    },
                }
            ]
        },
    }


@dataclass(frozen=True)
class AnchorEvidence:
    """An on-chain anchor of a checkpoint, as carried in a bundle."""

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    block_hash: str
    tree_size: int
    root: bytes
    checkpoint_note: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id, "contract": self.contract, "txHash": self.tx_hash,
            "blockNumber": self.block_number, "blockHash": self.block_hash, "treeSize": str(self.tree_size),
            "rootHash": _b64(self.root), "checkpoint": {"envelope": self.checkpoint_note.decode()},
        }

    @classmethod
    def from_json(cls, obj: Any) -> AnchorEvidence:
        try:
            return cls(
                chain_id=int(obj["chainId"]), contract=str(obj["contract"]), tx_hash=str(obj["txHash"]),
                block_number=int(obj["blockNumber"]), block_hash=str(obj["blockHash"]),
                tree_size=int(obj["treeSize"]), root=base64.b64decode(obj["rootHash"], validate=True),
                checkpoint_note=obj["checkpoint"]["envelope"].encode(),
            )
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as e:
            raise InvalidInputError(f"bundle anchor is malformed: {e.__class__.__name__}: {e}") from e


def check_consistency_to_anchor(
    report: VerifyReport, proven: ProvenEntry, anchor: AnchorEvidence, hashes: list[bytes], verifier: NoteVerifier,
    label: str = "",
) -> bool:
    """The entry's checkpoint is a prefix of the anchored one (consistency proof), and the anchored
    checkpoint is signed by the same log. Adds one check; returns whether it passed."""
    from ledgermind.log import verify_consistency

    name = f"{label} consistency".strip()
    try:
        cp = verifier.open_checkpoint(anchor.checkpoint_note)
        if (cp.size, cp.root) != (anchor.tree_size, anchor.root):
            raise CheckpointError("anchored checkpoint note does not match the anchor's size and root")
        verify_consistency(proven.tree_size, anchor.tree_size, hashes, proven.root, anchor.root)
    except (CheckpointError, ProofError) as e:
        return report.add(name, False, str(e))
    return report.add(name, True, f"tree {proven.tree_size} is a prefix of the anchored tree {anchor.tree_size}")


def anchor_bundle_json(proven: ProvenEntry, hashes: list[bytes]) -> dict[str, Any]:
    return {"fromSize": str(proven.tree_size), "hashes": [_b64(h) for h in hashes]}


def parse_bundle_entry(obj: Any, where: str) -> tuple[ProvenEntry, str]:
    """Read one bundle entry back. Returns (entry, the log's vkey). Raises InvalidInputError when malformed."""
    try:
        env = Envelope.from_json(obj["dsseEnvelope"])
        tlog = obj["verificationMaterial"]["tlogEntries"][0]
        proof = tlog["inclusionProof"]
        index = int(proof["logIndex"])
        if int(tlog["logIndex"]) != index:
            raise ValueError("logIndex of the entry and of its proof differ")
        proven = ProvenEntry(
            index=index,
            entry=env.to_bytes(),
            tree_size=int(proof["treeSize"]),
            root=base64.b64decode(proof["rootHash"], validate=True),
            hashes=[base64.b64decode(h, validate=True) for h in proof["hashes"]],
            checkpoint_note=proof["checkpoint"]["envelope"].encode(),
        )
        return proven, tlog["logId"]["publicKey"]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, binascii.Error) as e:
        raise InvalidInputError(f"bundle {where} is malformed: {e.__class__.__name__}: {e}") from e


def _anchor_hashes(obj: Any, proven: ProvenEntry, where: str) -> list[bytes]:
    try:
        cons = obj["verificationMaterial"]["tlogEntries"][0]["anchorConsistency"]
        if int(cons["fromSize"]) != proven.tree_size:
            raise ValueError("anchorConsistency.fromSize differs from the inclusion proof's treeSize")
        return [base64.b64decode(h, validate=True) for h in cons["hashes"]]
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error) as e:
        raise InvalidInputError(f"bundle {where} anchor consistency proof is malformed: {e}") from e


def verify_bundle(
    bundle: Any, fp: Fingerprint | None, log_key: str | None = None,
    check_on_chain: Callable[[AnchorEvidence, bytes], tuple[bool, str]] | None = None,
) -> VerifyReport:
    """Verify a bundle offline: the asset's entry, every ancestor in its lineage, against the bundled
    (or pinned, ``log_key``) log key. ``fp`` is the fingerprint of the local bytes, if any.

    If the bundle carries an anchor, each entry's checkpoint must be a prefix of the anchored one; the
    anchor itself is checked with ``check_on_chain(anchor, log_id)`` when given, else taken from the
    bundle and reported as such."""
    if not isinstance(bundle, dict) or bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise InvalidInputError(f"not a ledgermind bundle (mediaType must be {BUNDLE_MEDIA_TYPE})")
    proven, vkey = parse_bundle_entry(bundle, "entry")
    report = VerifyReport(target=fp.manifest["files"][0]["path"] if fp and fp.kind == "file" else "bundle")
    try:
        verifier = NoteVerifier.from_vkey(vkey)
        if log_key is not None:
            pinned = NoteVerifier.from_vkey(log_key)
            ok = pinned.vkey() == verifier.vkey()
            report.add("log key", ok, "bundle log key matches the pinned key" if ok else f"bundle log key {vkey} is not the pinned {log_key}")
            verifier = pinned
        else:
            report.add("log key", None, f"taken from the bundle ({verifier.name}); pin it with --log-key to trust only that log")
    except CheckpointError as e:
        raise InvalidInputError(f"bundle log key is malformed: {e}") from e
    statement = check_entry(report, proven, verifier)
    digest = statement.statement.digest if statement else ""
    manifest = statement.statement.predicate.get("manifest") if statement else None
    check_fingerprint(report, digest, fp, manifest)
    if not is_asset(statement):
        report.add("subject", False, "bundle statement is not a dataset or model registration")
    ancestors: dict[str, tuple[ProvenEntry, str, list[bytes]]] = {}
    for i, item in enumerate(bundle.get("lineage", [])):
        entry, key = parse_bundle_entry(item, f"lineage[{i}]")
        hashes = _anchor_hashes(item, entry, f"lineage[{i}]") if bundle.get("anchor") else []
        try:
            ancestors[open_envelope(entry.entry).statement.digest] = (entry, key, hashes)
        except LedgermindError as e:
            report.add(f"lineage[{i}]", False, str(e))
    anchor = AnchorEvidence.from_json(bundle["anchor"]) if bundle.get("anchor") else None
    if anchor is not None:
        check_consistency_to_anchor(report, proven, anchor, _anchor_hashes(bundle, proven, "entry"), verifier)
        if check_on_chain is None:
            report.add("anchor", None, f"taken from the bundle, not checked on chain (offline): tree size "
                       f"{anchor.tree_size} in {anchor.contract} on chain {anchor.chain_id}, tx {anchor.tx_hash}; "
                       "pass --rpc-url to check it")
        else:
            from ledgermind.anchoring import log_id

            ok, detail = check_on_chain(anchor, log_id(verifier.vkey()))
            report.add("anchor", ok, detail)
    else:
        report.add("anchor", None, "the bundle carries no anchor (the log had not anchored this entry yet)")
    report.sort()
    _check_lineage_offline(report, statement, ancestors, verifier, set(), anchor, bundle)
    return report


def _check_lineage_offline(
    report: VerifyReport, statement: SignedStatement | None, ancestors: dict[str, tuple[ProvenEntry, str, list[bytes]]],
    verifier: NoteVerifier, seen: set[str], anchor: AnchorEvidence | None = None, bundle: Any = None,
) -> None:
    for digest in lineage_refs(statement):
        if digest in seen:
            continue
        seen.add(digest)
        if digest not in ancestors:
            report.add(f"lineage {digest[:12]}", False, "ancestor is missing from the bundle")
            continue
        entry = ancestors[digest][0]
        sub = VerifyReport(target=digest)
        parent = check_entry(sub, entry, verifier)
        if anchor is not None:
            check_consistency_to_anchor(sub, entry, anchor, ancestors[digest][2], verifier)
        ok = sub.ok and is_asset(parent)
        name = parent.statement.subjects[0][0] if parent else "?"
        kind = parent.statement.predicate_type.rsplit("/", 2)[-2] if parent else "?"
        failed = [f"{c.name}: {c.detail}" for c in sub.checks if c.status == FAIL]
        report.add(
            f"lineage {digest[:12]}", ok,
            f"{kind} {name!r} at log index {entry.index} verified" if ok else "; ".join(failed) or "not a registration",
        )
        _check_lineage_offline(report, parent, ancestors, verifier, seen, anchor, bundle)


"""``ledgermind.Client``: the one Python API. The CLI is a thin layer over it.

    from ledgermind import Client
    with Client(home="/tmp/lm") as lm:
        data = lm.register_dataset("patients.csv", licence="CC-BY-4.0")
        model = lm.register_model("model.onnx", trained_on=[data.digest])
        assert lm.verify("model.onnx").ok
        lm.export_bundle(model.digest, "model.bundle.json")
    Client.verify_bundle("model.bundle.json", "model.onnx").ok   # offline, no home needed
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.accounts import DEV_PASSWORD, Keystore
from ledgermind.anchoring import AnchorPolicy, AnchorQueue, Anchorer, check_anchor_on_chain, log_id
from ledgermind.chain.connection import Chain, ChainError
from ledgermind.chain.deployments import Deployment, Deployments
from ledgermind.config import Settings, load_settings
from ledgermind.errors import InvalidInputError, LedgermindError, NotFoundError, StorageError
from ledgermind.fingerprint import Fingerprint, FingerprintCache, fingerprint
from ledgermind.ledger import Ledger
from ledgermind.log import NoteSigner
from ledgermind.log.fsck import FsckReport, fsck
from ledgermind.log.store import LogStore
from ledgermind.registry import Registration, Registry, RegistryIndex, VerifyReport, verify_bundle
from ledgermind.registry.verify import (
    BUNDLE_MEDIA_TYPE,
    AnchorEvidence,
    anchor_bundle_json,
    check_consistency_to_anchor,
    ProvenEntry,
    bundle_entry,
    check_entry,
    check_fingerprint,
    check_subject,
    lineage_refs,
)
from ledgermind.store import BlobStore

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledgermind.inference.book import BookedPayer
    from ledgermind.market.onchain import Market, MarketTx
    from ledgermind.provider import Provider

ZERO_ADDRESS_TOKEN = "0x0000000000000000000000000000000000000000"

Progress = Callable[[int, int], None]


def log_signer(key_path: Path) -> NoteSigner:
    """The log's Ed25519 signer, created on first use (key file mode 0600). Its name is the log origin."""
    if not key_path.exists():
        # written whole to a private temp file, then linked into place: concurrent first uses (several
        # processes on a new home) agree on one key, and nobody reads a half-written one
        key_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = key_path.with_name(f".{key_path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(NoteSigner.generate("probe").private_pem())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, key_path)
        except FileExistsError:
            pass  # another process won: use its key
        finally:
            tmp.unlink()
    pem = key_path.read_bytes()
    probe = NoteSigner.from_pem("probe", pem)
    origin = "ledgermind.local/" + hashlib.sha256(probe.public_key).hexdigest()[:16]
    return NoteSigner.from_pem(origin, pem)


class Client:
    """Everything ledgermind does, against one LEDGERMIND_HOME. Open resources lazily; ``close()`` them."""

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        account: str | None = None,
        password: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or load_settings(home, account=account, password=password)
        self.keystore = Keystore(self.settings.keystore_dir)
        self._store: LogStore | None = None
        self._ledger: Ledger | None = None
        self._registry: Registry | None = None
        self._cache: FingerprintCache | None = None
        self._account: LocalAccount | None = None
        self._chain: Chain | None = None
        self._anchors: AnchorQueue | None = None
        self.dev_account_created = False
        self.last_anchor: dict[str, Any] | None = None
        self._shares = False  # resources borrowed from another client (acting_as): not ours to close

    # ------------------------------------------------------------------ lifecycle
    def acting_as(self, account: str) -> Client:
        """This home acting as another of its accounts (unlocked with the same password), sharing this client's
        open log, index and chain connection: an embedded chain is opened by one client at a time. Closing the
        result releases nothing shared; close this client last. Raises NotFoundError for an unknown account."""
        other = Client(settings=dataclasses.replace(self.settings, account=account))
        other.account()  # fails now for an account this home does not hold
        other._store, other._ledger, other._registry = self._log(write=True), self.ledger, self.registry
        other._cache, other._chain, other._anchors = self.cache, self.chain(), self.anchor_queue
        other._shares = True
        return other

    def close(self) -> None:
        if self._shares:
            self._store = self._ledger = self._registry = self._cache = self._chain = self._anchors = None
            return
        for closer in (self._ledger, self._store, self._cache, self._chain, self._anchors):
            if closer is not None:
                closer.close()
        if self._registry is not None:
            self._registry.index.close()
        self._store = self._ledger = self._registry = self._cache = self._chain = self._anchors = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _log(self, write: bool = False) -> LogStore:
        if self._store is None:
            if not write and not self.settings.log_path.exists():
                raise NotFoundError(f"no ledger in {self.settings.home} yet: register something first")
            self._store = LogStore(
                self.settings.log_path,
                log_signer(self.settings.log_key_path),
                max_batch=self.settings.log_max_batch,
                max_latency=self.settings.log_max_latency,
                busy_timeout=self.settings.busy_timeout,
            )
        return self._store

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self._log(write=True))
        return self._ledger

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._log()  # reads need an existing log; writes create it through .ledger first
            self._registry = Registry(self.ledger, RegistryIndex(self.settings.index_path), self.blobs, self.cache)
        return self._registry

    def _writing_registry(self) -> Registry:
        self._log(write=True)
        return self.registry

    @property
    def blobs(self) -> BlobStore:
        return BlobStore(self.settings.blobs_dir)

    @property
    def cache(self) -> FingerprintCache:
        if self._cache is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
            self._cache = FingerprintCache(self.settings.fingerprint_cache_path)
        return self._cache

    # ------------------------------------------------------------------ accounts
    def accounts(self) -> list[dict[str, Any]]:
        default = self.keystore.default()
        return [{"address": a, "default": a == default} for a in self.keystore.addresses()]

    def new_account(self, password: str | None = None, make_default: bool = False) -> str:
        if password is None:
            password = self.settings.password or DEV_PASSWORD
        address = self.keystore.create(password)
        if make_default:
            self.keystore.set_default(address)
        return address

    def account(self) -> LocalAccount:
        """The acting account: --account / LEDGERMIND_ACCOUNT, else the default (created on first use)."""
        if self._account is None:
            if self.settings.account:
                address = self.keystore.resolve(self.settings.account)
            else:
                address, self.dev_account_created = self.keystore.ensure_default()
            self._account = self.keystore.unlock(address, self.settings.password or DEV_PASSWORD)
        return self._account

    # ------------------------------------------------------------------ registry
    def register_dataset(self, path: str | os.PathLike[str], *, progress: Progress | None = None, **kw: Any) -> Registration:
        """Register a dataset file or folder (see Registry.register_dataset for the options)."""
        account = self.account()
        return self._after_write(self._writing_registry().register_dataset(path, account, progress=progress, **kw))

    def register_model(
        self, path: str | os.PathLike[str], *, trained_on: list[str], progress: Progress | None = None, **kw: Any
    ) -> Registration:
        """Register a model with its lineage (datasets it was trained on, parent models)."""
        account = self.account()
        return self._after_write(
            self._writing_registry().register_model(path, account, trained_on=trained_on, progress=progress, **kw)
        )

    def record_event(self, *, domain: str, type: str, data: dict[str, Any] | None = None, related: list[str] = ()) -> Registration:  # type: ignore[assignment]
        account = self.account()
        return self._after_write(
            self._writing_registry().record_event(account, domain=domain, type=type, data=data, related=list(related))
        )

    def record_evaluation(self, *, model: str, dataset: str, metrics: dict[str, float]) -> Registration:
        account = self.account()
        return self._after_write(
            self._writing_registry().record_evaluation(account, model=model, dataset=dataset, metrics=metrics)
        )

    def submit(self, envelope: bytes) -> dict[str, Any]:
        """Append a statement signed elsewhere (e.g. by a hardware wallet): a DSSE envelope's JSON bytes.

        The signature, payload type, canonical form and statement are checked first; on any error
        nothing is appended.
        """
        appended = self._after_write(self.ledger.submit(envelope))
        return {"logIndex": appended.index, "signer": appended.signer,
                "predicateType": appended.statement.statement.predicate_type,
                "subject": appended.statement.statement.digest}

    def _after_write(self, result: Any) -> Any:
        """Anchor if the policy says so; the outcome (or why it stays queued) is kept in ``last_anchor``."""
        self.last_anchor = self.maybe_anchor() if self.settings.auto_anchor else None
        return result

    def inspect(self, target: str | os.PathLike[str], against: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The data-quality report of a dataset: checked now for a file or folder (with train/test leakage
        against the table ``against`` if given), or as recorded at registration for a registered dataset id or
        name. Raises NotFoundError when ``target`` is neither."""
        from ledgermind.quality import inspect_dataset, leakage

        path = Path(target).expanduser()
        if path.exists():
            report = inspect_dataset(path)
            if against is not None:
                if not path.is_file():
                    raise InvalidInputError("--against compares one table with another: give a file, not a folder")
                leak = leakage(Path(against).expanduser(), path)
                report["leakage"] = leak
                if leak["exact"] or leak["near"]:
                    report["issues"].append(f"{leak['exact']} exact and {leak['near']} near duplicates of rows of "
                                            f"{leak['train']} in {leak['test']} (of {leak['testRows']})")
            registered = None
            if self.settings.log_path.exists():
                known = self.registry.index.digest_for_path(path)
                row = self.registry.index.asset(known) if known else None
                if row is not None:
                    registered = {"id": row.digest, "logIndex": row.log_index}
            return {"target": str(path), "registered": registered, **report}
        if against is not None:
            raise InvalidInputError("--against needs the dataset's file, not its id")
        row = self.registry.resolve(str(target), "dataset")
        predicate = self.ledger.read(row.log_index).statement.predicate
        recorded = predicate.get("quality") or {"tables": [], "issues": []}
        return {"target": row.name, "registered": {"id": row.digest, "logIndex": row.log_index}, **recorded}

    def lineage(self, ref: str) -> dict[str, Any]:
        return self.registry.lineage(ref)

    def assets(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            {"id": r.digest, "kind": r.kind, "name": r.name, "logIndex": r.log_index, "signer": r.signer,
             "registeredAt": r.registered_at}
            for r in self.registry.assets(kind)
        ]

    def show(self, ref: str) -> dict[str, Any]:
        """An asset's registration statement and every later statement about it."""
        row = self.registry.resolve(ref)
        statement = self.ledger.read(row.log_index)
        about = [
            {"logIndex": i, "predicateType": t, "signer": s}
            for i, t, s in self.registry.index.statements_about(row.digest)
        ]
        return {
            "id": row.digest, "kind": row.kind, "name": row.name, "logIndex": row.log_index, "signer": row.signer,
            "statement": statement.statement.to_json(), "statements": about,
        }

    # ------------------------------------------------------------------ verification
    def _proven(self, index: int) -> ProvenEntry:
        """Entry ``index`` with its inclusion proof against the checkpoint signed when it was appended."""
        store = self._log()
        cp = store.checkpoint_covering(index)
        return ProvenEntry(index, store.entry(index), cp.size, cp.root, store.inclusion_proof(index, cp.size), cp.note)

    def verify(
        self, target: str | os.PathLike[str], *, expect: str | None = None, progress: Progress | None = None
    ) -> VerifyReport:
        """Verify a file/folder (by its bytes) or a registered asset (by id or name) against the log.

        ``expect`` names the registered asset a path must match (e.g. to check a copy). Raises
        NotFoundError when nothing registered matches the target.
        """
        reg = self.registry
        reg.sync()
        path = Path(target).expanduser()
        fp: Fingerprint | None = None
        if path.exists():
            fp = fingerprint(path, cache=self.cache, progress=progress)
            row = reg.resolve(expect) if expect else reg.index.asset(fp.digest)
            if row is None:
                known = reg.index.digest_for_path(path)
                row = reg.index.asset(known) if known else None
            if row is None:
                raise NotFoundError(f"nothing registered matches {path} (sha256:{fp.digest})")
        else:
            try:
                row = reg.resolve(str(target))
            except NotFoundError as e:
                if os.sep in str(target):
                    raise NotFoundError(f"no such file or folder: {path}") from e
                raise
            fp = self._fingerprint_from_store(row.digest)
        report = VerifyReport(target=str(target))
        store = self._log()
        statement = check_entry(report, self._proven(row.log_index), store.verifier)
        check_subject(report, statement, row.digest)
        manifest = statement.statement.predicate.get("manifest") if statement else None
        check_fingerprint(report, row.digest, fp, manifest)
        self._check_anchor(report, row.log_index)
        report.sort()
        self._verify_lineage(report, statement, set())
        return report

    def _anchor_for(self, chain_id: int, index: int) -> tuple[AnchorEvidence, ProvenEntry] | None:
        """The newest anchor on ``chain_id`` that covers entry ``index``, with that entry proven."""
        latest = self.anchor_queue.latest(chain_id)
        if latest is None or latest.tree_size <= index:
            return None
        store = self._log()
        cp = store.checkpoint_at(latest.tree_size)
        evidence = AnchorEvidence(chain_id, latest.contract or "", latest.tx_hash or "", latest.block_number or 0,
                                  latest.block_hash or "", latest.tree_size, cp.root, cp.note)
        return evidence, self._proven(index)

    def _check_anchor(self, report: VerifyReport, index: int) -> None:
        try:
            chain = self.chain()
        except LedgermindError as e:
            report.add("anchor", None, f"not checked: {e}")
            return
        found = self._anchor_for(chain.chain_id, index)
        if found is None:
            report.add("anchor", None, f"entry {index} is not anchored on chain {chain.chain_id} yet (run 'ledgermind anchor')")
            return
        evidence, proven = found
        hashes = self._log().consistency_proof(proven.tree_size, evidence.tree_size)
        check_consistency_to_anchor(report, proven, evidence, hashes, self._log().verifier)
        ok, detail = check_anchor_on_chain(chain, evidence.contract, log_id(self._log().verifier.vkey()),
                                           evidence.tree_size, evidence.root, evidence.tx_hash)
        report.add("anchor", ok, detail)

    def _verify_lineage(self, report: VerifyReport, statement: Any, seen: set[str]) -> None:
        for digest in lineage_refs(statement):
            if digest in seen:
                continue
            seen.add(digest)
            row = self.registry.index.asset(digest)
            if row is None:
                report.add(f"lineage {digest[:12]}", False, "ancestor is not registered in this log")
                continue
            sub = VerifyReport(target=digest)
            parent = check_entry(sub, self._proven(row.log_index), self._log().verifier)
            check_subject(sub, parent, digest)
            failed = "; ".join(f"{c.name}: {c.detail}" for c in sub.checks if c.status == "FAIL")
            report.add(
                f"lineage {digest[:12]}", sub.ok,
                f"{row.kind} {row.name!r} at log index {row.log_index} verified" if sub.ok else failed,
            )
            self._verify_lineage(report, parent, seen)

    def _fingerprint_from_store(self, digest: str) -> Fingerprint | None:
        if self.blobs.manifest(digest) is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.blobs.materialize(digest, Path(tmp) / "asset")
            return fingerprint(folder)

    # ------------------------------------------------------------------ bundles
    def bundle(self, ref: str, anchor_chain: int | None = None) -> dict[str, Any]:
        """A self-contained bundle of the asset and its whole lineage: each entry with its inclusion proof
        against the checkpoint signed when it was appended, and, when the log has anchored them on chain
        ``anchor_chain``, the anchor and a consistency proof from each entry's checkpoint to it."""
        row = self.registry.resolve(ref)
        store = self._log()
        vkey = store.verifier.vkey()
        anchor = None
        if anchor_chain is not None:
            found = self._anchor_for(anchor_chain, row.log_index)
            anchor = found[0] if found else None

        def entry(index: int) -> dict[str, Any]:
            proven = self._proven(index)
            item = bundle_entry(proven, store.origin, vkey)
            if anchor is not None:
                hashes = store.consistency_proof(proven.tree_size, anchor.tree_size)
                item["verificationMaterial"]["tlogEntries"][0]["anchorConsistency"] = anchor_bundle_json(proven, hashes)
            return item

        out = {"mediaType": BUNDLE_MEDIA_TYPE, **entry(row.log_index)}
        if anchor is not None:
            out["anchor"] = anchor.to_json()
        lineage: list[dict[str, Any]] = []
        todo, seen = [row.digest], {row.digest}
        while todo:
            for parent, _ in self.registry.index.parents(todo.pop()):
                prow = self.registry.index.asset(parent)
                if prow is None or parent in seen:
                    continue
                seen.add(parent)
                lineage.append(entry(prow.log_index))
                todo.append(parent)
        out["lineage"] = lineage
        return out

    def export_bundle(self, ref: str, path: str | os.PathLike[str], anchor: bool = True) -> Path:
        """Write ``bundle(ref)`` to ``path``; with ``anchor``, anchor first if the entry is not yet covered."""
        out = Path(path).expanduser()
        chain_id = None
        if anchor:
            row = self.registry.resolve(ref)
            chain = self.chain()
            chain_id = chain.chain_id
            if self._anchor_for(chain_id, row.log_index) is None:
                self.anchor()
        data = json.dumps(self.bundle(ref, chain_id), indent=2).encode()
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
        return out

    @staticmethod
    def verify_bundle(
        bundle_path: str | os.PathLike[str], path: str | os.PathLike[str] | None = None, *, log_key: str | None = None,
        rpc_url: str | None = None, progress: Progress | None = None,
    ) -> VerifyReport:
        """Verify a bundle with no LEDGERMIND_HOME and no log, and the local bytes at ``path`` if given.

        The anchor is checked on the chain at ``rpc_url`` if given; otherwise it is taken from the bundle
        and the report says so."""
        bp = Path(bundle_path).expanduser()
        bundle = _read_json(bp, "bundle")
        fp = fingerprint(Path(path).expanduser(), progress=progress) if path is not None else None
        check = None
        if rpc_url is not None:
            def check(anchor: AnchorEvidence, log: bytes) -> tuple[bool, str]:
                try:
                    chain = Chain.connect(Path(tempfile.gettempdir()), rpc_url, anchor.chain_id)
                except LedgermindError as e:
                    return False, str(e)
                try:
                    return check_anchor_on_chain(chain, anchor.contract, log, anchor.tree_size, anchor.root, anchor.tx_hash)
                finally:
                    chain.close()
        report = verify_bundle(bundle, fp, log_key, check)
        report.target = str(path) if path is not None else str(bp)
        return report

    # ------------------------------------------------------------------ chain
    def chain(self) -> Chain:
        """The configured chain: --rpc-url, else this home's running node, else the embedded chain in-process."""
        if self._chain is None:
            self._chain = Chain.connect(self.settings.chain_dir, self.settings.rpc_url, self.settings.chain_id)
        return self._chain

    @property
    def deployments(self) -> Deployments:
        return Deployments(self.settings.deployments_dir)

    @property
    def anchor_queue(self) -> AnchorQueue:
        if self._anchors is None:
            self._anchors = AnchorQueue(self.settings.anchors_path)
        return self._anchors

    def _anchorer(self) -> Anchorer:
        policy = AnchorPolicy(self.settings.anchor_every_entries, self.settings.anchor_every_seconds)
        return Anchorer(self._log(), self.anchor_queue, self.deployments, self.chain, self.account, policy)

    def deploy(self, grant: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        """Deploy the contracts on the configured chain (idempotent); the acting account and ``grant`` may
        anchor and mint."""
        chain = self.chain()
        deployed = self.deployments.deploy(chain, self.account(), list(grant))
        return {"chainId": chain.chain_id, "contracts": {n: d.__dict__ for n, d in deployed.items()}}

    def anchor(self) -> dict[str, Any]:
        """Anchor the latest checkpoint now. Raises ChainError (the anchor stays queued) if the chain fails."""
        store = self._log()
        chain = self.chain()
        anchorer = self._anchorer()
        anchorer.request(chain.chain_id)
        done = anchorer.run(chain, force=True)
        latest = done or self.anchor_queue.latest(chain.chain_id)
        return {"chainId": chain.chain_id, "logSize": store.size(), "anchored": latest.to_json() if latest else None}

    def maybe_anchor(self) -> dict[str, Any] | None:
        """Anchor if the policy says it is time. Never raises for chain trouble: the entries wait in the
        log (the next anchor covers them), the chain is retried with backoff, and the returned dict says
        why. Returns None when there was nothing to do."""
        target = self.settings.rpc_url or "embedded"
        outage = self.anchor_queue.outage(target)
        if outage is not None and outage[1] > time.time():
            return {"queued": True, "reason": f"{outage[2]} (next try in {outage[1] - time.time():.0f} s)"}
        try:
            chain = self.chain()
        except LedgermindError as e:
            self.anchor_queue.record_outage(target, str(e))
            return {"queued": True, "reason": str(e)}
        self.anchor_queue.clear_outage(target)
        try:
            anchorer = self._anchorer()
            if not anchorer.due(chain.chain_id):
                return None
            anchorer.request(chain.chain_id)
            done = anchorer.run(chain)
            return {"anchored": done.to_json()} if done else None
        except LedgermindError as e:
            return {"queued": True, "reason": str(e)}

    def anchors(self) -> list[dict[str, Any]]:
        return [a.to_json() for a in self.anchor_queue.all()]

    def mint(self, ref: str) -> dict[str, Any]:
        """Mint a registered dataset or model as an ERC-721 token to the acting account."""
        from ledgermind.registry.onchain import mint

        chain = self.chain()
        account = self.account()
        deployment = self._asset_registry(chain, account)
        return mint(chain, deployment, account, self.registry, ref, self._log().origin)

    def owned(self, owner: str | None = None) -> list[dict[str, Any]]:
        """Asset tokens ``owner`` (default: the acting account) holds on the configured chain."""
        from ledgermind.registry.onchain import owned

        chain = self.chain()
        who = self.keystore.resolve(owner) if owner and owner.lower() in {a.lower() for a in self.keystore.addresses()} else owner
        address = who or self.account().address
        return owned(chain, self.deployments.require(chain, "AssetRegistry"), address, self.registry)

    def _asset_registry(self, chain: Chain, account: LocalAccount) -> Deployment:
        return self._deployed(chain, account, "AssetRegistry")

    def _deployed(self, chain: Chain, account: LocalAccount, name: str) -> Deployment:
        """The deployment of ``name``; on the embedded chain (ours, in-process or through our node) a missing
        one is deployed now, on an external chain only ``ledgermind deploy`` deploys (ChainError says so)."""
        try:
            return self.deployments.require(chain, name)
        except ChainError:
            if chain.kind == "rpc":
                raise
            return self.deployments.deploy(chain, account)[name]

    # ------------------------------------------------------------------ market
    def market(self) -> Market:
        """The market contracts on the configured chain (deployed first on the embedded chain)."""
        from ledgermind.market.onchain import Market

        chain = self.chain()
        self._deployed(chain, self.account(), "Marketplace")
        return Market(chain, self.deployments)

    def _asset_ref(self, ref: str) -> tuple[str, str | None]:
        """(digest, name) of an asset: registered here (id, prefix or name), or any 64-hex digest (an asset
        registered in another log, e.g. bought from its seller). Raises NotFoundError."""
        digest = ref.removeprefix("sha256:").removeprefix("0x").lower()
        if self.settings.log_path.exists():
            try:
                row = self.registry.resolve(ref)
                return row.digest, row.name
            except NotFoundError:
                pass
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            return digest, None
        raise NotFoundError(f"no asset {ref!r}: give a registered name, id or id prefix, or a 64-hex asset digest")

    def _record_market(self, txs: list[MarketTx], name: str | None) -> list[dict[str, Any]]:
        """Append the ``market/v1`` statement of each transaction; return them with their log indices."""
        from ledgermind.market.statement import market_envelope

        account = self.account()
        chain_id = self.chain().chain_id
        out = []
        for tx in txs:
            appended = self.ledger.submit(market_envelope(account, tx, chain_id, name))
            out.append({**tx.to_json(), "logIndex": appended.index})
        return self._after_write(out)

    def sell(
        self, ref: str, *, price: int = 0, kind: str = "access", token: str | None = None, duration: int | None = None,
        contributors: list[tuple[str, int]] | None = None, lineage_bps: int | None = None,
        free_per_address: int | None = None,
    ) -> list[dict[str, Any]]:
        """List an asset the acting account owns on the Marketplace.

        ``kind``: "access" (ERC-20 access tokens at ``price`` per whole token; created on first listing),
        "licence" (``duration`` seconds for ``price``) or "asset" (the NFT itself). ``token``: "native"
        (default), "demo" or an ERC-20 address. Access and licence sales are split with ``contributors``
        ((address, basis points) pairs) or, with ``lineage_bps``, the owners of the asset's parents on chain.
        ``free_per_address`` instead gives access tokens away through the dispenser, that many per address.
        Returns the transactions made, each recorded in the log. Raises InvalidInputError, NotFoundError (not
        minted), ChainError."""
        market = self.market()
        account = self.account()
        digest, name = self._asset_ref(ref)
        pay = market.token_address(token)
        if free_per_address is not None:
            txs = market.enable_dispenser(account, digest, free_per_address)
        elif kind == "access":
            txs = market.list_access(account, digest, price, pay, contributors=contributors, lineage_bps=lineage_bps)
        elif kind == "licence":
            if duration is None:
                raise InvalidInputError("a licence needs its duration in seconds")
            if lineage_bps is not None:
                raise InvalidInputError("lineage shares apply to access tokens; give licence contributors explicitly")
            txs = [market.list_licence(account, digest, price, duration, pay, contributors=contributors)]
        elif kind == "asset":
            if contributors or lineage_bps is not None:
                raise InvalidInputError("an NFT sale pays the ERC-2981 royalty, not contributors")
            txs = market.list_asset(account, digest, price, pay)
        else:
            raise InvalidInputError(f"unknown listing kind {kind!r}: access, licence or asset")
        return self._record_market(txs, name)

    def delist(self, ref: str, kind: str = "access") -> list[dict[str, Any]]:
        """End a listing ("access", "licence", "asset" or "dispenser") of an asset."""
        digest, name = self._asset_ref(ref)
        market = self.market()
        return self._record_market([market.delist(self.account(), digest, kind)], name)

    def buy(self, ref: str, *, kind: str = "access", quantity: int = 1) -> list[dict[str, Any]]:
        """Buy from a listing: ``quantity`` access tokens, a licence period, the asset NFT, or (kind "free") one
        token from the dispenser. Pays in the listing's token (approving an ERC-20 first)."""
        digest, name = self._asset_ref(ref)
        market = self.market()
        account = self.account()
        if kind == "access":
            tx = market.buy_access(account, digest, quantity)
        elif kind == "licence":
            tx = market.buy_licence(account, digest)
        elif kind == "asset":
            tx = market.buy_asset(account, digest)
        elif kind == "free":
            tx = market.dispense(account, digest)
        else:
            raise InvalidInputError(f"unknown purchase kind {kind!r}: access, licence, asset or free")
        return self._record_market([tx], name)

    def listings(self) -> list[dict[str, Any]]:
        """Every asset listed on the Marketplace, with what is on sale now and its name in this log if known."""
        market = self.market()
        out = []
        for digest in market.listed_assets():
            listing = market.listing(digest)
            if not any(listing[k] for k in ("access", "licence", "asset", "dispenser")):
                continue
            row = self.registry.index.asset(digest) if self.settings.log_path.exists() else None
            out.append({**listing, "name": row.name if row else None, "kind": row.kind if row else None})
        return out

    def withdraw(self) -> list[dict[str, Any]]:
        """Collect everything owed to the acting account: sale proceeds (Marketplace) and settled channel
        payments (PaymentChannels), in the native coin and the demo token. Returns what was paid out."""
        from ledgermind.inference.channels import PaymentChannels

        market = self.market()
        account = self.account()
        channels = PaymentChannels(market.chain, self.deployments.require(market.chain, "PaymentChannels").address)
        out: list[dict[str, Any]] = []
        for token in (market.payment_token, ZERO_ADDRESS_TOKEN):
            tx = market.withdraw(account, token)
            if tx is not None:
                out.extend(self._record_market([tx], None))
            amount = channels.withdraw(account, token)
            if amount:
                out.append({"action": "withdraw", "contract": channels.address, "token": token, "amount": str(amount)})
        return out

    def balance(self, address: str | None = None) -> dict[str, Any]:
        """What an account (default: the acting one) holds: native coin and demo tokens, what it can withdraw
        from the Marketplace and PaymentChannels, and its access tokens and licences for listed assets."""
        from web3 import Web3

        from ledgermind.inference.channels import PaymentChannels

        market = self.market()
        who = Web3.to_checksum_address(address) if address else self.account().address
        channels = PaymentChannels(market.chain, self.deployments.require(market.chain, "PaymentChannels").address)
        demo = market.payment_token
        access = []
        for digest in market.listed_assets():
            token = market.access_token(digest)
            tokens = market.token_balance(token, who) if token else 0
            expiry = market.licence_expiry(digest, who)
            if tokens or expiry:
                access.append({"id": digest, "accessTokens": str(tokens), "licenceExpiry": expiry or None,
                               "hasAccess": market.has_access(digest, who)})
        return {
            "account": who, "chainId": market.chain.chain_id,
            "native": str(market.chain.balance(who)), "demoToken": {"address": demo, "balance": str(market.token_balance(demo, who))},
            "withdrawable": {
                "marketplace": {"native": str(market.withdrawable(who)), "demoToken": str(market.withdrawable(who, demo))},
                "channels": {"native": str(channels.withdrawable(who)), "demoToken": str(channels.withdrawable(who, demo))},
            },
            "access": access,
        }

    def set_market_fee(self, fee_bps: int, recipient: str | None = None) -> list[dict[str, Any]]:
        """Set the Marketplace's platform fee (basis points of every later sale, at most 1000) and its recipient
        (default: the acting account). Only the Marketplace's owner (its deployer) can."""
        market = self.market()
        account = self.account()
        return self._record_market([market.set_fee(account, fee_bps, recipient or account.address)], None)

    def faucet(self, to: str | None = None, amount: int = 1000 * 10**18) -> dict[str, Any]:
        """Mint demo tokens (LMPAY) to ``to`` (default: the acting account). Only the PaymentToken's deployer can:
        on the embedded chain, the home's default account."""
        from web3 import Web3

        market = self.market()
        owner_home = self.keystore.default()
        minter = self.account()
        if owner_home and owner_home.lower() != minter.address.lower():
            minter = self.keystore.unlock(owner_home, self.settings.password or DEV_PASSWORD)
        who = Web3.to_checksum_address(to) if to else self.account().address
        receipt = market.mint_payment_tokens(minter, who, amount)
        return {"to": who, "amount": str(amount), "token": market.payment_token, "txHash": receipt.tx_hash}

    # ------------------------------------------------------------------ private data
    def offer_dataset(self, ref: str, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Encrypt the bytes at ``path`` (AES-256-GCM, a key per dataset kept in ``keys/``) into the blob store,
        and offer them to holders of the registered dataset ``ref``'s access tokens or licences when this home
        serves (``ledgermind serve``). Raises InvalidInputError if the bytes are not that dataset."""
        from ledgermind.access import AccessStore, offer_dataset

        row = self.registry.resolve(ref, "dataset")
        fp = fingerprint(Path(path).expanduser(), cache=self.cache)
        if fp.digest != row.digest:
            raise InvalidInputError(f"{path} is sha256:{fp.digest}, not the registered dataset {row.name!r} "
                                    f"(sha256:{row.digest})")
        with AccessStore(self.settings.home / "access.sqlite", self.settings.busy_timeout) as store:
            enc = offer_dataset(path, blobs=self.blobs, keys_dir=self.settings.home / "keys", store=store,
                                name=row.name, fp=fp)
        return {"id": row.digest, "name": row.name, "kind": enc.kind, "size": enc.size, "encrypted": True}

    def download(self, ref: str, provider_url: str, dest: str | os.PathLike[str] | None = None, *,
                 path: str | None = None) -> Path:
        """Download a private dataset (its digest, or its name if registered here) from a provider, as the acting
        account: the provider checks the signed request and the account's access token or licence on chain,
        and the bytes are checked against the dataset's digest before they land at ``dest``."""
        from ledgermind.access.client import download

        digest, _ = self._asset_ref(ref)
        return download(provider_url, digest, self.account(), dest, self.chain(), path=path)

    # ------------------------------------------------------------------ paid inference
    def provider(self, models: list[tuple[str, str | os.PathLike[str] | None]], *, price: int = 0,
                 token: str | None = None, datasets: bool = True, settle_interval: float = 30.0) -> Provider:
        """A provider app serving ``models`` for payment and the private datasets offered here (see
        ``ledgermind.provider.build_provider``); run it with uvicorn, or ``ledgermind serve``."""
        from ledgermind.provider import build_provider

        return build_provider(self, models, price=price, token=token, datasets=datasets,
                              settle_interval=settle_interval)

    def announce(self, model: str, endpoint: str, price: int, token: str | None = None) -> dict[str, Any]:
        """Announce on chain (ProviderRegistry) that the acting account serves ``model`` at ``endpoint``; the
        model must be minted. Clients find it with ``infer`` when they name no provider."""
        from ledgermind.inference.discovery import announce

        digest, _ = self._asset_ref(model)
        market = self.market()
        registry = self.deployments.require(market.chain, "ProviderRegistry").address
        receipt = announce(market.chain, registry, self.account(), digest, endpoint, price, market.token_address(token))
        return {"model": digest, "endpoint": endpoint, "price": str(price), "txHash": receipt.tx_hash}

    def providers(self, model: str) -> list[dict[str, Any]]:
        """The providers announced on chain for ``model``."""
        from ledgermind.inference.discovery import discover_providers

        digest, _ = self._asset_ref(model)
        chain = self.chain()
        registry = self._deployed(chain, self.account(), "ProviderRegistry").address
        return [p.to_json() for p in discover_providers(chain, registry, digest)]

    def _payer(self) -> BookedPayer:
        from ledgermind.inference.book import BookedPayer, ChannelBook
        from ledgermind.inference.channels import PaymentChannels

        chain = self.chain()
        contract = PaymentChannels(chain, self._deployed(chain, self.account(), "PaymentChannels").address)
        return BookedPayer(self.account(), contract, ChannelBook(self.settings.home / "channels.sqlite"))

    def infer(self, model: str, inputs: Any, *, providers: list[str] | None = None, deposit: int = 0,
              use_access: bool = False) -> dict[str, Any]:
        """Run ``model`` on ``inputs`` at a provider, paying per request through a payment channel (the acting
        account's open channel to that provider, or a new one holding ``deposit``), or, with ``use_access``,
        as a holder of the model's access token or licence. ``providers`` are endpoints; by default they are
        discovered on chain. The answer's receipt is checked (signed by the provider, naming the model and
        the digests of these inputs and outputs); a provider that is down or answers badly is skipped.
        Raises AllProvidersFailed (each failure named), RequestRefused (inputs every provider would refuse)."""
        from ledgermind.inference.client import InferenceClient
        from ledgermind.inference.discovery import ProviderInfo, discover_providers

        digest, _ = self._asset_ref(model)
        chain = self.chain()
        found: list[str | ProviderInfo] = list(providers or [])
        if not found:
            registry = self._deployed(chain, self.account(), "ProviderRegistry").address
            found = list(discover_providers(chain, registry, digest))
            if not found:
                raise NotFoundError(f"no provider announced for model {digest[:12]} on chain {chain.chain_id}: "
                                    f"give one with --provider URL")
        payer = self._payer()
        access = None
        if use_access:
            market = self.market()
            access = (self.account(), chain.chain_id, market.address)
        try:
            with InferenceClient(found, payer=payer, channels=payer.usable(), deposit=deposit, access=access) as ic:
                result = ic.infer(digest, inputs)
        finally:
            payer.book.close()
        return result.to_json()

    def settle(self) -> list[dict[str, Any]]:
        """As a provider: redeem on chain the best voucher of every channel that paid for this account's receipts
        in this home's log (what ``ledgermind serve`` does before a channel expires). ``withdraw`` then collects."""
        from ledgermind.inference.channels import PaymentChannels, ProviderChannels
        from ledgermind.inference.receipts import provider_receipts

        chain = self.chain()
        account = self.account()
        contract = PaymentChannels(chain, self._deployed(chain, account, "PaymentChannels").address)
        channels = ProviderChannels(contract, account.address)
        channels.restore(provider_receipts(self._log(), account.address))
        return [s.to_json() for s in channels.settle_all(account)]

    def channels(self) -> list[dict[str, Any]]:
        """The payment channels the acting account opened from this home, with their state on chain."""
        payer = self._payer()
        try:
            out = []
            for rec in payer.book.channels(payer.contract.chain_id, payer.contract.address, payer.account.address):
                info = payer.contract.channel(bytes.fromhex(rec["channelId"][2:]))
                out.append({**rec, "deposit": str(info.deposit), "issued": str(rec["issued"]), "paid": str(info.paid),
                            "expiry": info.expiry, "closed": info.closed})
            return out
        finally:
            payer.book.close()

    def open_channel(self, recipient: str, deposit: int, *, token: str | None = None,
                     duration: int = 24 * 3600) -> dict[str, Any]:
        """Open a payment channel from the acting account to ``recipient`` holding ``deposit`` (in ``token``:
        "native" by default, "demo" or an ERC-20 address) for ``duration`` seconds, for payments that are not
        inference requests (e.g. energy delivered between neighbours): ``pay`` then signs vouchers on it.
        It is kept in this home's channel book like the channels ``infer`` opens. Raises ChainError."""
        from web3 import Web3

        token_address = self.market().token_address(token)
        payer = self._payer()
        try:
            channel = payer.open(Web3.to_checksum_address(recipient), deposit, token=token_address, duration=duration)
        finally:
            payer.book.close()
        return {"channelId": "0x" + channel.channel_id.hex(), "sender": payer.account.address,
                "recipient": channel.recipient, "token": channel.token, "deposit": str(channel.deposit),
                "expiry": channel.expiry}

    def pay(self, recipient: str, amount: int) -> dict[str, Any]:
        """Sign a voucher paying ``recipient`` ``amount`` more through the acting account's open channel to it
        (the one with most left). Vouchers are cumulative: the returned one (JSON, with chain id and contract)
        is for everything paid on the channel so far, recorded in the channel book before it is returned; the
        recipient redeems the latest with ``redeem``. Raises NotFoundError (no usable channel to
        ``recipient``), InvalidInputError (the deposit left does not cover ``amount``)."""
        if amount <= 0:
            raise InvalidInputError(f"a payment must be positive, got {amount}")
        payer = self._payer()
        try:
            channel = payer.usable(min_seconds_left=60).get(recipient.lower())
            if channel is None:
                raise NotFoundError(f"no open channel from {payer.account.address} to {recipient}: open_channel first")
            voucher = channel.voucher(amount)
        finally:
            payer.book.close()
        return {**voucher.to_json(), "chainId": payer.contract.chain_id, "contract": payer.contract.address}

    def redeem(self, voucher: dict[str, Any]) -> dict[str, Any]:
        """As the recipient of a channel, redeem a voucher from ``pay`` on chain (the latest one redeems all
        the earlier ones); ``withdraw`` then collects. Raises InvalidInputError (malformed, or for another chain
        or contract), ChainError (the contract's reason: not the recipient, bad signature, nothing new)."""
        from ledgermind.inference.channels import PaymentChannels
        from ledgermind.market.eip712 import Voucher

        chain = self.chain()
        contract = PaymentChannels(chain, self._deployed(chain, self.account(), "PaymentChannels").address)
        parsed = Voucher.from_json(voucher)
        if voucher.get("chainId", chain.chain_id) != chain.chain_id or \
                str(voucher.get("contract", contract.address)).lower() != contract.address.lower():
            raise InvalidInputError(f"the voucher is for contract {voucher.get('contract')} on chain "
                                    f"{voucher.get('chainId')}, not {contract.address} on chain {chain.chain_id}")
        before = contract.channel(parsed.channel_id).paid
        receipt = contract.settle(self.account(), parsed)
        return {"channelId": "0x" + parsed.channel_id.hex(), "amount": str(parsed.amount - before),
                "total": str(parsed.amount), "txHash": receipt.tx_hash}

    def reclaim(self) -> list[dict[str, Any]]:
        """Close every expired channel of the acting account and collect what its provider did not redeem."""
        payer = self._payer()
        try:
            now = payer.contract.now()
            done = []
            for rec in payer.book.channels(payer.contract.chain_id, payer.contract.address, payer.account.address):
                cid = bytes.fromhex(rec["channelId"][2:])
                info = payer.contract.channel(cid)
                if info.closed or info.expiry > now:
                    continue
                receipt = payer.contract.reclaim(payer.account, cid)
                done.append({"channelId": rec["channelId"], "refund": str(info.deposit - info.paid),
                             "txHash": receipt.tx_hash})
            if done:
                for token in {r["token"] for r in payer.book.channels(payer.contract.chain_id, payer.contract.address)}:
                    payer.contract.withdraw(payer.account, token)
            return done
        finally:
            payer.book.close()

    def verify_receipt(self, receipt: int | dict[str, Any] | str | os.PathLike[str], *, model: str | None = None,
                       log_key: str | None = None, inputs: Any = None, outputs: Any = None) -> VerifyReport:
        """Verify an inference receipt: a receipt bundle (``GET /v1/receipts/{n}`` of its provider, as a dict or
        a file; checked offline, against ``log_key`` if given) or a log index of this home's log (as the
        provider). ``model`` is the model it must name (any reference to a model registered here, or its
        digest). Raises NotFoundError / InvalidInputError for a missing or malformed bundle file."""
        from ledgermind.inference.receipts import verify_receipt

        if isinstance(receipt, (str, os.PathLike)):
            path = Path(receipt).expanduser()
            receipt = _read_json(path, "receipt bundle")
            if not isinstance(receipt, dict) or "dsseEnvelope" not in receipt:
                raise InvalidInputError(f"{path} is not a receipt bundle (no dsseEnvelope)")
        source = self if isinstance(receipt, int) else None  # a bundle carries its provider's log proof
        if model is not None and source is None:
            model, _ = self._asset_ref(model)
        return verify_receipt(receipt, source, model=model, log_key=log_key, inputs=inputs, outputs=outputs)

    # ------------------------------------------------------------------ federated training
    def fed_create(self, **terms: Any) -> dict[str, Any]:
        """Create a federated training task as its coordinator (see ``ledgermind.federated.service.create``)."""
        from ledgermind.federated import service

        return service.create(self, **terms)

    def fed_join(self, task_id: int, data: str | os.PathLike[str], stake: int | None = None) -> dict[str, Any]:
        """Join a task as the acting account, training on the CSV file ``data``."""
        from ledgermind.federated import service

        return service.join(self, task_id, data, stake)

    def fed_run(self, task_id: int, attacks: dict[str, str] | None = None, on_round: Any = None) -> dict[str, Any]:
        """Run a task's rounds as its coordinator with the in-process engine, then register the final model."""
        from ledgermind.federated import service

        return service.run(self, task_id, attacks, on_round=on_round)

    def fed_status(self, task_id: int) -> dict[str, Any]:
        from ledgermind.federated import service

        return service.status(self, task_id)

    def fed_claim(self, task_id: int) -> dict[str, Any]:
        """Collect the acting account's rewards and stake from a finished task."""
        from ledgermind.federated import service

        return service.claim(self, task_id)

    # ------------------------------------------------------------------ governance
    def gov_propose(self, decision: str, ref: str) -> dict[str, Any]:
        """Propose ``decision`` (approve-dataset, revoke-dataset, approve-model, revoke-model) on an asset."""
        from ledgermind.governance import service

        return service.propose(self, decision, ref)

    def gov_vote(self, proposal_id: int, support: bool = True) -> dict[str, Any]:
        from ledgermind.governance import service

        return service.vote(self, proposal_id, support)

    def gov_execute(self, proposal_id: int) -> dict[str, Any]:
        from ledgermind.governance import service

        return service.execute(self, proposal_id)

    def gov_decide(self, decision: str, ref: str) -> dict[str, Any]:
        """Propose and vote for ``decision``, and execute it at once when quorum and timelock allow."""
        from ledgermind.governance import service

        return service.decide(self, decision, ref)

    def gov_status(self, ref: str | None = None) -> dict[str, Any]:
        """An asset's approvals (with ``ref``), or the governance's parameters, gate and proposals."""
        from ledgermind.governance import service

        return service.status(self, ref) if ref is not None else service.overview(self)

    def gov_member(self, member: str, add: bool = True) -> dict[str, Any]:
        from ledgermind.governance import service

        return service.set_member(self, member, add)

    def gov_parameters(self, quorum: int, timelock: int, voting_period: int) -> dict[str, Any]:
        from ledgermind.governance import service

        return service.set_parameters(self, quorum, timelock, voting_period)

    def gov_gate(self, enabled: bool = True) -> dict[str, Any]:
        """Turn on (or off) the Marketplace's refusal of models whose lineage governance has not approved."""
        from ledgermind.governance import service

        return service.set_gate(self, enabled)

    # ------------------------------------------------------------------ log
    def log_info(self) -> dict[str, Any]:
        store = self._log()
        cp = store.latest_checkpoint()
        return {
            "path": str(store.path),
            "origin": store.origin,
            "publicKey": store.verifier.vkey(),
            "size": store.size(),
            "root": cp.root.hex() if cp else None,
            "checkpoint": cp.note.decode() if cp else None,
        }

    def checkpoint(self) -> str:
        cp = self._log().latest_checkpoint()
        if cp is None:
            raise NotFoundError("the log has not signed a checkpoint yet")
        return cp.note.decode()

    def fsck(self) -> FsckReport:
        return fsck(self._log())

    def entry(self, index: int) -> dict[str, Any]:
        """A log entry, re-verified, with its inclusion proof against the latest checkpoint."""
        statement = self.ledger.read(index)
        proof = self.ledger.prove(index)
        return {
            "logIndex": index,
            "signer": statement.signer,
            "statement": statement.statement.to_json(),
            "inclusionProof": {
                "logIndex": str(index), "treeSize": str(proof.tree_size), "rootHash": proof.root.hex(),
                "hashes": [h.hex() for h in proof.hashes],
            },
        }


def _read_json(path: Path, what: str) -> Any:
    """The JSON in the file at ``path``. Raises NotFoundError (no such file), InvalidInputError (not JSON)."""
    if not path.is_file():
        raise NotFoundError(f"no such {what} file: {path}")
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"{what} {path} is not JSON: {e}") from None


__all__ = ["Client", "StorageError"]

"""The guard through a ledgermind home: what ``ledgermind guard scan|watch|health`` and ``ledgermind alerts`` do.

``scan`` brings the chain index (``LEDGERMIND_HOME/guard/index-<chain id>.sqlite``) up to the chain's head, runs
the unsupervised detectors, the health check and, when a trained detector is installed, the per-account fraud
score over it, and appends every new finding as an ``alert/v1`` statement signed by the acting account (the
guard's). ``show`` re-reads an alert's signed entry and re-derives it from the index up to the block it saw.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.chain.connection import ChainError
from ledgermind.chain.indexer import ChainIndex
from ledgermind.errors import InvalidInputError, LedgermindError, NotFoundError
from ledgermind.guard import health as health_mod
from ledgermind.guard.alerts import Alert, AlertBook, detector_digest
from ledgermind.guard.events import WATCHED, Activity, hubs
from ledgermind.guard.live import DETECTORS
from ledgermind.sqlite import open_db

if TYPE_CHECKING:
    from ledgermind.chain.connection import Chain
    from ledgermind.client import Client

_SAMPLES = """
CREATE TABLE IF NOT EXISTS samples (
    time REAL NOT NULL, chain_id INTEGER NOT NULL, head INTEGER NOT NULL, pending INTEGER, log_size INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Check:
    """One step of re-checking an alert."""

    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def _index(client: Client, chain_id: int) -> ChainIndex:
    return ChainIndex(client.settings.home / "guard" / f"index-{chain_id}.sqlite")


def _book(client: Client) -> AlertBook:
    book = AlertBook(client.settings.home / "guard" / "alerts.sqlite")
    if client.settings.log_path.exists():
        book.sync(client._log())
    return book


def watched_contracts(client: Client, chain: Chain) -> dict[str, str]:
    """Addresses of the watched contracts deployed on ``chain`` (none deployed: nothing to decode, only health)."""
    found = {}
    for name in WATCHED:
        try:
            found[name] = client.deployments.require(chain, name).address.lower()
        except ChainError:
            continue
    return found


def _pending(chain: Chain) -> int | None:
    """Transactions waiting in the node's pool, where the node says (``txpool_status``); None elsewhere."""
    try:
        answer = chain.w3.provider.make_request("txpool_status", [])
        status = answer.get("result") if isinstance(answer, dict) else None
        return int(status["pending"], 16) if status else None
    except Exception:  # noqa: BLE001 - not every node has a txpool API; the embedded chain has no pool
        return None


def model_cache() -> Path:
    """Where the bundled fraud detector is cached once trained: $XDG_CACHE_HOME/ledgermind (~/.cache/ledgermind):
    per machine, not per home, since training takes seconds and gives the same model everywhere."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ledgermind"


@lru_cache(maxsize=1)
def fraud_detector() -> tuple[Any, str | None]:
    """(the bundled supervised fraud detector, None), or (None, why there is none here): the module is not
    installed, or the labelled dataset it is trained from is not on this machine. Loaded once per process (a
    watching guard scans many times)."""
    try:
        from ledgermind.guard.detector import bundled_detector
    except ImportError:
        return None, "this installation has no supervised fraud detector"
    try:
        return bundled_detector(model_cache()), None
    except LedgermindError as e:
        return None, f"no supervised fraud detector: {e}"


def find(client: Client, act: Activity, index: ChainIndex, detector: Any = None) -> list[Alert]:
    """Every finding over ``act``: the unsupervised detectors, the health departures and, with a ``detector``,
    the fraud scores."""
    found: list[Alert] = []
    hub_list = hubs(act)
    for fn, defaults in DETECTORS.values():
        found += fn(act, hub_list, {**defaults, "contracts": act.contracts})
    found += health_mod.departures(act, index.blocks(), {**health_mod.HEALTH_DEFAULTS, "contracts": act.contracts})
    if detector is not None:
        found += fraud_scores(act, detector)
    return found


def fraud_scores(act: Activity, detector: Any, only: list[str] | None = None) -> list[Alert]:
    """``fraud-score`` alerts: externally owned accounts the supervised ``detector`` scores at or above its
    threshold, from their features over every transaction up to ``act.head``."""
    from ledgermind.guard.features import TxTable, account_features

    moved = [t for t in act.txs if t["status"] == 1]  # a reverted transaction moved no value
    table = TxTable.from_rows(moved, [t for t in act.transfers if not t["nft"]])
    # the detector learned from externally owned accounts: contracts (and the zero address of mints) are not scored
    contracts = ({t["created"] for t in act.txs if t["created"]} | {t["token"] for t in act.transfers}
                 | set(act.contracts.values()) | {"0x" + "00" * 20})
    fm = account_features(table, only if only is not None else [a for a in table.accounts() if a not in contracts])
    if not fm.addresses:
        return []
    scores = detector.score(fm)
    by_account: dict[str, list[str]] = {}
    last: dict[str, int] = {}  # the block of an account's last transaction or transfer: its features' head
    for t in moved:
        for a in (t["sender"], t["recipient"]):
            if a:
                by_account.setdefault(a, []).append(t["hash"])
                last[a] = t["block"]
    for t in act.transfers:
        for a in (t["sender"], t["recipient"]):
            last[a] = max(last.get(a, 0), t["block"])
    alerts = []
    for i, address in enumerate(fm.addresses):
        score = float(scores[i])
        if score < detector.threshold:
            continue
        alerts.append(Alert(
            "fraud-score", f"account:{address}", act.chain_id, last.get(address, act.head), (address,), score,
            detector.threshold,
            f"{address} scores {score:.3f} on the fraud detector (threshold {detector.threshold:.3f})",
            "fraud-score", "1",
            {"contracts": act.contracts}, dict(zip(fm.names, (float(v) for v in fm.values[i]))),
            tuple(by_account.get(address, [])[-200:]), detector.digest))
    return alerts


def scan(client: Client) -> dict[str, Any]:
    """Sync the index, run every detector, append the new alerts. Returns the sync, the new alerts (with their log
    indices) and how many findings were already recorded. Raises ChainError (chain unreachable) and
    StorageError."""
    chain = client.chain()
    with _index(client, chain.chain_id) as index:
        synced = index.sync(chain)
        contracts = watched_contracts(client, chain)
        act = Activity.load(index, contracts)
        detector, no_detector = fraud_detector()
        found = find(client, act, index, detector)
        _sample(client, chain, act.head)
    new, known = [], 0
    with _book(client) as book:
        for alert in found:
            if book.known(alert.id):
                known += 1
                continue
            appended = client.ledger.submit(alert.sign(client.account()))
            new.append({"id": alert.id, "logIndex": appended.index, **alert.predicate()})
        if new:
            book.sync(client._log())
            client._after_write(None)
    return {"chainId": chain.chain_id, "sync": synced.to_json(), "head": act.head, "alerts": new, "known": known,
            "watched": contracts, "fraudModel": detector.digest if detector is not None else None,
            "notes": [no_detector] if no_detector else []}


def _sample(client: Client, chain: Chain, head: int) -> None:
    size = client._log().size() if client.settings.log_path.exists() else 0
    db = open_db(client.settings.home / "guard" / "samples.sqlite", _SAMPLES, "guard samples")
    try:
        db.execute("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", (time.time(), chain.chain_id, head, _pending(chain), size))
    finally:
        db.close()


def _samples(client: Client, chain_id: int) -> list[tuple[float, int, int | None, int]]:
    db = open_db(client.settings.home / "guard" / "samples.sqlite", _SAMPLES, "guard samples")
    try:
        return db.execute("SELECT time, head, pending, log_size FROM samples WHERE chain_id = ? ORDER BY time",
                          (chain_id,)).fetchall()
    finally:
        db.close()


def watch(client: Client, interval: float, stop: Callable[[], bool], on_scan: Callable[[dict[str, Any]], None]) -> int:
    """Scan every ``interval`` seconds until ``stop()`` is true; ``on_scan`` gets each scan's result. A chain that
    does not answer is reported and retried at the next turn. Returns the number of scans."""
    if interval <= 0:
        raise InvalidInputError(f"the watch interval must be positive, got {interval}")
    scans = 0
    while not stop():
        try:
            on_scan(scan(client))
        except ChainError as e:
            on_scan({"error": str(e)})
            client.close()  # reconnect next turn
        scans += 1
        deadline = time.monotonic() + interval
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.1, interval))
    return scans


def health(client: Client) -> dict[str, Any]:
    """The chain's profile, the current departures (not recorded: ``scan`` records them), the health alerts in the
    log and the recommended operating parameters."""
    chain = client.chain()
    with _index(client, chain.chain_id) as index:
        index.sync(chain)
        act = Activity.load(index, watched_contracts(client, chain))
        blocks = index.blocks()
        params = {**health_mod.HEALTH_DEFAULTS, "contracts": act.contracts}
        prof = health_mod.profile(act, blocks, params)
        now = health_mod.departures(act, blocks, params)
        _sample(client, chain, act.head)
    samples = _samples(client, chain.chain_id)
    pending = [s[2] for s in samples if s[2] is not None]
    prof["pending"] = {"current": pending[-1], "median": sorted(pending)[len(pending) // 2], "samples": len(pending)} \
        if pending else None
    rate = None
    if len(samples) >= 2 and samples[-1][0] > samples[0][0] and samples[-1][3] > samples[0][3]:
        rate = (samples[-1][3] - samples[0][3]) / (samples[-1][0] - samples[0][0])
    settings = client.settings
    recorded = []
    if settings.log_path.exists():
        with _book(client) as book:
            recorded = [a for a in book.list("health") if a["chainId"] == chain.chain_id]
    return {"profile": prof, "departures": [{"id": a.id, **a.predicate()} for a in now], "alerts": recorded,
            "recommendations": health_mod.recommend(act, blocks, rate, (settings.anchor_every_entries,
                                                                          settings.anchor_every_seconds))}


def alerts(client: Client, kind: str | None = None) -> list[dict[str, Any]]:
    """The alerts recorded in this home's log, oldest first."""
    if not client.settings.log_path.exists():
        return []
    with _book(client) as book:
        return book.list(kind)


def show(client: Client, ref: str) -> dict[str, Any]:
    """An alert's signed statement and the re-check of its evidence: signature and id, the detector's digest, the
    evidence transactions in the chain index, and the detector run again up to the alert's head block, which
    must give the same features and score. Raises NotFoundError / InvalidInputError for a bad ``ref``."""
    if not client.settings.log_path.exists():
        raise NotFoundError(f"no alert {ref!r}: the log in {client.settings.home} is empty")
    with _book(client) as book:
        row = book.resolve(ref)
    signed = client.ledger.read(row["logIndex"])  # re-verifies the stored envelope
    predicate = signed.statement.predicate
    alert = Alert.from_predicate(predicate)
    checks = [Check("signature", True, f"signed by {signed.signer}, log index {row['logIndex']}"),
              Check("id", alert.id == signed.statement.digest, f"sha256 of the alert is {alert.id[:16]}…")]
    checks += recheck(client, alert)
    return {"id": row["id"], "logIndex": row["logIndex"], "signer": signed.signer, "alert": predicate,
            "checks": [c.to_json() for c in checks], "ok": all(c.ok for c in checks)}


def recheck(client: Client, alert: Alert) -> list[Check]:
    """Re-derive ``alert`` from the chain index up to its head block (syncing the index first if it is behind and
    the configured chain is the alert's)."""
    checks = []
    index = _index(client, alert.chain_id)
    try:
        top = index.head()
        if top is None or top[0] < alert.head:
            chain = client.chain()
            if chain.chain_id != alert.chain_id:
                return [Check("index", False, f"the alert is about chain {alert.chain_id}; this home has no index "
                                              f"of it up to block {alert.head} and the configured chain is {chain.chain_id}")]
            index.sync(chain)
        act = Activity.load(index, alert.params.get("contracts", {}), head=alert.head)
        by_hash = {t["hash"]: t for t in act.txs}
        missing = [h for h in alert.evidence if h not in by_hash]
        checks.append(Check("evidence", not missing, f"{len(alert.evidence) - len(missing)} of {len(alert.evidence)} "
                                                     f"evidence transactions in the index up to block {alert.head}"
                            + (f"; missing {missing[0]}" if missing else "")))
        if alert.kind == "fraud-score":
            detector, why = fraud_detector()
            ok = detector is not None and detector.digest == alert.digest
            checks.append(Check("detector", ok, f"fraud model {alert.digest}" + (
                "" if ok else f": {why}" if detector is None else f", this machine's is {detector.digest}")))
            if not ok:
                return checks
            again = fraud_scores(act, detector, list(alert.subjects))
        else:
            expected = detector_digest(alert.detector, alert.version, alert.params)
            checks.append(Check("detector", alert.digest in (None, expected),
                                f"{alert.detector} v{alert.version}, parameters digest {expected[:16]}…"))
            again = _rerun(alert, act, index)
        same = [a for a in again if a.id == alert.id]
        if same:
            checks.append(Check("reproduced", True, f"re-running {alert.detector} up to block {alert.head} gives the same "
                                                    f"features and score {alert.score:.4g} (threshold {alert.threshold:.4g})"))
        else:
            near = [a for a in again if a.case == alert.case]
            detail = (f"re-running {alert.detector} up to block {alert.head} gives score {near[0].score:.4g} and "
                      f"features {near[0].features}" if near else f"re-running {alert.detector} up to block "
                      f"{alert.head} raises nothing for {alert.case}")
            checks.append(Check("reproduced", False, detail))
    finally:
        index.close()
    return checks


def _rerun(alert: Alert, act: Activity, index: ChainIndex) -> list[Alert]:
    """The alerts the alert's detector raises again with its recorded parameters (none for an unknown detector)."""
    params = dict(alert.params)
    if alert.detector == "health":
        return health_mod.departures(act, index.blocks(), params)
    if alert.detector not in DETECTORS:
        return []
    fn, _ = DETECTORS[alert.detector]
    return fn(act, params.pop("hubs", []), params)

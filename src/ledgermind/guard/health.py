"""Network health: the normal profile of the chain the guard watches, departures from it, and the operating
parameters its observed load suggests.

The profile is learned from the chain index: the time between blocks, gas used per block and its share of the
block gas limit, and, over consecutive windows of ``window`` transactions (the newest ending at the head), the
failed-transaction rate, the transaction rate, the gas per transaction and the share of calls going to each
contract; plus the pending backlog where the node exposes one (``txpool_status``: anvil, Geth; the embedded chain
mines every transaction at once).

Departures: the newest window is compared with the windows before it. Each metric's forecast is the median of
the earlier windows and its spread their median absolute deviation (scaled to a standard deviation, with a floor so
a metric that never moved does not alarm on the first wobble); a robust z-score beyond ``z`` raises a ``health``
alert with the window's transactions as evidence. An IsolationForest fitted on the earlier windows (all metrics
at once) scores the newest window too; its score is reported beside the z-scores.

Recommendations: the gas price from recent base fees and tips, and the anchoring interval and batch size
(``LEDGERMIND_ANCHOR_INTERVAL``, ``LEDGERMIND_ANCHOR_EVERY``) from the block interval, the chain's utilisation and
the rate at which the log grows.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ledgermind.guard.alerts import Alert
from ledgermind.guard.events import Activity

VERSION = "1"
ANCHOR_GAS = 60_000  # measured gas of one anchor (README, Performance); the limit sent is anchoring.ANCHOR_GAS
HEALTH_DEFAULTS: dict[str, Any] = {"window": 20, "z": 4.0, "min_windows": 10, "max_blocks": 5000}

# metric -> (direction that is a problem: +1 up, -1 down, 0 both; absolute floor of the spread; relative floor)
_METRICS: dict[str, tuple[int, float, float]] = {
    "failed_rate": (1, 0.05, 0.0),
    # a surge (a lull is only idleness on chains that mine on demand); spread at least the median: senders' own
    # pace varies that much, so only five times the usual rate is a departure
    "tx_per_second": (1, 0.0, 1.0),
    "gas_per_tx": (1, 0.0, 0.25),
    "block_interval": (1, 0.5, 0.5),
    "gas_per_block": (1, 0.0, 0.25),
}
_CONTRACT_FLOOR = 0.15  # the spread floor of a contract's share of calls


@dataclass(frozen=True)
class Window:
    """One window of consecutive transactions and what it looked like."""

    first_block: int
    last_block: int
    txs: list[dict[str, Any]]
    metrics: dict[str, float]
    calls: dict[str, float]  # contract -> share of the window's calls


def _windows(act: Activity, blocks: list[dict[str, Any]], size: int) -> list[Window]:
    by_number = {b["number"]: b for b in blocks}
    txs = [t for t in act.txs if t["block"] in by_number]
    out = []
    for i in range(len(txs) % size, len(txs), size):  # aligned on the newest: the last window ends at the head
        chunk = txs[i:i + size]
        first, last = chunk[0]["block"], chunk[-1]["block"]
        span = [by_number[n] for n in range(first, last + 1) if n in by_number]
        prev = by_number.get(first - 1)
        start_ts = prev["timestamp"] if prev else span[0]["timestamp"]
        duration = max(1.0, float(span[-1]["timestamp"] - start_ts))
        seq = ([prev] if prev else []) + span
        intervals = [b["timestamp"] - a["timestamp"] for a, b in zip(seq, seq[1:])]
        with_txs = [b["gas_used"] for b in span if b["tx_count"]]
        calls = Counter(t["recipient"] for t in chunk if t["recipient"] and t["selector"])
        out.append(Window(first, last, chunk, {
            "failed_rate": sum(1 for t in chunk if t["status"] != 1) / len(chunk),
            "tx_per_second": len(chunk) / duration,
            "gas_per_tx": statistics.fmean(t["gas_used"] for t in chunk),
            "block_interval": statistics.median(intervals) if intervals else 0.0,
            "gas_per_block": statistics.median(with_txs) if with_txs else 0.0,
        }, {c: n / len(chunk) for c, n in calls.items()}))
    return out


def _robust(values: list[float], rel_floor: float, abs_floor: float) -> tuple[float, float]:
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values) * 1.4826
    return med, max(mad, abs_floor, rel_floor * abs(med), 1e-12)


def _isolation(history: list[Window], current: Window) -> float | None:
    """IsolationForest anomaly score of the current window among the earlier ones (higher: more isolated; about
    0.5 is unremarkable), or None with too little history."""
    if len(history) < 8:
        return None
    from sklearn.ensemble import IsolationForest

    names = sorted(_METRICS)
    x = np.array([[w.metrics[n] for n in names] for w in history])
    forest = IsolationForest(n_estimators=100, random_state=0).fit(x)
    return float(-forest.score_samples(np.array([[current.metrics[n] for n in names]]))[0])


def profile(act: Activity, index_blocks: list[dict[str, Any]], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The chain's normal profile and the newest window compared with it: per metric the baseline median and
    spread, the current value and its robust z-score; per contract its share of calls. ``index_blocks``: the
    index's blocks up to ``act.head``."""
    p = {**HEALTH_DEFAULTS, **(params or {})}
    blocks = [b for b in index_blocks if b["number"] <= act.head][-p["max_blocks"]:]
    windows = _windows(act, blocks, p["window"])
    intervals = [b["timestamp"] - a["timestamp"] for a, b in zip(blocks, blocks[1:])]
    out: dict[str, Any] = {
        "chainId": act.chain_id, "head": act.head, "blocks": len(blocks), "transactions": sum(len(w.txs) for w in windows),
        "windows": len(windows), "window": p["window"],
        "blockInterval": {"median": statistics.median(intervals) if intervals else None,
                          "p90": float(np.percentile(intervals, 90)) if intervals else None},
        "gasPerBlock": {"median": statistics.median(b["gas_used"] for b in blocks) if blocks else None,
                        "utilisation": statistics.median(b["gas_used"] / b["gas_limit"] for b in blocks if b["gas_limit"])
                        if blocks else None},
        "failedRate": (sum(1 for t in act.txs if t["status"] != 1) / len(act.txs)) if act.txs else None,
        "metrics": {}, "contracts": {}, "isolationScore": None, "ready": len(windows) > p["min_windows"],
    }
    if not out["ready"]:
        return out
    history, current = windows[:-1], windows[-1]
    for name, (_, abs_floor, rel_floor) in _METRICS.items():
        med, spread = _robust([w.metrics[name] for w in history], rel_floor, abs_floor)
        value = current.metrics[name]
        out["metrics"][name] = {"baseline": med, "spread": spread, "current": value, "z": (value - med) / spread}
    for contract in sorted({c for w in windows for c in w.calls}):
        med, spread = _robust([w.calls.get(contract, 0.0) for w in history], 0.0, _CONTRACT_FLOOR)
        value = current.calls.get(contract, 0.0)
        out["contracts"][contract] = {"baseline": med, "spread": spread, "current": value, "z": (value - med) / spread}
    out["isolationScore"] = _isolation(history, current)
    out["current"] = {"firstBlock": current.first_block, "lastBlock": current.last_block}
    return out


def departures(act: Activity, index_blocks: list[dict[str, Any]], params: dict[str, Any] | None = None) -> list[Alert]:
    """``health`` alerts: the newest window's metrics (and contracts' shares of calls) whose robust z-score is
    beyond ``z`` in the direction that is a problem."""
    p = {**HEALTH_DEFAULTS, **(params or {})}
    prof = profile(act, index_blocks, p)
    if not prof["ready"]:
        return []
    blocks = [b for b in index_blocks if b["number"] <= act.head][-p["max_blocks"]:]
    current = _windows(act, blocks, p["window"])[-1]
    alerts = []
    checks = [(name, m, _METRICS[name][0]) for name, m in prof["metrics"].items()]
    checks += [(f"calls:{c}", m, 1) for c, m in prof["contracts"].items()]
    for name, m, direction in checks:
        z = m["z"]
        if abs(z) < p["z"] or (direction and z * direction < 0):
            continue
        txs = current.txs
        if name == "failed_rate":
            txs = [t for t in txs if t["status"] != 1]
        elif name.startswith("calls:"):
            txs = [t for t in txs if t["recipient"] == name[6:]]
        senders = sorted({t["sender"] for t in txs})[:20] or ["0x" + "00" * 20]
        features = {"current": m["current"], "baseline": m["baseline"], "spread": m["spread"], "z": z,
                    "windows": prof["windows"]}
        if prof["isolationScore"] is not None:
            features["isolation_score"] = prof["isolationScore"]
        label = name.replace("_", " ")
        alerts.append(Alert(
            "health", f"{name}:{current.first_block}-{current.last_block}", act.chain_id, current.last_block,
            tuple(senders),
            abs(z), p["z"], f"{label} {m['current']:.4g} in blocks {current.first_block}-{current.last_block}, normally "
            f"{m['baseline']:.4g} (z {z:+.1f})", "health", VERSION, p, features, tuple(t["hash"] for t in txs)))
    return alerts


def recommend(act: Activity, index_blocks: list[dict[str, Any]], log_rate: float | None,
              current: tuple[int, float]) -> dict[str, Any]:
    """Operating parameters from observed load. ``log_rate``: statements appended per second lately (None if not
    known yet); ``current``: the configured (anchor every entries, anchor every seconds).

    Gas price: the median tip paid in the last 200 transactions and twice the 90th percentile of the last 200 base
    fees plus that tip as the fee cap. Anchoring: an interval of at least a minute and four blocks (so an anchor is
    mined before the next is due), doubled when blocks are over 80% full; a batch of what the log gathers in that
    time, at least 100 statements (60k gas / 100 = 600 gas per statement) and at most 100,000."""
    blocks = [b for b in index_blocks if b["number"] <= act.head][-200:]
    base = {b["number"]: int(b["base_fee"]) for b in blocks if b.get("base_fee") not in (None, "None")}
    tips = [int(t["gas_price"]) - base[t["block"]] for t in act.txs[-200:]
            if t.get("gas_price") and t["block"] in base and int(t["gas_price"]) >= base[t["block"]]]
    tip = int(statistics.median(tips)) if tips else 10**9
    base_p90 = int(np.percentile(list(base.values()), 90)) if base else 0
    intervals = [b["timestamp"] - a["timestamp"] for a, b in zip(blocks, blocks[1:])]
    interval = float(statistics.median(intervals)) if intervals else 12.0
    utilisation = statistics.median(b["gas_used"] / b["gas_limit"] for b in blocks if b["gas_limit"]) if blocks else 0.0
    every_seconds = max(60.0, 4 * interval) * (2 if utilisation > 0.8 else 1)
    every_entries = current[0] if log_rate is None else int(min(100_000, max(100, round(log_rate * every_seconds))))
    gas_limit = statistics.median(b["gas_limit"] for b in blocks) if blocks else 30_000_000
    return {
        "gasPrice": {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base_p90 + tip, "baseFeeP90": base_p90,
                     "basis": f"{len(tips)} recent tips, {len(base)} recent base fees"},
        "anchoring": {
            "everySeconds": every_seconds, "everyEntries": every_entries,
            "configured": {"everyEntries": current[0], "everySeconds": current[1]},
            "logRate": log_rate, "blockInterval": interval, "utilisation": utilisation,
            "gasPerStatement": ANCHOR_GAS / every_entries,
            "chainShare": ANCHOR_GAS / (max(1.0, every_seconds / max(interval, 1e-9)) * gas_limit),
            "env": f"LEDGERMIND_ANCHOR_INTERVAL={every_seconds:g} LEDGERMIND_ANCHOR_EVERY={every_entries}",
        },
    }

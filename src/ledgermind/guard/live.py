"""Unsupervised detectors of abuse in live activity, built on what the contracts actually emit.

Each detector is a pure function of an ``Activity`` (the chain index up to a head block, decoded) and its
parameters, and returns ``Alert``s whose ``head`` is the last block of the activity the finding rests on (the
asset's last sale, the task's last event, the channel's last transaction): re-running the detector with the
recorded parameters on the index up to that block reproduces the alert, which is how ``ledgermind alerts show``
re-checks one, and a finding nothing new has touched keeps its id, so later scans do not record it again. No
labels are needed: each scores a pattern with a few named features, and every feature is in the alert.

- **Wash trading** (Marketplace). An asset NFT that comes back to an account that sold it, having passed through
  at most ``max_cycle`` accounts (``AssetSold``: the asset goes round a small ring, each sale inflating its price
  history). Each such cycle weighs 0.4 (one buy-back alone stays below the threshold; two cycles pass it); a
  funding transfer between two sides of a cycle's sale adds 0.25. Separately, a purchase of access tokens or a
  licence (``AccessBought``, ``LicenceBought``) by an account the seller funded (sent coin or tokens to) before:
  the seller buying from itself (0.6 per purchase).
- **Sybil clusters** (Federation). Pairs of participants of one task that revealed the identical update digest in
  a round (``Revealed``; weight 0.9), were funded by the same account before joining (weight 0.6), or committed
  within seconds of each other in most rounds (``Committed``; weight 0.2 times the share of rounds). A pair's score
  is 1 - prod(1 - weight); pairs at or above the threshold are joined into clusters.
- **Voucher abuse** (PaymentChannels). Per channel, settlement attempts the contract refused, read from their
  calldata: a voucher above the deposit, a replayed (already redeemed or older) voucher, a voucher not signed by
  the channel's sender, settling a channel one is not the recipient of, or after it was reclaimed (each weighs
  0.5); vouchers settled after the channel's expiry (0.25). Score 1 - prod(1 - weight). And per funder (a
  channel's sender, or the account that funded it): many channels opened within a window.

Funding from a hub (an account that funded most of the chain: a dev faucet, an exchange) is ignored; the hubs
are a parameter of the detectors, recorded in each alert.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from itertools import combinations
from typing import Any

from ledgermind.guard.alerts import Alert
from ledgermind.guard.events import Activity, Call, Event

VERSION = "1"
WEI = 10**18

WASH_DEFAULTS: dict[str, Any] = {"threshold": 0.5, "max_cycle": 3}
SYBIL_DEFAULTS: dict[str, Any] = {"threshold": 0.5, "lockstep_seconds": 2, "min_rounds": 2}
VOUCHER_DEFAULTS: dict[str, Any] = {"threshold": 0.5, "max_channels": 5, "window_seconds": 86_400}

_VOUCHER_WEIGHTS = {"over_deposit": 0.5, "replayed": 0.5, "bad_signature": 0.5, "not_recipient": 0.5,
                    "after_reclaim": 0.5, "settled_after_expiry": 0.25}


def _combine(weights: list[float]) -> float:
    """1 - prod(1 - w): independent signals that each make the finding likelier."""
    miss = 1.0
    for w in weights:
        miss *= 1.0 - w
    return 1.0 - miss


def _funders(act: Activity, hubs: set[str]) -> dict[str, list[tuple[str, int, str]]]:
    """account -> [(funder, block, tx hash)] of every funding it received from a non-hub."""
    out: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for src, dst, block, tx in act.funding():
        if src not in hubs:
            out[dst].append((src, block, tx))
    return out


# ---------------------------------------------------------------------- wash trading
def wash_trading(act: Activity, hubs: list[str], params: dict[str, Any] | None = None) -> list[Alert]:
    """Wash trading on the Marketplace: assets sold round among a few accounts, and self-funded purchases."""
    p = {**WASH_DEFAULTS, **(params or {})}
    full = {**p, "hubs": sorted(hubs)}
    funders = _funders(act, set(hubs))

    def funded(a: str, b: str, block: int) -> list[str]:
        """Funding transactions between a and b (either way) up to ``block``."""
        return [tx for src, blk, tx in funders.get(b, []) if src == a and blk <= block] + \
               [tx for src, blk, tx in funders.get(a, []) if src == b and blk <= block]

    alerts = []
    sales: dict[int, list[Event]] = defaultdict(list)
    for e in act.of("Marketplace", "AssetSold"):
        sales[e.args["asset_id"]].append(e)
    for asset, seq in sales.items():
        last_sold: dict[str, int] = {}
        in_cycles: set[int] = set()
        cycles = 0
        for i, e in enumerate(seq):
            buyer, seller = e.args["buyer"], e.args["seller"]
            last_sold[seller] = i
            if buyer in last_sold:  # the asset comes back to an account that sold it before
                span = seq[last_sold[buyer]:i + 1]
                if len({x.args[r] for x in span for r in ("seller", "buyer")}) <= p["max_cycle"]:
                    cycles += 1
                    in_cycles.update(range(last_sold[buyer], i + 1))
        if not cycles:
            continue
        cycle_sales = [seq[i] for i in sorted(in_cycles)]
        traders = sorted({x.args[r] for x in cycle_sales for r in ("seller", "buyer")})
        funding_txs = sorted({tx for x in cycle_sales for tx in funded(x.args["seller"], x.args["buyer"], x.block)})
        score = min(1.0, _combine([0.4] * cycles) + (0.25 if funding_txs else 0.0))
        if score < p["threshold"]:
            continue
        prices = [x.args["price"] for x in cycle_sales]
        features = {"sales": len(seq), "cycles": cycles, "cycle_sales": len(cycle_sales), "traders": len(traders),
                    "funding_transfers": len(funding_txs), "first_price_eth": prices[0] / WEI,
                    "last_price_eth": prices[-1] / WEI, "span_seconds": cycle_sales[-1].timestamp - cycle_sales[0].timestamp}
        alerts.append(Alert(
            "wash-trading", f"asset:{asset:064x}", act.chain_id, seq[-1].block, tuple(traders), score, p["threshold"],
            f"asset {asset:064x}"[:18] + f"… went round {cycles} times among {len(traders)} accounts in "
            f"{len(cycle_sales)} sales", "wash-trading", VERSION, full, features,
            tuple(x.tx_hash for x in seq) + tuple(funding_txs)))

    # purchases of access tokens or licences by an account the seller funded
    sellers: dict[tuple[str, int], str] = {}
    bought: dict[tuple[int, str, str], list[Event]] = defaultdict(list)
    for e in act.of("Marketplace", "AccessListed", "LicenceListed", "AccessBought", "LicenceBought"):
        if e.name in ("AccessListed", "LicenceListed"):
            sellers[(e.name[:6], e.args["asset_id"])] = e.args["seller"]
            continue
        buyer = e.args.get("buyer") or e.args.get("holder")
        seller = sellers.get((e.name[:6], e.args["asset_id"]))
        if seller and buyer != seller and funded(seller, buyer, e.block):
            bought[(e.args["asset_id"], seller, buyer)].append(e)
    for (asset, seller, buyer), seq in bought.items():
        links = sorted(set(funded(seller, buyer, seq[-1].block)))
        score = _combine([0.6] * len(seq))
        if score < p["threshold"]:
            continue
        alerts.append(Alert(
            "wash-trading", f"purchase:{asset:064x}:{buyer}", act.chain_id, seq[-1].block, (seller, buyer), score,
            p["threshold"], f"{buyer} bought asset {asset:064x}"[:60] + f"… {len(seq)} times from {seller}, who had "
            f"funded it", "wash-trading", VERSION, full,
            {"purchases": len(seq), "funding_transfers": len(links)}, tuple(e.tx_hash for e in seq) + tuple(links)))
    return alerts


# ---------------------------------------------------------------------- Sybil clusters
def sybil_clusters(act: Activity, hubs: list[str], params: dict[str, Any] | None = None) -> list[Alert]:
    """Clusters of federation participants that look like one actor with several seats."""
    p = {**SYBIL_DEFAULTS, **(params or {})}
    full = {**p, "hubs": sorted(hubs)}
    funders = _funders(act, set(hubs))
    joined: dict[int, dict[str, Event]] = defaultdict(dict)
    commits: dict[tuple[int, int], dict[str, Event]] = defaultdict(dict)
    reveals: dict[tuple[int, int], dict[str, Event]] = defaultdict(dict)
    for e in act.of("Federation", "Joined", "Committed", "Revealed"):
        if e.name == "Joined":
            joined[e.args["task_id"]][e.args["participant"]] = e
        elif e.name == "Committed":
            commits[(e.args["task_id"], e.args["round"])][e.args["participant"]] = e
        else:
            reveals[(e.args["task_id"], e.args["round"])][e.args["participant"]] = e
    alerts = []
    last_block: dict[int, int] = defaultdict(int)
    for e in act.of("Federation", "Joined", "Committed", "Revealed"):
        last_block[e.args["task_id"]] = max(last_block[e.args["task_id"]], e.block)
    for task, members in joined.items():
        rounds = sorted(r for t, r in commits if t == task)
        funded_by = {m: {(src, tx) for src, blk, tx in funders.get(m, []) if blk <= ev.block}
                     for m, ev in members.items()}
        pairs: dict[tuple[str, str], tuple[float, dict[str, float], set[str]]] = {}
        for a, b in combinations(sorted(members), 2):
            same = [r for r in rounds if a in reveals[(task, r)] and b in reveals[(task, r)]
                    and reveals[(task, r)][a].args["update_digest"] == reveals[(task, r)][b].args["update_digest"]]
            shared = {s for s, _ in funded_by[a]} & {s for s, _ in funded_by[b]}
            both = [r for r in rounds if a in commits[(task, r)] and b in commits[(task, r)]]
            close = [r for r in both
                     if abs(commits[(task, r)][a].timestamp - commits[(task, r)][b].timestamp) <= p["lockstep_seconds"]]
            lock = len(close) / len(both) if len(both) >= p["min_rounds"] else 0.0
            score = _combine([0.9 if same else 0.0, 0.6 if shared else 0.0, 0.2 * lock])
            if score < p["threshold"]:
                continue
            txs = {members[a].tx_hash, members[b].tx_hash}
            txs |= {reveals[(task, r)][m].tx_hash for r in same for m in (a, b)}
            txs |= {tx for m in (a, b) for s, tx in funded_by[m] if s in shared}
            txs |= {commits[(task, r)][m].tx_hash for r in close for m in (a, b)} if lock else set()
            pairs[(a, b)] = (score, {"identical": float(len(same)), "shared": float(bool(shared)), "lock": lock}, txs)
        # clusters: connected components of the suspicious pairs
        parent = {m: m for m in members}

        def root(m: str) -> str:
            while parent[m] != m:
                parent[m] = parent[parent[m]]
                m = parent[m]
            return m

        for a, b in pairs:
            parent[root(a)] = root(b)
        groups: dict[str, list[str]] = defaultdict(list)
        for m in members:
            groups[root(m)].append(m)
        for group in groups.values():
            if len(group) < 2:
                continue
            inside = {k: v for k, v in pairs.items() if k[0] in group and k[1] in group}
            features = {
                "members": len(group), "participants": len(members), "member_share": len(group) / len(members),
                "pairs": len(inside), "identical_update_pairs": sum(1 for v in inside.values() if v[1]["identical"]),
                "identical_update_rounds": sum(v[1]["identical"] for v in inside.values()),
                "shared_funder_pairs": sum(1 for v in inside.values() if v[1]["shared"]),
                "lockstep_pairs": sum(1 for v in inside.values() if v[1]["lock"] >= 0.5),
                "rounds": len(rounds),
            }
            score = max(v[0] for v in inside.values())
            members_key = hashlib.sha256(",".join(sorted(group)).encode()).hexdigest()[:16]
            alerts.append(Alert(
                "sybil-cluster", f"task:{task}:{members_key}", act.chain_id, last_block[task], tuple(sorted(group)), score,
                p["threshold"], f"{len(group)} of {len(members)} participants of task {task} act as one: "
                f"{features['identical_update_pairs']} pairs with identical updates, "
                f"{features['shared_funder_pairs']} funded by the same account", "sybil-cluster", VERSION, full,
                features, tuple(sorted(set().union(*(v[2] for v in inside.values()))))))
    return alerts


# ---------------------------------------------------------------------- voucher abuse
def voucher_abuse(act: Activity, hubs: list[str], params: dict[str, Any] | None = None) -> list[Alert]:
    """Abuse of payment channels: refused vouchers (over the deposit, replayed, forged, on a reclaimed channel),
    late settlements, and many channels opened from one funder."""
    p = {**VOUCHER_DEFAULTS, **(params or {})}
    full = {**p, "hubs": sorted(hubs)}
    position = {t["hash"]: t["position"] for t in act.txs}
    items: list[tuple[tuple[int, int, int], Event | Call]] = [
        ((e.block, position.get(e.tx_hash, 0), e.log_index), e) for e in act.of("PaymentChannels")]
    items += [((c.block, position.get(c.tx_hash, 0), -1), c) for c in act.calls
              if c.contract == "PaymentChannels" and c.function == "settle" and not c.ok]
    items.sort(key=lambda x: x[0])
    state: dict[str, dict[str, Any]] = {}
    for _, item in items:
        if isinstance(item, Event):
            cid = item.args.get("channel_id")
            if item.name == "ChannelOpened":
                state[cid] = {"sender": item.args["sender"], "recipient": item.args["recipient"],
                              "deposit": item.args["deposit"], "expiry": item.args["expiry"], "paid": 0,
                              "closed": False, "opened": item, "counts": defaultdict(int), "txs": [item.tx_hash],
                              "last": item.block}
                continue
            ch = state.get(cid)
            if ch is None:
                continue
            ch["last"] = item.block
            if item.name == "ChannelToppedUp":
                ch["deposit"] = item.args["deposit"]
            elif item.name == "ChannelExtended":
                ch["expiry"] = item.args["expiry"]
            elif item.name == "ChannelReclaimed":
                ch["closed"] = True
            elif item.name == "ChannelSettled":
                ch["paid"] = item.args["amount"]
                if item.timestamp >= ch["expiry"]:
                    ch["counts"]["settled_after_expiry"] += 1
                    ch["txs"].append(item.tx_hash)
            continue
        ch = state.get(item.args["channel_id"])
        if ch is None:
            continue  # a channel that never existed: the caller only wasted its gas
        ch["last"] = item.block
        amount = item.args["amount"]
        reason = ("not_recipient" if item.sender != ch["recipient"] else "after_reclaim" if ch["closed"]
                  else "over_deposit" if amount > ch["deposit"] else "replayed" if amount <= ch["paid"]
                  else "bad_signature")
        ch["counts"][reason] += 1
        ch["txs"].append(item.tx_hash)

    alerts = []
    for cid, ch in state.items():
        weights = [_VOUCHER_WEIGHTS[k] for k, n in ch["counts"].items() for _ in range(n)]
        score = _combine(weights)
        if not weights or score < p["threshold"]:
            continue
        counts = {k: float(ch["counts"].get(k, 0)) for k in _VOUCHER_WEIGHTS}
        what = ", ".join(f"{int(n)} {k.replace('_', ' ')}" for k, n in counts.items() if n)
        alerts.append(Alert(
            "voucher-abuse", f"channel:{cid}", act.chain_id, ch["last"], (ch["sender"], ch["recipient"]), score,
            p["threshold"], f"channel {cid[:12]}… from {ch['sender']} to {ch['recipient']}: {what}", "voucher-abuse",
            VERSION, full, {**counts, "deposit_eth": ch["deposit"] / WEI, "paid_eth": ch["paid"] / WEI},
            tuple(ch["txs"])))

    # many channels from one funder within a window
    funders = _funders(act, set(hubs))
    by_root: dict[str, list[Event]] = defaultdict(list)
    for ch in state.values():
        opened = ch["opened"]
        sources = sorted({s for s, blk, _ in funders.get(ch["sender"], []) if blk <= opened.block})
        by_root[sources[0] if len(sources) == 1 else ch["sender"]].append(opened)
    for root, opens in by_root.items():
        opens.sort(key=lambda e: e.timestamp)
        best, start = [], 0
        for i, e in enumerate(opens):
            while e.timestamp - opens[start].timestamp > p["window_seconds"]:
                start += 1
            if i + 1 - start > len(best):
                best = opens[start:i + 1]
        score = min(1.0, len(best) / (2 * p["max_channels"]))
        if len(best) < p["max_channels"] or score < p["threshold"]:
            continue
        senders = sorted({e.args["sender"] for e in best})
        funding = sorted({tx for s in senders for src, blk, tx in funders.get(s, []) if src == root})
        features = {"channels": len(best), "senders": len(senders),
                    "recipients": len({e.args["recipient"] for e in best}),
                    "deposit_eth": sum(e.args["deposit"] for e in best) / WEI,
                    "window_seconds": best[-1].timestamp - best[0].timestamp}
        alerts.append(Alert(
            "voucher-abuse", f"funder:{root}", act.chain_id, opens[-1].block, tuple(sorted({root, *senders})), score,
            p["threshold"], f"{root} opened or funded {len(best)} channels from {len(senders)} accounts within "
            f"{features['window_seconds']} s", "voucher-abuse", VERSION, full, features,
            tuple(e.tx_hash for e in best) + tuple(funding)))
    return alerts


Detector = Callable[[Activity, list[str], "dict[str, Any] | None"], list[Alert]]

#: The unsupervised detectors by name (an alert's ``detector.name``), each with its default parameters.
DETECTORS: dict[str, tuple[Detector, dict[str, Any]]] = {
    "wash-trading": (wash_trading, WASH_DEFAULTS),
    "sybil-cluster": (sybil_clusters, SYBIL_DEFAULTS),
    "voucher-abuse": (voucher_abuse, VOUCHER_DEFAULTS),
}


"""False alarms and catches of the guard's unsupervised detectors (``ledgermind.guard.live``) on synthetic activity.

Honest traffic is generated with the habits that make naive rules misfire: NFTs resold at random among many
accounts (a buy-back by chance happens), every account funded by one faucet and some funding each other, federated
parties committing within seconds of each other, providers settling late now and then. Attacks are injected with
known culprits: wash rings of 2-3 accounts trading one asset 3-5 times (half of them funding each other), Sybil
clusters of 3 seats funded by one account (half submitting identical updates, half only sharing the funder),
replayed or over-deposit vouchers, funders opening 6 channels through fresh accounts. Each detector is compared in
the same run with the naive rule one would write first (wash: a pair trading one asset twice; Sybil: participants
sharing any funder; voucher: any refused settlement or any funder with several channels).

Per detector: accounts flagged that are honest (false-positive rate over honest accounts), attack cases caught
(recall), and detector time. Results in bench/results/guard_live.json.

    python bench/bench_guard_live.py [--seeds 5] [--accounts 300]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

from ledgermind.guard import Activity, hubs, sybil_clusters, voucher_abuse, wash_trading
from ledgermind.guard.events import Call, Event

FAUCET = "0x" + "fa" * 20


class Gen:
    """Builds one synthetic Activity: events, failed settle calls, funding transfers, with the culprits known."""

    def __init__(self, seed: int, n_accounts: int) -> None:
        self.r = random.Random(seed)
        self.accounts = [f"0x{i:040x}" for i in range(1, n_accounts + 1)]
        self.act = Activity(1337, 0, {"Marketplace": "0x" + "aa" * 20, "PaymentChannels": "0x" + "bb" * 20,
                                      "Federation": "0x" + "cc" * 20})
        self.t, self.block, self.n = 1_700_000_000, 0, 0
        self.bad: dict[str, set[str]] = defaultdict(set)  # detector -> culprits
        self.cases: dict[str, list[set[str]]] = defaultdict(list)  # detector -> culprit sets, one per attack
        for a in self.accounts:
            self.fund(FAUCET, a)

    def tick(self, seconds: float = 13) -> str:
        self.block += 1
        self.t += max(1, int(self.r.expovariate(1 / seconds)))
        self.n += 1
        return f"0x{self.n:064x}"

    def fund(self, src: str, dst: str) -> None:
        tx = self.tick()
        self.act.txs.append({"hash": tx, "block": self.block, "timestamp": self.t, "sender": src, "recipient": dst,
                             "value": 10**18, "status": 1, "position": 0})

    def event(self, contract: str, name: str, **args) -> Event:
        tx = self.tick()
        self.act.txs.append({"hash": tx, "block": self.block, "timestamp": self.t, "sender": args.get("_from", ""),
                             "recipient": self.act.contracts[contract], "value": 0, "status": 1, "position": 0})
        args.pop("_from", None)
        e = Event(contract, name, args, tx, self.block, self.t, 0)
        self.act.events.append(e)
        return e

    def failed_settle(self, sender: str, cid: str, amount: int) -> None:
        tx = self.tick()
        self.act.txs.append({"hash": tx, "block": self.block, "timestamp": self.t, "sender": sender,
                             "recipient": self.act.contracts["PaymentChannels"], "value": 0, "status": 0, "position": 0})
        self.act.calls.append(Call("PaymentChannels", "settle", {"channel_id": cid, "amount": amount}, tx, sender,
                                   self.block, self.t, False))

    # ------------------------------------------------------------------ market
    def market(self, assets: int, rings: int) -> None:
        for asset in range(assets):
            owner = self.r.choice(self.accounts)
            for _ in range(self.r.randint(1, 6)):
                buyer = self.r.choice([a for a in self.accounts if a != owner])
                self.event("Marketplace", "AssetSold", asset_id=asset, seller=owner, buyer=buyer, price=10**17)
                owner = buyer
        for ring in range(rings):
            members = self.r.sample(self.accounts, self.r.choice((2, 3)))
            if ring % 2:
                for a, b in zip(members, members[1:]):
                    self.fund(a, b)
            asset = assets + ring
            for i in range(self.r.randint(3, 5)):
                self.event("Marketplace", "AssetSold", asset_id=asset, seller=members[i % len(members)],
                           buyer=members[(i + 1) % len(members)], price=10**17 * (i + 1))
            self.bad["wash"] |= set(members)
            self.cases["wash"].append(set(members))
        # honest accounts funding each other now and then (family, a company paying its staff)
        for _ in range(len(self.accounts) // 10):
            a, b = self.r.sample(self.accounts, 2)
            self.fund(a, b)

    # ------------------------------------------------------------------ federations
    def federations(self, tasks: int, clusters: int) -> None:
        def run_task(task: int, parties: list[str], copies: set[str]) -> None:
            for p in parties:
                self.event("Federation", "Joined", task_id=task, participant=p, stake=10, _from=p)
            for rnd in range(1, 4):
                start = self.t
                for p in parties:  # honest parties commit when their training ends: within a few minutes
                    e = self.event("Federation", "Committed", task_id=task, round=rnd, participant=p,
                                   commitment="0x" + "11" * 32, _from=p)
                    self.act.events[-1] = Event(e.contract, e.name, e.args, e.tx_hash, e.block,
                                                start + self.r.randint(0, 300), 0)
                for p in parties:
                    update = "0x" + ("ee" * 32 if p in copies else f"{self.r.getrandbits(256):064x}")
                    self.event("Federation", "Revealed", task_id=task, round=rnd, participant=p, update_digest=update,
                               _from=p)

        for task in range(1, tasks + 1):
            run_task(task, self.r.sample(self.accounts, 5), set())
        for c in range(clusters):
            boss = self.r.choice(self.accounts)
            seats = [f"0x{0xc0000000 + 10 * c + i:040x}" for i in range(3)]
            for s in seats:
                self.fund(boss, s)
            honest = self.r.sample(self.accounts, 3)
            run_task(tasks + 1 + c, honest + seats, set(seats) if c % 2 == 0 else set())
            self.bad["sybil"] |= set(seats)
            self.cases["sybil"].append(set(seats))

    # ------------------------------------------------------------------ channels
    def channels(self, honest: int, abused: int, fanouts: int) -> None:
        providers = self.r.sample(self.accounts, 5)

        def open_channel(sender: str, recipient: str) -> tuple[str, int]:
            cid = f"0x{self.r.getrandbits(256):064x}"
            e = self.event("PaymentChannels", "ChannelOpened", channel_id=cid, sender=sender, recipient=recipient,
                           token="0x" + "00" * 20, deposit=10**15, expiry=self.t + 86_400, _from=sender)
            return cid, e.args["expiry"]

        for _ in range(honest):
            sender = self.r.choice(self.accounts)
            recipient = self.r.choice([p for p in providers if p != sender])
            cid, expiry = open_channel(sender, recipient)
            paid = 0
            for _ in range(self.r.randint(1, 5)):
                paid += self.r.randint(1, 10**14)
                e = self.event("PaymentChannels", "ChannelSettled", channel_id=cid, recipient=recipient, amount=paid,
                               payout=1, _from=recipient)
                if self.r.random() < 0.1:  # settled after expiry now and then
                    self.act.events[-1] = Event(e.contract, e.name, e.args, e.tx_hash, e.block, expiry + 60, 0)
        for i in range(abused):
            sender = self.r.choice(self.accounts)
            recipient = self.r.choice([p for p in providers if p != sender])
            cid, _ = open_channel(sender, recipient)
            self.event("PaymentChannels", "ChannelSettled", channel_id=cid, recipient=recipient, amount=5 * 10**14,
                       payout=1, _from=recipient)
            self.failed_settle(recipient, cid, 10**14 if i % 2 else 10**16)  # a replay, or above the deposit
            # the alert names both parties of the channel: the one who sent the voucher and the one redeeming it
            self.bad["voucher"] |= {sender, recipient}
            self.cases["voucher"].append({sender, recipient})
        for f in range(fanouts):
            funder = self.r.choice(self.accounts)
            fresh = [f"0x{0xf0000000 + 10 * f + i:040x}" for i in range(6)]
            for a in fresh:
                self.fund(funder, a)
                open_channel(a, self.r.choice(providers))
            self.bad["voucher"] |= {funder, *fresh}
            self.cases["voucher"].append({funder, *fresh})

    def done(self) -> Activity:
        self.act.events.sort(key=lambda e: (e.block, e.timestamp))
        self.act.head = self.block
        return self.act


# ---------------------------------------------------------------------- naive rules, for comparison
def naive_wash(act: Activity) -> set[str]:
    pairs = defaultdict(int)
    for e in act.of("Marketplace", "AssetSold"):
        pairs[(e.args["asset_id"], frozenset((e.args["seller"], e.args["buyer"])))] += 1
    return {a for (_, pair), n in pairs.items() if n >= 2 for a in pair}


def naive_sybil(act: Activity) -> set[str]:
    funder = defaultdict(set)
    for t in act.txs:
        if t["value"]:
            funder[t["recipient"]].add(t["sender"])
    tasks = defaultdict(list)
    for e in act.of("Federation", "Joined"):
        tasks[e.args["task_id"]].append(e.args["participant"])
    return {x for members in tasks.values() for a, b in combinations(members, 2) if funder[a] & funder[b] for x in (a, b)}


def naive_voucher(act: Activity) -> set[str]:
    flagged = {c.sender for c in act.calls if not c.ok}
    opened = defaultdict(int)
    for e in act.of("PaymentChannels", "ChannelOpened"):
        opened[e.args["sender"]] += 1
    return flagged | {s for s, n in opened.items() if n >= 3}


def score(flagged: set[str], bad: set[str], cases: list[set[str]], honest: set[str]) -> dict[str, float]:
    return {"false_positive_rate": len(flagged & honest) / len(honest), "false_positives": len(flagged & honest),
            "recall": sum(1 for c in cases if c & flagged) / len(cases) if cases else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--accounts", type=int, default=300)
    args = ap.parse_args()
    rows = defaultdict(lambda: defaultdict(list))
    events = 0
    for seed in range(args.seeds):
        g = Gen(seed, args.accounts)
        g.market(assets=args.accounts, rings=20)
        g.federations(tasks=args.accounts // 5, clusters=10)
        g.channels(honest=args.accounts, abused=20, fanouts=5)
        act = g.done()
        events += len(act.events)
        hub_list = hubs(act)
        everyone = set(g.accounts) | {a for s in g.bad.values() for a in s}
        for name, ours, naive in (("wash", wash_trading, naive_wash), ("sybil", sybil_clusters, naive_sybil),
                                  ("voucher", voucher_abuse, naive_voucher)):
            honest = everyone - g.bad[name]
            t0 = time.perf_counter()
            flagged = {s for a in ours(act, hub_list) for s in a.subjects}
            dt = time.perf_counter() - t0
            for k, v in score(flagged, g.bad[name], g.cases[name], honest).items():
                rows[name][f"ours_{k}"].append(v)
            rows[name]["ours_seconds"].append(dt)
            for k, v in score(naive(act), g.bad[name], g.cases[name], honest).items():
                rows[name][f"naive_{k}"].append(v)
    summary = {name: {k: sum(v) / len(v) for k, v in cols.items()} for name, cols in rows.items()}
    print(f"{args.seeds} seeds, {args.accounts} honest accounts, {events // args.seeds} events per run")
    print(f"{'detector':<9} {'ours FP rate':>12} {'ours recall':>11} {'naive FP rate':>13} {'naive recall':>12} {'ours s':>7}")
    for name, m in summary.items():
        print(f"{name:<9} {m['ours_false_positive_rate']:>12.4f} {m['ours_recall']:>11.2f} "
              f"{m['naive_false_positive_rate']:>13.4f} {m['naive_recall']:>12.2f} {m['ours_seconds']:>7.3f}")
    out = Path(__file__).parent / "results" / "guard_live.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"params": vars(args), "eventsPerRun": events // args.seeds, "summary": summary,
                               "perSeed": {n: dict(c) for n, c in rows.items()}}, indent=2))


if __name__ == "__main__":
    main()

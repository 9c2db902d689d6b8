"""Robust federated aggregation under poisoning: ours beside FedAvg, median, trimmed mean, Multi-Krum and FLTrust.

One run, 5 parties, both bundled datasets (breast_cancer, digits), IID and non-IID (Dirichlet label skew,
alpha 0.5), logistic regression trained in numpy (``ledgermind.federated``), 20 rounds of 2 local epochs:

- centralized training on the union of the parties' data (same epochs) and FedAvg without attack;
- for each attack (sign flip, x-10 scaling, label flipping, two colluders sending one crafted label-flipped update)
  with 1 and with 2 of the 5 parties attacking: every aggregator, same data, same attackers, same seeds;
- attacker detection (``anomaly`` flags of ours: per update and per party over the run), and reward shares
  (Shapley on validation log-loss, flagged -> 0) beside the shares FLTrust-style trust scores would pay;
- one configuration (digits, non-IID) with the one-hidden-layer MLP.

Every cell is the mean over ``--seeds`` seeds (default 5; each seed draws its own split and its own attackers, a
seeded random choice of parties), because one breast_cancer test row is 0.9 points and a single Dirichlet draw
decides which labels the attackers take away. Also reported as context: FedAvg over the honest parties only
(what perfect exclusion, with nothing in place of the attackers' data, gives).

Baselines are configured for the attack size they are meant for with 5 parties: trimmed mean trims 1 per side (2
would be the median), Multi-Krum assumes f = 2 and averages the n - f = 3 best.

    python bench/bench_federated.py [--seeds 5] [--rounds 20] [--workers 2]

Targets: FedAvg without attack within 1.5 accuracy points of centralized (IID); ours within 3 points of FedAvg's
no-attack accuracy in every attacked cell. Prints a table and writes ``bench/results/federated.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "federated.json"
sys.path.insert(0, str(ROOT / "src"))

from ledgermind.federated.aggregation import ours  # noqa: E402
from ledgermind.federated.anomaly import detection_metrics  # noqa: E402
from ledgermind.federated.data import make_federated_data  # noqa: E402
from ledgermind.federated.simulation import run_federation, train_centralized  # noqa: E402
from ledgermind.federated.trainers import LogisticRegressionTrainer, MLPTrainer  # noqa: E402

PARTIES = 5
ALPHA = 0.5
DATASETS = ("breast_cancer", "digits")
PARTITIONS = ("iid", "dirichlet")
ATTACKS = ("sign_flip", "scale", "label_flip", "colluding")
AGGREGATORS = ("fedavg", "median", "trimmed_mean", "multi_krum", "fltrust", "ours")


def ours_one_round(updates, *, num_samples=None, reference=None):
    """Ablation: ours judging direction on each round alone (no accumulated evidence)."""
    return ours(updates, num_samples=num_samples, reference=reference)


def ours_no_substitute(updates, *, num_samples=None, reference=None, evidence=None):
    """Ablation: ours renormalizing over the accepted parties instead of giving the excluded share to the reference."""
    return ours(updates, num_samples=num_samples, reference=reference, evidence=evidence, substitute=False)


ABLATIONS = {"ours_one_round": ours_one_round, "ours_no_substitute": ours_no_substitute}
COLUMNS = AGGREGATORS + tuple(ABLATIONS)
OPTIONS = {"trimmed_mean": {"trim": 1}, "multi_krum": {"f": 2}}
TARGET_CENTRAL = 1.5  # points
TARGET_OURS = 3.0  # points
MLP_CONFIG = ("digits", "dirichlet")
MLP_SCENARIOS = ((None, 0), ("label_flip", 2), ("colluding", 2))


def scenarios() -> list[tuple[str | None, int]]:
    return [(None, 0)] + [(attack, k) for k in (1, 2) for attack in ATTACKS]


def key(attack: str | None, k: int) -> str:
    return "none" if attack is None else f"{attack}x{k}"


def attackers_for(seed: int) -> list[int]:
    """The parties that attack in this seed, in order: the first k attack when k attackers are asked for."""
    return [int(p) for p in np.random.default_rng(10_000 + seed).permutation(PARTIES)]


def fairness(history, data, attackers: dict[int, str]) -> dict[str, Any]:
    """Reward shares under ours (Shapley, flagged -> 0) and what FLTrust-style trust would pay on the same run."""
    honest = [p for p in range(PARTIES) if p not in attackers]
    samples = np.array(data.num_samples(), dtype=float)
    data_share = samples[honest] / samples[honest].sum()
    trust = np.zeros(PARTIES)  # sum over rounds of ReLU(cosine to the reference), as FLTrust weights a round
    for r in history.rounds:
        for report, party in zip(r.details.get("anomaly", []), sorted(r.weights)):
            trust[party] += max(report.cosine or 0.0, 0.0)
    trust = trust / trust.sum() if trust.sum() > 0 else trust
    counts = data.label_counts()
    dist = counts / counts.sum(axis=1, keepdims=True)
    skew = 0.5 * np.abs(dist - counts.sum(axis=0) / counts.sum()).sum(axis=1)
    most_skewed = max(honest, key=lambda p: skew[p])
    out: dict[str, Any] = {"most_skewed_party": most_skewed, "most_skewed_tv": float(skew[most_skewed])}
    for name, shares in (("shapley", history.rewards), ("trust", trust)):
        rel = shares[honest] / data_share
        out[name] = {
            "honest_share": float(shares[honest].sum()),
            "attacker_share": float(shares[list(attackers)].sum()) if attackers else 0.0,
            "worst_honest_vs_data_share": float(rel.min()),
            "most_skewed_vs_data_share": float(rel[honest.index(most_skewed)]),
            "honest_paid_zero": int((shares[honest] <= 0).sum()),
        }
    return out


def run_seed(task: tuple[str, str, int, dict[str, Any]]) -> dict[str, Any]:
    """Everything for one (dataset, partition, seed): centralized, every scenario x aggregator, oracle, detection."""
    name, partition, seed, cfg = task
    started = time.perf_counter()
    data = make_federated_data(name, PARTIES, partition=partition, alpha=ALPHA, seed=seed)
    fit = {"local_epochs": cfg["local_epochs"], "lr": cfg["lr"], "batch_size": cfg["batch_size"]}
    order = attackers_for(seed)
    _, central = train_centralized(data, epochs=cfg["rounds"] * cfg["local_epochs"], lr=cfg["lr"],
                                   batch_size=cfg["batch_size"], seed=seed)
    out: dict[str, Any] = {"dataset": name, "partition": partition, "seed": seed, "centralized": central,
                           "attacker_order": order, "accuracy": {}, "detection": {}, "fairness": {}, "oracle": {}}
    for attack, k in scenarios():
        attackers = {p: attack for p in order[:k]} if attack else {}
        cell = out["accuracy"].setdefault(key(attack, k), {})
        for agg in COLUMNS:
            is_ours = agg == "ours"
            history = run_federation(
                data, PARTIES, cfg["rounds"], aggregator=ABLATIONS.get(agg, agg), aggregator_options=OPTIONS.get(agg),
                attackers=attackers, seed=seed, contributions="shapley" if is_ours else None, **fit,
            )
            cell[agg] = history.accuracy
            if is_ours:
                truth_updates = [p in attackers for r in history.rounds for p in sorted(r.weights)]
                flags_updates = [p in r.flags for r in history.rounds for p in sorted(r.weights)]
                out["detection"][key(attack, k)] = {
                    "per_update": detection_metrics(flags_updates, truth_updates),
                    "per_party": detection_metrics(history.flagged.tolist(), [p in attackers for p in range(PARTIES)]),
                    "false_flags": {int(p): why for p, why in history.flag_reasons.items() if p not in attackers},
                    # the evidence behind judging direction on accumulated updates instead of one round's
                    "honest_min_cumulative_cosine": min(history.cumulative_cosine[p] for p in range(PARTIES)
                                                        if p not in attackers),
                    "attacker_max_cumulative_cosine": max((history.cumulative_cosine[p] for p in attackers),
                                                          default=None),
                    "honest_updates": sum(p not in attackers for r in history.rounds for p in r.weights),
                    "honest_round_cosine_below_0": sum(
                        rep.cosine < 0 for r in history.rounds
                        for rep, p in zip(r.details["anomaly"], sorted(r.weights)) if p not in attackers),
                }
                out["fairness"][key(attack, k)] = fairness(history, data, attackers)
    for k in (1, 2):  # perfect exclusion and nothing in the attackers' place
        honest = [p for p in range(PARTIES) if p not in order[:k]]
        only = replace(data, parties=[data.parties[p] for p in honest], indices=[data.indices[p] for p in honest])
        out["oracle"][f"honest_only_fedavg_k{k}"] = run_federation(
            only, len(honest), cfg["rounds"], aggregator="fedavg", seed=seed, contributions=None, **fit
        ).accuracy
    if (name, partition) == MLP_CONFIG:
        mlp = MLPTrainer(hidden=cfg["mlp_hidden"])
        _, mlp_central = train_centralized(data, mlp, epochs=cfg["rounds"] * cfg["local_epochs"], lr=cfg["lr"],
                                           batch_size=cfg["batch_size"], seed=seed)
        out["mlp"] = {"centralized": mlp_central, "accuracy": {}, "per_party_detection": {}}
        for attack, k in MLP_SCENARIOS:
            attackers = {p: attack for p in order[:k]} if attack else {}
            cell = out["mlp"]["accuracy"].setdefault(key(attack, k), {})
            for agg in AGGREGATORS:
                history = run_federation(data, PARTIES, cfg["rounds"], trainer=mlp, aggregator=agg,
                                         aggregator_options=OPTIONS.get(agg), attackers=attackers, seed=seed,
                                         contributions=None, **fit)
                cell[agg] = history.accuracy
                if agg == "ours":
                    out["mlp"]["per_party_detection"][key(attack, k)] = detection_metrics(
                        history.flagged.tolist(), [p in attackers for p in range(PARTIES)])
    out["seconds"] = time.perf_counter() - started
    return out


def mean(values) -> float:
    return float(np.mean(list(values)))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds per cell, the targets, detection and fairness totals."""
    table: dict[str, Any] = {}
    targets: dict[str, Any] = {"fedavg_vs_centralized": {}, "ours_vs_fedavg_no_attack": {}}
    for name in DATASETS:
        for partition in PARTITIONS:
            group = [r for r in runs if r["dataset"] == name and r["partition"] == partition]
            cfg = f"{name}/{partition}"
            base = mean(r["accuracy"]["none"]["fedavg"] for r in group)
            central = mean(r["centralized"] for r in group)
            rows = {}
            for attack, k in scenarios():
                cell = key(attack, k)
                acc = {agg: mean(r["accuracy"][cell][agg] for r in group) for agg in COLUMNS}
                per_seed_gap = [100 * (r["accuracy"]["none"]["fedavg"] - r["accuracy"][cell]["ours"]) for r in group]
                rows[cell] = {"accuracy": acc, "ours_gap_points": 100 * (base - acc["ours"]),
                              "ours_worst_seed_gap_points": max(per_seed_gap)}
                if attack:
                    targets["ours_vs_fedavg_no_attack"][f"{cfg}/{cell}"] = {
                        "gap_points": 100 * (base - acc["ours"]), "meets": 100 * (base - acc["ours"]) <= TARGET_OURS}
            table[cfg] = {
                "centralized": central, "fedavg_no_attack": base, "rows": rows,
                "oracle_honest_only_fedavg": {k: mean(r["oracle"][k] for r in group) for k in group[0]["oracle"]},
            }
            if partition == "iid":
                gap = 100 * (central - base)
                targets["fedavg_vs_centralized"][name] = {"gap_points": gap, "meets": gap <= TARGET_CENTRAL}

    def total(level: str, attacked: bool, partition: str | None = None) -> dict[str, Any]:
        tp = fp = fn = 0
        for r in runs:
            if partition and r["partition"] != partition:
                continue
            for cell, d in r["detection"].items():
                if (cell != "none") == attacked:
                    tp, fp, fn = tp + d[level]["tp"], fp + d[level]["fp"], fn + d[level]["fn"]
        return {"tp": tp, "fp": fp, "fn": fn, "precision": tp / (tp + fp) if tp + fp else 1.0,
                "recall": tp / (tp + fn) if tp + fn else 1.0}

    detection: dict[str, Any] = {
        level: {"attacked_runs": total(level, True), "attacked_runs_noniid": total(level, True, "dirichlet"),
                "clean_runs_false_flags": total(level, False)["fp"]}
        for level in ("per_update", "per_party")}
    for partition in PARTITIONS:
        ds = [d for r in runs if r["partition"] == partition for d in r["detection"].values()]
        detection[f"direction_evidence_{partition}"] = {
            "honest_min_cumulative_cosine": min(d["honest_min_cumulative_cosine"] for d in ds),
            "attacker_max_cumulative_cosine": max(d["attacker_max_cumulative_cosine"] for d in ds
                                                  if d["attacker_max_cumulative_cosine"] is not None),
            "honest_updates_with_round_cosine_below_0": sum(d["honest_round_cosine_below_0"] for d in ds),
            "honest_updates": sum(d["honest_updates"] for d in ds),
        }
    false_flags = [(r["dataset"], r["partition"], r["seed"], cell, d["false_flags"])
                   for r in runs for cell, d in r["detection"].items() if d["false_flags"]]

    fair: dict[str, Any] = {}
    noniid = [(r, cell, f) for r in runs if r["partition"] == "dirichlet" for cell, f in r["fairness"].items()]
    for scheme in ("shapley", "trust"):
        vals = [f[scheme] for _, _, f in noniid]
        fair[scheme] = {
            "honest_share_mean": mean(v["honest_share"] for v in vals),
            "honest_share_min": min(v["honest_share"] for v in vals),
            "attacker_share_max": max(v["attacker_share"] for v in vals),
            "worst_honest_vs_data_share_mean": mean(v["worst_honest_vs_data_share"] for v in vals),
            "worst_honest_vs_data_share_min": min(v["worst_honest_vs_data_share"] for v in vals),
            "most_skewed_vs_data_share_mean": mean(v["most_skewed_vs_data_share"] for v in vals),
            "honest_parties_paid_zero": sum(v["honest_paid_zero"] for v in vals),
            "runs": len(vals),
        }
    mlp_runs = [r["mlp"] for r in runs if "mlp" in r]
    mlp = {
        "config": "/".join(MLP_CONFIG),
        "centralized": mean(m["centralized"] for m in mlp_runs),
        "accuracy": {key(a, k): {agg: mean(m["accuracy"][key(a, k)][agg] for m in mlp_runs) for agg in AGGREGATORS}
                     for a, k in MLP_SCENARIOS},
        "per_party_detection": {
            key(a, k): {x: sum(m["per_party_detection"][key(a, k)][x] for m in mlp_runs) for x in ("tp", "fp", "fn")}
            for a, k in MLP_SCENARIOS},
    }
    return {"table": table, "targets": targets, "detection": detection, "false_flags": false_flags,
            "fairness_noniid": fair, "mlp": mlp}


def print_report(summary: dict[str, Any], seeds: int) -> None:
    short = {"fedavg": "mean", "median": "median", "trimmed_mean": "trim1", "multi_krum": "mkrum2",
             "fltrust": "fltrust", "ours": "ours", "ours_one_round": "1round", "ours_no_substitute": "nosub"}
    print(f"\ntest accuracy, mean over {seeds} seeds (gap = FedAvg no-attack minus ours, in points; target <= "
          f"{TARGET_OURS:g}; worst = largest gap of a single seed). After |: ablations of ours, one-round direction "
          f"rule (1round) and no reference substitution (nosub)")
    header = (f"{'config':<24} {'attack':<13}" + "".join(f"{short[a]:>8}" for a in AGGREGATORS) + f"{'gap':>7}"
              f"{'worst':>7}  |" + "".join(f"{short[a]:>8}" for a in ABLATIONS))
    for cfg, t in summary["table"].items():
        print(f"\n{cfg}: centralized {t['centralized']:.4f}, FedAvg no attack {t['fedavg_no_attack']:.4f}, "
              f"honest-only FedAvg k=1 {t['oracle_honest_only_fedavg']['honest_only_fedavg_k1']:.4f}, "
              f"k=2 {t['oracle_honest_only_fedavg']['honest_only_fedavg_k2']:.4f}")
        print(header)
        for cell, row in t["rows"].items():
            accs = "".join(f"{row['accuracy'][a]:>8.3f}" for a in AGGREGATORS)
            ablations = "".join(f"{row['accuracy'][a]:>8.3f}" for a in ABLATIONS)
            gaps = f"{row['ours_gap_points']:>7.2f}{row['ours_worst_seed_gap_points']:>7.2f}"
            print(f"{cfg:<24} {cell:<13}{accs}{gaps}  |{ablations}")
    print("\ntargets")
    for name, t in summary["targets"]["fedavg_vs_centralized"].items():
        print(f"  FedAvg vs centralized, {name} IID: {t['gap_points']:.2f} points "
              f"({'meets' if t['meets'] else 'MISSES'} <= {TARGET_CENTRAL:g})")
    ours = summary["targets"]["ours_vs_fedavg_no_attack"]
    worst = max(ours.items(), key=lambda kv: kv[1]["gap_points"])
    met = sum(t["meets"] for t in ours.values())
    print(f"  ours within {TARGET_OURS:g} points of FedAvg no-attack: {met}/{len(ours)} cells "
          f"(worst {worst[0]}: {worst[1]['gap_points']:.2f} points)")
    print("\nattacker detection (ours' anomaly flags)")
    for level in ("per_update", "per_party"):
        d = summary["detection"][level]
        a, n = d["attacked_runs"], d["attacked_runs_noniid"]
        print(f"  {level:<10} precision {a['precision']:.3f} recall {a['recall']:.3f} (tp {a['tp']} fp {a['fp']} "
              f"fn {a['fn']}); non-IID only: precision {n['precision']:.3f} recall {n['recall']:.3f}; "
              f"false flags in clean runs: {d['clean_runs_false_flags']}")
    for partition in PARTITIONS:
        e = summary["detection"][f"direction_evidence_{partition}"]
        print(f"  {partition}: cumulative cosine honest >= {e['honest_min_cumulative_cosine']:.2f}, attackers <= "
              f"{e['attacker_max_cumulative_cosine']:.2f}; a one-round rule (cosine < 0) would flag "
              f"{e['honest_updates_with_round_cosine_below_0']} of {e['honest_updates']} honest updates")
    print("\nrewards under non-IID (all scenarios, ours' runs): Shapley on validation log-loss vs FLTrust-style trust")
    for scheme, f in summary["fairness_noniid"].items():
        print(f"  {scheme:<8} honest share mean {f['honest_share_mean']:.3f} (min {f['honest_share_min']:.3f}), "
              f"attacker share max {f['attacker_share_max']:.3f}; worst-off honest party paid "
              f"{f['worst_honest_vs_data_share_mean']:.2f}x its data share on average (min "
              f"{f['worst_honest_vs_data_share_min']:.2f}x); most skewed honest party "
              f"{f['most_skewed_vs_data_share_mean']:.2f}x; honest parties paid 0: {f['honest_parties_paid_zero']}")
    m = summary["mlp"]
    print(f"\nMLP ({m['config']}, centralized {m['centralized']:.4f})")
    print(f"{'attack':<13}" + "".join(f"{short[a]:>8}" for a in AGGREGATORS) + "   per-party tp/fp/fn (ours)")
    for cell, acc in m["accuracy"].items():
        d = m["per_party_detection"][cell]
        print(f"{cell:<13}" + "".join(f"{acc[a]:>8.3f}" for a in AGGREGATORS) + f"   {d['tp']}/{d['fp']}/{d['fn']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per configuration (default 5)")
    parser.add_argument("--rounds", type=int, default=20, help="federated rounds (default 20)")
    parser.add_argument("--local-epochs", type=int, default=2, help="local epochs per round (default 2)")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--mlp-hidden", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="processes (default: CPUs)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    cfg = {"rounds": args.rounds, "local_epochs": args.local_epochs, "lr": args.lr, "batch_size": args.batch_size,
           "mlp_hidden": args.mlp_hidden}
    tasks = [(n, p, s, cfg) for n in DATASETS for p in PARTITIONS for s in range(args.seeds)]
    started = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            runs = pool.map(run_seed, tasks, chunksize=1)
    else:
        runs = [run_seed(t) for t in tasks]
    elapsed = time.perf_counter() - started
    summary = summarize(runs)
    print_report(summary, args.seeds)
    print(f"\n{len(tasks)} (dataset, partition, seed) tasks, "
          f"{sum(len(r['accuracy']) * len(COLUMNS) + 2 for r in runs)} logistic federations, "
          f"{elapsed:.0f} s on {args.workers} processes")

    import sklearn

    report = {
        "benchmark": "federated",
        "parameters": {**cfg, "parties": PARTIES, "alpha": ALPHA, "seeds": args.seeds, "datasets": DATASETS,
                       "partitions": PARTITIONS, "attacks": ATTACKS, "aggregators": AGGREGATORS,
                       "ablations": {name: fn.__doc__ for name, fn in ABLATIONS.items()},
                       "aggregator_options": OPTIONS, "trainer": LogisticRegressionTrainer().get_params(),
                       "attackers": "seeded random parties per seed (attacker_order in runs)"},
        "targets": {"fedavg_vs_centralized_points": TARGET_CENTRAL, "ours_vs_fedavg_no_attack_points": TARGET_OURS},
        "summary": summary,
        "runs": runs,
        "seconds": elapsed,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    print(f"wrote {args.out}")
    return 0


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot serialize {type(o).__name__}")


if __name__ == "__main__":
    raise SystemExit(main())

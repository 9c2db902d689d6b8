"""Supervised fraud detection on the real labelled Ethereum dataset: ours beside an untuned gradient-boosting baseline.

Data: the public Kaggle "Ethereum Fraud Detection Dataset" (../shared/data/eth-fraud-kaggle), read into
``ledgermind.guard.features.FEATURES``: the columns the feature extractor computes from a plain transactions
table, nothing else. 9,816 distinct addresses (25 repeated ones kept once); 274 of them have nothing recorded at
all (all fraudulent) and are left out, leaving 9,542 accounts, 1,905 fraudulent. The ERC-20 columns are blank for
555 of those, all fraudulent (an artefact of how the file was made); they are read as zero, the value the
extractor gives an account without ERC-20 transfers and the value 4,399 legitimate accounts have, so a blank
cannot be told apart (``ledgermind.guard.data``). The categorical token-type columns are not used.

For each seed (default 0-4): one stratified 80/20 split of the addresses (no address on both sides: checked),
then, on the same split and in the same run:

- ``ours``: ``FraudDetector`` (histogram gradient boosting, ``ledgermind.guard.detector.PARAMS``), threshold 0.5;
- ``baseline``: scikit-learn's ``GradientBoostingClassifier()`` with its defaults (untuned), same features;
- ``complete_*``: both again on the 8,987 accounts whose ERC-20 columns are filled. No blank is left, but this is
  not a clean result: there every fraudulent account has ERC-20 transfers and 4,399 legitimate ones have none (the
  flip side of the same artefact), so read it as an upper bound;
- ``eth_only``: ours on the ether features alone (no ERC-20 column);
- ``artefact``: ours with the blanks left as missing values, which the model may use (how much the artefact is
  worth; not a result).

Precision, recall and F1 of the fraud class and ROC-AUC, mean ± sd over the seeds; recall on the fraud accounts
with blank ERC-20 columns (the group the artefact would give away). Then the Forta check: Forta's labels
(../shared/data/forta-labelled) name addresses, not transactions, so features cannot be computed for them; what
can be checked is how ours scores, whenever they are held out, the Kaggle accounts Forta independently labels
(recall per Forta label), the Kaggle fraud accounts Forta does not know, and the legitimate accounts Forta labels.

    python bench/bench_guard.py [--seeds 5] [--test-size 0.2]

Target: ours mean F1 >= 0.95 on all 9,542 accounts with blanks read as zero (``ours``). Prints a table and writes
``bench/results/guard.json``.

Where ours errs is reported too (pooled over the splits): how many errors fall on thin accounts (at most 3
transactions and no token transfer: a few amounts and time gaps to judge by), and the pooled F1 if every one of
those errors were undone.

Tried on these splits and not kept (mean F1 of ``ours`` 0.925 in the same runs): a threshold chosen by inner
cross-validation 0.922; random forest 0.900, extra trees 0.894, bags of feature-subsampled boosters 0.925, and
their averages 0.923-0.926; an ether-only model averaged in for accounts without ERC-20 transfers 0.928 (seeds 0-4)
but 0.925 (seeds 5-9); the decimal places of the smallest and largest amounts 0.932 (round amounts), but that model
flagged the dev chain's faucet, a program sending round amounts, in tests/test_guard_live.py: round amounts mark
the file's fraud rows more than they mark fraud; a fraud rate per most-received token name 0.931 (0.937-0.938 with
the decimal places), much of it from tokens airdropped to flagged addresses as warnings ("Blockwell say NOTSAFU":
779 accounts, all fraudulent), which is reading other people's labels, not detecting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # OpenMP spin-waits badly on a shared 2-core machine

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "guard.json"
sys.path.insert(0, str(ROOT / "src"))

from ledgermind.guard.data import load_forta, load_kaggle  # noqa: E402
from ledgermind.guard.detector import PARAMS, FraudDetector  # noqa: E402
from ledgermind.guard.features import ERC20_FEATURES, FEATURES  # noqa: E402

TARGET_F1 = 0.95
THIN_MAX_TX = 3  # "thin" accounts for the error analysis: at most this many transactions and no token transfer
ETH_ONLY = [n for n in FEATURES if n not in ERC20_FEATURES and n != "erc20_share"]
MODELS = ("ours", "baseline", "complete_ours", "complete_baseline", "eth_only", "artefact")


def metrics(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    pred = score >= threshold
    return {"precision": float(precision_score(y, pred, zero_division=0)), "recall": float(recall_score(y, pred)),
            "f1": float(f1_score(y, pred)), "roc_auc": float(roc_auc_score(y, score))}


def run_split(seed: int, test_size: float, X: np.ndarray, X_nan: np.ndarray, y: np.ndarray, missing: np.ndarray,
              addresses: list[str]) -> dict[str, Any]:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import StratifiedShuffleSplit

    tr, te = next(StratifiedShuffleSplit(1, test_size=test_size, random_state=seed).split(X, y))
    assert not {addresses[i] for i in tr} & {addresses[i] for i in te}, "an address on both sides of the split"
    complete = ~missing
    ctr, cte = tr[complete[tr]], te[complete[te]]
    eth = [FEATURES.index(n) for n in ETH_ONLY]
    out: dict[str, Any] = {"seed": seed, "train": len(tr), "test": len(te), "test_fraud": int(y[te].sum()),
                           "test_blank_erc20": int(missing[te].sum()), "models": {}}
    test_scores: dict[str, np.ndarray] = {}

    def fit_ours(rows: np.ndarray, cols: list[int] | None = None, data: np.ndarray = X) -> Any:
        names = [FEATURES[c] for c in cols] if cols is not None else list(FEATURES)
        view = data[:, cols] if cols is not None else data
        if data is X_nan:  # the artefact reference: HistGradientBoosting learns from missing values directly
            from sklearn.ensemble import HistGradientBoostingClassifier

            model = HistGradientBoostingClassifier(**PARAMS).fit(view[rows], y[rows])
            return lambda r: model.predict_proba(view[r])[:, 1]
        det = FraudDetector().fit(view[rows], y[rows], names)
        return lambda r: det.score(view[r])

    def fit_baseline(rows: np.ndarray) -> Any:
        model = GradientBoostingClassifier(random_state=seed).fit(X[rows], y[rows])
        return lambda r: model.predict_proba(X[r])[:, 1]

    plan = {"ours": (lambda: fit_ours(tr), te), "baseline": (lambda: fit_baseline(tr), te),
            "complete_ours": (lambda: fit_ours(ctr), cte), "complete_baseline": (lambda: fit_baseline(ctr), cte),
            "eth_only": (lambda: fit_ours(tr, eth), te), "artefact": (lambda: fit_ours(tr, None, X_nan), te)}
    for name, (fit, rows) in plan.items():
        started = time.perf_counter()
        predict = fit()
        fit_s = time.perf_counter() - started
        score = predict(rows)
        m = metrics(y[rows], score, 0.5)
        blank = missing[rows] & (y[rows] == 1)
        m["recall_blank_erc20"] = float((score[blank] >= 0.5).mean()) if blank.any() else None
        m["fit_seconds"] = fit_s
        out["models"][name] = m
        test_scores[name] = score
    out["ours_test_scores"] = {addresses[i]: float(s) for i, s in zip(te, test_scores["ours"])}
    flagged, fraud = test_scores["ours"] >= 0.5, y[te] == 1
    txs, tokens = X[te, FEATURES.index("total_transactions")], X[te, FEATURES.index("erc20_total_tnxs")]
    thin = (txs <= THIN_MAX_TX) & (tokens == 0)
    out["ours_errors"] = {"tp": int((flagged & fraud).sum()), "fp": int((flagged & ~fraud).sum()),
                          "fn": int((~flagged & fraud).sum()), "thin_accounts": int(thin.sum()),
                          "thin_fraud": int((thin & fraud).sum()), "thin_tp": int((thin & flagged & fraud).sum()),
                          "thin_fp": int((thin & flagged & ~fraud).sum()),
                          "thin_fn": int((thin & ~flagged & fraud).sum())}
    return out


def error_bound(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Where ours errs, pooled over the splits: how many errors fall on thin accounts (at most THIN_MAX_TX
    transactions, no token transfer: a few amounts and gaps to judge by), and the pooled F1 if every one of them
    were undone, which bounds what any better model of the other accounts alone would need to add."""
    e = {k: sum(r["ours_errors"][k] for r in runs) for k in runs[0]["ours_errors"]}
    tp, fp, fn = e["tp"], e["fp"], e["fn"]
    undone_tp = tp + e["thin_fn"]
    return {**e, "thin_max_transactions": THIN_MAX_TX, "pooled_f1": 2 * tp / (2 * tp + fp + fn),
            "thin_recall": e["thin_tp"] / e["thin_fraud"] if e["thin_fraud"] else None,
            "pooled_f1_without_thin_errors": 2 * undone_tp / (2 * undone_tp + fp - e["thin_fp"] + fn - e["thin_fn"])}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in MODELS:
        cell: dict[str, Any] = {}
        for key in ("precision", "recall", "f1", "roc_auc", "recall_blank_erc20", "fit_seconds"):
            vals = [r["models"][name][key] for r in runs if r["models"][name][key] is not None]
            if vals:
                cell[key] = {"mean": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                             "min": float(np.min(vals)), "max": float(np.max(vals))}
        summary[name] = cell
    return summary


def forta_check(runs: list[dict[str, Any]], labels: dict[str, int], forta: dict[str, set[str]]) -> dict[str, Any]:
    """Held-out scores of ours (every split an account was held out in) against Forta's independent labels."""
    held: list[tuple[str, float]] = [(a, s) for r in runs for a, s in r["ours_test_scores"].items()]
    flagged = [(a, s) for a, s in held if s >= 0.5]

    def recall(group: list[tuple[str, float]]) -> dict[str, Any]:
        return {"held_out_predictions": len(group), "accounts": len({a for a, _ in group}),
                "flagged": sum(s >= 0.5 for _, s in group),
                "recall": float(np.mean([s >= 0.5 for _, s in group])) if group else None,
                "mean_score": float(np.mean([s for _, s in group])) if group else None}

    fraud_in = [(a, s) for a, s in held if labels[a] == 1 and a in forta]
    per_label = {}
    for label in sorted({lab for a, _ in fraud_in for lab in forta[a]}):
        per_label[label] = recall([(a, s) for a, s in fraud_in if label in forta[a]])
    legit_in = [(a, s) for a, s in held if labels[a] == 0 and a in forta]
    return {
        "forta_addresses": len(forta),
        "kaggle_fraud_in_forta": sum(1 for a, y in labels.items() if y == 1 and a in forta),
        "kaggle_legit_in_forta": sorted((a, sorted(forta[a])) for a, y in labels.items() if y == 0 and a in forta),
        "fraud_with_forta_label": recall(fraud_in),
        "fraud_with_forta_label_by_label": per_label,
        "fraud_without_forta_label": recall([(a, s) for a, s in held if labels[a] == 1 and a not in forta]),
        "legit_with_forta_label": recall(legit_in),
        "flagged_confirmed_by_forta": float(np.mean([a in forta for a, _ in flagged])) if flagged else None,
    }


def print_report(summary: dict[str, Any], forta: dict[str, Any], bound: dict[str, Any], seeds: int) -> None:
    def cell(m: dict[str, Any], key: str) -> str:
        return f"{m[key]['mean']:.3f} ± {m[key]['sd']:.3f}" if key in m else "-"

    print(f"\nfraud class, {seeds} seeded stratified 80/20 splits (mean ± sd)")
    print(f"{'model':<19}{'precision':>15}{'recall':>15}{'F1':>15}{'ROC-AUC':>15}{'recall blank':>15}{'fit s':>8}")
    for name in MODELS:
        m = summary[name]
        fit = f"{m['fit_seconds']['mean']:.1f}"
        print(f"{name:<19}{cell(m, 'precision'):>15}{cell(m, 'recall'):>15}{cell(m, 'f1'):>15}"
              f"{cell(m, 'roc_auc'):>15}{cell(m, 'recall_blank_erc20'):>15}{fit:>8}")
    f1 = summary["ours"]["f1"]["mean"]
    print(f"target: ours mean F1 >= {TARGET_F1}: {'met' if f1 >= TARGET_F1 else 'NOT met'} ({f1:.3f}); "
          f"baseline {summary['baseline']['f1']['mean']:.3f}")
    b = bound
    thin_errors = b["thin_fp"] + b["thin_fn"]
    print(f"where ours errs (pooled): {b['fp'] + b['fn']} errors ({b['fn']} missed, {b['fp']} false alarms); "
          f"{thin_errors} on accounts with <= {b['thin_max_transactions']} transactions and no token transfer "
          f"({b['thin_accounts']} held-out predictions, {b['thin_fraud']} of fraud, recall {b['thin_recall']:.3f}); "
          f"with all of those undone, pooled F1 {b['pooled_f1_without_thin_errors']:.3f} (now {b['pooled_f1']:.3f})")
    fr, no = forta["fraud_with_forta_label"], forta["fraud_without_forta_label"]
    print(f"\nForta check (held-out predictions of ours): fraud accounts Forta labels: recall {fr['recall']:.3f} "
          f"({fr['accounts']} accounts); fraud accounts Forta does not know: recall {no['recall']:.3f} "
          f"({no['accounts']}); flagged accounts confirmed by a Forta label: {forta['flagged_confirmed_by_forta']:.3f}")
    for label, r in forta["fraud_with_forta_label_by_label"].items():
        print(f"  {label:<28} recall {r['recall']:.3f}  ({r['accounts']} accounts)")
    lg = forta["legit_with_forta_label"]
    if lg["held_out_predictions"]:
        print(f"  labelled legitimate by Kaggle but listed by Forta: {forta['kaggle_legit_in_forta']}, "
              f"mean held-out score {lg['mean_score']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeded splits (default 5: seeds 0-4)")
    parser.add_argument("--test-size", type=float, default=0.2, help="held-out share of the addresses (default 0.2)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    data = load_kaggle()
    forta = load_forta()
    X_nan = data.X.copy()
    blank_cols = [FEATURES.index(n) for n in (*ERC20_FEATURES, "erc20_share")]
    X_nan[np.ix_(data.erc20_missing, blank_cols)] = np.nan
    started = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        runs.append(run_split(seed, args.test_size, data.X, X_nan, data.y, data.erc20_missing, data.addresses))
        ours, base = runs[-1]["models"]["ours"], runs[-1]["models"]["baseline"]
        print(f"seed {seed}: ours F1 {ours['f1']:.4f} AUC {ours['roc_auc']:.4f}; "
              f"baseline F1 {base['f1']:.4f} AUC {base['roc_auc']:.4f}", flush=True)
    elapsed = time.perf_counter() - started
    summary = summarize(runs)
    check = forta_check(runs, dict(zip(data.addresses, data.y.tolist())), forta)
    bound = error_bound(runs)
    print_report(summary, check, bound, args.seeds)
    print(f"\n{args.seeds} splits x {len(MODELS)} models in {elapsed:.0f} s")

    import sklearn

    for r in runs:
        del r["ours_test_scores"]  # per-address scores: summarized by the Forta check
    report = {
        "benchmark": "guard",
        "dataset": {"file": "eth-fraud-kaggle/transaction_dataset.csv", "accounts": len(data.y),
                    "fraud": int(data.y.sum()), "blank_erc20_accounts": int(data.erc20_missing.sum()),
                    "blank_erc20_handling": "read as 0 (the extractor's value for no ERC-20 transfer); the "
                                            "'artefact' model alone sees them as missing values"},
        "parameters": {"seeds": list(range(args.seeds)), "test_size": args.test_size, "threshold": 0.5,
                       "ours": PARAMS, "baseline": "GradientBoostingClassifier() defaults, random_state=seed",
                       "features": list(FEATURES), "eth_only_features": ETH_ONLY},
        "target": {"ours_mean_f1": TARGET_F1, "met": summary["ours"]["f1"]["mean"] >= TARGET_F1},
        "summary": summary,
        "forta": check,
        "errors": bound,
        "runs": runs,
        "seconds": elapsed,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Finance: a fraud model under governance. The marketplace refuses it until a risk committee approves its data.

    python examples/finance.py [--home DIR] [--data transaction_dataset.csv]

Data: the public Ethereum Fraud Detection dataset (9,841 accounts, 51 columns of transaction aggregates, FLAG = 1
for fraud), read from the shared data folder (``$LEDGERMIND_SHARED_DATA``, else ``../shared/data`` beside this
checkout) or ``--data``. One ledgermind home holds the bank's platform account and a second risk officer:

1. The platform turns on the marketplace's governance gate and sets up a two-member risk committee (quorum 2).
2. The data team registers the transaction dataset (its quality checks run at registration), trains a random
   forest fraud model on 75% of it, and registers the model with its lineage and held-out metrics.
3. Listing the model fails: its training data is not approved.
4. The committee proposes and votes (two signed votes, each a transaction and a statement); once executed, the
   model's whole lineage is approved and the listing goes through.
5. The model verifies against the log and the anchor on chain.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split

from _home import example_home, example_parser
from ledgermind import Client
from ledgermind.errors import LedgermindError

DAY = 86400
DATASET = Path("eth-fraud-kaggle") / "transaction_dataset.csv"


def default_data() -> Path:
    from ledgermind.guard.data import shared_data_dir

    try:
        return shared_data_dir() / DATASET
    except LedgermindError:
        return Path(os.environ.get("LEDGERMIND_SHARED_DATA") or "../shared/data") / DATASET


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features: the numeric aggregates (columns 4 to 48; blanks become NaN); label: FLAG."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    X = np.array([[float(v) if v.strip() else np.nan for v in r[4:49]] for r in rows])
    return X, np.array([int(r[3]) for r in rows])


def run(home: Path, data_path: Path) -> bool:
    files = home / "files"
    files.mkdir(parents=True, exist_ok=True)
    with Client(home) as bank:
        bank.gov_gate(True)  # the marketplace now refuses models whose lineage is not approved
        officer = bank.new_account()
        bank.gov_member(officer)
        bank.gov_parameters(quorum=2, timelock=0, voting_period=3 * DAY)

        data = bank.register_dataset(data_path, name="ethereum-fraud-transactions",
                                     source="Ethereum Fraud Detection dataset (Kaggle)", contains_pii=False)
        issues = bank.inspect(data.digest)["issues"]
        print(f"dataset {data.digest[:12]} registered; quality checks: {len(issues)} issues noted")

        X, y = load(data_path)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
        clf = RandomForestClassifier(n_estimators=60, min_samples_leaf=2, random_state=0).fit(X_train, y_train)
        predicted = clf.predict(X_test)
        metrics = {"roc_auc": roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1]),
                   "precision": precision_score(y_test, predicted), "recall": recall_score(y_test, predicted)}
        joblib.dump(clf, files / "fraud-model.joblib")
        model = bank.register_model(files / "fraud-model.joblib", trained_on=[data.digest], metrics=metrics,
                                    hyperparameters={"n_estimators": 60, "min_samples_leaf": 2, "test_size": 0.25})
        print(f"fraud model {model.digest[:12]}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        bank.mint(data.digest)
        bank.mint(model.digest)

        try:
            bank.sell(model.digest, kind="licence", price=10**15, duration=30 * DAY)
            print("listed before approval: the governance gate failed")
            return False
        except LedgermindError as e:
            print(f"listing before approval refused: {e}")

        proposal = bank.gov_propose("approve-dataset", data.digest)["proposal_id"]
        bank.gov_vote(proposal)
        with bank.acting_as(officer) as risk_officer:
            print(f"proposal {proposal}: {risk_officer.gov_vote(proposal)['status']} with 2 of 2 votes")
        bank.gov_execute(proposal)
        approved = bank.gov_status(model.digest)["lineageApproved"]
        listed = bank.sell(model.digest, kind="licence", price=10**15, duration=30 * DAY)
        print(f"lineage approved: {approved}; licence listed (tx {listed[-1]['txHash'][:12]})")

        bank.anchor()
        report = bank.verify(model.digest)
        print(f"verify fraud model: {'PASS' if report.ok else 'FAIL'} ({len(report.checks)} checks)")
    return report.ok and approved


def main() -> int:
    parser = example_parser(__doc__)
    parser.add_argument("--data", type=Path, default=default_data(), help="the dataset's transaction_dataset.csv")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"error: no dataset at {args.data}: pass --data PATH or set LEDGERMIND_SHARED_DATA", file=sys.stderr)
        return 1
    with example_home(args.home) as home:
        return 0 if run(home, args.data) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Supply chain: every lot's path as signed events, and a demand-forecast model trained on those events.

    python examples/supply_chain.py [--home DIR]

One ledgermind home holds a dairy, a carrier and two stores (an account each; one log, one embedded chain).
The numbers are synthetic and seeded: weekly sales with a yearly cycle and noise.

1. The dairy registers the batch record of each weekly lot of yoghurt (26 weeks): the lot is an asset in the log.
2. Each step of a lot's path is an ``event`` statement about it, signed by whoever did it: the carrier ships it
   (cold-chain temperature), each store receives its share and reports the units sold that week.
3. The dairy rebuilds the weekly sales table from the ``sold`` events it reads back from the log, registers it
   as a dataset naming those log entries, and trains a demand-forecast model on it, registered with its lineage.
4. Verify: the model against the log and the anchor on chain, and the sales table against the log: rebuilding it
   from the events gives the registered bytes, so the forecast provably rests on what the stores reported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LinearRegression

from _home import run_example
from ledgermind import Client

WEEKS = 26
STORES = {"store-north": 120, "store-south": 80}  # mean weekly units


def sales_table(lm: Client, lots: list[str], path: Path) -> list[int]:
    """Write week,store,units from the ``sold`` events about ``lots`` in the log; return their log indices."""
    rows, indices = [], []
    for lot in lots:
        for about in lm.show(lot)["statements"]:
            predicate = lm.entry(about["logIndex"])["statement"]["predicate"]
            if predicate.get("type") == "sold":
                rows.append((predicate["data"]["week"], predicate["data"]["store"], predicate["data"]["units"]))
                indices.append(about["logIndex"])
    path.write_text("week,store,units\n" + "".join(f"{w},{s},{u}\n" for w, s, u in sorted(rows)))
    return indices


def seasonal(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows (store, week >= 1) of the sales table: features a level and a yearly cycle (sine, cosine) per store;
    the units sold; the week; and the units sold the week before (the naive forecast to beat)."""
    lines = [line.split(",") for line in path.read_text().splitlines()[1:]]
    X, y, weeks, last = [], [], [], []
    for i, store in enumerate(STORES):
        units = [int(u) for _, s, u in lines if s == store]
        for week in range(1, len(units)):
            angle = 2 * np.pi * week / 52
            own = np.eye(len(STORES))[i]
            X.append(np.concatenate([own, own * np.sin(angle), own * np.cos(angle)]))
            y.append(units[week])
            weeks.append(week)
            last.append(units[week - 1])
    return np.array(X), np.array(y), np.array(weeks), np.array(last)


def run(home: Path) -> bool:
    files = home / "files"
    files.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    with Client(home) as dairy:
        dairy.account()  # the home's default account (created on first use) is the dairy's; then the others
        carrier, *stores = [dairy.new_account() for _ in range(1 + len(STORES))]
        lots = []
        for week in range(WEEKS):
            record = files / f"lot-{week:02d}.json"
            record.write_text(json.dumps({"product": "yoghurt 500 g", "lot": f"L{week:02d}", "week": week}))
            lots.append(dairy.register_dataset(record, name=f"lot L{week:02d}", source="dairy batch record").digest)
        print(f"dairy registered {WEEKS} lots")

    with Client(home, account=carrier) as shipper:
        for week, lot in enumerate(lots):
            shipper.record_event(domain="supply-chain", type="shipped", related=[lot],
                                 data={"week": week, "maxTempC": round(float(rng.normal(4, 0.6)), 1)})
    for (name, mean), account in zip(STORES.items(), stores):
        with Client(home, account=account) as store:
            for week, lot in enumerate(lots):
                units = int(mean * (1 + 0.3 * np.sin(2 * np.pi * week / 52)) + rng.normal(0, mean * 0.05))
                store.record_event(domain="supply-chain", type="received", related=[lot], data={"store": name})
                store.record_event(domain="supply-chain", type="sold", related=[lot],
                                   data={"store": name, "week": week, "units": units})

    with Client(home) as dairy:
        roles = {dairy.account().address: "dairy", carrier: "carrier", **dict(zip(stores, STORES))}
        trail = [f"{dairy.entry(s['logIndex'])['statement']['predicate'].get('type', 'registered')} by {roles[s['signer']]}"
                 for s in dairy.show(lots[-1])["statements"]]
        print(f"lot L{WEEKS - 1:02d}: " + " -> ".join(trail))
        table = files / "weekly-sales.csv"
        indices = sales_table(dairy, lots, table)
        data = dairy.register_dataset(table, name="weekly-sales-from-events", licence="internal",
                                      source=f"'sold' events at log indices {indices[0]}..{indices[-1]}")
        X, y, weeks, last = seasonal(table)
        train, test = weeks < WEEKS - 6, weeks >= WEEKS - 6  # the last six weeks are held out
        model = LinearRegression(fit_intercept=False).fit(X[train], y[train])
        mae = float(np.abs(model.predict(X[test]) - y[test]).mean())
        naive = float(np.abs(last[test] - y[test]).mean())  # "same as last week"
        joblib.dump(model, files / "demand-forecast.joblib")
        forecast = dairy.register_model(files / "demand-forecast.joblib", trained_on=[data.digest],
                                        metrics={"mae_units": mae, "naive_mae_units": naive})
        print(f"forecast model {forecast.digest[:12]} on {len(indices)} sold events: MAE {mae:.1f} units "
              f"(last-week baseline {naive:.1f})")

        dairy.anchor()
        report = dairy.verify(forecast.digest)
        rebuilt = files / "rebuilt" / table.name
        rebuilt.parent.mkdir(exist_ok=True)
        sales_table(dairy, lots, rebuilt)
        same = dairy.verify(rebuilt, expect=data.digest)
        print(f"verify forecast model: {'PASS' if report.ok else 'FAIL'}; sales table rebuilt from the log: "
              f"{'PASS' if same.ok else 'FAIL'}")
    return report.ok and same.ok


if __name__ == "__main__":
    sys.exit(run_example(run, __doc__))

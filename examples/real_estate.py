"""Real estate: property transfers as signed statements, and a valuation model whose provenance a lender can check
offline.

    python examples/real_estate.py [--home DIR]

One ledgermind home holds a notary and a valuation firm (an account each; one log, one embedded chain). The
transactions are synthetic and seeded (prices from floor area, rooms, age and distance to the centre, plus
noise): a stand-in for a land registry's records.

1. The notary records 150 property transfers as ``event`` statements it signs (parcel, features, price, date).
2. The valuation firm rebuilds its training table from those statements, registers it naming the log entries
   it came from, trains a hedonic valuation model and registers it with its lineage and held-out error.
3. The firm values a new property: the valuation is a statement naming the model that produced it.
4. A lender receives the model file and its provenance bundle (the model's and its dataset's statements with
   inclusion proofs and the anchor on chain) and verifies them offline, with only the log's public key;
   a model file with one byte changed fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from _home import run_example
from ledgermind import Client

FEATURES = ["area_m2", "rooms", "age_years", "km_to_centre"]


def price(area: float, rooms: int, age: float, km: float) -> float:
    return 2800 * area * (1 + 0.04 * rooms) * (1 - 0.004 * age) * np.exp(-km / 25)


def run(home: Path) -> bool:
    files = home / "files"
    files.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    with Client(home) as notary:
        transfers = []
        for n in range(150):
            area, rooms = float(rng.uniform(35, 220)), int(rng.integers(1, 7))
            age, km = float(rng.uniform(0, 90)), float(rng.uniform(0.5, 30))
            value = round(price(area, rooms, age, km) * rng.lognormal(0, 0.08), -3)
            transfers.append(notary.record_event(domain="real-estate", type="transfer", data={
                "parcel": f"P-{1000 + n}", "date": f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}", "priceEur": value,
                "area_m2": round(area, 1), "rooms": rooms, "age_years": round(age), "km_to_centre": round(km, 2)}))
        firm_account = notary.new_account()
        notary.deploy(grant=[firm_account])  # the firm may anchor the log too (it exports an anchored bundle)
        print(f"notary recorded {len(transfers)} transfers at log indices "
              f"{transfers[0].log_index}..{transfers[-1].log_index}")

    with Client(home, account=firm_account) as firm:
        records = [firm.entry(t.log_index)["statement"]["predicate"]["data"] for t in transfers]
        table = files / "transfers.csv"
        table.write_text(",".join(FEATURES + ["priceEur"]) + "\n" + "".join(
            ",".join(str(r[k]) for k in FEATURES + ["priceEur"]) + "\n" for r in records))
        data = firm.register_dataset(table, name="property-transfers", licence="registry extract",
                                     source=f"transfer statements at log indices {transfers[0].log_index}.."
                                            f"{transfers[-1].log_index}")
        xy = np.loadtxt(table, delimiter=",", skiprows=1)
        X, y = xy[:, :4], xy[:, 4]
        # a hedonic price model: log price linear in log floor area, rooms, age and distance
        hedonic = ColumnTransformer([("log_area", FunctionTransformer(np.log), [0])], remainder="passthrough")
        valuer = TransformedTargetRegressor(make_pipeline(hedonic, LinearRegression()), func=np.log,
                                            inverse_func=np.exp).fit(X[:120], y[:120])
        mape = float(np.mean(np.abs(valuer.predict(X[120:]) - y[120:]) / y[120:]))
        model_path = files / "valuation-model.joblib"
        joblib.dump(valuer, model_path)
        model = firm.register_model(model_path, trained_on=[data.digest], metrics={"mape": mape})
        print(f"valuation model {model.digest[:12]}: {mape:.1%} mean error on 30 held-out transfers")

        parcel = [96.0, 4.0, 25.0, 6.5]  # the features of a property on sale, in FEATURES order
        estimate = round(float(valuer.predict(np.array([parcel]))[0]), -3)
        firm.record_event(domain="real-estate", type="valuation", related=[model.digest],
                          data={"parcel": "P-2001", "estimateEur": estimate, "features": dict(zip(FEATURES, parcel))})
        print(f"parcel P-2001 valued at EUR {estimate:,.0f}, recorded with the model that produced it")
        bundle = firm.export_bundle(model.digest, files / "valuation-model.bundle.json")  # anchors first
        log_key = firm.log_info()["publicKey"]

    # the lender: no home, no log, no chain; only the file, the bundle and the registry's published log key
    report = Client.verify_bundle(bundle, model_path, log_key=log_key)
    tampered = files / "tampered.joblib"
    tampered.write_bytes(model_path.read_bytes()[:-1] + bytes([model_path.read_bytes()[-1] ^ 1]))
    forged = Client.verify_bundle(bundle, tampered, log_key=log_key)
    print(f"lender verifies the bundle offline: {'PASS' if report.ok else 'FAIL'} ({len(report.checks)} checks); "
          f"a model with one byte changed: {'PASS' if forged.ok else 'FAIL'}")
    return report.ok and not forged.ok


if __name__ == "__main__":
    sys.exit(run_example(run, __doc__))

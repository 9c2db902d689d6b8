"""Energy: neighbours trade solar power peer to peer through payment channels; a demand model sizes the deposits.

    python examples/energy.py [--home DIR]

One ledgermind home holds a small energy community (one log, one embedded chain, an account per household):

1. A solar household registers two months of hourly smart-meter readings of its neighbourhood (synthetic and
   seeded: consumption driven by hour of day, weekday and temperature) and a demand-prediction model trained on
   them, with its lineage and its error on held-out days.
2. The model forecasts tomorrow's daytime demand of each neighbour; each neighbour opens one payment channel to
   the solar household holding the forecast cost plus 20%.
3. Every hour the meter reports the energy delivered; the neighbour signs a cumulative voucher for it, off chain,
   and records the trade (kWh, price, voucher) as a signed statement in the log.
4. At the end of the day the producer redeems each channel's latest voucher (one transaction per neighbour, not
   one per trade) and withdraws exactly what the metered trades add up to.
5. The model verifies against the log and the anchor on chain.
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import GradientBoostingRegressor

from _home import run_example
from ledgermind import Client

PRICE_PER_WH = 10**11  # wei per watt-hour (0.0001 of the native coin per kWh)
DAYLIGHT = range(8, 20)  # hours the panels sell


def consumption(rng: np.random.Generator, hours: np.ndarray, weekday: np.ndarray, temp: np.ndarray) -> np.ndarray:
    """kWh used in an hour: a base load, morning and evening peaks, more at weekends and when it is cold."""
    peaks = 0.6 * np.exp(-((hours - 7.5) ** 2) / 2) + 1.1 * np.exp(-((hours - 19) ** 2) / 3)
    return 0.25 + peaks + 0.15 * (weekday >= 5) + 0.04 * np.clip(15 - temp, 0, None) + rng.normal(0, 0.05, hours.shape)


def meter_history(path: Path, days: int = 60, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(days), 24)
    hours = np.tile(np.arange(24), days)
    temp = 12 + 6 * np.sin(2 * np.pi * (hours - 9) / 24) + rng.normal(0, 2, days)[day]
    kwh = consumption(rng, hours, day % 7, temp)
    np.savetxt(path, np.c_[day, hours, day % 7, temp.round(2), kwh.round(3)], delimiter=",", fmt="%g",
               header="day,hour,weekday,temperature_c,kwh", comments="")


def run(home: Path) -> bool:
    files = home / "files"
    files.mkdir(parents=True, exist_ok=True)
    meter = files / "neighbourhood-meter-readings.csv"
    meter_history(meter)
    table = np.loadtxt(meter, delimiter=",", skiprows=1)
    X, y = table[:, 1:4], table[:, 4]
    train, test = table[:, 0] < 50, table[:, 0] >= 50  # the last ten days are held out
    model = GradientBoostingRegressor(random_state=0).fit(X[train], y[train])
    mae = float(np.abs(model.predict(X[test]) - y[test]).mean())
    joblib.dump(model, files / "demand-model.joblib")

    with Client(home) as producer:
        data = producer.register_dataset(meter, source="neighbourhood smart meters (synthetic)", licence="CC-BY-4.0")
        registered = producer.register_model(files / "demand-model.joblib", trained_on=[data.digest],
                                             metrics={"mae_kwh": mae}, hyperparameters={"held_out_days": 10})
        print(f"demand model {registered.digest[:12]} registered: {mae:.3f} kWh mean error on held-out days")
        neighbours = [producer.new_account() for _ in range(2)]
        solar = producer.account().address

    # tomorrow (weekday 3, 14 °C): what the model expects each neighbour to buy in daylight hours
    hours = np.array(DAYLIGHT)
    forecast = model.predict(np.c_[hours, np.full(hours.shape, 3), np.full(hours.shape, 14.0)])
    deposit = int(forecast.sum() * 1000 * 1.2) * PRICE_PER_WH
    rng = np.random.default_rng(7)
    vouchers, owed = {}, 0
    for n, neighbour in enumerate(neighbours):
        with Client(home, account=neighbour) as buyer:
            channel = buyer.open_channel(solar, deposit)
            metered = consumption(rng, hours, np.full(hours.shape, 3), np.full(hours.shape, 14.0))
            for hour, kwh in zip(hours, metered):
                wh = int(kwh * 1000)
                vouchers[neighbour] = buyer.pay(solar, wh * PRICE_PER_WH)
                buyer.record_event(domain="energy", type="trade", data={
                    "seller": solar, "buyer": neighbour, "hour": int(hour), "wh": wh,
                    "priceWeiPerWh": str(PRICE_PER_WH), "voucher": vouchers[neighbour]})
                owed += wh * PRICE_PER_WH
            print(f"neighbour {n + 1}: channel {channel['channelId'][:12]} deposit {deposit / 1e18:.4f}, "
                  f"{len(hours)} hourly trades, {metered.sum():.2f} kWh (forecast {forecast.sum():.2f})")

    with Client(home) as producer:
        redeemed = sum(int(producer.redeem(v)["amount"]) for v in vouchers.values())
        withdrawn = sum(int(w["amount"]) for w in producer.withdraw())
        print(f"producer redeemed {len(vouchers)} channels and withdrew {withdrawn / 1e18:.6f} "
              f"(metered trades: {owed / 1e18:.6f})")
        producer.anchor()
        report = producer.verify(registered.digest)
        print(f"verify demand model: {'PASS' if report.ok else 'FAIL'} ({len(report.checks)} checks)")
    return report.ok and redeemed == withdrawn == owed


if __name__ == "__main__":
    sys.exit(run_example(run, __doc__))

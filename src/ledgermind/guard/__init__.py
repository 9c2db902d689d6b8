"""Fraud guard: abuse and health of the chain ledgermind runs on, as signed alerts in the log.

- ``features`` and ``detector``: per-account features of transaction tables and the trained detector that scores
  them (supervised, on public labelled fraud data).
- ``events``: the chain index's raw logs and calldata decoded against the watched contracts (``Activity``).
- ``live``: unsupervised detectors of wash trading, Sybil clusters and voucher abuse over an ``Activity``.
- ``health``: the chain's normal profile, departures from it, recommended operating parameters.
- ``alerts``: ``Alert`` (an ``alert/v1`` statement) and ``AlertBook``, the alerts found in a log.
- ``service``: all of it through a ledgermind home (``ledgermind guard``, ``ledgermind alerts``).
"""

from ledgermind.guard.alerts import Alert, AlertBook
from ledgermind.guard.events import Activity, hubs
from ledgermind.guard.health import departures, profile, recommend
from ledgermind.guard.live import DETECTORS, sybil_clusters, voucher_abuse, wash_trading

__all__ = [
    "DETECTORS",
    "Activity",
    "Alert",
    "AlertBook",
    "departures",
    "hubs",
    "profile",
    "recommend",
    "sybil_clusters",
    "voucher_abuse",
    "wash_trading",
]

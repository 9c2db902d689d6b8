"""Network health on the real embedded chain: a profile learned from ordinary traffic (transfers and token
payments among a few accounts) raises nothing; a burst of failed transactions against one contract is a departure,
recorded as signed ``health`` alerts whose evidence is the failed transactions, and re-derived by ``alerts show``.
The recommendations follow the observed load."""

from __future__ import annotations

import os

import pytest
from eth_account import Account

from ledgermind import Client
from ledgermind.chain.connection import ChainError
from ledgermind.contracts import load
from ledgermind.guard.health import HEALTH_DEFAULTS
from ledgermind.inference.channels import PaymentChannels

from .conftest import InProcessCLI as CLI

pytestmark = pytest.mark.slow  # ~250 transactions of ordinary traffic before the profile is ready

BASELINE = 12 * HEALTH_DEFAULTS["window"]  # more windows than the profile needs before it judges


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """A home whose chain carried ordinary traffic, and a stranger's account."""
    home = tmp_path_factory.mktemp("health") / "home"
    os.environ["LEDGERMIND_AUTO_ANCHOR"] = "0"
    try:
        with Client(home) as lm:
            market = lm.market()  # deploys the contracts
            chain = lm.chain()
            token = chain.w3.eth.contract(address=market.payment_token, abi=load("PaymentToken")["abi"])
            people = [Account.create() for _ in range(4)]
            for p in people:
                chain.ensure_funds(p.address, 10**19)
                lm.faucet(p.address, 10**21)
            sent = len(people) * 2
            i = 0
            while sent < BASELINE:
                src, dst = people[i % 4], people[(i + 1) % 4]
                if i % 3:
                    chain.send(src, {"to": dst.address, "value": 10**15 + i}, 21_000)
                else:
                    chain.transact(src, token.functions.transfer(dst.address, 10**18), 100_000)
                sent, i = sent + 1, i + 1
    finally:
        del os.environ["LEDGERMIND_AUTO_ANCHOR"]
    return home


def test_ordinary_traffic_is_the_normal_profile(traffic, tmp_path):
    import shutil

    shutil.copytree(traffic, tmp_path / "home")
    cli = CLI(tmp_path / "home")
    h = cli.json("guard", "health")
    p = h["profile"]
    assert p["ready"] and p["windows"] > HEALTH_DEFAULTS["min_windows"]
    assert p["failedRate"] == 0 and p["pending"] is None  # the embedded chain mines at once: no pool to sample
    assert set(p["metrics"]) == {"failed_rate", "tx_per_second", "gas_per_tx", "block_interval", "gas_per_block"}
    assert p["isolationScore"] is not None
    assert h["departures"] == [] and h["alerts"] == []
    r = h["recommendations"]
    assert r["gasPrice"]["maxPriorityFeePerGas"] == 10**9  # what every transaction here tipped
    assert r["anchoring"]["everySeconds"] >= 60 and r["anchoring"]["everyEntries"] >= 100
    assert "LEDGERMIND_ANCHOR_INTERVAL=" in r["anchoring"]["env"]
    assert cli.json("guard", "scan")["alerts"] == []
    text = cli("guard", "health").stdout
    assert "no departure from the normal profile" in text and "anchoring: every" in text


def test_a_burst_of_failed_transactions_is_a_departure(traffic, tmp_path):
    import shutil

    shutil.copytree(traffic, tmp_path / "home")
    stranger = Account.create()
    with Client(tmp_path / "home") as lm:
        chain = lm.chain()
        channels = PaymentChannels(chain, lm.deployments.require(chain, "PaymentChannels").address)
        chain.ensure_funds(stranger.address)
        failed = []
        for i in range(HEALTH_DEFAULTS["window"]):
            with pytest.raises(ChainError, match="unknown channel") as e:
                channels.reclaim(stranger, i.to_bytes(32, "big"))
            failed.append(str(e.value).split()[1])
    cli = CLI(tmp_path / "home")
    now = cli.json("guard", "health")
    assert {a["case"].split(":")[0] for a in now["departures"]} == {"failed_rate", "calls"}
    scanned = cli.json("guard", "scan")
    by_metric = {a["case"].rsplit(":", 1)[0]: a for a in scanned["alerts"]}
    assert set(by_metric) == {"failed_rate", f"calls:{channels.address.lower()}"}
    burst = by_metric["failed_rate"]
    assert burst["kind"] == "health" and burst["subjects"] == [stranger.address.lower()]
    assert burst["features"]["current"] == 1.0 and burst["features"]["baseline"] == 0.0
    assert burst["score"] >= burst["threshold"] == HEALTH_DEFAULTS["z"]
    assert sorted(burst["evidence"]) == sorted(failed)
    shown = cli.json("alerts", "show", burst["id"])
    assert shown["ok"] and shown["checks"][-1]["check"] == "reproduced"
    assert [a["id"] for a in cli.json("alerts", "--kind", "health")] == [a["id"] for a in scanned["alerts"]]
    assert len(cli.json("guard", "health")["alerts"]) == 2

"""The AI oracle end to end on a real anvil node (npm @foundry-rs/anvil) from the command line: the contracts
deployed with ``ledgermind deploy``, the claims model registered, an oracle answering from the chain's events, a
faulty answer disputed and overturned, and an insured claim that becomes final once anvil's clock passes the
dispute window (``evm_increaseTime``), is paid, and can no longer be disputed."""

from __future__ import annotations

import pytest

from ledgermind.oracle import insurance

from .anvil import rpc, running_anvil
from .conftest import InProcessCLI
from .test_cli import one_line_error

pytestmark = [pytest.mark.chain, pytest.mark.slow]
TOKEN = 10**18


def test_oracle_and_insurance_on_anvil(tmp_path):
    labels = insurance.claims_data().cases_y
    sick, healthy = str(int(labels.argmax())), str(int(labels.argmin()))
    with running_anvil() as url:
        base = InProcessCLI(tmp_path / "home")

        def cli(*args, ok=True):
            return base("--rpc-url", url, *args, ok=ok)

        def js(*args):
            import json

            return json.loads(cli(*args, "--json").stdout)

        cli("account", "new", "--default")
        deployed = js("deploy")
        assert deployed["chainId"] == 31337 and {"AIOracle", "Insurance"} <= set(deployed["contracts"])
        cli("market", "faucet", "--amount", "2000token")
        node, holder, challenger = (cli("account", "new").stdout.strip() for _ in range(3))
        for who in (node, holder, challenger):
            cli("market", "faucet", who, "--amount", "500token")
        model = js("insurance", "model")["id"]
        cli("--account", node, "oracle", "register", "--model", model, "--bond", "200token")

        # a faulty answer on a direct request: disputed by a re-run, overturned, the stake slashed
        rid = str(js("--account", holder, "oracle", "request", model, "--oracle", node, "--case", healthy,
                     "--stake", "40token")["request_id"])
        assert js("--account", node, "oracle", "decide", rid, "--attack", "flip")["decision"] == 1
        assert js("--account", challenger, "oracle", "dispute", rid)["claimedDecision"] == 0
        assert js("oracle", "resolve", rid)["outcome"] == "overturned"
        assert js("--account", node, "oracle", "status")["account"]["bond"] == str(160 * TOKEN)

        # an insured claim, answered by the service, final once anvil's clock passes the day-long dispute window
        js("insurance", "fund", "1000token")
        product = js("insurance", "product", "--assessor", node, "--premium", "5token", "--coverage", "100token")
        policy = str(js("--account", holder, "insurance", "buy", str(product["product_id"]))["policy_id"])
        claim = str(js("--account", holder, "insurance", "claim", policy, "--case", sick)["request"]["request_id"])
        assert [a["action"] for a in js("--account", node, "oracle", "serve", "--once")] == ["decision"]
        one_line_error(cli("--account", holder, "insurance", "settle", policy, ok=False), "not final yet")
        rpc(url, "evm_increaseTime", [86_400])
        rpc(url, "evm_mine")
        one_line_error(cli("--account", challenger, "oracle", "dispute", claim, ok=False), "dispute window closed")
        acts = js("--account", node, "oracle", "serve", "--once")
        assert [a["action"] for a in acts] == ["finalize", "settle"] and acts[1]["payout"] == str(100 * TOKEN)
        assert js("--account", holder, "insurance", "withdraw")["amount"] == str(100 * TOKEN)

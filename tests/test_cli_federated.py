"""Federated training from the command line on the real embedded chain: five hospitals join a task with their
own data, one of them poisons its updates, the coordinator runs the rounds; the poisoner is flagged and slashed,
the others are paid by contribution, and the final model is registered with lineage to every hospital's data.
Bad input: one line, exit 1, and nothing moves on chain."""

from __future__ import annotations

import pytest

from ledgermind.statements import FEDERATION

from .conftest import InProcessCLI as CLI
from .test_cli import log_size, one_line_error

pytestmark = pytest.mark.chain
TOKEN = 10**18


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A task created by the default account, joined by five accounts of the same home (one per data file)."""
    cli = CLI(tmp_path_factory.mktemp("fed") / "home")
    coordinator = cli("account", "new", "--default").stdout.strip()
    cli("market", "faucet", "--amount", "1000token")
    created = cli.json("fed", "create", "--parties", "5", "--rounds", "3", "--pool", "300token", "--stake", "10token",
                       "--commit-window", "600", "--reveal-window", "600")
    hospitals = []
    for path in created["partyFiles"]:
        who = cli("account", "new").stdout.strip()
        cli("market", "faucet", who, "--amount", "20token")
        joined = cli.json("--account", who, "fed", "join", str(created["taskId"]), "--data", path)
        assert joined["stake"] == str(10 * TOKEN)
        hospitals.append({"account": who, "dataset": joined["dataset"], "path": path})
    return cli, coordinator, created, hospitals


def test_poisoner_is_slashed_and_the_rest_are_paid(task):
    cli, coordinator, created, hospitals = task
    task_id = str(created["taskId"])
    attacker = hospitals[1]["account"]
    before = log_size(cli)
    result = cli.json("fed", "run", task_id, "--attack", f"{attacker}=scale")
    assert result["status"] == "finished" and len(result["rounds"]) == 3
    assert list(result["rounds"][0]["flags"]) == [attacker]
    assert result["rounds"][-1]["validationAccuracy"] > 0.9

    status = cli.json("fed", "status", task_id)
    states = {p["account"]: p["state"] for p in status["participants"]}
    assert states[attacker] == "slashed" and [s for a, s in states.items() if a != attacker] == ["active"] * 4
    owed = {p["account"]: int(p["withdrawable"]) for p in status["participants"]}
    assert owed[attacker] == 0 and all(owed[h["account"]] > 0 for h in hospitals if h["account"] != attacker)
    assert sum(owed.values()) <= 300 * TOKEN

    # the model's lineage goes back to every hospital's registered data, poisoner's included (it took part)
    lineage = cli.json("lineage", result["model"]["id"])
    assert sorted(p["id"] for p in lineage["parents"]) == sorted(h["dataset"] for h in hospitals)
    # every step is a signed statement: create, 5 joins, per round an update per active party and the verdict
    entries = [cli.json("log", "entry", str(i))["statement"] for i in range(before, log_size(cli))]
    actions = [e["predicate"]["action"] for e in entries if e["predicateType"] == FEDERATION]
    assert actions.count("round") == 3 and actions.count("update") == 5 + 4 + 4
    verdict = next(e["predicate"] for e in entries if e["predicateType"] == FEDERATION
                   and e["predicate"]["action"] == "round")
    assert verdict["flags"][attacker].startswith("cosine to the reference update")
    assert set(verdict["updates"]) == {h["account"] for h in hospitals}

    # the model is an asset like any other: minted once its datasets are, and sold with its lineage sharing
    grants = [arg for h in hospitals for arg in ("--grant", h["account"])]
    cli("deploy", *grants)
    for h in hospitals:
        cli("--account", h["account"], "mint", h["dataset"])
    cli("mint", result["model"]["id"])
    listed = cli.json("market", "sell", result["model"]["id"], "--price", "0.01ether", "--lineage-share", "5000")
    assert sorted(c["account"] for c in listed[-1]["contributors"]) == sorted(h["account"] for h in hospitals)

    # claims: stakes back and rewards paid, except the slashed stake
    for h in hospitals:
        claim = cli.json("--account", h["account"], "fed", "claim", task_id)
        assert claim["paid"] == str(owed[h["account"]] + (0 if h["account"] == attacker else 10 * TOKEN))
    assert cli.json("--account", hospitals[0]["account"], "balance")["demoToken"]["balance"] == str(
        20 * TOKEN + owed[hospitals[0]["account"]])  # faucet 20, staked 10, got the 10 back and the reward


def test_bad_input_changes_nothing(task, tmp_path):
    cli, coordinator, created, hospitals = task
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n")
    nan = tmp_path / "nan.csv"
    nan.write_text("f0,label\nnan,0\n")
    before = log_size(cli)
    outsider = cli("account", "new").stdout.strip()
    cases = [
        (("fed", "join", "999", "--data", hospitals[0]["path"]), "unknown task"),
        (("--account", outsider, "fed", "join", str(created["taskId"]), "--data", str(bad)), "2 features, the task's model takes 30"),
        (("--account", outsider, "fed", "join", str(created["taskId"]), "--data", str(nan)), "NaN"),
        (("--account", outsider, "fed", "join", str(created["taskId"]), "--data", str(tmp_path / "none.csv")), "no such data file"),
        (("--account", outsider, "fed", "claim", str(created["taskId"])), "did not join"),
        (("fed", "create", "--parties", "3", "--quorum", "4"), "quorum must be between 1 and 3"),
        (("fed", "create", "--rounds", "3", "--pool", "2"), "cannot pay 3 rounds"),
        (("fed", "run", str(created["taskId"]), "--attack", "0xabc"), "ADDRESS=KIND"),
    ]
    for args, words in cases:
        one_line_error(cli(*args, ok=False), words)
    assert log_size(cli) == before

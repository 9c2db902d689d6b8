"""The AI oracle and its insurance consumer from the command line, on the real embedded chain: the claims model
trained and registered, an oracle registered with a bond, a request answered by the service from the chain's
events, an honest answer nobody can dispute, a faulty one overturned and slashed, a dishonest dispute upheld, an
insured claim assessed, final after its window and paid, and every step a signed oracle/v1 statement. Bad input
(malformed requests, unknown models, disputes after the window...): one line, exit 1, nothing sent."""

from __future__ import annotations

import hashlib

import pytest

from ledgermind.client import Client
from ledgermind.oracle import insurance, service
from ledgermind.statements import ORACLE

from .conftest import InProcessCLI as CLI
from .test_cli import log_size, one_line_error

pytestmark = pytest.mark.chain
TOKEN = 10**18


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cli = CLI(tmp_path_factory.mktemp("oracle-cli") / "home")
    cli("account", "new", "--default")
    cli("market", "faucet", "--amount", "10000token")
    actors = {}
    for name in ("node", "requester", "challenger"):
        actors[name] = cli("account", "new").stdout.strip()
        cli("market", "faucet", actors[name], "--amount", "1000token")
    model = cli.json("insurance", "model")["id"]
    cli("--account", actors["node"], "oracle", "register", "--model", model, "--bond", "100token")
    cli("oracle", "windows", "--response", "1h", "--dispute", "1h", "--resolution", "1h")
    return cli, actors, model


def about(acts: list[dict], request_id: str) -> list[dict]:
    """What ``oracle serve --once`` did about one request: it also finishes requests other tests left."""
    return [x for x in acts if x["request_id"] == int(request_id)]


def cases() -> tuple[str, str]:
    """A malignant and a benign sample lab report."""
    labels = insurance.claims_data().cases_y
    return str(int(labels.argmax())), str(int(labels.argmin()))


def test_request_decision_dispute_and_ruling(world):
    cli, a, model = world
    as_ = {name: ("--account", address) for name, address in a.items()}
    sick, healthy = cases()
    cli("oracle", "windows", "--response", "1h", "--dispute", "1h", "--resolution", "1h")  # whatever ran before
    before = log_size(cli)
    rid = str(cli.json(*as_["requester"], "oracle", "request", model, "--oracle", a["node"], "--case", sick,
                       "--fee", "1token", "--stake", "20token")["request_id"])
    acts = about(cli.json(*as_["node"], "oracle", "serve", "--once"), rid)
    assert [(x["action"], x["decision"]) for x in acts] == [("decision", 1)]
    # an honest answer: the re-run agrees, nothing is sent
    one_line_error(cli(*as_["challenger"], "oracle", "dispute", rid, ok=False), "nothing to dispute")

    # a faulty oracle approves a benign case; a challenger re-runs, disputes; the resolver overturns and slashes
    wrong = str(cli.json(*as_["requester"], "oracle", "request", model, "--oracle", a["node"], "--case", healthy,
                         "--fee", "1token", "--stake", "20token")["request_id"])
    assert cli.json(*as_["node"], "oracle", "decide", wrong, "--attack", "flip")["decision"] == 1
    disputed = cli.json(*as_["challenger"], "oracle", "dispute", wrong)
    assert (disputed["state"], disputed["claimedDecision"]) == ("disputed", 0)
    ruled = cli.json("oracle", "resolve", wrong)
    assert (ruled["state"], ruled["outcome"], ruled["final_decision"]) == ("settled", "overturned", 0)
    node = cli.json(*as_["node"], "oracle", "status")["account"]
    assert (node["bond"], node["overturned"]) == (str(80 * TOKEN), 1)
    paid = cli.json(*as_["challenger"], "oracle", "withdraw")["amount"]
    assert paid == str(10 * TOKEN + 10 * TOKEN)  # half the stake + its dispute bond back

    # a dishonest challenger disputes a right answer without re-running (straight to the contract): upheld
    right = str(cli.json(*as_["requester"], "oracle", "request", model, "--oracle", a["node"], "--case", healthy,
                         "--fee", "1token", "--stake", "20token")["request_id"])
    cli(*as_["node"], "oracle", "decide", right)
    with Client(cli.home, account=a["challenger"]) as c:
        service.contract_of(c).dispute(c.account(), int(right), hashlib.sha256(b"made up").digest(), 1)
    assert cli.json("oracle", "resolve", right)["outcome"] == "upheld"
    assert "upheld" in cli("oracle", "status", right).stdout

    # every step is a statement signed by its actor
    entries = [cli.json("log", "entry", str(i))["statement"] for i in range(before, log_size(cli))]
    actions = [e["predicate"]["action"] for e in entries if e["predicateType"] == ORACLE]
    assert actions == ["request", "decision", "request", "decision", "dispute", "resolution", "withdraw",
                       "request", "decision", "resolution"]


def test_an_insured_claim_is_assessed_and_paid(world):
    cli, a, model = world
    as_ = {name: ("--account", address) for name, address in a.items()}
    sick, _ = cases()
    cli("oracle", "windows", "--response", "1h", "--dispute", "1s", "--resolution", "1h")  # final at the next block
    assert cli.json("insurance", "fund", "1000token")["pool"] == str(1000 * TOKEN)
    product = cli.json("insurance", "product", "--assessor", a["node"], "--premium", "5token", "--coverage",
                       "50token", "--duration", "30d", "--fee", "1token")
    assert product["model"] == model
    policy = str(cli.json(*as_["requester"], "insurance", "buy", str(product["product_id"]))["policy_id"])
    one_line_error(cli(*as_["challenger"], "insurance", "claim", policy, "--case", sick, ok=False), "held by")
    claimed = cli.json(*as_["requester"], "insurance", "claim", policy, "--case", sick)
    assert claimed["status"] == "claiming"
    rid = str(claimed["request"]["request_id"])
    assert [x["action"] for x in about(cli.json(*as_["node"], "oracle", "serve", "--once"), rid)] == ["decision"]
    # too late to dispute: refused with the time the window closed, nothing sent
    one_line_error(cli(*as_["challenger"], "oracle", "dispute", rid, ok=False), f"request {rid}'s dispute window",
                   "its decision is final")
    acts = about(cli.json(*as_["node"], "oracle", "serve", "--once"), rid)
    assert [x["action"] for x in acts] == ["finalize", "settle"] and acts[1]["approved"] is True
    assert cli.json(*as_["requester"], "insurance", "status", policy)["status"] == "paid"
    before = int(cli.json(*as_["requester"], "balance")["demoToken"]["balance"])
    assert cli.json(*as_["requester"], "insurance", "withdraw")["amount"] == str(50 * TOKEN)
    assert int(cli.json(*as_["requester"], "balance")["demoToken"]["balance"]) == before + 50 * TOKEN
    one_line_error(cli(*as_["requester"], "insurance", "withdraw", ok=False), "owes", "nothing")


def test_bad_input_is_one_line_and_sends_nothing(world):
    cli, a, model = world
    as_ = {name: ("--account", address) for name, address in a.items()}
    before = log_size(cli)
    request = (*as_["requester"], "oracle", "request")
    for args, words in [
        ((*request, "no-such-model", "--oracle", a["node"], "--input", "[1, 2]"), ("unknown model 'no-such-model'",)),
        ((*request, model, "--oracle", a["node"], "--input", "[1, 2"), ("not JSON",)),
        ((*request, model, "--oracle", a["node"], "--input", "[[1, 2]]"), ("inputs must have shape",)),
        ((*request, model, "--oracle", a["node"], "--input", '{"a": 1}'), ("non-empty JSON array",)),
        ((*request, model, "--oracle", a["node"], "--case", "9999"), ("no sample case 9999",)),
        ((*request, model, "--oracle", a["node"], "--case", "1", "--input", "[1]"), ("exactly one",)),
        ((*request, model, "--oracle", a["challenger"], "--case", "1"), ("not a registered oracle serving",)),
        ((*request, model, "--oracle", "0x123", "--case", "1"), ("not an Ethereum address",)),
        ((*request, model, "--oracle", a["node"], "--case", "1", "--fee", "lots"), ("amount 'lots'",)),
        ((*as_["challenger"], "oracle", "dispute", "999"), ("unknown request 999",)),
        ((*as_["node"], "oracle", "decide", "999"), ("unknown request 999",)),
        ((*as_["challenger"], "oracle", "resolve", "1"), ("only the resolver",)),
        ((*as_["node"], "oracle", "decide", "1", "--attack", "lie"), ("unknown attack 'lie'",)),
        (("oracle", "windows", "--dispute", "0"), ("duration '0'",)),
    ]:
        one_line_error(cli(*args, ok=False), *words)
    assert log_size(cli) == before

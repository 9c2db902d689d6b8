"""The AI oracle's binding and service through a home on the real embedded chain: the AIOracle and Insurance
deployed with the other contracts, the claims model trained on bundled data and registered, a request picked up
from the chain's events by the service, the commitment on chain pointing at the signed decision in the log, an
honest answer nobody can dispute, a faulty one disputed and overturned (its stake slashed), a dishonest dispute
upheld, an insured claim paid once final, and bad input refused before anything is sent.
"""

from __future__ import annotations

import hashlib

import pytest

from ledgermind.chain.connection import ChainError
from ledgermind.client import Client
from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.inference.digests import json_digest
from ledgermind.oracle import insurance, runner, service
from ledgermind.statements import ORACLE

pytestmark = pytest.mark.chain
TOKEN = 10**18
BOND, FEE, STAKE = 100 * TOKEN, TOKEN, 20 * TOKEN
LONG = 3_600


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The home's default account deploys (it resolves disputes and insures); a node, a requester and a
    challenger are other accounts of the same home, each with demo tokens."""
    boss = Client(tmp_path_factory.mktemp("oracle") / "home")
    boss.account()
    actors = {}
    for name in ("node", "requester", "challenger"):
        address = boss.new_account()
        boss.faucet(address, 1_000 * TOKEN)
        actors[name] = boss.acting_as(address)
    boss.faucet(amount=10_000 * TOKEN)
    model = insurance.claims_model(boss)
    service.register(actors["node"], [model["id"]], BOND)
    yield boss, actors, model
    for c in actors.values():
        c.close()
    boss.close()


def about(done: list[dict], request_id: int) -> list[dict]:
    """What a service pass did about one request: other tests of the module leave requests of their own, which
    the same pass may answer or finalize."""
    return [a for a in done if a["request_id"] == request_id]


def actions(done: list[dict], request_id: int) -> list[str]:
    return [a["action"] for a in about(done, request_id)]


def malignant_and_benign() -> tuple[int, int]:
    labels = insurance.claims_data().cases_y
    return int(labels.argmax()), int(labels.argmin())


def test_the_claims_model_is_deterministic_and_registered_with_its_data(world):
    boss, _, model = world
    again = insurance.claims_model(boss)  # same bytes, same digest: registered once
    assert again["id"] == model["id"] and model["heldOutAccuracy"] > 0.95
    lineage = boss.lineage(model["id"])
    assert [p["id"] for p in lineage["parents"]] == [model["dataset"]]


def test_a_request_is_answered_from_the_chain_and_the_commitment_points_at_the_log(world):
    boss, actors, model = world
    node, requester, challenger = actors["node"], actors["requester"], actors["challenger"]
    service.set_windows(boss, LONG, LONG, LONG)
    sick, _ = malignant_and_benign()
    inputs = insurance.claim_case(sick)
    asked = service.request(requester, model["id"], inputs, node.account().address, fee=FEE, stake=STAKE)
    assert asked["state"] == "requested" and asked["input"] == json_digest(inputs)

    assert actions(service.serve_once(node, set()), asked["request_id"]) == ["decision"]
    answer = service.status(boss, asked["request_id"])
    assert answer["state"] == "fulfilled" and answer["decision"] == 1
    # the receipt index on chain is the oracle's signed decision statement, with the same digests
    entry = boss.ledger.read(answer["receipt_log_index"])
    assert entry.signer == node.account().address and entry.statement.predicate_type == ORACLE
    p = entry.statement.predicate
    assert (p["action"], p["requestId"], p["model"], p["input"], p["output"], p["decision"]) == (
        "decision", asked["request_id"], model["id"], asked["input"], answer["output"], 1)
    assert answer["log_id"] == hashlib.sha256(boss._log().origin.encode()).hexdigest()
    # the full output is off chain, in the store, under its digest
    assert runner.fetch_inputs(boss, answer["output"]) == [1]

    # an honest answer: a re-run agrees, so nothing is sent
    before = service.contract_of(boss).chain.w3.eth.block_number
    with pytest.raises(InvalidInputError, match="gives the oracle's answer .* nothing to dispute"):
        service.dispute(challenger, asked["request_id"])
    assert service.contract_of(boss).chain.w3.eth.block_number == before
    with pytest.raises(InvalidInputError, match="cannot dispute its own answer"):
        service.dispute(node, asked["request_id"])
    with pytest.raises(InvalidInputError, match="not awaiting an answer"):
        service.decide(node, asked["request_id"])


def test_a_wrong_answer_is_overturned_and_its_stake_slashed(world):
    boss, actors, model = world
    node, requester, challenger = actors["node"], actors["requester"], actors["challenger"]
    oracle = service.contract_of(boss)
    service.set_windows(boss, LONG, LONG, LONG)
    _, healthy = malignant_and_benign()
    rid = service.request(requester, model["id"], insurance.claim_case(healthy), node.account().address,
                          fee=FEE, stake=STAKE)["request_id"]
    lied = service.decide(node, rid, attack="flip")
    assert lied["decision"] == 1  # the model says benign (0)
    bond_before = oracle.oracle_info(node.account().address).bond
    disputed = service.dispute(challenger, rid)
    assert disputed["state"] == "disputed" and disputed["claimedDecision"] == 0
    with pytest.raises(InvalidInputError, match="already disputed"):
        service.dispute(requester, rid)
    with pytest.raises(InvalidInputError, match="only the resolver"):
        service.resolve(challenger, rid)

    ruled = about(service.serve_once(boss, set()), rid)  # the resolver's service rules on open disputes
    assert actions(ruled, rid) == ["resolution"]
    r = service.status(boss, rid)
    assert (r["state"], r["outcome"], r["final_decision"]) == ("settled", "overturned", 0)
    assert oracle.result(rid)[:2] == (True, 0)
    assert oracle.oracle_info(node.account().address).bond == bond_before - STAKE
    assert oracle.oracle_info(node.account().address).overturned == 1
    half = (STAKE + 1) // 2
    assert oracle.withdrawable(challenger.account().address) == half + oracle.dispute_bond()
    assert service.withdraw(challenger)["amount"] == str(half + oracle.dispute_bond())
    # the ruling's evidence is the SHA-256 of the resolver's signed re-run in the log
    evidence = boss.ledger.read(ruled[0]["logIndex"])
    assert evidence.statement.predicate["overturned"] is True and evidence.signer == boss.account().address


def test_a_dishonest_dispute_is_upheld_and_the_bond_goes_to_the_oracle(world):
    boss, actors, model = world
    node, requester, challenger = actors["node"], actors["requester"], actors["challenger"]
    oracle = service.contract_of(boss)
    service.set_windows(boss, LONG, LONG, LONG)
    rid = service.request(requester, model["id"], insurance.claim_case(0), node.account().address, fee=FEE,
                          stake=STAKE)["request_id"]
    service.decide(node, rid)
    owed = oracle.withdrawable(node.account().address)
    # a challenger that claims otherwise without re-running: straight to the contract
    oracle.dispute(challenger.account(), rid, hashlib.sha256(b"made up").digest(), 7)
    service.resolve(boss, rid)
    r = service.status(boss, rid)
    assert (r["state"], r["outcome"]) == ("settled", "upheld")
    assert oracle.withdrawable(node.account().address) == owed + FEE + oracle.dispute_bond()


def test_an_insured_claim_is_assessed_and_paid_once_final(world):
    boss, actors, model = world
    node, holder = actors["node"], actors["requester"]
    service.set_windows(boss, LONG, 1, LONG)  # a one-second dispute window: final at the next block
    insurance.fund(boss, 1_000 * TOKEN)
    product = insurance.create_product(boss, assessor=node.account().address, premium=5 * TOKEN,
                                       coverage=50 * TOKEN, duration=30 * 86_400, fee=FEE)
    policy = insurance.buy(holder, product["product_id"])
    sick, healthy = malignant_and_benign()
    with pytest.raises(InvalidInputError, match="inputs must have shape"):
        insurance.claim(holder, policy["policy_id"], [1.0, 2.0])
    claimed = insurance.claim(holder, policy["policy_id"], insurance.claim_case(sick))
    assert claimed["status"] == "claiming" and claimed["request"]["stake"] == str(50 * TOKEN)
    rid = claimed["request"]["request_id"]
    with pytest.raises(InvalidInputError, match="not final yet"):
        insurance.settle(holder, policy["policy_id"])
    assert actions(service.serve_once(node, set()), rid) == ["decision"]
    # the next pass finds the decision final: it finalizes (the fee) and settles the claim (the payout)
    done = about(service.serve_once(node, set()), rid)
    assert actions(done, rid) == ["finalize", "settle"]
    assert done[1]["approved"] is True and done[1]["payout"] == str(50 * TOKEN)
    assert insurance.status(holder, policy["policy_id"])["status"] == "paid"
    assert insurance.withdraw(holder)["amount"] == str(50 * TOKEN)
    with pytest.raises(InvalidInputError, match="owes .* nothing"):
        insurance.withdraw(holder)

    # a second policy claims with a benign report: rejected, nothing paid, the policy stays active
    second = insurance.buy(holder, product["product_id"])
    rid = insurance.claim(holder, second["policy_id"], insurance.claim_case(healthy))["request"]["request_id"]
    service.serve_once(node, set())
    settled = [a for a in about(service.serve_once(node, set()), rid) if a["action"] == "settle"]
    assert settled and settled[0]["approved"] is False and settled[0]["payout"] == "0"
    assert insurance.status(holder, second["policy_id"])["status"] == "active"


def test_bad_input_is_refused_before_anything_is_sent(world):
    boss, actors, model = world
    node, requester, challenger = actors["node"], actors["requester"], actors["challenger"]
    chain = service.contract_of(boss).chain
    before = (chain.w3.eth.block_number, boss._log().size())
    address = node.account().address
    with pytest.raises(NotFoundError, match="unknown model 'no such model'"):
        service.request(requester, "no such model", [1.0], address, fee=FEE, stake=STAKE)
    with pytest.raises(InvalidInputError, match="inputs must have shape"):
        service.request(requester, model["id"], [[1.0, 2.0]], address, fee=FEE, stake=STAKE)
    with pytest.raises(InvalidInputError, match="inputs must be numbers"):
        service.request(requester, model["id"], ["a"] * 30, address, fee=FEE, stake=STAKE)
    with pytest.raises(InvalidInputError, match="is not a registered oracle serving"):
        service.request(requester, model["id"], insurance.claim_case(0), challenger.account().address, fee=FEE,
                        stake=STAKE)
    with pytest.raises(NotFoundError, match="unknown request 999"):
        service.dispute(challenger, 999)
    assert (chain.w3.eth.block_number, boss._log().size()) == before

    # a dispute after the window: refused with the time it closed, nothing sent
    service.set_windows(boss, LONG, 1, LONG)
    rid = service.request(requester, model["id"], insurance.claim_case(1), address, fee=FEE, stake=STAKE)["request_id"]
    service.decide(node, rid)
    before = chain.w3.eth.block_number
    with pytest.raises(InvalidInputError, match=f"request {rid}'s dispute window closed at .*: its decision is final"):
        service.dispute(challenger, rid)
    assert chain.w3.eth.block_number == before
    # the contract agrees: sent anyway, it reverts with its own reason
    with pytest.raises(ChainError, match="dispute window closed"):
        service.contract_of(boss).dispute(challenger.account(), rid, hashlib.sha256(b"x").digest(), 0)


def test_unanswered_requests_expire_refunding_the_fee_and_a_lapsed_claim_its_pool(world):
    boss, actors, model = world
    node, requester = actors["node"], actors["requester"]
    oracle = service.contract_of(boss)
    service.set_windows(boss, LONG, LONG, LONG)
    waiting = service.request(requester, model["id"], insurance.claim_case(2), node.account().address, fee=FEE,
                              stake=STAKE)["request_id"]
    with pytest.raises(InvalidInputError, match=f"request {waiting} is requested: only an unanswered request past"):
        service.cancel(requester, waiting)
    service.set_windows(boss, 1, LONG, LONG)  # one second to answer: expired at the next block
    rid = service.request(requester, model["id"], insurance.claim_case(2), node.account().address, fee=FEE,
                          stake=STAKE)["request_id"]
    owed = oracle.withdrawable(requester.account().address)
    assert service.cancel(boss, rid)["state"] == "cancelled"  # anyone; the fee goes to the requester
    assert oracle.withdrawable(requester.account().address) == owed + FEE

    insurance.fund(boss, 100 * TOKEN)
    product = insurance.create_product(boss, assessor=node.account().address, premium=TOKEN, coverage=10 * TOKEN,
                                       duration=86_400, fee=FEE)
    policy = insurance.buy(requester, product["product_id"])["policy_id"]
    insurance.claim(requester, policy, insurance.claim_case(2))
    pool = insurance.status(boss)["pool"]
    lapsed = insurance.settle(requester, policy)  # nobody answered in time
    assert lapsed["lapsed"] is True and lapsed["status"] == "active" and lapsed["claims"] == 1
    assert insurance.status(boss)["pool"] == str(int(pool) + FEE)  # the claim's fee came back to the pool

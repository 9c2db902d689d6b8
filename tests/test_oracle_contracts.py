"""AIOracle and its example consumer, Insurance, from their users' side, on titanoboa's in-process EVM with the
real contracts and the project's PaymentToken (no mocks): registration and bonds, the life of a request (answered
and final by time; disputed and overturned, upheld or left unresolved; expired and cancelled), every revert reason
of both contracts, exact balances after every payout, an insured claim paid once, rejected claims, claims on
expired policies, lapsed claims refunded, the pool's reserve, and a malicious ERC-20 that re-enters both contracts
from its transfer hook.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import boa
import pytest

from ledgermind.contracts import SOURCE_DIR, load

from .evil_token import EVIL_TOKEN

START = 10**9  # PaymentToken units minted to every actor
BOND = 100_000
FEE = 70
STAKE = 1_001  # odd: the challenger's half is rounded up
RESPONSE, DISPUTE, RESOLUTION = 600, 3_600, 86_400
DISPUTE_BOND = 500
MAX_WINDOW = 30 * 86_400
MAX_AMOUNT = 2**128
MAX_UINT = 2**256 - 1
ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
# request states and outcomes (AIOracle), policy states (Insurance)
REQUESTED, EXPIRED, FULFILLED, DISPUTED, FINAL, SETTLED, CANCELLED = 1, 2, 3, 4, 5, 6, 7
UNCHALLENGED, UPHELD, OVERTURNED, UNRESOLVED = 1, 2, 3, 4
ACTIVE, CLAIMING, PAID, CLOSED = 1, 2, 3, 4
# insurance product
PREMIUM, COVERAGE, DURATION, CLAIM_FEE = 250, 40_000, 90 * 86_400, 30
MAX_CLAIMS = 3


@functools.cache
def deployer(name: str):
    """Compiled on first use from the source (the committed artifact is pinned to it below)."""
    return boa.load_partial(str(SOURCE_DIR / f"{name}.vy"))


def digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


MODEL, OTHER_MODEL, INPUT, OUTPUT, LOG_ID = (digest(n) for n in ("model", "other model", "input", "output", "log"))


def now() -> int:
    return boa.env.evm.patch.timestamp


def travel_to(timestamp: int) -> None:
    assert timestamp >= now()
    boa.env.time_travel(seconds=timestamp - now())


def events(contract, name: str) -> list:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def last_event(contract, name: str):
    (event,) = events(contract, name)
    return event


@dataclass
class World:
    oracle: object  # the AIOracle contract
    pay: object
    resolver: str
    node: str  # a registered oracle serving MODEL, with BOND
    requester: str
    challenger: str
    outsider: str

    def ask(self, fee: int = FEE, stake: int = STAKE, sender: str | None = None, oracle: str | None = None,
            model: bytes = MODEL, input_digest: bytes = INPUT) -> int:
        return self.oracle.request(oracle or self.node, model, input_digest, fee, stake,
                                   sender=sender or self.requester)

    def answer(self, request_id: int, output: bytes = OUTPUT, decision: int = 1, index: int = 7,
               sender: str | None = None) -> None:
        self.oracle.fulfill(request_id, output, decision, index, LOG_ID, sender=sender or self.node)

    def disputed(self, fee: int = FEE, stake: int = STAKE) -> int:
        """A request answered (OUTPUT, 1) and disputed by the challenger (claiming decision 0)."""
        rid = self.ask(fee, stake)
        self.answer(rid)
        self.oracle.dispute(rid, digest("claimed output"), 0, sender=self.challenger)
        return rid

    def held(self) -> int:
        return self.pay.balanceOf(self.oracle.address)

    def owed(self, who: str) -> int:
        return self.oracle.withdrawable(who)


def new_actor(pay, alias: str, *spenders: str) -> str:
    who = boa.env.generate_address(alias)
    pay.mint(who, START)
    for spender in spenders:
        pay.approve(spender, MAX_UINT, sender=who)
    return who


def deploy_oracle(pay, resolver_: str, **overrides):
    """Deployed by ``resolver_``: the deployer is the first resolver."""
    params = dict(token=pay.address, response=RESPONSE, dispute=DISPUTE, resolution=RESOLUTION, bond=DISPUTE_BOND)
    params.update(overrides)
    return deployer("AIOracle").deploy(*params.values(), sender=resolver_)


@pytest.fixture()
def w() -> World:
    pay = deployer("PaymentToken").deploy()  # boa's default account deployed it: it owns it and mints
    resolver = boa.env.generate_address("resolver committee")
    oracle = deploy_oracle(pay, resolver)
    node, requester, challenger, outsider = (new_actor(pay, alias, oracle.address)
                                             for alias in ("oracle node", "requester", "challenger", "outsider"))
    oracle.register([MODEL], BOND, sender=node)
    return World(oracle, pay, resolver, node, requester, challenger, outsider)


# ------------------------------------------------------------------------------------------------ artifacts


@pytest.mark.parametrize("name", ["AIOracle", "Insurance"])
def test_boa_runs_the_committed_bytecode(name):
    art = load(name)
    data = deployer(name).compiler_data
    assert "0x" + data.bytecode.hex() == art["bytecode"]
    assert "0x" + data.bytecode_runtime.hex() == art["deployedBytecode"]
    assert art["evmVersion"] == "cancun" and list(art["sources"]) == [f"{name}.vy"]


# ------------------------------------------------------------------------------------------------ deployment


def test_oracle_deployment_checks_its_parameters():
    pay = deployer("PaymentToken").deploy()
    resolver = boa.env.generate_address("resolver")
    cases = [
        ("token is not a contract", dict(token=resolver)),
        ("response window out of range", dict(response=0)),
        ("response window out of range", dict(response=MAX_WINDOW + 1)),
        ("dispute window out of range", dict(dispute=0)),
        ("dispute window out of range", dict(dispute=MAX_WINDOW + 1)),
        ("resolution window out of range", dict(resolution=0)),
        ("resolution window out of range", dict(resolution=MAX_WINDOW + 1)),
        ("dispute bond out of range", dict(bond=0)),
        ("dispute bond out of range", dict(bond=MAX_AMOUNT + 1)),
    ]
    for reason, overrides in cases:
        with boa.reverts(reason):
            deploy_oracle(pay, resolver, **overrides)
    o = deploy_oracle(pay, resolver, response=MAX_WINDOW, dispute=1, resolution=MAX_WINDOW, bond=MAX_AMOUNT)
    changed = last_event(o, "ResolverChanged")
    assert (changed.previous, changed.resolver) == (ZERO_ADDRESS, resolver)
    assert (o.token(), o.resolver(), o.response_window(), o.dispute_window(), o.resolution_window(),
            o.dispute_bond(), o.request_count()) == (pay.address, resolver, MAX_WINDOW, 1, MAX_WINDOW, MAX_AMOUNT, 0)


# ------------------------------------------------------------------------------------------ oracles and bonds


def test_register_names_models_and_posts_a_bond(w):
    o = w.oracle
    registered = last_event(o, "OracleRegistered")
    assert (registered.oracle, registered.bond, list(registered.models)) == (w.node, BOND, [MODEL])
    info = o.oracle_info(w.node)
    assert (info.registered, info.bond, info.locked, info.free, info.answered, info.overturned, list(info.models)) == (
        True, BOND, 0, BOND, 0, 0, [MODEL])
    assert w.held() == BOND and w.pay.balanceOf(w.node) == START - BOND
    assert o.serves(w.node, MODEL) and not o.serves(w.node, OTHER_MODEL)
    assert not o.serves(w.outsider, MODEL)  # not registered

    # an empty list serves any model; a zero bond is allowed (it can only back zero stakes)
    anyone = new_actor(w.pay, "generalist", o.address)
    o.register([], 0, sender=anyone)
    assert o.serves(anyone, OTHER_MODEL) and o.oracle_info(anyone).bond == 0
    assert w.held() == BOND

    with boa.reverts("already registered"):
        o.register([MODEL], 0, sender=w.node)
    with boa.reverts("zero model digest"):
        o.register([MODEL, ZERO32], 0, sender=w.outsider)
    with boa.reverts("duplicate model digest"):
        o.register([MODEL, OTHER_MODEL, MODEL], 0, sender=w.outsider)
    with boa.reverts("amount out of range"):
        o.register([MODEL], MAX_AMOUNT + 1, sender=w.outsider)
    poor = boa.env.generate_address("no allowance")
    with boa.reverts("erc20: insufficient allowance"):
        o.register([MODEL], 1, sender=poor)
    assert not o.oracle_info(w.outsider).registered and not o.oracle_info(poor).registered


def test_set_models_replaces_the_list(w):
    o = w.oracle
    o.set_models([OTHER_MODEL, digest("third")], sender=w.node)
    assert list(last_event(o, "ModelsSet").models) == [OTHER_MODEL, digest("third")]
    assert not o.serves(w.node, MODEL) and o.serves(w.node, OTHER_MODEL)
    with boa.reverts("oracle does not serve the model"):
        w.ask()
    o.set_models([], sender=w.node)  # any model
    assert o.serves(w.node, MODEL) and o.serves(w.node, digest("anything"))
    o.set_models([MODEL], sender=w.node)
    assert o.serves(w.node, MODEL) and not o.serves(w.node, OTHER_MODEL)
    assert list(o.oracle_info(w.node).models) == [MODEL]
    with boa.reverts("not a registered oracle"):
        o.set_models([MODEL], sender=w.outsider)
    with boa.reverts("zero model digest"):
        o.set_models([ZERO32], sender=w.node)
    with boa.reverts("duplicate model digest"):
        o.set_models([OTHER_MODEL, OTHER_MODEL], sender=w.node)
    assert list(o.oracle_info(w.node).models) == [MODEL]  # a refused list changes nothing
    with boa.reverts():  # 33 digests: more than MAX_MODELS does not even decode
        o.set_models([digest(str(i)) for i in range(33)], sender=w.node)


def test_bonds_are_added_and_only_the_free_part_unbonded(w):
    o = w.oracle
    o.add_bond(5_000, sender=w.node)
    added = last_event(o, "BondAdded")
    assert (added.oracle, added.amount, added.bond) == (w.node, 5_000, BOND + 5_000)
    assert w.held() == BOND + 5_000
    rid = w.ask(stake=BOND)
    w.answer(rid)  # locks BOND of the bond behind the answer
    assert (o.oracle_info(w.node).locked, o.oracle_info(w.node).free) == (BOND, 5_000)
    with boa.reverts("amount above the free bond"):
        o.unbond(5_001, sender=w.node)
    o.unbond(5_000, sender=w.node)
    unbonded = last_event(o, "Unbonded")
    assert (unbonded.amount, unbonded.bond) == (5_000, BOND)
    assert w.owed(w.node) == 5_000 and w.held() == BOND + 5_000 + FEE  # credited, not yet withdrawn
    assert o.withdraw(sender=w.node) == 5_000
    assert w.pay.balanceOf(w.node) == START - BOND
    for reason, call in [
        ("not a registered oracle", lambda: o.add_bond(1, sender=w.outsider)),
        ("not a registered oracle", lambda: o.unbond(1, sender=w.outsider)),
        ("zero amount", lambda: o.add_bond(0, sender=w.node)),
        ("zero amount", lambda: o.unbond(0, sender=w.node)),
        ("amount out of range", lambda: o.add_bond(MAX_AMOUNT - BOND + 1, sender=w.node)),
        ("amount above the free bond", lambda: o.unbond(1, sender=w.node)),
    ]:
        with boa.reverts(reason):
            call()
    # once the answer is final and settled, the whole bond is free again
    travel_to(o.request_info(rid).dispute_deadline)
    o.finalize(rid, sender=w.outsider)
    o.unbond(BOND, sender=w.node)
    assert o.oracle_info(w.node).bond == 0 and o.withdraw(sender=w.node) == BOND + FEE
    assert w.pay.balanceOf(w.node) == START + FEE and w.held() == 0


# -------------------------------------------------------------------------------------- requests and answers


def test_an_unchallenged_answer_becomes_final_when_the_dispute_window_ends(w):
    o = w.oracle
    rid = w.ask()
    asked = last_event(o, "Requested")
    assert (rid, o.request_count()) == (1, 1)
    assert (asked.request_id, asked.requester, asked.oracle, asked.model_digest, asked.input_digest, asked.fee,
            asked.stake, asked.response_deadline) == (1, w.requester, w.node, MODEL, INPUT, FEE, STAKE,
                                                      now() + RESPONSE)
    assert w.held() == BOND + FEE and w.pay.balanceOf(w.requester) == START - FEE
    assert o.state(rid) == REQUESTED and o.result(rid) == (False, 0, ZERO32)

    w.answer(rid, OUTPUT, -42, index=1_234)  # a negative score is a decision like any other
    answered = last_event(o, "Fulfilled")
    assert (answered.request_id, answered.oracle, answered.output_digest, answered.decision,
            answered.receipt_log_index, answered.log_id, answered.dispute_deadline) == (
        rid, w.node, OUTPUT, -42, 1_234, LOG_ID, now() + DISPUTE)
    r = o.request_info(rid)
    assert (r.status, r.output_digest, r.decision, r.receipt_log_index, r.log_id, r.outcome) == (
        FULFILLED, OUTPUT, -42, 1_234, LOG_ID, 0)
    info = o.oracle_info(w.node)
    assert (info.locked, info.free, info.answered) == (STAKE, BOND - STAKE, 1)
    assert o.state(rid) == FULFILLED and o.result(rid) == (False, -42, OUTPUT)  # not to be acted on yet

    with boa.reverts("dispute window still open"):
        o.finalize(rid)
    travel_to(r.dispute_deadline - 1)
    assert o.result(rid)[0] is False
    boa.env.time_travel(seconds=1)
    # final by time alone: consumers may act before anyone calls finalize
    assert o.state(rid) == FINAL and o.result(rid) == (True, -42, OUTPUT)
    with boa.reverts("dispute window closed"):
        o.dispute(rid, digest("late"), 0, sender=w.challenger)

    assert o.finalize(rid, sender=w.outsider) == UNCHALLENGED
    settled = last_event(o, "Settled")
    assert (settled.request_id, settled.outcome, settled.output_digest, settled.decision) == (
        rid, UNCHALLENGED, OUTPUT, -42)
    assert o.state(rid) == SETTLED and o.result(rid) == (True, -42, OUTPUT)
    assert o.request_info(rid).outcome == UNCHALLENGED
    assert (o.oracle_info(w.node).locked, w.owed(w.node)) == (0, FEE)
    with boa.reverts("request closed"):
        o.finalize(rid)
    assert o.withdraw(sender=w.node) == FEE
    assert w.held() == BOND


def test_request_checks(w):
    o = w.oracle
    cases = [
        ("not a registered oracle", dict(oracle=w.outsider)),
        ("zero digest", dict(model=ZERO32)),
        ("zero digest", dict(input_digest=ZERO32)),
        ("oracle does not serve the model", dict(model=OTHER_MODEL)),
        ("amount out of range", dict(fee=MAX_AMOUNT + 1)),
        ("amount out of range", dict(stake=MAX_AMOUNT + 1)),
        ("erc20: transfer amount exceeds balance", dict(fee=START + 1)),
        ("erc20: insufficient allowance", dict(sender=boa.env.generate_address("no allowance"))),
    ]
    for reason, overrides in cases:
        with boa.reverts(reason):
            w.ask(**overrides)
    assert o.request_count() == 0 and w.held() == BOND
    # a request without a fee needs no allowance; ids are sequential
    assert w.ask(fee=0, sender=boa.env.generate_address("free rider")) == 1
    assert w.ask() == 2 and w.held() == BOND + FEE


def test_fulfill_checks_and_no_double_answer(w):
    o = w.oracle
    rid = w.ask(stake=BOND + 1)
    for reason, call in [
        ("unknown request", lambda: w.answer(99)),
        ("caller is not the request's oracle", lambda: w.answer(rid, sender=w.outsider)),
        ("zero digest", lambda: w.answer(rid, output=ZERO32)),
        ("zero digest", lambda: o.fulfill(rid, OUTPUT, 1, 0, ZERO32, sender=w.node)),
        ("free bond below the stake", lambda: w.answer(rid)),
    ]:
        with boa.reverts(reason):
            call()
    o.add_bond(1, sender=w.node)
    w.answer(rid)  # the stake is exactly the free bond
    assert o.oracle_info(w.node).free == 0
    with boa.reverts("request already answered"):
        w.answer(rid, output=digest("second thoughts"))
    assert o.request_info(rid).output_digest == OUTPUT

    # too late: the window is half-open, [request time, response deadline)
    late = w.ask(stake=0)
    travel_to(o.request_info(late).response_deadline)
    assert o.state(late) == EXPIRED
    with boa.reverts("response window closed"):
        w.answer(late)
    o.cancel(late)
    with boa.reverts("request cancelled"):
        w.answer(late)


def test_an_expired_request_is_cancelled_and_its_fee_refunded(w):
    o = w.oracle
    rid = w.ask()
    for reason, call in [
        ("unknown request", lambda: o.cancel(99)),
        ("response window still open", lambda: o.cancel(rid)),
    ]:
        with boa.reverts(reason):
            call()
    travel_to(o.request_info(rid).response_deadline)
    o.cancel(rid, sender=w.outsider)  # anyone; the refund goes to the requester
    cancelled = last_event(o, "Cancelled")
    assert (cancelled.request_id, cancelled.requester, cancelled.refund) == (rid, w.requester, FEE)
    assert o.state(rid) == CANCELLED and o.result(rid) == (False, 0, ZERO32)
    with boa.reverts("request cancelled"):
        o.cancel(rid)
    with boa.reverts("request closed"):
        o.dispute(rid, OUTPUT, 1, sender=w.challenger)
    with boa.reverts("request closed"):
        o.finalize(rid)
    assert o.withdraw(sender=w.requester) == FEE and w.pay.balanceOf(w.requester) == START
    answered = w.ask()
    w.answer(answered)
    with boa.reverts("request already answered"):
        o.cancel(answered)


# ---------------------------------------------------------------------------------------------------- disputes


def test_dispute_checks(w):
    o = w.oracle
    rid = w.ask()
    for reason, call in [
        ("unknown request", lambda: o.dispute(99, OUTPUT, 0, sender=w.challenger)),
        ("request not answered", lambda: o.dispute(rid, OUTPUT, 0, sender=w.challenger)),
        ("request not answered", lambda: o.finalize(rid)),
    ]:
        with boa.reverts(reason):
            call()
    w.answer(rid, OUTPUT, 1)
    for reason, call in [
        ("oracle cannot dispute its own answer", lambda: o.dispute(rid, OUTPUT, 0, sender=w.node)),
        ("zero digest", lambda: o.dispute(rid, ZERO32, 0, sender=w.challenger)),
        ("claim matches the answer", lambda: o.dispute(rid, OUTPUT, 1, sender=w.challenger)),
        ("erc20: insufficient allowance",
         lambda: o.dispute(rid, OUTPUT, 0, sender=boa.env.generate_address("no allowance"))),
    ]:
        with boa.reverts(reason):
            call()
    # another digest with the same decision is a claim too: the output itself is committed to
    o.dispute(rid, digest("another output"), 1, sender=w.challenger)
    disputed = last_event(o, "Disputed")
    assert (disputed.request_id, disputed.challenger, disputed.claimed_output_digest, disputed.claimed_decision,
            disputed.bond, disputed.resolve_deadline) == (rid, w.challenger, digest("another output"), 1,
                                                         DISPUTE_BOND, now() + RESOLUTION)
    assert o.state(rid) == DISPUTED and o.result(rid)[0] is False
    assert w.held() == BOND + FEE + DISPUTE_BOND
    assert w.pay.balanceOf(w.challenger) == START - DISPUTE_BOND
    with boa.reverts("already disputed"):
        o.dispute(rid, digest("a third opinion"), 2, sender=w.outsider)
    with boa.reverts("resolution window still open"):
        o.finalize(rid)

    # a dispute one second after the window is refused
    other = w.ask()
    w.answer(other)
    travel_to(o.request_info(other).dispute_deadline)
    with boa.reverts("dispute window closed"):
        o.dispute(other, digest("late"), 0, sender=w.challenger)


def test_a_won_dispute_slashes_the_stake_to_the_challenger_and_the_requester(w):
    o = w.oracle
    rid = w.disputed()
    with boa.reverts("caller is not the resolver"):
        o.resolve(rid, digest("true output"), 0, digest("evidence"), sender=w.challenger)
    with boa.reverts("caller is not the resolver"):
        o.resolve(rid, digest("true output"), 0, digest("evidence"), sender=w.node)

    # the resolver re-ran the model: another output and decision than the oracle's (and than the claim)
    o.resolve(rid, digest("true output"), 0, digest("evidence"), sender=w.resolver)
    resolved = last_event(o, "Resolved")
    assert (resolved.request_id, resolved.resolver, resolved.overturned, resolved.output_digest,
            resolved.decision, resolved.evidence) == (rid, w.resolver, True, digest("true output"), 0,
                                                      digest("evidence"))
    slashed = last_event(o, "Slashed")
    half_up = (STAKE + 1) // 2
    assert (slashed.oracle, slashed.challenger, slashed.stake, slashed.to_challenger, slashed.to_requester) == (
        w.node, w.challenger, STAKE, half_up, STAKE - half_up)
    assert (last_event(o, "Settled").outcome, last_event(o, "Settled").decision) == (OVERTURNED, 0)

    # the verdict is the final decision; the oracle's wrong answer stays on record
    assert o.state(rid) == SETTLED and o.result(rid) == (True, 0, digest("true output"))
    r = o.request_info(rid)
    assert (r.outcome, r.output_digest, r.decision, r.final_output_digest, r.final_decision) == (
        OVERTURNED, OUTPUT, 1, digest("true output"), 0)
    info = o.oracle_info(w.node)
    assert (info.bond, info.locked, info.answered, info.overturned) == (BOND - STAKE, 0, 1, 1)
    assert w.owed(w.challenger) == half_up + DISPUTE_BOND
    assert w.owed(w.requester) == STAKE - half_up + FEE
    assert w.owed(w.node) == 0
    for reason, call in [
        ("request not disputed", lambda: o.resolve(rid, OUTPUT, 1, digest("again"), sender=w.resolver)),
        ("request closed", lambda: o.finalize(rid)),
        ("request closed", lambda: o.dispute(rid, OUTPUT, 0, sender=w.outsider)),
    ]:
        with boa.reverts(reason):
            call()

    o.withdraw(sender=w.challenger)
    o.withdraw(sender=w.requester)
    assert w.pay.balanceOf(w.challenger) == START + half_up
    assert w.pay.balanceOf(w.requester) == START + STAKE - half_up
    assert w.held() == BOND - STAKE  # what is left of the bond, nothing else
    assert sum(w.pay.balanceOf(a) for a in (w.node, w.requester, w.challenger)) + w.held() == 3 * START


def test_a_lost_dispute_gives_the_challenger_bond_to_the_oracle(w):
    o = w.oracle
    rid = w.disputed()
    o.resolve(rid, OUTPUT, 1, digest("re-run agrees"), sender=w.resolver)
    assert last_event(o, "Resolved").overturned is False
    assert not events(o, "Slashed")
    assert last_event(o, "Settled").outcome == UPHELD
    assert o.result(rid) == (True, 1, OUTPUT) and o.request_info(rid).outcome == UPHELD
    info = o.oracle_info(w.node)
    assert (info.bond, info.locked, info.overturned) == (BOND, 0, 0)
    assert (w.owed(w.node), w.owed(w.challenger), w.owed(w.requester)) == (FEE + DISPUTE_BOND, 0, 0)
    assert o.withdraw(sender=w.node) == FEE + DISPUTE_BOND
    assert w.held() == BOND and w.pay.balanceOf(w.challenger) == START - DISPUTE_BOND


def test_resolve_checks_and_an_unresolved_dispute_leaves_the_answer_standing(w):
    o = w.oracle
    answered = w.ask()
    w.answer(answered)
    rid = w.disputed()
    for reason, call in [
        ("unknown request", lambda: o.resolve(99, OUTPUT, 1, digest("e"), sender=w.resolver)),
        ("request not disputed", lambda: o.resolve(answered, OUTPUT, 1, digest("e"), sender=w.resolver)),
        ("zero digest", lambda: o.resolve(rid, ZERO32, 1, digest("e"), sender=w.resolver)),
        ("zero digest", lambda: o.resolve(rid, OUTPUT, 1, ZERO32, sender=w.resolver)),
    ]:
        with boa.reverts(reason):
            call()
    travel_to(o.request_info(rid).resolve_deadline)
    # the resolver let its window pass: the answer stands, nobody is slashed, the challenger gets its bond back
    with boa.reverts("resolution window closed"):
        o.resolve(rid, digest("true output"), 0, digest("too late"), sender=w.resolver)
    assert o.state(rid) == FINAL and o.result(rid) == (True, 1, OUTPUT)
    assert o.finalize(rid, sender=w.outsider) == UNRESOLVED
    assert last_event(o, "Settled").outcome == UNRESOLVED
    assert w.owed(w.challenger) == DISPUTE_BOND
    # the undisputed one, long final, settles as unchallenged; both fees go to the oracle
    assert o.finalize(answered) == UNCHALLENGED
    assert w.owed(w.node) == 2 * FEE and o.oracle_info(w.node).locked == 0


def test_the_resolver_sets_the_windows_of_phases_that_start_later(w):
    o = w.oracle
    asked = w.ask()  # its response deadline is fixed already
    deadline = o.request_info(asked).response_deadline
    with boa.reverts("caller is not the resolver"):
        o.set_windows(1, 1, 1, sender=w.outsider)
    for reason, windows in [
        ("response window out of range", (0, 1, 1)),
        ("dispute window out of range", (1, MAX_WINDOW + 1, 1)),
        ("resolution window out of range", (1, 1, 0)),
    ]:
        with boa.reverts(reason):
            o.set_windows(*windows, sender=w.resolver)
    o.set_windows(10, 1, MAX_WINDOW, sender=w.resolver)
    changed = last_event(o, "WindowsChanged")
    assert (changed.response_window, changed.dispute_window, changed.resolution_window) == (10, 1, MAX_WINDOW)
    assert (o.response_window(), o.dispute_window(), o.resolution_window()) == (10, 1, MAX_WINDOW)
    assert o.request_info(asked).response_deadline == deadline
    w.answer(asked)  # answered after the change: a one-second dispute window
    assert o.request_info(asked).dispute_deadline == now() + 1
    assert o.request_info(w.ask()).response_deadline == now() + 10


def test_the_resolver_hands_over_its_role(w):
    o = w.oracle
    committee = boa.env.generate_address("new committee")
    for reason, call in [
        ("caller is not the resolver", lambda: o.set_resolver(committee, sender=w.outsider)),
        ("zero resolver", lambda: o.set_resolver(ZERO_ADDRESS, sender=w.resolver)),
    ]:
        with boa.reverts(reason):
            call()
    rid = w.disputed()
    o.set_resolver(committee, sender=w.resolver)
    changed = last_event(o, "ResolverChanged")
    assert (changed.previous, changed.resolver, o.resolver()) == (w.resolver, committee, committee)
    with boa.reverts("caller is not the resolver"):
        o.resolve(rid, OUTPUT, 1, digest("e"), sender=w.resolver)
    o.resolve(rid, OUTPUT, 1, digest("e"), sender=committee)  # open disputes go to the new resolver


def test_withdraw_pays_only_the_caller_its_own_balance(w):
    o = w.oracle
    with boa.reverts("nothing to withdraw"):
        o.withdraw(sender=w.outsider)
    rid = w.disputed()
    o.resolve(rid, digest("true"), 0, digest("e"), sender=w.resolver)
    owed = w.owed(w.challenger)
    assert o.withdraw(sender=w.challenger) == owed
    assert (last_event(o, "Withdrawn").account, last_event(o, "Withdrawn").amount) == (w.challenger, owed)
    with boa.reverts("nothing to withdraw"):
        o.withdraw(sender=w.challenger)
    assert w.owed(w.requester) == STAKE // 2 + FEE  # untouched by the challenger's withdrawal


def test_views_of_unknown_ids(w):
    o = w.oracle
    assert o.state(1) == 0 and o.result(1) == (False, 0, ZERO32)
    with boa.reverts("unknown request"):
        o.request_info(1)
    info = o.oracle_info(w.outsider)
    assert (info.registered, info.bond, list(info.models)) == (False, 0, [])


# -------------------------------------------------------------------------------------------------- Insurance


@dataclass
class Cover:
    w: World
    ins: object  # the Insurance contract
    insurer: str
    holder: str
    product: int

    def buy(self, holder: str | None = None, product: int | None = None) -> int:
        return self.ins.buy(product or self.product, sender=holder or self.holder)

    def claim(self, policy_id: int, input_digest: bytes = INPUT, holder: str | None = None) -> int:
        return self.ins.claim(policy_id, input_digest, sender=holder or self.holder)

    def assessed(self, policy_id: int, decision: int) -> int:
        """Claims, the assessor answers ``decision``, and the dispute window passes."""
        rid = self.claim(policy_id)
        self.w.answer(rid, digest(f"assessment {decision}"), decision)
        travel_to(self.w.oracle.request_info(rid).dispute_deadline)
        return rid

    def held(self) -> int:
        return self.w.pay.balanceOf(self.ins.address)

    def balanced(self) -> bool:
        """The contract holds exactly its pool and what it credited; the reserve fits in the pool."""
        ins = self.ins
        owed = sum(ins.withdrawable(a) for a in (self.insurer, self.holder, self.w.outsider))
        return self.held() == ins.pool() + owed and ins.reserved() <= ins.pool()


POOL = 200_000
RESERVE = COVERAGE + MAX_CLAIMS * CLAIM_FEE


@pytest.fixture()
def c(w) -> Cover:
    insurer = new_actor(w.pay, "insurer", w.oracle.address)
    ins = deployer("Insurance").deploy(w.oracle.address, sender=insurer)
    holder = new_actor(w.pay, "holder", ins.address)
    w.pay.approve(ins.address, MAX_UINT, sender=insurer)
    w.pay.approve(ins.address, MAX_UINT, sender=w.outsider)
    w.oracle.add_bond(COVERAGE * 3, sender=w.node)  # room to back a few claims at once
    ins.fund(POOL, sender=insurer)
    product = ins.create_product(MODEL, w.node, PREMIUM, COVERAGE, DURATION, CLAIM_FEE, sender=insurer)
    return Cover(w, ins, insurer, holder, product)


def test_insurance_deployment(w):
    with boa.reverts("oracle is not a contract"):
        deployer("Insurance").deploy(w.outsider)
    ins = deployer("Insurance").deploy(w.oracle.address, sender=w.outsider)
    assert (ins.oracle(), ins.token(), ins.insurer(), ins.pool(), ins.reserved()) == (
        w.oracle.address, w.pay.address, w.outsider, 0, 0)


def test_an_approved_claim_pays_the_coverage_once(c):
    w, ins = c.w, c.ins
    assert (ins.pool(), ins.free_capital(), ins.product(c.product).coverage) == (POOL, POOL, COVERAGE)
    pid = c.buy()
    bought = last_event(ins, "PolicyBought")
    assert (pid, bought.product_id, bought.holder, bought.premium, bought.coverage, bought.expiry, bought.reserve) == (
        1, c.product, c.holder, PREMIUM, COVERAGE, now() + DURATION, RESERVE)
    assert (ins.pool(), ins.reserved(), ins.free_capital()) == (POOL + PREMIUM, RESERVE, POOL + PREMIUM - RESERVE)
    assert w.pay.balanceOf(c.holder) == START - PREMIUM
    p = ins.policy(pid)
    assert (p.holder, p.product_id, p.status, p.claims, p.reserve, p.request_id) == (
        c.holder, c.product, ACTIVE, 0, RESERVE, 0)

    rid = c.claim(pid)
    opened = last_event(ins, "ClaimOpened")
    assert (opened.policy_id, opened.request_id, opened.input_digest, opened.fee, opened.claims) == (
        pid, rid, INPUT, CLAIM_FEE, 1)
    # the oracle request: the insurance contract asks the product's assessor, backed by the coverage
    req = w.oracle.request_info(rid)
    assert (req.requester, req.oracle, req.model_digest, req.input_digest, req.fee, req.stake) == (
        ins.address, w.node, MODEL, INPUT, CLAIM_FEE, COVERAGE)
    assert (ins.policy(pid).status, ins.policy(pid).request_id, ins.policy(pid).reserve) == (
        CLAIMING, rid, RESERVE - CLAIM_FEE)
    assert (ins.pool(), ins.reserved()) == (POOL + PREMIUM - CLAIM_FEE, RESERVE - CLAIM_FEE)
    assert c.balanced()

    with boa.reverts("claim in progress"):
        c.claim(pid)
    with boa.reverts("decision not final"):
        ins.settle(pid)
    w.answer(rid, digest("approve"), 1)
    with boa.reverts("decision not final"):  # the dispute window is open
        ins.settle(pid)
    travel_to(w.oracle.request_info(rid).dispute_deadline)
    assert ins.settle(pid, sender=w.outsider) is True  # anyone settles: the payout is automatic
    settled = last_event(ins, "ClaimSettled")
    assert (settled.policy_id, settled.request_id, settled.approved, settled.decision, settled.output_digest,
            settled.payout) == (pid, rid, True, 1, digest("approve"), COVERAGE)
    assert ins.policy(pid).status == PAID and ins.policy(pid).reserve == 0
    # the rest of the reserve (two unused fees) is free again
    assert (ins.pool(), ins.reserved()) == (POOL + PREMIUM - CLAIM_FEE - COVERAGE, 0)
    assert ins.withdrawable(c.holder) == COVERAGE and c.balanced()

    # one payout per policy
    for reason, call in [
        ("policy paid", lambda: c.claim(pid)),
        ("no claim in progress", lambda: ins.settle(pid)),
        ("policy paid", lambda: ins.close(pid)),
    ]:
        with boa.reverts(reason):
            call()
    assert ins.withdraw(sender=c.holder) == COVERAGE
    assert w.pay.balanceOf(c.holder) == START - PREMIUM + COVERAGE
    with boa.reverts("nothing to withdraw"):
        ins.withdraw(sender=c.holder)
    # the oracle is paid its fee once it settles the request
    w.oracle.finalize(rid)
    assert w.owed(w.node) == CLAIM_FEE
    # the insurer takes back all that is left
    ins.defund(ins.free_capital(), sender=c.insurer)
    ins.withdraw(sender=c.insurer)
    assert w.pay.balanceOf(c.insurer) == START + PREMIUM - CLAIM_FEE - COVERAGE
    assert c.held() == 0 and ins.pool() == 0


def test_rejected_claims_leave_the_policy_active_until_its_claims_run_out(c):
    ins = c.ins
    pid = c.buy()
    for n in range(1, MAX_CLAIMS + 1):
        c.assessed(pid, 0 if n % 2 else -5)  # zero and negative decisions reject
        assert ins.settle(pid) is False
        settled = last_event(ins, "ClaimSettled")
        assert (settled.approved, settled.payout) == (False, 0)
        p = ins.policy(pid)
        assert (p.status, p.claims, p.reserve) == (ACTIVE, n, RESERVE - n * CLAIM_FEE)
    with boa.reverts("no claims left"):
        c.claim(pid)
    assert ins.withdrawable(c.holder) == 0
    assert ins.close(pid, sender=c.w.outsider) == COVERAGE  # out of claims: closable before expiry
    assert last_event(ins, "PolicyClosed").released == COVERAGE
    assert (ins.policy(pid).status, ins.reserved()) == (CLOSED, 0)
    assert ins.pool() == POOL + PREMIUM - MAX_CLAIMS * CLAIM_FEE and c.balanced()
    with boa.reverts("policy closed"):
        c.claim(pid)
    with boa.reverts("policy closed"):
        ins.close(pid)


def test_claims_on_expired_policies_are_refused_but_one_made_in_time_is_settled(c):
    ins = c.ins
    early, late = c.buy(), c.buy()
    expiry = ins.policy(late).expiry
    with boa.reverts("policy still running"):
        ins.close(late)
    travel_to(expiry - 1)
    rid = c.claim(early)  # the last second
    boa.env.time_travel(seconds=1)
    with boa.reverts("policy expired"):
        c.claim(late)
    with boa.reverts("claim in progress"):
        ins.close(early)
    c.w.answer(rid, digest("approve"), 1)
    travel_to(c.w.oracle.request_info(rid).dispute_deadline)
    assert ins.settle(early) is True and ins.withdrawable(c.holder) == COVERAGE
    # the unclaimed policy releases its whole reserve once expired
    assert ins.close(late) == RESERVE
    assert ins.reserved() == 0 and c.balanced()


def test_a_lapsed_claim_is_refunded_and_can_be_made_again(c):
    w, ins = c.w, c.ins
    pid = c.buy()
    rid = c.claim(pid)
    travel_to(w.oracle.request_info(rid).response_deadline)  # the assessor never answered
    assert ins.settle(pid, sender=w.outsider) is False
    assert last_event(ins, "ClaimLapsed").request_id == rid
    assert w.oracle.state(rid) == CANCELLED and w.owed(ins.address) == CLAIM_FEE
    assert (ins.policy(pid).status, ins.policy(pid).claims) == (ACTIVE, 1)  # the attempt counts
    pool = ins.pool()
    assert ins.collect_refunds(sender=w.outsider) == CLAIM_FEE
    assert (last_event(ins, "RefundsCollected").amount, ins.pool()) == (CLAIM_FEE, pool + CLAIM_FEE)
    with boa.reverts("nothing to collect"):
        ins.collect_refunds()
    assert c.balanced()

    # a request someone else cancelled lapses the same way
    rid2 = c.claim(pid, digest("input, again"))
    travel_to(w.oracle.request_info(rid2).response_deadline)
    w.oracle.cancel(rid2, sender=w.outsider)
    assert ins.settle(pid) is False and ins.policy(pid).status == ACTIVE
    # and the last claim is answered and approved
    c.assessed(pid, 1)
    assert ins.settle(pid) is True and ins.withdrawable(c.holder) == COVERAGE


def test_a_wrong_approval_is_overturned_and_the_claim_rejected(c):
    w, ins = c.w, c.ins
    pid = c.buy()
    rid = c.claim(pid)
    w.answer(rid, digest("approve"), 1)  # colluding with the holder, say
    w.oracle.dispute(rid, digest("reject"), 0, sender=c.insurer)  # the insurer watches the log and re-runs
    with boa.reverts("decision not final"):
        ins.settle(pid)
    w.oracle.resolve(rid, digest("reject"), 0, digest("resolver's re-run"), sender=w.resolver)
    assert ins.settle(pid) is False and ins.withdrawable(c.holder) == 0
    # the stake backing the answer was the coverage: half to the insurer as challenger, half (+ the fee) to the
    # requester, this contract, which brings it into the pool
    assert w.owed(c.insurer) == COVERAGE // 2 + DISPUTE_BOND
    pool = ins.pool()
    assert ins.collect_refunds() == COVERAGE // 2 + CLAIM_FEE
    assert ins.pool() == pool + COVERAGE // 2 + CLAIM_FEE and c.balanced()
    assert w.oracle.oracle_info(w.node).overturned == 1


def test_a_wrong_rejection_is_overturned_and_the_claim_paid(c):
    w, ins = c.w, c.ins
    pid = c.buy()
    rid = c.claim(pid)
    w.answer(rid, digest("reject"), 0)
    w.pay.approve(w.oracle.address, DISPUTE_BOND, sender=c.holder)
    w.oracle.dispute(rid, digest("approve"), 1, sender=c.holder)
    w.oracle.resolve(rid, digest("approve"), 1, digest("resolver's re-run"), sender=w.resolver)
    assert ins.settle(pid) is True
    assert ins.withdrawable(c.holder) == COVERAGE
    assert w.owed(c.holder) == COVERAGE // 2 + DISPUTE_BOND  # and the challenger's half of the stake


def test_insurer_only_functions(c):
    ins = c.ins
    for reason, call in [
        ("caller is not the insurer", lambda: ins.fund(1, sender=c.holder)),
        ("caller is not the insurer", lambda: ins.defund(1, sender=c.holder)),
        ("caller is not the insurer",
         lambda: ins.create_product(MODEL, c.w.node, 1, 1, 1, 0, sender=c.holder)),
        ("caller is not the insurer", lambda: ins.close_product(c.product, sender=c.holder)),
    ]:
        with boa.reverts(reason):
            call()


def test_pool_funding_and_defunding(c):
    ins = c.ins
    with boa.reverts("zero amount"):
        ins.fund(0, sender=c.insurer)
    with boa.reverts("zero amount"):
        ins.defund(0, sender=c.insurer)
    ins.fund(1_000, sender=c.insurer)
    assert (last_event(ins, "Funded").amount, last_event(ins, "Funded").pool) == (1_000, POOL + 1_000)
    c.buy()
    free = POOL + 1_000 + PREMIUM - RESERVE
    assert ins.free_capital() == free
    with boa.reverts("amount above the free capital"):
        ins.defund(free + 1, sender=c.insurer)
    ins.defund(free, sender=c.insurer)
    assert (last_event(ins, "Defunded").amount, ins.pool(), ins.free_capital()) == (free, RESERVE, 0)
    assert ins.withdrawable(c.insurer) == free and c.balanced()
    # the reserve guarantees the policy whatever the insurer did: no new policy fits, the old one still pays
    with boa.reverts("pool cannot cover the policy"):
        c.buy()
    pid = 1
    c.assessed(pid, 1)
    assert ins.settle(pid) is True and ins.pool() == RESERVE - CLAIM_FEE - COVERAGE
    poor = boa.env.generate_address("insurer without allowance")
    with boa.reverts("erc20: insufficient allowance"):
        deployer("Insurance").deploy(c.w.oracle.address, sender=poor).fund(1, sender=poor)


def test_products(c):
    w, ins = c.w, c.ins

    def create(**overrides):
        params = dict(model=MODEL, assessor=w.node, premium=PREMIUM, coverage=COVERAGE, duration=DURATION,
                      fee=CLAIM_FEE)
        params.update(overrides)
        return ins.create_product(*params.values(), sender=c.insurer)

    for reason, overrides in [
        ("zero digest", dict(model=ZERO32)),
        ("zero coverage", dict(coverage=0)),
        ("amount out of range", dict(premium=MAX_AMOUNT + 1)),
        ("amount out of range", dict(coverage=MAX_AMOUNT + 1)),
        ("amount out of range", dict(fee=MAX_AMOUNT + 1)),
        ("duration out of range", dict(duration=0)),
        ("duration out of range", dict(duration=5 * 365 * 86_400 + 1)),
        ("assessor does not serve the model", dict(model=OTHER_MODEL)),
        ("assessor does not serve the model", dict(assessor=w.outsider)),
    ]:
        with boa.reverts(reason):
            create(**overrides)
    free = create(premium=0, fee=0)
    created = last_event(ins, "ProductCreated")
    assert free == 2 and ins.product_count() == 2
    assert (created.product_id, created.model_digest, created.assessor, created.premium, created.fee) == (
        2, MODEL, w.node, 0, 0)
    prod = ins.product(free)
    assert (prod.model_digest, prod.assessor, prod.premium, prod.coverage, prod.duration, prod.fee, prod.open) == (
        MODEL, w.node, 0, COVERAGE, DURATION, 0, True)
    # a free policy with a free assessment: no allowance needed anywhere
    stranger = boa.env.generate_address("stranger")
    pid = c.buy(holder=stranger, product=free)
    rid = ins.claim(pid, INPUT, sender=stranger)
    assert w.oracle.request_info(rid).fee == 0
    ins.close_product(free, sender=c.insurer)
    assert last_event(ins, "ProductClosed").product_id == free and not ins.product(free).open
    for reason, call in [
        ("product closed", lambda: c.buy(product=free)),
        ("product closed", lambda: ins.close_product(free, sender=c.insurer)),
        ("unknown product", lambda: c.buy(product=9)),
        ("unknown product", lambda: ins.close_product(9, sender=c.insurer)),
        ("unknown product", lambda: ins.product(9)),
        ("erc20: insufficient allowance", lambda: c.buy(holder=stranger)),
    ]:
        with boa.reverts(reason):
            call()


def test_claim_settle_and_close_checks(c):
    ins = c.ins
    pid = c.buy()
    for reason, call in [
        ("unknown policy", lambda: c.claim(9)),
        ("caller is not the holder", lambda: c.claim(pid, holder=c.w.outsider)),
        ("zero digest", lambda: c.claim(pid, ZERO32)),
        ("unknown policy", lambda: ins.settle(9)),
        ("no claim in progress", lambda: ins.settle(pid)),
        ("unknown policy", lambda: ins.close(9)),
        ("policy still running", lambda: ins.close(pid)),
        ("unknown policy", lambda: ins.policy(9)),
    ]:
        with boa.reverts(reason):
            call()
    # the assessor stops serving the model: the claim is refused by the oracle and nothing changes
    c.w.oracle.set_models([OTHER_MODEL], sender=c.w.node)
    with boa.reverts("oracle does not serve the model"):
        c.claim(pid)
    assert ins.policy(pid).claims == 0 and ins.reserved() == RESERVE
    # the assessor's free bond no longer backs the coverage: it cannot answer, the claim lapses
    c.w.oracle.set_models([MODEL], sender=c.w.node)
    rid = c.claim(pid)
    c.w.oracle.unbond(c.w.oracle.oracle_info(c.w.node).free - COVERAGE + 1, sender=c.w.node)
    with boa.reverts("free bond below the stake"):
        c.w.answer(rid)


# ------------------------------------------------------------------------------------------------ reentrancy


def test_a_reentrant_token_cannot_drain_the_oracle_or_the_insurance():
    evil = boa.loads(EVIL_TOKEN)
    o = deploy_oracle(evil, boa.env.generate_address("resolver"))
    honest = boa.env.generate_address("honest oracle")
    evil.mint(honest, 10_000)
    o.register([], 5_000, sender=honest)  # an honest oracle's bond sits in the contract
    holder = boa.env.generate_address("holder")

    # the evil token is an oracle with a bond, and the insurer of a pool: it has rightful balances in both
    evil.mint(evil.address, 100_000)
    evil.act(o.address, o.register.prepare_calldata([], 3_000))
    with boa.env.prank(evil.address):
        ins = deployer("Insurance").deploy(o.address)
    evil.act(ins.address, ins.fund.prepare_calldata(50_000))
    product = ins.create_product(MODEL, honest, 0, 10_000, DURATION, 10, sender=evil.address)
    pid = ins.buy(product, sender=holder)

    # from inside the transfer of its own withdrawal, it tries to withdraw again, or to unbond (defund) what
    # would be free outside: each refused by the lock of the contract it re-enters
    attacks = [
        (o, o.unbond.prepare_calldata(1_000), o.withdraw.prepare_calldata()),
        (o, o.unbond.prepare_calldata(1_000), o.unbond.prepare_calldata(1_000)),
        (ins, ins.defund.prepare_calldata(1_000), ins.withdraw.prepare_calldata()),
        (ins, ins.defund.prepare_calldata(1_000), ins.defund.prepare_calldata(1_000)),
    ]
    for i, (target, credit, payload) in enumerate(attacks):
        evil.act(target.address, credit)  # a fresh rightful balance of 1,000
        before = evil.balanceOf(evil.address)
        evil.arm(target.address, payload)
        evil.act(target.address, target.withdraw.prepare_calldata())
        assert (evil.attempts(), evil.reentered()) == (i + 1, 0)
        assert evil.balanceOf(evil.address) == before + 1_000  # paid once
    assert o.oracle_info(evil.address).bond == 1_000 and ins.pool() == 48_000

    # a claim makes the oracle pull the fee from the insurance contract: a re-entry into it from there (the
    # insurer defunding mid-claim) is refused too, and the claim goes through
    evil.arm(ins.address, ins.defund.prepare_calldata(1_000))
    rid = ins.claim(pid, INPUT, sender=holder)
    assert (evil.attempts(), evil.reentered()) == (5, 0)
    assert ins.policy(pid).status == CLAIMING and o.request_info(rid).fee == 10
    # everything is where it should be
    assert o.oracle_info(honest).bond == 5_000
    assert evil.balanceOf(o.address) == 5_000 + 1_000 + 10
    assert evil.balanceOf(ins.address) == ins.pool() == 48_000 - 10

"""AIOracle and Insurance together against a Python model, with hypothesis driving random sequences of oracle
registrations, bonds added and unbonded, direct requests, answers (by the oracle or an impostor, in time or late,
with or without the free bond to back them), disputes (matching or not, in time or late, by anyone), verdicts (by
the resolver or not, agreeing or not, in time or late), finalizations, cancellations and withdrawals; and, on the
insurance side, funding and defunding of the pool, policies bought, claims (by the holder or not, in time or after
expiry, within the claim limit or beyond), settlements, closings and refund collections; and the passing of time.
Five actors play every role (insurer, holders, oracles, requesters, challengers); a separate account resolves.

Every call either succeeds and changes what the model predicts, or reverts with the reason the model predicts.

Invariants, after every step:
- money is conserved across both contracts: the oracle's token balance is exactly the bonds + the fees of
  requests not settled or cancelled + the bonds of open disputes + the credited balances; the insurance
  contract's is exactly its pool + its credited balances; the actors' wallets (checked against the chain) + both
  contracts hold exactly what was minted;
- the reserve fits in the pool, and is exactly the reserves of the policies still ACTIVE or CLAIMING;
- each oracle's locked bond is exactly the stakes of its answers not yet settled, and never exceeds its bond;
- a policy is paid at most once, and the payouts are exactly the coverage of the PAID policies.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import boa
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ledgermind.contracts import SOURCE_DIR

START = 10**6
MAX_UINT = 2**256 - 1
RESPONSE, DISPUTE, RESOLUTION = 100, 150, 200
DISPUTE_BOND = 300
MAX_CLAIMS = 3
ACTORS = [boa.env.generate_address(f"oracle actor {i}") for i in range(5)]
RESOLVER = boa.env.generate_address("oracle resolver")
INSURER = 0
NOT_ENOUGH = "erc20: transfer amount exceeds balance"


def digest(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


MODEL, OTHER_MODEL = digest("model"), digest("other model")
OUTPUTS = [digest("output", i) for i in range(2)]


@dataclass(frozen=True)
class ProductTerms:
    assessor: int
    premium: int
    coverage: int
    duration: int
    fee: int


# the base state: actor 1 serves MODEL, actor 2 serves any model; the insurer (actor 0) funds the pool and
# offers one product assessed by each
ORACLES = {1: ([MODEL], 40_000), 2: ([], 30_000)}
POOL = 60_000
PRODUCTS = {1: ProductTerms(1, 100, 8_000, 2_000, 20), 2: ProductTerms(2, 50, 25_000, 1_000, 0)}

actor = st.integers(0, len(ACTORS) - 1)
MOSTLY = st.sampled_from([True, True, True, False])


@functools.cache
def deployer(name: str):
    return boa.load_partial(str(SOURCE_DIR / f"{name}.vy"))


def now() -> int:
    return boa.env.evm.patch.timestamp


def quiet(contract, name: str):
    """The same contract object with a short repr: titanoboa renders the reverting contract's repr (its whole
    storage) on every revert, and an example expects dozens of them."""
    contract.__class__ = type(f"Quiet{name}", (type(contract),), {"__repr__": lambda self: f"<{name} {self.address}>"})
    return contract


@dataclass(frozen=True)
class Base:
    oracle: object
    ins: object
    pay: object


@functools.cache
def base() -> Base:
    """Deployed once per module; each hypothesis example starts from it (boa anchors)."""
    pay = quiet(deployer("PaymentToken").deploy(), "PaymentToken")
    oracle = quiet(deployer("AIOracle").deploy(pay.address, RESPONSE, DISPUTE, RESOLUTION, DISPUTE_BOND, sender=RESOLVER),
                   "AIOracle")
    ins = quiet(deployer("Insurance").deploy(oracle.address, sender=ACTORS[INSURER]), "Insurance")
    for who in ACTORS:
        pay.mint(who, START)
        pay.approve(oracle.address, MAX_UINT, sender=who)
        pay.approve(ins.address, MAX_UINT, sender=who)
    for who, (models, bond) in ORACLES.items():
        oracle.register(models, bond, sender=ACTORS[who])
    ins.fund(POOL, sender=ACTORS[INSURER])
    for terms in PRODUCTS.values():
        ins.create_product(MODEL, ACTORS[terms.assessor], terms.premium, terms.coverage, terms.duration, terms.fee,
                           sender=ACTORS[INSURER])
    return Base(oracle, ins, pay)


@pytest.fixture(scope="module", autouse=True)
def base_state():
    base()
    yield
    base.cache_clear()


@dataclass
class Oracle:
    models: list[bytes] | None  # None: any model
    bond: int
    locked: int = 0


@dataclass
class Req:
    id: int
    requester: str  # an address: an actor's, or the insurance contract's
    oracle: int
    fee: int
    stake: int
    response_deadline: int
    status: str = "requested"  # requested, fulfilled, disputed, settled, cancelled
    output: bytes = b""
    decision: int = 0
    dispute_deadline: int = 0
    challenger: int | None = None
    resolve_deadline: int = 0
    outcome: str = ""
    final: tuple[int, bytes] | None = None  # the resolver's verdict, when overturned

    def state(self) -> str:
        """The contract's `state`: the stored status, with the time taken into account."""
        if self.status == "requested" and now() >= self.response_deadline:
            return "expired"
        if (self.status == "fulfilled" and now() >= self.dispute_deadline) or (
                self.status == "disputed" and now() >= self.resolve_deadline):
            return "final"
        return self.status

    def result(self) -> tuple[bool, int]:
        if self.final is not None:
            return True, self.final[0]
        return self.state() in ("final", "settled"), self.decision


@dataclass
class Policy:
    id: int
    holder: int
    product: int
    expiry: int
    reserve: int
    status: str = "active"  # active, claiming, paid, closed
    claims: int = 0
    request: Req | None = None


STATE = {"requested": 1, "expired": 2, "fulfilled": 3, "disputed": 4, "final": 5, "settled": 6, "cancelled": 7}
POLICY_STATUS = {"active": 1, "claiming": 2, "paid": 3, "closed": 4}


class OracleInsuranceMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        b = base()
        self.snapshot = boa.env.anchor()  # undone in teardown: each example starts from the base state
        self.snapshot.__enter__()
        self.oracle, self.ins, self.pay = b.oracle, b.ins, b.pay
        self.wallet = {who: START for who in ACTORS}
        self.wallet[ACTORS[INSURER]] -= POOL
        self.oracles: dict[int, Oracle] = {}
        for who, (models, bond) in ORACLES.items():
            self.oracles[who] = Oracle(list(models) or None, bond)
            self.wallet[ACTORS[who]] -= bond
        self.requests: list[Req] = []
        self.owed: dict[str, int] = {}  # AIOracle.withdrawable
        self.pool, self.reserved = POOL, 0
        self.policies: list[Policy] = []
        self.ins_owed: dict[str, int] = {}  # Insurance.withdrawable
        self.paid_out = 0
        self.minted = START * len(ACTORS)
        # what a step acted on: compared with the chain after it (everything is compared at teardown)
        self.touched_requests: set[int] = set()
        self.touched_policies: set[int] = set()
        self.touched_oracles: set[int] = set()

    def teardown(self) -> None:
        if hasattr(self, "snapshot"):
            try:
                if hasattr(self, "paid_out"):  # setup itself failed otherwise: that error is the report
                    for r in self.requests:
                        self.check_request(r)
                    for p in self.policies:
                        self.check_policy(p)
                    for who in self.oracles:
                        self.check_oracle(who)
                    for who in ACTORS:
                        self.check_actor(who)
                    assert self.oracle.withdrawable(self.ins.address) == self.owed.get(self.ins.address, 0)
            finally:
                self.snapshot.__exit__(None, None, None)

    # --------------------------------------------------------------------------------------------- helpers

    def expect(self, reason: str | None, call, label: str):
        """Run ``call``; it must revert with ``reason``, or succeed when ``reason`` is None."""
        event(f"{label}: {reason or 'ok'}")  # shown by --hypothesis-show-statistics
        if reason is not None:
            with boa.reverts(reason):
                call()
            return None
        return call()

    def credit(self, who: str, amount: int) -> None:
        self.owed[who] = self.owed.get(who, 0) + amount

    def check_request(self, r: Req) -> None:
        info = self.oracle.request_info(r.id)
        assert (info.requester, info.oracle, info.fee, info.stake, info.response_deadline) == (
            r.requester, ACTORS[r.oracle], r.fee, r.stake, r.response_deadline)
        assert self.oracle.state(r.id) == STATE[r.state()]
        final, decision, _ = self.oracle.result(r.id)
        assert (final, decision) == r.result()

    def check_oracle(self, who: int) -> None:
        o = self.oracles[who]
        info = self.oracle.oracle_info(ACTORS[who])
        assert (info.registered, info.bond, info.locked) == (True, o.bond, o.locked)

    def check_actor(self, who: str) -> None:
        """An actor's wallet and what each contract owes it, against the chain."""
        assert self.pay.balanceOf(who) == self.wallet[who]
        assert self.oracle.withdrawable(who) == self.owed.get(who, 0)
        assert self.ins.withdrawable(who) == self.ins_owed.get(who, 0)

    def check_policy(self, p: Policy) -> None:
        on_chain = self.ins.policy(p.id)
        assert (on_chain.holder, on_chain.product_id, on_chain.expiry, on_chain.status, on_chain.claims,
                on_chain.reserve) == (ACTORS[p.holder], p.product, p.expiry, POLICY_STATUS[p.status], p.claims,
                                      p.reserve)
        assert on_chain.request_id == (p.request.id if p.request else 0)

    def pick_request(self, data) -> Req | None:
        """Mostly a request still in play; sometimes any."""
        if not self.requests:
            return None
        live = [r for r in self.requests if r.status in ("requested", "fulfilled", "disputed")]
        return data.draw(st.sampled_from(live if live and data.draw(MOSTLY) else self.requests))

    def new_request(self, requester: str, oracle: int, fee: int, stake: int) -> Req:
        r = Req(len(self.requests) + 1, requester, oracle, fee, stake, now() + RESPONSE)
        self.requests.append(r)
        self.touched_requests.add(r.id)
        return r

    def serves(self, who: int, model: bytes) -> bool:
        o = self.oracles.get(who)
        return o is not None and (o.models is None or model in o.models)

    def settle_request(self, r: Req, outcome: str, extra: int = 0) -> None:
        """The answer stands: the stake is unlocked, the fee (and ``extra``) goes to the oracle."""
        self.oracles[r.oracle].locked -= r.stake
        self.credit(ACTORS[r.oracle], r.fee + extra)
        r.status, r.outcome = "settled", outcome

    # ---------------------------------------------------------------------------------------------- oracles
    # No rule has a precondition (with swarm testing, often-disabled rules made hypothesis give up on examples):
    # a rule with nothing to do returns. Each `*_one` method predicts the contract's answer to one call, makes
    # it, and updates the model.

    @rule(who=actor, any_model=st.booleans(), bond=st.integers(0, 5_000))
    def register(self, who, any_model, bond) -> None:
        models = [] if any_model else [MODEL, OTHER_MODEL]
        reason = ("already registered" if who in self.oracles
                  else NOT_ENOUGH if bond > self.wallet[ACTORS[who]] else None)
        self.expect(reason, lambda: self.oracle.register(models, bond, sender=ACTORS[who]), "register")
        if reason is None:
            self.oracles[who] = Oracle(models or None, bond)
            self.wallet[ACTORS[who]] -= bond
            self.touched_oracles.add(who)

    @rule(who=actor, amount=st.integers(0, 20_000))
    def add_bond(self, who, amount) -> None:
        reason = ("not a registered oracle" if who not in self.oracles else "zero amount" if amount == 0
                  else NOT_ENOUGH if amount > self.wallet[ACTORS[who]] else None)
        self.expect(reason, lambda: self.oracle.add_bond(amount, sender=ACTORS[who]), "add_bond")
        if reason is None:
            self.oracles[who].bond += amount
            self.wallet[ACTORS[who]] -= amount
            self.touched_oracles.add(who)

    @rule(who=actor, amount=st.integers(0, 20_000), everything=st.booleans())
    def unbond(self, who, amount, everything) -> None:
        o = self.oracles.get(who)
        if everything and o is not None and o.bond > o.locked:
            amount = o.bond - o.locked
        reason = ("not a registered oracle" if o is None else "zero amount" if amount == 0
                  else "amount above the free bond" if amount > o.bond - o.locked else None)
        self.expect(reason, lambda: self.oracle.unbond(amount, sender=ACTORS[who]), "unbond")
        if reason is None:
            o.bond -= amount
            self.credit(ACTORS[who], amount)
            self.touched_oracles.add(who)

    @rule(who=actor, oracle=actor, other_model=st.booleans(), fee=st.integers(0, 60), stake=st.integers(0, 9_000))
    def request(self, who, oracle, other_model, fee, stake) -> None:
        self.request_one(who, oracle, OTHER_MODEL if other_model else MODEL, fee, stake)

    def request_one(self, who: int, oracle: int, model: bytes, fee: int, stake: int) -> Req | None:
        reason = ("not a registered oracle" if oracle not in self.oracles
                  else "oracle does not serve the model" if not self.serves(oracle, model)
                  else NOT_ENOUGH if fee > self.wallet[ACTORS[who]] else None)
        input_digest = digest("input", len(self.requests))
        rid = self.expect(reason, lambda: self.oracle.request(ACTORS[oracle], model, input_digest, fee, stake,
                                                              sender=ACTORS[who]), "request")
        if reason is not None:
            return None
        r = self.new_request(ACTORS[who], oracle, fee, stake)
        assert rid == r.id
        self.wallet[ACTORS[who]] -= fee
        return r

    @rule(data=st.data(), impostor=st.booleans(), output=st.sampled_from(OUTPUTS), decision=st.integers(-1, 1))
    def fulfill(self, data, impostor, output, decision) -> None:
        r = self.pick_request(data)
        if r is not None:
            self.fulfill_one(r, data.draw(actor) if impostor else r.oracle, output, decision)

    def fulfill_one(self, r: Req, caller: int, output: bytes, decision: int) -> None:
        self.touched_requests.add(r.id)
        o = self.oracles[r.oracle]
        if caller != r.oracle:
            reason = "caller is not the request's oracle"
        elif r.status == "cancelled":
            reason = "request cancelled"
        elif r.status != "requested":
            reason = "request already answered"
        elif now() >= r.response_deadline:
            reason = "response window closed"
        elif r.stake > o.bond - o.locked:
            reason = "free bond below the stake"
        else:
            reason = None
        self.expect(reason, lambda: self.oracle.fulfill(r.id, output, decision, r.id, digest("log"),
                                                        sender=ACTORS[caller]), "fulfill")
        if reason is None:
            o.locked += r.stake
            r.status, r.output, r.decision, r.dispute_deadline = "fulfilled", output, decision, now() + DISPUTE
            self.touched_oracles.add(r.oracle)

    @rule(data=st.data(), who=actor, agree=st.booleans())
    def dispute(self, data, who, agree) -> None:
        r = self.pick_request(data)
        if r is not None:
            self.dispute_one(r, who, agree, data)

    def dispute_one(self, r: Req, who: int, agree: bool, data) -> None:
        """``who`` disputes ``r`` claiming its answer (``agree``) or another output digest or decision."""
        self.touched_requests.add(r.id)
        output = r.output or OUTPUTS[0]
        claim = (output, r.decision) if agree else data.draw(st.sampled_from(
            [(OUTPUTS[1] if output == OUTPUTS[0] else OUTPUTS[0], r.decision), (output, r.decision + 1)]))
        if r.status == "requested":
            reason = "request not answered"
        elif r.status in ("settled", "cancelled"):
            reason = "request closed"
        elif r.status == "disputed":
            reason = "already disputed"
        elif now() >= r.dispute_deadline:
            reason = "dispute window closed"
        elif who == r.oracle:
            reason = "oracle cannot dispute its own answer"
        elif agree:
            reason = "claim matches the answer"
        elif DISPUTE_BOND > self.wallet[ACTORS[who]]:
            reason = NOT_ENOUGH
        else:
            reason = None
        self.expect(reason, lambda: self.oracle.dispute(r.id, *claim, sender=ACTORS[who]), "dispute")
        if reason is None:
            r.status, r.challenger, r.resolve_deadline = "disputed", who, now() + RESOLUTION
            self.wallet[ACTORS[who]] -= DISPUTE_BOND

    @rule(data=st.data(), by_resolver=st.booleans(), overturn=st.booleans())
    def resolve(self, data, by_resolver, overturn) -> None:
        disputed = [r for r in self.requests if r.status == "disputed"]
        r = data.draw(st.sampled_from(disputed)) if disputed and data.draw(MOSTLY) else self.pick_request(data)
        if r is not None:
            self.resolve_one(r, RESOLVER if by_resolver else ACTORS[data.draw(actor)], overturn)

    def resolve_one(self, r: Req, caller: str, overturn: bool) -> None:
        """The resolver's verdict agrees with the answer, or (``overturn``) has another decision."""
        self.touched_requests.add(r.id)
        verdict = (r.output or OUTPUTS[0], r.decision + 1 if overturn else r.decision)
        reason = ("caller is not the resolver" if caller != RESOLVER
                  else "request not disputed" if r.status != "disputed"
                  else "resolution window closed" if now() >= r.resolve_deadline else None)
        self.expect(reason, lambda: self.oracle.resolve(r.id, *verdict, digest("evidence", r.id), sender=caller),
                    "resolve")
        if reason is not None:
            return
        self.touched_oracles.add(r.oracle)
        if not overturn:
            self.settle_request(r, "upheld", DISPUTE_BOND)
            return
        o = self.oracles[r.oracle]
        to_challenger = (r.stake + 1) // 2
        o.locked -= r.stake
        o.bond -= r.stake
        self.credit(ACTORS[r.challenger], to_challenger + DISPUTE_BOND)
        self.credit(r.requester, r.stake - to_challenger + r.fee)
        r.status, r.outcome, r.final = "settled", "overturned", (verdict[1], verdict[0])
        event("answer overturned")

    @rule(data=st.data(), who=actor)
    def finalize(self, data, who) -> None:
        r = self.pick_request(data)
        if r is not None:
            self.finalize_one(r, who)

    def finalize_one(self, r: Req, who: int) -> None:
        self.touched_requests.add(r.id)
        if r.status == "requested":
            reason = "request not answered"
        elif r.status in ("settled", "cancelled"):
            reason = "request closed"
        elif r.status == "fulfilled" and now() < r.dispute_deadline:
            reason = "dispute window still open"
        elif r.status == "disputed" and now() < r.resolve_deadline:
            reason = "resolution window still open"
        else:
            reason = None
        outcome = self.expect(reason, lambda: self.oracle.finalize(r.id, sender=ACTORS[who]), "finalize")
        if reason is None:
            self.touched_oracles.add(r.oracle)
            if r.status == "fulfilled":
                assert outcome == 1
                self.settle_request(r, "unchallenged")
            else:
                assert outcome == 4
                self.credit(ACTORS[r.challenger], DISPUTE_BOND)
                self.settle_request(r, "unresolved")

    @rule(data=st.data(), who=actor)
    def cancel(self, data, who) -> None:
        r = self.pick_request(data)
        if r is None:
            return
        self.touched_requests.add(r.id)
        reason = ("request cancelled" if r.status == "cancelled"
                  else "request already answered" if r.status != "requested"
                  else "response window still open" if now() < r.response_deadline else None)
        self.expect(reason, lambda: self.oracle.cancel(r.id, sender=ACTORS[who]), "cancel")
        if reason is None:
            r.status = "cancelled"
            self.credit(r.requester, r.fee)

    @rule(data=st.data(), who=actor)
    def oracle_withdraw(self, data, who) -> None:
        owed_to = [i for i, a in enumerate(ACTORS) if self.owed.get(a)]
        if owed_to and data.draw(MOSTLY):
            who = data.draw(st.sampled_from(owed_to))
        owed = self.owed.get(ACTORS[who], 0)
        amount = self.expect(None if owed else "nothing to withdraw",
                             lambda: self.oracle.withdraw(sender=ACTORS[who]), "oracle withdraw")
        if owed:
            assert amount == owed
            self.owed[ACTORS[who]] = 0
            self.wallet[ACTORS[who]] += owed
        self.check_actor(ACTORS[who])

    @rule(data=st.data(), source=st.sampled_from(["direct", "claim", "claim"]), fate=st.sampled_from(
        ["unchallenged", "unchallenged", "upheld", "overturned", "unresolved", "late", "unanswered"]))
    def a_request_runs_its_course(self, data, source, fate) -> None:
        """A whole request in one step, so that examples get past the first move: a direct request to an oracle
        that serves the model, or a claim on a policy (bought first if none can claim); the oracle answers (unless
        ``fate`` is unanswered), then it is disputed and the resolver agrees or overturns, or lets its window
        pass, or nobody disputes; time moves past the deciding window, anyone finalizes, and a claim is
        settled."""
        policy = None
        if source == "direct":
            oracles = [who for who in self.oracles if self.serves(who, MODEL)]
            if not oracles:
                return
            oracle = data.draw(st.sampled_from(oracles))
            o = self.oracles[oracle]
            r = self.request_one(data.draw(actor), oracle, MODEL, data.draw(st.integers(0, 60)),
                                 data.draw(st.integers(0, max(o.bond - o.locked, 0) + 100)))
        else:
            claimable = [p for p in self.policies
                         if p.status == "active" and now() < p.expiry and p.claims < MAX_CLAIMS]
            if not claimable:
                self.buy_one(data.draw(actor), data.draw(st.sampled_from(sorted(PRODUCTS))))
                claimable = [p for p in self.policies if p.status == "active" and now() < p.expiry]
            if not claimable:
                return
            policy = data.draw(st.sampled_from(claimable))
            r = self.claim_one(policy, policy.holder)
        if r is None:
            return
        if fate == "unanswered":
            boa.env.time_travel(seconds=r.response_deadline - now())
        else:
            self.fulfill_one(r, r.oracle, data.draw(st.sampled_from(OUTPUTS)), data.draw(st.integers(-1, 1)))
            if fate != "unchallenged" and r.status == "fulfilled":
                if fate == "late":
                    boa.env.time_travel(seconds=r.dispute_deadline - now())
                challenger = data.draw(st.sampled_from([i for i in range(len(ACTORS)) if i != r.oracle]))
                self.dispute_one(r, challenger, False, data)
                if fate in ("upheld", "overturned"):
                    self.resolve_one(r, RESOLVER, fate == "overturned")
            deciding = r.resolve_deadline if r.status == "disputed" else r.dispute_deadline
            if now() < deciding:
                boa.env.time_travel(seconds=deciding - now())
            if data.draw(st.booleans()):
                self.finalize_one(r, data.draw(actor))
        if policy is not None:
            self.settle_one(policy, data.draw(actor))

    @rule(data=st.data(), source=st.sampled_from(["direct", "claim"]), fate=st.sampled_from(
        ["unchallenged", "upheld", "overturned", "unresolved", "late", "unanswered"]))
    def another_request_runs_its_course(self, data, source, fate) -> None:
        """The same again: rules are drawn evenly, and this one doubles the weight of whole requests."""
        self.a_request_runs_its_course(data, source, fate)

    # -------------------------------------------------------------------------------------------- insurance

    @rule(who=actor, amount=st.integers(0, 30_000))
    def fund(self, who, amount) -> None:
        reason = ("caller is not the insurer" if who != INSURER else "zero amount" if amount == 0
                  else NOT_ENOUGH if amount > self.wallet[ACTORS[who]] else None)
        self.expect(reason, lambda: self.ins.fund(amount, sender=ACTORS[who]), "fund")
        if reason is None:
            self.pool += amount
            self.wallet[ACTORS[who]] -= amount

    @rule(who=actor, amount=st.integers(0, 40_000), everything=st.booleans())
    def defund(self, who, amount, everything) -> None:
        if everything and self.pool > self.reserved:
            amount = self.pool - self.reserved
        reason = ("caller is not the insurer" if who != INSURER else "zero amount" if amount == 0
                  else "amount above the free capital" if amount > self.pool - self.reserved else None)
        self.expect(reason, lambda: self.ins.defund(amount, sender=ACTORS[who]), "defund")
        if reason is None:
            self.pool -= amount
            self.ins_owed[ACTORS[who]] = self.ins_owed.get(ACTORS[who], 0) + amount

    @rule(who=actor, product=st.sampled_from(sorted(PRODUCTS)))
    def buy(self, who, product) -> None:
        self.buy_one(who, product)

    def buy_one(self, who: int, product: int) -> None:
        terms = PRODUCTS[product]
        reserve = terms.coverage + MAX_CLAIMS * terms.fee
        reason = ("pool cannot cover the policy" if reserve > self.pool + terms.premium - self.reserved
                  else NOT_ENOUGH if terms.premium > self.wallet[ACTORS[who]] else None)
        pid = self.expect(reason, lambda: self.ins.buy(product, sender=ACTORS[who]), "buy")
        if reason is None:
            p = Policy(len(self.policies) + 1, who, product, now() + terms.duration, reserve)
            assert pid == p.id
            self.policies.append(p)
            self.touched_policies.add(p.id)
            self.pool += terms.premium
            self.reserved += reserve
            self.wallet[ACTORS[who]] -= terms.premium

    def pick_policy(self, data) -> Policy | None:
        if not self.policies:
            return None
        live = [p for p in self.policies if p.status in ("active", "claiming")]
        return data.draw(st.sampled_from(live if live and data.draw(MOSTLY) else self.policies))

    @rule(data=st.data(), by_holder=st.booleans())
    def claim(self, data, by_holder) -> None:
        p = self.pick_policy(data)
        if p is not None:
            self.claim_one(p, p.holder if by_holder or data.draw(st.booleans()) else data.draw(actor))

    def claim_one(self, p: Policy, caller: int) -> Req | None:
        self.touched_policies.add(p.id)
        terms = PRODUCTS[p.product]
        if caller != p.holder:
            reason = "caller is not the holder"
        elif p.status == "claiming":
            reason = "claim in progress"
        elif p.status == "paid":
            reason = "policy paid"
        elif p.status == "closed":
            reason = "policy closed"
        elif now() >= p.expiry:
            reason = "policy expired"
        elif p.claims >= MAX_CLAIMS:
            reason = "no claims left"
        else:
            reason = None
        input_digest = digest("claim", p.id, p.claims)
        rid = self.expect(reason, lambda: self.ins.claim(p.id, input_digest, sender=ACTORS[caller]), "claim")
        if reason is not None:
            return None
        r = self.new_request(self.ins.address, terms.assessor, terms.fee, terms.coverage)
        assert rid == r.id
        p.claims += 1
        p.reserve -= terms.fee
        p.status, p.request = "claiming", r
        self.reserved -= terms.fee
        self.pool -= terms.fee
        return r

    @rule(data=st.data(), who=actor)
    def settle(self, data, who) -> None:
        p = self.pick_policy(data)
        if p is not None:
            self.settle_one(p, who)

    def settle_one(self, p: Policy, who: int) -> None:
        self.touched_policies.add(p.id)
        state = p.request.state() if p.request else None
        if p.status != "claiming":
            reason = "no claim in progress"
        elif state in ("expired", "cancelled", "final", "settled"):
            reason = None
        else:
            reason = "decision not final"
        approved = self.expect(reason, lambda: self.ins.settle(p.id, sender=ACTORS[who]), "settle")
        if reason is not None:
            return
        self.touched_requests.add(p.request.id)
        if state in ("expired", "cancelled"):
            assert approved is False
            p.status = "active"
            if state == "expired":
                p.request.status = "cancelled"
                self.credit(self.ins.address, p.request.fee)
            event("claim lapsed")
            return
        final, decision = p.request.result()
        assert final and approved == (decision > 0)
        if approved:
            assert p.status != "paid"
            coverage = PRODUCTS[p.product].coverage
            self.reserved -= p.reserve
            self.pool -= coverage
            self.paid_out += coverage
            p.reserve, p.status = 0, "paid"
            self.ins_owed[ACTORS[p.holder]] = self.ins_owed.get(ACTORS[p.holder], 0) + coverage
            event("claim paid")
        else:
            p.status = "active"
            event("claim rejected")

    @rule(data=st.data(), who=actor)
    def close(self, data, who) -> None:
        p = self.pick_policy(data)
        if p is None:
            return
        self.touched_policies.add(p.id)
        reason = ("claim in progress" if p.status == "claiming" else "policy paid" if p.status == "paid"
                  else "policy closed" if p.status == "closed"
                  else "policy still running" if now() < p.expiry and p.claims < MAX_CLAIMS else None)
        released = self.expect(reason, lambda: self.ins.close(p.id, sender=ACTORS[who]), "close")
        if reason is None:
            assert released == p.reserve
            self.reserved -= p.reserve
            p.reserve, p.status = 0, "closed"

    @rule(who=actor)
    def collect_refunds(self, who) -> None:
        owed = self.owed.get(self.ins.address, 0)
        amount = self.expect(None if owed else "nothing to collect",
                             lambda: self.ins.collect_refunds(sender=ACTORS[who]), "collect_refunds")
        if owed:
            assert amount == owed
            self.owed[self.ins.address] = 0
            self.pool += owed

    @rule(data=st.data(), who=actor)
    def insurance_withdraw(self, data, who) -> None:
        owed_to = [i for i, a in enumerate(ACTORS) if self.ins_owed.get(a)]
        if owed_to and data.draw(MOSTLY):
            who = data.draw(st.sampled_from(owed_to))
        owed = self.ins_owed.get(ACTORS[who], 0)
        amount = self.expect(None if owed else "nothing to withdraw",
                             lambda: self.ins.withdraw(sender=ACTORS[who]), "insurance withdraw")
        if owed:
            assert amount == owed
            self.ins_owed[ACTORS[who]] = 0
            self.wallet[ACTORS[who]] += owed
        self.check_actor(ACTORS[who])

    # ------------------------------------------------------------------------------------------------- time

    @rule(seconds=st.integers(1, 120))
    def time_passes(self, seconds) -> None:
        boa.env.time_travel(seconds=seconds)

    @rule(data=st.data())
    def deadline_comes(self, data) -> None:
        """Time moves to exactly the next deadline of a request or a policy: boundaries are where bugs hide."""
        deadlines = sorted({d for r in self.requests for d in (r.response_deadline, r.dispute_deadline,
                                                                  r.resolve_deadline) if d > now()}
                           | {p.expiry for p in self.policies if p.expiry > now()})
        if deadlines:
            boa.env.time_travel(seconds=data.draw(st.sampled_from(deadlines[:3])) - now())

    # ------------------------------------------------------------------------------------------- invariants

    @invariant()
    def money_is_conserved(self) -> None:
        open_fees = sum(r.fee for r in self.requests if r.status in ("requested", "fulfilled", "disputed"))
        open_disputes = DISPUTE_BOND * sum(1 for r in self.requests if r.status == "disputed")
        bonds = sum(o.bond for o in self.oracles.values())
        held_by_oracle = self.pay.balanceOf(self.oracle.address)
        assert held_by_oracle == bonds + open_fees + open_disputes + sum(self.owed.values())
        held_by_ins = self.pay.balanceOf(self.ins.address)
        assert held_by_ins == self.pool + sum(self.ins_owed.values())
        assert (self.ins.pool(), self.ins.reserved()) == (self.pool, self.reserved)
        # the actors' wallets are compared with the chain after each of their withdrawals and at teardown
        assert sum(self.wallet.values()) + held_by_oracle + held_by_ins == self.minted  # nothing made or lost

    @invariant()
    def reserves_and_stakes_add_up(self) -> None:
        assert self.reserved <= self.pool
        assert self.reserved == sum(p.reserve for p in self.policies if p.status in ("active", "claiming"))
        for who, o in self.oracles.items():
            assert o.locked == sum(r.stake for r in self.requests
                                   if r.oracle == who and r.status in ("fulfilled", "disputed"))
            assert o.locked <= o.bond
        assert self.paid_out == sum(PRODUCTS[p.product].coverage for p in self.policies if p.status == "paid")

    @invariant()
    def touched_objects_match_the_chain(self) -> None:
        for rid in self.touched_requests:
            self.check_request(self.requests[rid - 1])
        for pid in self.touched_policies:
            self.check_policy(self.policies[pid - 1])
        for who in self.touched_oracles:
            self.check_oracle(who)
        self.touched_requests.clear()
        self.touched_policies.clear()
        self.touched_oracles.clear()


OracleInsuranceMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestOracleInsurance = OracleInsuranceMachine.TestCase

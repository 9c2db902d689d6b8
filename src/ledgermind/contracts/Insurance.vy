# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title Insurance
@license Apache-2.0
@notice Parametric insurance whose claims are assessed by a registered AI
        model through the AIOracle: no adjuster, no discretion. The
        insurer (the deployer) funds a pool and offers products; anyone
        buys a policy; the holder claims with the digest of the claim's
        input (e.g. the weather readings of the insured season, published
        off chain); the product's assessor (an oracle of the AIOracle that
        serves the product's model) answers; once that decision is final,
        anyone may `settle` the claim and an approved one (decision > 0)
        credits the coverage to the holder.

        Money, all in the AIOracle's token:
        - `pool` is the insurer's capital: what it funded, plus premiums
          and refunds collected from the oracle, less claim fees, payouts
          and what it took back. `reserved` is the part of the pool
          promised to live policies: each policy reserves its coverage
          plus MAX_CLAIMS assessment fees when bought, so every policy can
          always be assessed and paid whatever the insurer does. The
          insurer may take back only the free capital (`pool -
          reserved`).
        - A policy's premium goes to the pool. Each claim pays the
          product's fee to the oracle out of the policy's reserve and asks
          the assessor to back its answer with a stake equal to the
          coverage, so that a wrong answer costs the assessor at least
          what it would move. Refunds and the requester's share of a
          slashed stake accrue to this contract in the oracle;
          `collect_refunds` brings them into the pool.
        - Payouts and the capital the insurer takes back are credited to
          `withdrawable[account]` and collected with `withdraw` (pull
          payments). The contract's token balance is always `pool` plus
          the credited balances not withdrawn.

        Life of a policy: ACTIVE (claimable until its expiry, at most
        MAX_CLAIMS claims) -> `claim` -> CLAIMING -> `settle`: PAID
        (approved: once only, the rest of the reserve is released), or
        ACTIVE again (rejected; or the assessor did not answer in time,
        the request is cancelled and its fee refunded to the pool). An
        ACTIVE policy past its expiry or out of claims is `close`d by
        anyone, which releases its reserve. A claim made before expiry is
        settled even if the decision comes after it.

        Every state-changing function holds Vyper's reentrancy lock and
        follows checks-effects-interactions.
"""

from ethereum.ercs import IERC20


# @dev The parts of the AIOracle used here.
interface IAIOracle:
    def token() -> address: view
    def serves(oracle: address, model_digest: bytes32) -> bool: view
    def request(
        oracle: address, model_digest: bytes32, input_digest: bytes32, fee: uint256, stake: uint256
    ) -> uint256: nonpayable
    def state(request_id: uint256) -> uint256: view
    def result(request_id: uint256) -> (bool, int256, bytes32): view
    def cancel(request_id: uint256): nonpayable
    def withdraw() -> uint256: nonpayable
    def withdrawable(account: address) -> uint256: view


# @dev Most claims (assessments) one policy may make.
MAX_CLAIMS: public(constant(uint256)) = 3

# @dev Longest policy, in seconds (5 years of 365 days).
MAX_DURATION: public(constant(uint256)) = 5 * 365 * 86_400

# @dev Largest premium, coverage or fee.
MAX_AMOUNT: public(constant(uint256)) = 2**128

# @dev Policy status (0: no such policy).
ACTIVE: public(constant(uint256)) = 1
CLAIMING: public(constant(uint256)) = 2
PAID: public(constant(uint256)) = 3
CLOSED: public(constant(uint256)) = 4

# @dev AIOracle request states read here (see AIOracle.state).
_ORACLE_EXPIRED: constant(uint256) = 2
_ORACLE_FINAL: constant(uint256) = 5
_ORACLE_SETTLED: constant(uint256) = 6
_ORACLE_CANCELLED: constant(uint256) = 7


struct Product:
    model_digest: bytes32
    assessor: address
    premium: uint256
    coverage: uint256
    duration: uint256
    fee: uint256
    open: bool


struct Policy:
    holder: address
    product_id: uint256
    expiry: uint256
    status: uint256
    # claims made so far, and what is still reserved for the policy
    claims: uint256
    reserve: uint256
    # the oracle request of the latest claim (0 before the first)
    request_id: uint256


# @dev The AIOracle that assesses claims, its token, and the insurer.
oracle: public(immutable(address))
token: public(immutable(address))
insurer: public(immutable(address))

# @dev The insurer's capital held here, and the part promised to policies.
pool: public(uint256)
reserved: public(uint256)

# @dev Numbers of products and policies; ids start at 1.
product_count: public(uint256)
policy_count: public(uint256)

_products: HashMap[uint256, Product]
_policies: HashMap[uint256, Policy]

# @dev account -> amount it can withdraw.
withdrawable: public(HashMap[address, uint256])


event Funded:
    amount: uint256
    pool: uint256


event Defunded:
    amount: uint256
    pool: uint256


event ProductCreated:
    product_id: indexed(uint256)
    model_digest: indexed(bytes32)
    assessor: indexed(address)
    premium: uint256
    coverage: uint256
    duration: uint256
    fee: uint256


event ProductClosed:
    product_id: indexed(uint256)


event PolicyBought:
    policy_id: indexed(uint256)
    product_id: indexed(uint256)
    holder: indexed(address)
    premium: uint256
    coverage: uint256
    expiry: uint256
    reserve: uint256


event ClaimOpened:
    policy_id: indexed(uint256)
    request_id: indexed(uint256)
    input_digest: bytes32
    fee: uint256
    claims: uint256


event ClaimSettled:
    policy_id: indexed(uint256)
    request_id: indexed(uint256)
    approved: bool
    decision: int256
    output_digest: bytes32
    payout: uint256


event ClaimLapsed:
    policy_id: indexed(uint256)
    request_id: indexed(uint256)


event PolicyClosed:
    policy_id: indexed(uint256)
    released: uint256


event RefundsCollected:
    amount: uint256
    pool: uint256


event Withdrawn:
    account: indexed(address)
    amount: uint256


@deploy
def __init__(_oracle: address):
    """
    @notice The deployer becomes the insurer; claims are assessed through
            the AIOracle at `_oracle`, in its token.
    @dev Requires `_oracle` to be a contract ("oracle is not a contract").
    """
    assert _oracle.is_contract, "oracle is not a contract"
    oracle = _oracle
    token = staticcall IAIOracle(_oracle).token()
    insurer = msg.sender


# ------------------------------------------------------------------------------------------------------- pool


@external
@nonreentrant
def fund(amount: uint256):
    """
    @notice Adds `amount` to the pool (pulled from the insurer with
            `transferFrom`: approve this contract first).
    @dev Requires, in this order: the caller is the insurer ("caller is
         not the insurer"); `amount > 0` ("zero amount"); then a
         successful `transferFrom` ("token transfer failed", or the
         token's own reason). Emits `Funded`.
    """
    self._check_insurer()
    assert amount != 0, "zero amount"
    pool: uint256 = self.pool + amount
    self.pool = pool
    log Funded(amount=amount, pool=pool)
    self._pull(amount)


@external
@nonreentrant
def defund(amount: uint256):
    """
    @notice Moves `amount` of the free capital (`pool - reserved`) to the
            insurer's `withdrawable` balance; collect it with `withdraw`.
    @dev Requires, in this order: the caller is the insurer ("caller is
         not the insurer"); `amount > 0` ("zero amount"); `amount <= pool
         - reserved` ("amount above the free capital"). Emits `Defunded`.
    """
    self._check_insurer()
    assert amount != 0, "zero amount"
    pool: uint256 = self.pool
    assert amount <= pool - self.reserved, "amount above the free capital"
    pool -= amount
    self.pool = pool
    self.withdrawable[msg.sender] += amount
    log Defunded(amount=amount, pool=pool)


@external
@nonreentrant
def collect_refunds() -> uint256:
    """
    @notice Brings into the pool what the oracle owes this contract (fees
            of claims it did not answer in time or answered wrongly, the
            requester's share of slashed stakes) and returns the amount.
            Anyone may call it.
    @dev Requires a non-zero balance in the oracle ("nothing to collect")
         and the oracle to pay exactly that ("oracle paid another
         amount"). Emits `RefundsCollected`.
    """
    amount: uint256 = staticcall IAIOracle(oracle).withdrawable(self)
    assert amount != 0, "nothing to collect"
    pool: uint256 = self.pool + amount
    self.pool = pool
    log RefundsCollected(amount=amount, pool=pool)
    assert extcall IAIOracle(oracle).withdraw() == amount, "oracle paid another amount"
    return amount


# --------------------------------------------------------------------------------------------------- products


@external
@nonreentrant
def create_product(
    model_digest: bytes32, assessor: address, premium: uint256, coverage: uint256, duration: uint256, fee: uint256
) -> uint256:
    """
    @notice Offers policies whose claims are assessed by the model
            `model_digest` run by the oracle `assessor`: each costs
            `premium`, pays `coverage` on an approved claim, runs
            `duration` seconds from purchase, and offers `fee` to the
            assessor per claim. Returns the product id (the previous id +
            1). Products never change; `close_product` stops sales.
    @dev Requires, in this order: the caller is the insurer ("caller is
         not the insurer"); a non-zero digest ("zero digest"); non-zero
         coverage ("zero coverage"); premium, coverage and fee at most
         MAX_AMOUNT ("amount out of range"); `1 <= duration <=
         MAX_DURATION` ("duration out of range"); `assessor` is a
         registered oracle that serves the model ("assessor does not
         serve the model"). Emits `ProductCreated`.
    """
    self._check_insurer()
    assert model_digest != empty(bytes32), "zero digest"
    assert coverage != 0, "zero coverage"
    assert premium <= MAX_AMOUNT and coverage <= MAX_AMOUNT and fee <= MAX_AMOUNT, "amount out of range"
    assert duration != 0 and duration <= MAX_DURATION, "duration out of range"
    assert staticcall IAIOracle(oracle).serves(assessor, model_digest), "assessor does not serve the model"
    product_id: uint256 = self.product_count + 1
    self.product_count = product_id
    self._products[product_id] = Product(
        model_digest=model_digest,
        assessor=assessor,
        premium=premium,
        coverage=coverage,
        duration=duration,
        fee=fee,
        open=True,
    )
    log ProductCreated(
        product_id=product_id,
        model_digest=model_digest,
        assessor=assessor,
        premium=premium,
        coverage=coverage,
        duration=duration,
        fee=fee,
    )
    return product_id


@external
@nonreentrant
def close_product(product_id: uint256):
    """
    @notice Stops selling policies of `product_id`; policies sold stay
            valid.
    @dev Requires, in this order: the caller is the insurer ("caller is
         not the insurer"); the product exists ("unknown product") and is
         open ("product closed"). Emits `ProductClosed`.
    """
    self._check_insurer()
    self._check_product(product_id)
    self._products[product_id].open = False
    log ProductClosed(product_id=product_id)


# --------------------------------------------------------------------------------------------------- policies


@external
@nonreentrant
def buy(product_id: uint256) -> uint256:
    """
    @notice Buys a policy of `product_id` for the caller, who pays the
            premium (pulled with `transferFrom`), and returns its id (the
            previous id + 1). The policy runs from now for the product's
            duration and reserves its coverage plus MAX_CLAIMS fees in
            the pool.
    @dev Requires, in this order: the product exists ("unknown product")
         and is open ("product closed"); the free capital, premium
         included, covers the reserve ("pool cannot cover the policy");
         then, for a non-zero premium, a successful `transferFrom`
         ("token transfer failed", or the token's own reason). Emits
         `PolicyBought`.
    """
    self._check_product(product_id)
    p: Product = self._products[product_id]
    reserve: uint256 = p.coverage + MAX_CLAIMS * p.fee
    pool: uint256 = self.pool + p.premium
    reserved: uint256 = self.reserved
    assert reserve <= pool - reserved, "pool cannot cover the policy"

    self.pool = pool
    self.reserved = reserved + reserve
    policy_id: uint256 = self.policy_count + 1
    self.policy_count = policy_id
    expiry: uint256 = block.timestamp + p.duration
    self._policies[policy_id] = Policy(
        holder=msg.sender, product_id=product_id, expiry=expiry, status=ACTIVE, claims=0, reserve=reserve, request_id=0
    )
    log PolicyBought(
        policy_id=policy_id,
        product_id=product_id,
        holder=msg.sender,
        premium=p.premium,
        coverage=p.coverage,
        expiry=expiry,
        reserve=reserve,
    )
    if p.premium != 0:
        self._pull(p.premium)
    return policy_id


@external
@nonreentrant
def claim(policy_id: uint256, input_digest: bytes32) -> uint256:
    """
    @notice The holder claims on `policy_id` with the digest of the
            claim's input (published off chain for the assessor and any
            re-runner): pays the product's fee out of the policy's
            reserve and asks the product's assessor to run the product's
            model on it, backed by a stake equal to the coverage. Returns
            the oracle's request id. `settle` once the decision is final.
    @dev Requires, in this order: the policy exists ("unknown policy");
         the caller is its holder ("caller is not the holder"); it is
         ACTIVE ("claim in progress", "policy paid", "policy closed");
         not expired ("policy expired"); fewer than MAX_CLAIMS claims so
         far ("no claims left"); a non-zero digest ("zero digest"); then
         the token approves the oracle for the fee ("token approval
         failed") and the oracle's `request` succeeds (its reasons, e.g.
         "oracle does not serve the model" if the assessor changed its
         list). Emits `ClaimOpened`.
    """
    status: uint256 = self._policies[policy_id].status
    assert status != 0, "unknown policy"
    assert msg.sender == self._policies[policy_id].holder, "caller is not the holder"
    assert status != CLAIMING, "claim in progress"
    assert status != PAID, "policy paid"
    assert status == ACTIVE, "policy closed"
    assert block.timestamp < self._policies[policy_id].expiry, "policy expired"
    claims: uint256 = self._policies[policy_id].claims
    assert claims < MAX_CLAIMS, "no claims left"
    assert input_digest != empty(bytes32), "zero digest"

    p: Product = self._products[self._policies[policy_id].product_id]
    # the reserve holds a fee for each claim left, so these never underflow
    claims += 1
    self._policies[policy_id].claims = claims
    self._policies[policy_id].reserve -= p.fee
    self._policies[policy_id].status = CLAIMING
    self.reserved -= p.fee
    self.pool -= p.fee
    if p.fee != 0:
        assert extcall IERC20(token).approve(oracle, p.fee, default_return_value=True), "token approval failed"
    request_id: uint256 = extcall IAIOracle(oracle).request(p.assessor, p.model_digest, input_digest, p.fee, p.coverage)
    # written after the call that creates the id; the lock keeps anything else from running in between
    self._policies[policy_id].request_id = request_id
    log ClaimOpened(policy_id=policy_id, request_id=request_id, input_digest=input_digest, fee=p.fee, claims=claims)
    return request_id


@external
@nonreentrant
def settle(policy_id: uint256) -> bool:
    """
    @notice Settles the claim in progress on `policy_id` and returns
            whether it was approved. Anyone may call it. Once the
            oracle's decision is final: approved (decision > 0) credits
            the coverage to the holder's `withdrawable` balance, marks the
            policy PAID and releases the rest of its reserve; rejected
            makes the policy ACTIVE again. If the assessor did not answer
            in time, the request is cancelled (its fee is refunded to this
            contract: `collect_refunds`) and the policy is ACTIVE again.
    @dev Requires, in this order: the policy exists ("unknown policy")
         and has a claim in progress ("no claim in progress"); the
         oracle's decision is final, or the request expired or was
         cancelled ("decision not final"). Emits `ClaimSettled` or
         `ClaimLapsed`.
    """
    status: uint256 = self._policies[policy_id].status
    assert status != 0, "unknown policy"
    assert status == CLAIMING, "no claim in progress"
    request_id: uint256 = self._policies[policy_id].request_id
    state: uint256 = staticcall IAIOracle(oracle).state(request_id)

    if state == _ORACLE_EXPIRED or state == _ORACLE_CANCELLED:
        self._policies[policy_id].status = ACTIVE
        log ClaimLapsed(policy_id=policy_id, request_id=request_id)
        if state == _ORACLE_EXPIRED:
            extcall IAIOracle(oracle).cancel(request_id)
        return False

    assert state == _ORACLE_FINAL or state == _ORACLE_SETTLED, "decision not final"
    final: bool = False
    decision: int256 = 0
    output_digest: bytes32 = empty(bytes32)
    final, decision, output_digest = staticcall IAIOracle(oracle).result(request_id)
    approved: bool = decision > 0
    payout: uint256 = 0
    if approved:
        payout = self._products[self._policies[policy_id].product_id].coverage
        # the reserve still holds the coverage: it only ever gave up fees
        self.reserved -= self._policies[policy_id].reserve
        self.pool -= payout
        self._policies[policy_id].reserve = 0
        self._policies[policy_id].status = PAID
        self.withdrawable[self._policies[policy_id].holder] += payout
    else:
        self._policies[policy_id].status = ACTIVE
    log ClaimSettled(
        policy_id=policy_id,
        request_id=request_id,
        approved=approved,
        decision=decision,
        output_digest=output_digest,
        payout=payout,
    )
    return approved


@external
@nonreentrant
def close(policy_id: uint256) -> uint256:
    """
    @notice Closes an ACTIVE policy that can no longer claim (expired, or
            out of claims) and releases its reserve to the free capital;
            returns the amount released. Anyone may call it.
    @dev Requires, in this order: the policy exists ("unknown policy");
         it is ACTIVE ("claim in progress", "policy paid", "policy
         closed"); it expired or made MAX_CLAIMS claims ("policy still
         running"). Emits `PolicyClosed`.
    """
    status: uint256 = self._policies[policy_id].status
    assert status != 0, "unknown policy"
    assert status != CLAIMING, "claim in progress"
    assert status != PAID, "policy paid"
    assert status == ACTIVE, "policy closed"
    assert (
        block.timestamp >= self._policies[policy_id].expiry or self._policies[policy_id].claims == MAX_CLAIMS
    ), "policy still running"
    released: uint256 = self._policies[policy_id].reserve
    self._policies[policy_id].reserve = 0
    self._policies[policy_id].status = CLOSED
    self.reserved -= released
    log PolicyClosed(policy_id=policy_id, released=released)
    return released


@external
@nonreentrant
def withdraw() -> uint256:
    """
    @notice Sends the caller its whole `withdrawable` balance (payouts;
            capital the insurer took back) and returns the amount.
    @dev Requires a non-zero balance ("nothing to withdraw"). The balance
         is zeroed before the transfer; a failed transfer reverts
         everything ("token transfer failed", or the token's own reason).
         Emits `Withdrawn`.
    """
    amount: uint256 = self.withdrawable[msg.sender]
    assert amount != 0, "nothing to withdraw"
    self.withdrawable[msg.sender] = 0
    log Withdrawn(account=msg.sender, amount=amount)
    assert extcall IERC20(token).transfer(msg.sender, amount, default_return_value=True), "token transfer failed"
    return amount


# ------------------------------------------------------------------------------------------------------- views


@external
@view
def product(product_id: uint256) -> Product:
    """
    @notice Product `product_id` (see `Product`).
    @dev Reverts for an id never used ("unknown product").
    """
    assert self._products[product_id].assessor != empty(address), "unknown product"
    return self._products[product_id]


@external
@view
def policy(policy_id: uint256) -> Policy:
    """
    @notice Policy `policy_id` (see `Policy`): `status` is ACTIVE,
            CLAIMING, PAID or CLOSED; `request_id` is the oracle request
            of its latest claim.
    @dev Reverts for an id never used ("unknown policy").
    """
    assert self._policies[policy_id].status != 0, "unknown policy"
    return self._policies[policy_id]


@external
@view
def free_capital() -> uint256:
    """
    @notice What the insurer may take back, and what new policies can
            reserve: `pool - reserved`.
    """
    return self.pool - self.reserved


# ---------------------------------------------------------------------------------------------------- internal


@internal
@view
def _check_insurer():
    assert msg.sender == insurer, "caller is not the insurer"


@internal
@view
def _check_product(product_id: uint256):
    """
    @dev The product exists ("unknown product") and is open ("product
         closed").
    """
    assert self._products[product_id].assessor != empty(address), "unknown product"
    assert self._products[product_id].open, "product closed"


@internal
def _pull(amount: uint256):
    """
    @dev Takes `amount` of the token from the caller with `transferFrom`.
    """
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), (
        "token transfer failed"
    )

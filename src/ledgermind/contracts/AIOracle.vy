# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title AIOracle
@license Apache-2.0
@notice An optimistic oracle for AI decisions. An oracle (an account
        running a registered model off chain) answers a request with a
        commitment, not the output itself: the digests of the model, the
        input and the full output (which stays off chain, whatever its
        size), where the signed decision statement sits in the oracle's
        transparency log (`log_id`, the SHA-256 of the log's origin, the
        name its checkpoints carry, and `receipt_log_index`), and the
        small `decision`
        (an int256: a class, or a score) a consumer contract acts on.

        Oracles `register` the model digests they serve (an empty list:
        any model) and post a bond in this contract's ERC-20 `token`.
        Each answer must be backed by the `stake` its requester asked
        for: `fulfill` locks that much of the oracle's bond until the
        answer is final, so every outstanding answer is fully backed and
        the free rest of the bond can be withdrawn at any time
        (`unbond`).

        Life of a request (ids 1, 2, 3...):
        1. REQUESTED: anyone `request`s an answer from a named oracle
           that serves the model, escrowing a `fee` (pulled with
           `transferFrom`). The oracle has `response_window` seconds to
           `fulfill`; after that the request is EXPIRED and anyone may
           `cancel` it, which refunds the fee to the requester.
        2. FULFILLED: for `dispute_window` seconds anyone but the oracle
           may `dispute` the answer, claiming another output digest or
           decision, with a bond of `dispute_bond`. Anyone can check an
           answer: the model is in the registry by digest, the input by
           its digest, the receipt in the oracle's log.
        3. DISPUTED: re-running a model on chain is impossible, so the
           `resolver` (an appointed account: a committee's multisig)
           re-runs the registered model off chain on the input and, within
           `resolution_window` seconds, `resolve`s with the correct output
           digest and decision and the digest of the statement that
           records its re-run (`evidence`). Its verdict is final. The
           answer was wrong if the verdict differs from it in output
           digest or decision; then the stake locked for it is slashed:
           half (rounded up) to the challenger, half to the requester (the
           party the wrong answer harmed), the challenger's bond is
           returned and the requester's fee refunded; the verdict becomes
           the decision (OVERTURNED). Otherwise the challenger's bond and
           the fee go to the oracle (UPHELD). Half goes to the requester,
           not all to the challenger, so that an oracle which disputes its
           own wrong answer from another account, ahead of an honest
           challenger, still loses half its stake and its fee.
        4. FINAL once the dispute window passed undisputed (UNCHALLENGED)
           or the resolver ruled; also when the resolver let its window
           pass (UNRESOLVED: the answer stands, the challenger's bond is
           returned). A final decision never changes; consumers read it
           with `result` (pull: no callback, so no callback reentrancy or
           gas griefing, and finality never waits on a consumer). Anyone
           may then `finalize` an unsettled request (SETTLED), which
           unlocks the stake and pays the fee to the oracle; `resolve`
           settles at once.

        One dispute per request. Why an arbiter, not a vote: registered
        models are deterministic, so whether an answer is wrong is not a
        matter of opinion: anyone who re-runs the model on the input gets
        the same output digest. A vote would add no truth, only latency
        and bribery surface; what matters is that the one ruling is
        checkable. The resolver (the deployer at first; a consortium
        hands the role to its multisig with `set_resolver`) is the only
        trusted role: it rules on disputes and sets the windows. Its
        verdicts, like every other step, are events, and its evidence
        digest names the log statement of its re-run, so a wrong verdict
        is publicly provable.

        Money: one ERC-20 for bonds, fees and dispute bonds (fixed at
        deployment), so that a stake, the fee and the value a consumer
        puts at risk are in one unit. Every amount owed is credited to
        `withdrawable[account]` and collected with `withdraw` (pull
        payments). The contract's token balance equals the bonds, plus
        the fees of requests not settled or cancelled, plus the bonds of
        disputes not resolved, plus the credited balances not yet
        withdrawn. Fee-on-transfer and rebasing tokens are not supported:
        the contract credits the amounts it was asked to move. Every
        state-changing function holds Vyper's reentrancy lock and follows
        checks-effects-interactions.
"""

from ethereum.ercs import IERC20


# @dev Most model digests one oracle names.
MAX_MODELS: public(constant(uint256)) = 32

# @dev Longest response, dispute or resolution window, in seconds (30 days).
MAX_WINDOW: public(constant(uint256)) = 30 * 86_400

# @dev Share of a slashed stake that goes to the challenger, in basis points
# (rounded up); the rest goes to the requester.
CHALLENGER_SHARE_BPS: public(constant(uint256)) = 5_000

# @dev Basis points in a whole.
BPS: public(constant(uint256)) = 10_000

# @dev Largest fee, stake, bond or dispute bond: every sum of them fits.
MAX_AMOUNT: public(constant(uint256)) = 2**128

# @dev Request states, as `state` reports them (0: no such request).
# REQUESTED, FULFILLED, DISPUTED, SETTLED and CANCELLED are stored; EXPIRED
# (REQUESTED past the response deadline) and FINAL (final, not yet
# settled) follow from the time.
REQUESTED: public(constant(uint256)) = 1
EXPIRED: public(constant(uint256)) = 2
FULFILLED: public(constant(uint256)) = 3
DISPUTED: public(constant(uint256)) = 4
FINAL: public(constant(uint256)) = 5
SETTLED: public(constant(uint256)) = 6
CANCELLED: public(constant(uint256)) = 7

# @dev How a request's decision became final (0: not settled yet).
UNCHALLENGED: public(constant(uint256)) = 1
UPHELD: public(constant(uint256)) = 2
OVERTURNED: public(constant(uint256)) = 3
UNRESOLVED: public(constant(uint256)) = 4


struct Request:
    requester: address
    oracle: address
    model_digest: bytes32
    input_digest: bytes32
    fee: uint256
    stake: uint256
    response_deadline: uint256
    # stored status: REQUESTED, FULFILLED, DISPUTED, SETTLED or CANCELLED
    status: uint256
    # the oracle's answer (zero until fulfilled)
    output_digest: bytes32
    decision: int256
    receipt_log_index: uint256
    log_id: bytes32
    dispute_deadline: uint256
    # the dispute (zero unless disputed)
    challenger: address
    resolve_deadline: uint256
    # how it was settled, and the resolver's verdict when OVERTURNED
    outcome: uint256
    final_output_digest: bytes32
    final_decision: int256


struct _Oracle:
    registered: bool
    bond: uint256
    locked: uint256
    answered: uint256
    overturned: uint256


# @dev What `oracle_info` returns.
struct OracleInfo:
    registered: bool
    bond: uint256
    locked: uint256
    free: uint256
    answered: uint256
    overturned: uint256
    models: DynArray[bytes32, MAX_MODELS]


# @dev The ERC-20 of bonds, fees and dispute bonds.
token: public(immutable(address))

# @dev Seconds an oracle has to answer, a challenger to dispute, the
# resolver to rule. Set by the resolver (`set_windows`); each deadline is
# fixed when its phase starts (request, answer, dispute), so a change only
# affects phases that start after it.
response_window: public(uint256)
dispute_window: public(uint256)
resolution_window: public(uint256)

# @dev What a challenger puts up to dispute an answer.
dispute_bond: public(immutable(uint256))

# @dev The account whose verdict settles disputes.
resolver: public(address)

# @dev Number of requests; ids are 1..request_count.
request_count: public(uint256)

_requests: HashMap[uint256, Request]

_oracles: HashMap[address, _Oracle]

# @dev oracle -> the model digests it serves (empty: any model).
_models: HashMap[address, DynArray[bytes32, MAX_MODELS]]

# @dev oracle -> model digest -> named in its list.
_serves: HashMap[address, HashMap[bytes32, bool]]

# @dev account -> amount it can withdraw.
withdrawable: public(HashMap[address, uint256])


event OracleRegistered:
    oracle: indexed(address)
    bond: uint256
    models: DynArray[bytes32, MAX_MODELS]


event ModelsSet:
    oracle: indexed(address)
    models: DynArray[bytes32, MAX_MODELS]


event BondAdded:
    oracle: indexed(address)
    amount: uint256
    bond: uint256


event Unbonded:
    oracle: indexed(address)
    amount: uint256
    bond: uint256


event Requested:
    request_id: indexed(uint256)
    requester: indexed(address)
    oracle: indexed(address)
    model_digest: bytes32
    input_digest: bytes32
    fee: uint256
    stake: uint256
    response_deadline: uint256


event Fulfilled:
    request_id: indexed(uint256)
    oracle: indexed(address)
    output_digest: bytes32
    decision: int256
    receipt_log_index: uint256
    log_id: bytes32
    dispute_deadline: uint256


event Disputed:
    request_id: indexed(uint256)
    challenger: indexed(address)
    claimed_output_digest: bytes32
    claimed_decision: int256
    bond: uint256
    resolve_deadline: uint256


event Resolved:
    request_id: indexed(uint256)
    resolver: indexed(address)
    overturned: bool
    output_digest: bytes32
    decision: int256
    evidence: bytes32


event Slashed:
    request_id: indexed(uint256)
    oracle: indexed(address)
    challenger: indexed(address)
    stake: uint256
    to_challenger: uint256
    to_requester: uint256


event Settled:
    request_id: indexed(uint256)
    outcome: uint256
    output_digest: bytes32
    decision: int256


event Cancelled:
    request_id: indexed(uint256)
    requester: indexed(address)
    refund: uint256


event Withdrawn:
    account: indexed(address)
    amount: uint256


event WindowsChanged:
    response_window: uint256
    dispute_window: uint256
    resolution_window: uint256


event ResolverChanged:
    previous: indexed(address)
    resolver: indexed(address)


@deploy
def __init__(
    _token: address,
    _response_window: uint256,
    _dispute_window: uint256,
    _resolution_window: uint256,
    _dispute_bond: uint256,
):
    """
    @notice Fixes the token and the dispute bond, sets the windows, and
            appoints the deployer as the first resolver (it hands the role
            over with `set_resolver`).
    @dev Requires, in this order: `_token` is a contract ("token is not a
         contract"); each window
         in 1..MAX_WINDOW ("response window out of range", "dispute
         window out of range", "resolution window out of range"); a
         dispute bond in 1..MAX_AMOUNT ("dispute bond out of range": a
         free dispute would let anyone delay every decision).
    """
    assert _token.is_contract, "token is not a contract"
    self._set_windows(_response_window, _dispute_window, _resolution_window)
    assert _dispute_bond != 0 and _dispute_bond <= MAX_AMOUNT, "dispute bond out of range"
    token = _token
    dispute_bond = _dispute_bond
    self.resolver = msg.sender
    log ResolverChanged(previous=empty(address), resolver=msg.sender)


# ---------------------------------------------------------------------------------------------------- oracles


@external
@nonreentrant
def register(models: DynArray[bytes32, MAX_MODELS], bond: uint256):
    """
    @notice Registers the caller as an oracle serving `models` (an empty
            list: any model), with a first `bond` (may be 0; pulled with
            `transferFrom`: approve this contract first).
    @dev Requires, in this order: the caller is not registered ("already
         registered"); the digests are non-zero ("zero model digest") and
         distinct ("duplicate model digest"); `bond <= MAX_AMOUNT` ("amount
         out of range"); then a successful `transferFrom` ("token transfer
         failed", or the token's own reason). Emits `OracleRegistered`.
    """
    assert not self._oracles[msg.sender].registered, "already registered"
    self._set_models(msg.sender, models)
    assert bond <= MAX_AMOUNT, "amount out of range"
    self._oracles[msg.sender].registered = True
    self._oracles[msg.sender].bond = bond
    log OracleRegistered(oracle=msg.sender, bond=bond, models=models)
    if bond != 0:
        self._pull(bond)


@external
@nonreentrant
def set_models(models: DynArray[bytes32, MAX_MODELS]):
    """
    @notice Replaces the caller's list of served models (empty: any
            model). Requests already made are not affected.
    @dev Requires, in this order: a registered caller ("not a registered
         oracle"); non-zero ("zero model digest") and distinct ("duplicate
         model digest") digests. Emits `ModelsSet`.
    """
    assert self._oracles[msg.sender].registered, "not a registered oracle"
    for old: bytes32 in self._models[msg.sender]:
        self._serves[msg.sender][old] = False
    self._set_models(msg.sender, models)
    log ModelsSet(oracle=msg.sender, models=models)


@external
@nonreentrant
def add_bond(amount: uint256):
    """
    @notice Adds `amount` to the caller's bond (pulled with
            `transferFrom`).
    @dev Requires, in this order: a registered caller ("not a registered
         oracle"); `0 < amount` ("zero amount"); a bond that stays at most
         MAX_AMOUNT ("amount out of range"); then a successful
         `transferFrom` ("token transfer failed", or the token's own
         reason). Emits `BondAdded`.
    """
    assert self._oracles[msg.sender].registered, "not a registered oracle"
    assert amount != 0, "zero amount"
    bond: uint256 = self._oracles[msg.sender].bond
    assert amount <= MAX_AMOUNT - bond, "amount out of range"
    bond += amount
    self._oracles[msg.sender].bond = bond
    log BondAdded(oracle=msg.sender, amount=amount, bond=bond)
    self._pull(amount)


@external
@nonreentrant
def unbond(amount: uint256):
    """
    @notice Moves `amount` of the caller's free bond (bond minus the
            stakes locked for answers not final) to its `withdrawable`
            balance; collect it with `withdraw`.
    @dev Requires, in this order: a registered caller ("not a registered
         oracle"); `0 < amount` ("zero amount"); `amount <= bond - locked`
         ("amount above the free bond"). Emits `Unbonded`.
    """
    assert self._oracles[msg.sender].registered, "not a registered oracle"
    assert amount != 0, "zero amount"
    bond: uint256 = self._oracles[msg.sender].bond
    assert amount <= bond - self._oracles[msg.sender].locked, "amount above the free bond"
    bond -= amount
    self._oracles[msg.sender].bond = bond
    self.withdrawable[msg.sender] += amount
    log Unbonded(oracle=msg.sender, amount=amount, bond=bond)


# --------------------------------------------------------------------------------------------------- requests


@external
@nonreentrant
def request(oracle: address, model_digest: bytes32, input_digest: bytes32, fee: uint256, stake: uint256) -> uint256:
    """
    @notice Asks `oracle` to run the model `model_digest` on the input
            `input_digest` and returns the request id (the previous id
            + 1). The `fee` (may be 0) is pulled from the caller and
            escrowed until the answer is final; `stake` is how much of the
            oracle's bond must back the answer (what the requester puts at
            risk on it, e.g. an insurance claim's coverage). An oracle is
            free to leave a request it does not want unanswered: it then
            expires after `response_window` seconds and `cancel` refunds
            the fee.
    @dev Requires, in this order: `oracle` is registered ("not a
         registered oracle"); non-zero digests ("zero digest"); `oracle`
         serves the model ("oracle does not serve the model"); `fee` and
         `stake` at most MAX_AMOUNT ("amount out of range"); then, for a
         non-zero fee, a successful `transferFrom` ("token transfer
         failed", or the token's own reason). Emits `Requested`.
    """
    assert self._oracles[oracle].registered, "not a registered oracle"
    assert model_digest != empty(bytes32) and input_digest != empty(bytes32), "zero digest"
    assert self._serves_model(oracle, model_digest), "oracle does not serve the model"
    assert fee <= MAX_AMOUNT and stake <= MAX_AMOUNT, "amount out of range"

    request_id: uint256 = self.request_count + 1
    self.request_count = request_id
    response_deadline: uint256 = block.timestamp + self.response_window
    # field by field: the fields still zero would cost 2,200 gas each to write again
    self._requests[request_id].requester = msg.sender
    self._requests[request_id].oracle = oracle
    self._requests[request_id].model_digest = model_digest
    self._requests[request_id].input_digest = input_digest
    self._requests[request_id].fee = fee
    self._requests[request_id].stake = stake
    self._requests[request_id].response_deadline = response_deadline
    self._requests[request_id].status = REQUESTED
    log Requested(
        request_id=request_id,
        requester=msg.sender,
        oracle=oracle,
        model_digest=model_digest,
        input_digest=input_digest,
        fee=fee,
        stake=stake,
        response_deadline=response_deadline,
    )
    if fee != 0:
        self._pull(fee)
    return request_id


@external
@nonreentrant
def fulfill(request_id: uint256, output_digest: bytes32, decision: int256, receipt_log_index: uint256, log_id: bytes32):
    """
    @notice The oracle's answer to `request_id`: the digest of the full
            output (kept off chain), the `decision` consumers act on, and
            where the inference receipt is: entry `receipt_log_index` of
            the log `log_id`. Locks the request's stake in the oracle's
            bond and opens the dispute window (`dispute_window` seconds).
    @dev Requires, in this order: the request exists ("unknown request");
         the caller is its oracle ("caller is not the request's oracle");
         it is REQUESTED ("request already answered" once fulfilled,
         "request cancelled" once cancelled); the response window is open
         ("response window closed"); non-zero `output_digest` and `log_id`
         ("zero digest"); a free bond of at least the stake ("free bond
         below the stake": `add_bond` first). Emits `Fulfilled`.
    """
    oracle: address = self._requests[request_id].oracle
    assert oracle != empty(address), "unknown request"
    assert msg.sender == oracle, "caller is not the request's oracle"
    status: uint256 = self._requests[request_id].status
    assert status != CANCELLED, "request cancelled"
    assert status == REQUESTED, "request already answered"
    assert block.timestamp < self._requests[request_id].response_deadline, "response window closed"
    assert output_digest != empty(bytes32) and log_id != empty(bytes32), "zero digest"
    stake: uint256 = self._requests[request_id].stake
    locked: uint256 = self._oracles[oracle].locked
    assert stake <= self._oracles[oracle].bond - locked, "free bond below the stake"

    self._oracles[oracle].locked = locked + stake
    self._oracles[oracle].answered += 1
    dispute_deadline: uint256 = block.timestamp + self.dispute_window
    self._requests[request_id].status = FULFILLED
    self._requests[request_id].output_digest = output_digest
    self._requests[request_id].decision = decision
    self._requests[request_id].receipt_log_index = receipt_log_index
    self._requests[request_id].log_id = log_id
    self._requests[request_id].dispute_deadline = dispute_deadline
    log Fulfilled(
        request_id=request_id,
        oracle=oracle,
        output_digest=output_digest,
        decision=decision,
        receipt_log_index=receipt_log_index,
        log_id=log_id,
        dispute_deadline=dispute_deadline,
    )


@external
@nonreentrant
def dispute(request_id: uint256, claimed_output_digest: bytes32, claimed_decision: int256):
    """
    @notice Challenges the answer to `request_id`: the caller claims that
            re-running the model on the input gives `claimed_output_digest`
            and `claimed_decision`, and puts up `dispute_bond` (pulled
            with `transferFrom`). The resolver then has
            `resolution_window` seconds to rule. The challenger wins if the
            verdict differs from the oracle's answer, whether or not it
            matches the claim.
    @dev Requires, in this order: the request exists ("unknown request");
         it is FULFILLED ("request not answered" before, "request
         closed" once settled or cancelled, "already disputed" when
         disputed); the dispute window is open ("dispute window closed");
         the caller is not the oracle ("oracle cannot dispute its own
         answer"); a non-zero claimed digest ("zero digest") that, or
         whose decision, differs from the answer ("claim matches the
         answer"); then a successful `transferFrom` of the bond ("token
         transfer failed", or the token's own reason). Emits `Disputed`.
    """
    self._check_answered(request_id)
    assert self._requests[request_id].status != DISPUTED, "already disputed"
    assert block.timestamp < self._requests[request_id].dispute_deadline, "dispute window closed"
    assert msg.sender != self._requests[request_id].oracle, "oracle cannot dispute its own answer"
    assert claimed_output_digest != empty(bytes32), "zero digest"
    assert (
        claimed_output_digest != self._requests[request_id].output_digest
        or claimed_decision != self._requests[request_id].decision
    ), "claim matches the answer"

    resolve_deadline: uint256 = block.timestamp + self.resolution_window
    self._requests[request_id].status = DISPUTED
    self._requests[request_id].challenger = msg.sender
    self._requests[request_id].resolve_deadline = resolve_deadline
    log Disputed(
        request_id=request_id,
        challenger=msg.sender,
        claimed_output_digest=claimed_output_digest,
        claimed_decision=claimed_decision,
        bond=dispute_bond,
        resolve_deadline=resolve_deadline,
    )
    self._pull(dispute_bond)


@external
@nonreentrant
def resolve(request_id: uint256, output_digest: bytes32, decision: int256, evidence: bytes32):
    """
    @notice The resolver's verdict on the disputed request `request_id`:
            the output digest and decision that re-running the registered
            model on the input gives, and `evidence`, the digest of the
            statement that records the re-run. If the verdict differs from
            the oracle's answer the answer is OVERTURNED (the stake is
            slashed, see the contract's notice) and the verdict is the
            final decision; otherwise it is UPHELD. Settles the request.
    @dev Requires, in this order: the caller is the resolver ("caller is
         not the resolver"); the request exists ("unknown request") and is
         DISPUTED ("request not disputed"); the resolution window is open
         ("resolution window closed"); non-zero `output_digest` and
         `evidence` ("zero digest"). Emits `Resolved`, `Slashed` when
         overturned, and `Settled`.
    """
    assert msg.sender == self.resolver, "caller is not the resolver"
    oracle: address = self._requests[request_id].oracle
    assert oracle != empty(address), "unknown request"
    assert self._requests[request_id].status == DISPUTED, "request not disputed"
    assert block.timestamp < self._requests[request_id].resolve_deadline, "resolution window closed"
    assert output_digest != empty(bytes32) and evidence != empty(bytes32), "zero digest"

    overturned: bool = (
        output_digest != self._requests[request_id].output_digest or decision != self._requests[request_id].decision
    )
    log Resolved(
        request_id=request_id,
        resolver=msg.sender,
        overturned=overturned,
        output_digest=output_digest,
        decision=decision,
        evidence=evidence,
    )
    if not overturned:
        # the challenger's bond goes to the oracle with the fee
        self._settle(request_id, oracle, UPHELD, dispute_bond)
        return

    stake: uint256 = self._requests[request_id].stake
    challenger: address = self._requests[request_id].challenger
    requester: address = self._requests[request_id].requester
    to_challenger: uint256 = (stake * CHALLENGER_SHARE_BPS + BPS - 1) // BPS
    to_requester: uint256 = stake - to_challenger
    # the stake was locked in the bond at fulfil and is still there: locked <= bond throughout
    self._oracles[oracle].locked -= stake
    self._oracles[oracle].bond -= stake
    self._oracles[oracle].overturned += 1
    self.withdrawable[challenger] += to_challenger + dispute_bond
    self.withdrawable[requester] += to_requester + self._requests[request_id].fee
    self._requests[request_id].status = SETTLED
    self._requests[request_id].outcome = OVERTURNED
    self._requests[request_id].final_output_digest = output_digest
    self._requests[request_id].final_decision = decision
    log Slashed(
        request_id=request_id,
        oracle=oracle,
        challenger=challenger,
        stake=stake,
        to_challenger=to_challenger,
        to_requester=to_requester,
    )
    log Settled(request_id=request_id, outcome=OVERTURNED, output_digest=output_digest, decision=decision)


@external
@nonreentrant
def finalize(request_id: uint256) -> uint256:
    """
    @notice Settles a request whose decision became final by the passing
            of time, and returns its outcome: UNCHALLENGED once the
            dispute window passed without a dispute, UNRESOLVED once the
            resolution window passed without a verdict (the answer stands
            and the challenger's bond is returned). Unlocks the stake and
            credits the fee to the oracle. Anyone may call it; consumers
            need not (`result` reports a final decision either way).
    @dev Requires, in this order: the request exists ("unknown request");
         it is FULFILLED or DISPUTED ("request not answered" before,
         "request closed" once settled or cancelled); the dispute window
         (undisputed) or the resolution window (disputed) has passed
         ("dispute window still open", "resolution window still open").
         Emits `Settled`.
    """
    self._check_answered(request_id)
    oracle: address = self._requests[request_id].oracle
    if self._requests[request_id].status == FULFILLED:
        assert block.timestamp >= self._requests[request_id].dispute_deadline, "dispute window still open"
        self._settle(request_id, oracle, UNCHALLENGED, 0)
        return UNCHALLENGED
    assert block.timestamp >= self._requests[request_id].resolve_deadline, "resolution window still open"
    # nobody was proven wrong: the challenger gets its bond back, the oracle its fee
    self.withdrawable[self._requests[request_id].challenger] += dispute_bond
    self._settle(request_id, oracle, UNRESOLVED, 0)
    return UNRESOLVED


@external
@nonreentrant
def cancel(request_id: uint256):
    """
    @notice Closes a request its oracle did not answer in time and
            credits the fee back to the requester. Anyone may call it.
    @dev Requires, in this order: the request exists ("unknown request");
         it is REQUESTED ("request already answered", "request
         cancelled"); its response window has passed ("response window
         still open"). Emits `Cancelled`.
    """
    status: uint256 = self._requests[request_id].status
    assert status != 0, "unknown request"
    assert status != CANCELLED, "request cancelled"
    assert status == REQUESTED, "request already answered"
    assert block.timestamp >= self._requests[request_id].response_deadline, "response window still open"
    requester: address = self._requests[request_id].requester
    fee: uint256 = self._requests[request_id].fee
    self._requests[request_id].status = CANCELLED
    self.withdrawable[requester] += fee
    log Cancelled(request_id=request_id, requester=requester, refund=fee)


@external
@nonreentrant
def withdraw() -> uint256:
    """
    @notice Sends the caller its whole `withdrawable` balance (fees,
            unbonded bond, dispute bonds and shares of slashed stakes,
            refunds) and returns the amount.
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


@external
@nonreentrant
def set_resolver(new_resolver: address):
    """
    @notice Hands the resolver role to `new_resolver` (e.g. a new
            committee multisig). Open disputes go to the new resolver.
    @dev Requires the caller to be the resolver ("caller is not the
         resolver") and a non-zero address ("zero resolver"). Emits
         `ResolverChanged`.
    """
    assert msg.sender == self.resolver, "caller is not the resolver"
    assert new_resolver != empty(address), "zero resolver"
    self.resolver = new_resolver
    log ResolverChanged(previous=msg.sender, resolver=new_resolver)


@external
@nonreentrant
def set_windows(_response_window: uint256, _dispute_window: uint256, _resolution_window: uint256):
    """
    @notice Sets the response, dispute and resolution windows, in seconds,
            for the phases that start from now on (deadlines already set
            stay as they are).
    @dev Requires the caller to be the resolver ("caller is not the
         resolver") and each window in 1..MAX_WINDOW ("response window out
         of range", "dispute window out of range", "resolution window out
         of range"). Emits `WindowsChanged`.
    """
    assert msg.sender == self.resolver, "caller is not the resolver"
    self._set_windows(_response_window, _dispute_window, _resolution_window)


# ------------------------------------------------------------------------------------------------------- views


@external
@view
def request_info(request_id: uint256) -> Request:
    """
    @notice Everything stored about request `request_id` (see `Request`);
            `status` is the stored one (see `state` for the one that
            counts the time).
    @dev Reverts for an id never used ("unknown request").
    """
    assert self._requests[request_id].status != 0, "unknown request"
    return self._requests[request_id]


@external
@view
def state(request_id: uint256) -> uint256:
    """
    @notice The state of request `request_id` now: 0 (no such request),
            REQUESTED, EXPIRED (unanswered past its response deadline:
            `cancel` it), FULFILLED (dispute window open), DISPUTED
            (awaiting the resolver), FINAL (final, `finalize` not called
            yet), SETTLED or CANCELLED.
    """
    status: uint256 = self._requests[request_id].status
    if status == REQUESTED:
        if block.timestamp >= self._requests[request_id].response_deadline:
            return EXPIRED
    elif status == FULFILLED:
        if block.timestamp >= self._requests[request_id].dispute_deadline:
            return FINAL
    elif status == DISPUTED:
        if block.timestamp >= self._requests[request_id].resolve_deadline:
            return FINAL
    return status


@external
@view
def result(request_id: uint256) -> (bool, int256, bytes32):
    """
    @notice `(final, decision, output_digest)` of request `request_id`:
            `final` is true once the decision can no longer change
            (FINAL or SETTLED); the decision and digest are then the
            resolver's verdict if the answer was overturned, the oracle's
            answer otherwise. Before that, the oracle's answer so far (all
            zero before it answers), not to be acted on.
    """
    r: Request = self._requests[request_id]
    if r.outcome == OVERTURNED:
        return (True, r.final_decision, r.final_output_digest)
    final: bool = r.status == SETTLED
    if r.status == FULFILLED:
        final = block.timestamp >= r.dispute_deadline
    elif r.status == DISPUTED:
        final = block.timestamp >= r.resolve_deadline
    return (final, r.decision, r.output_digest)


@external
@view
def oracle_info(oracle: address) -> OracleInfo:
    """
    @notice `oracle`'s registration: whether it is registered, its bond,
            the part locked behind answers not final, the free rest, how
            many requests it answered and how many of its answers were
            overturned, and the models it serves (empty: any).
    """
    o: _Oracle = self._oracles[oracle]
    return OracleInfo(
        registered=o.registered,
        bond=o.bond,
        locked=o.locked,
        free=o.bond - o.locked,
        answered=o.answered,
        overturned=o.overturned,
        models=self._models[oracle],
    )


@external
@view
def serves(oracle: address, model_digest: bytes32) -> bool:
    """
    @notice Whether `oracle` is registered and serves `model_digest` (it
            names it, or it serves any model).
    """
    return self._oracles[oracle].registered and self._serves_model(oracle, model_digest)


# ---------------------------------------------------------------------------------------------------- internal


@internal
@view
def _serves_model(oracle: address, model_digest: bytes32) -> bool:
    return len(self._models[oracle]) == 0 or self._serves[oracle][model_digest]


@internal
def _set_models(oracle: address, models: DynArray[bytes32, MAX_MODELS]):
    """
    @dev Stores `models` as `oracle`'s list; the previous list's flags
         must be cleared already. Checks non-zero ("zero model digest")
         and distinct ("duplicate model digest") digests.
    """
    for m: bytes32 in models:
        assert m != empty(bytes32), "zero model digest"
        assert not self._serves[oracle][m], "duplicate model digest"
        self._serves[oracle][m] = True
    self._models[oracle] = models


@internal
@view
def _check_answered(request_id: uint256):
    """
    @dev The request exists ("unknown request") and is FULFILLED or
         DISPUTED ("request not answered" when REQUESTED, "request closed"
         when SETTLED or CANCELLED).
    """
    status: uint256 = self._requests[request_id].status
    assert status != 0, "unknown request"
    assert status != REQUESTED, "request not answered"
    assert status == FULFILLED or status == DISPUTED, "request closed"


@internal
def _settle(request_id: uint256, oracle: address, outcome: uint256, extra: uint256):
    """
    @dev Settles a request whose answer stands: unlocks its stake, credits
         the fee (and `extra`, a lost dispute bond) to the oracle, records
         `outcome` and emits `Settled`.
    """
    self._oracles[oracle].locked -= self._requests[request_id].stake
    amount: uint256 = self._requests[request_id].fee + extra
    if amount != 0:
        self.withdrawable[oracle] += amount
    self._requests[request_id].status = SETTLED
    self._requests[request_id].outcome = outcome
    log Settled(
        request_id=request_id,
        outcome=outcome,
        output_digest=self._requests[request_id].output_digest,
        decision=self._requests[request_id].decision,
    )


@internal
def _set_windows(_response_window: uint256, _dispute_window: uint256, _resolution_window: uint256):
    assert _response_window != 0 and _response_window <= MAX_WINDOW, "response window out of range"
    assert _dispute_window != 0 and _dispute_window <= MAX_WINDOW, "dispute window out of range"
    assert _resolution_window != 0 and _resolution_window <= MAX_WINDOW, "resolution window out of range"
    self.response_window = _response_window
    self.dispute_window = _dispute_window
    self.resolution_window = _resolution_window
    log WindowsChanged(
        response_window=_response_window, dispute_window=_dispute_window, resolution_window=_resolution_window
    )


@internal
def _pull(amount: uint256):
    """
    @dev Takes `amount` of the token from the caller with `transferFrom`.
    """
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), (
        "token transfer failed"
    )

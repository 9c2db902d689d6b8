# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title Federation
@license Apache-2.0
@notice On-chain coordination of federated learning: who takes part in a
        task, what each participant submitted in each round (committed
        first, revealed later), what the aggregator concluded, and who is
        paid or slashed for it. Model weights never come on chain, only
        their digests (bytes32, e.g. sha-256 of the serialised weights).

        A task (ids 1, 2, 3...) is created by its coordinator, who also
        aggregates: it names an ERC-20 `token` (stakes and rewards), the
        digests of the model architecture, the initial weights and the
        approved validation dataset, the number of rounds, the reward
        pool (pulled from the coordinator with `transferFrom` at
        creation), the minimum stake, the commit and reveal windows in
        seconds, the most participants (at most MAX_PARTICIPANTS) and the
        quorum (the fewest reveals a round needs to be finalized).

        Life of a task:
        1. OPEN: anyone but the coordinator `join`s with a stake of at
           least the minimum (pulled with `transferFrom`). Deny by
           default: only joined, unslashed participants may commit. The
           coordinator may `cancel` an OPEN task.
        2. RUNNING, once per round: the coordinator `start_round`s with the
           global model digest, which opens the commit window. Each
           participant commits `commitment(task_id, round, participant,
           update_digest, salt)` = `keccak256(abi_encode(task_id, round,
           participant, update_digest, salt))` before the commit deadline,
           then reveals `(update_digest, salt)` once the commit phase is
           over and before the reveal deadline. The commit phase is over at
           the commit deadline, or earlier as soon as every active
           participant (joined and not slashed: `active_participants`; the
           coordinator never is one) has committed in the round, i.e. the
           round's `commits` equal `active_participants`: nobody can commit
           any more then. Commit-reveal stops update copying: every
           commitment is fixed before any update is disclosed, and the
           participant's address is in it, so another's commitment cannot
           be reused either.
        3. Once the reveal deadline has passed (or, before it, as soon as
           the commit phase is over and every commitment of the round was
           revealed) the coordinator `finalize_round`s: the aggregated
           model digest, a score in basis points (together <= 10,000) for
           some of the participants that revealed, and the flagged ones
           among those that revealed, each with a bytes32 reason (a reason
           code, or the digest of the statement that explains it). Each
           scored participant is credited `round_reward * score // 10,000`,
           where `round_reward = reward_pool // rounds`; rounding dust and
           unused basis points stay in the pool. A flagged participant is
           slashed: its whole stake moves into the task's pool and it
           cannot commit again (rewards already credited stay its own). A
           participant that committed but did not reveal gets nothing for
           the round and is not slashed. Finalizing needs at least `quorum`
           reveals; below that the coordinator `abort_round`s instead,
           which pays nothing. Either way the task moves on to the next
           round, and after the last one it is FINISHED.
        4. FINISHED or CANCELLED: each unslashed participant
           `reclaim_stake`s its stake, and the coordinator `reclaim_pool`s
           what is left of the pool (undistributed rewards, dust, slashed
           stakes).

        Slashed stakes go to the pool, which returns to the coordinator at
        the end: the coordinator, who flags, profits from flagging. The
        coordinator is trusted with scores and flags anyway (it can score
        anyone zero); the flags and their reasons are public, in events,
        for anyone to audit against the statements they name.

        A coordinator that stops acting does not lock stakes for ever:
        once its deadline (`task(..).deadline`: STALL_TIMEOUT after
        creation, after the reveal deadline of the open round, or after the
        last round closed) has passed, anyone may `abandon` the task, which
        cancels an OPEN task and finishes a RUNNING one (an open round
        pays nothing); then stakes and pool are reclaimed as above.

        Money: every amount owed is credited to `withdrawable[account]
        [token]` and collected with `withdraw(token)` (pull payments). For
        each token, the contract's balance equals the sum, over tasks in
        that token, of the remaining pool and the stakes held, plus the
        credited balances not yet withdrawn. Fee-on-transfer and rebasing
        tokens are not supported: the contract credits the amounts it was
        asked to move. Every state-changing function holds Vyper's
        reentrancy lock and follows checks-effects-interactions.
"""

from ethereum.ercs import IERC20


# @dev Most participants of one task (and of one finalize call's lists).
MAX_PARTICIPANTS: public(constant(uint256)) = 64

# @dev Most rounds of one task.
MAX_ROUNDS: public(constant(uint256)) = 1_000

# @dev Longest commit or reveal window, in seconds (30 days).
MAX_WINDOW: public(constant(uint256)) = 30 * 86_400

# @dev Time the coordinator has to act before anyone may abandon its task
# (30 days).
STALL_TIMEOUT: public(constant(uint256)) = 30 * 86_400

# @dev Basis points in a whole.
BPS: public(constant(uint256)) = 10_000

# @dev Task status (0: no such task).
TASK_OPEN: public(constant(uint256)) = 1
TASK_RUNNING: public(constant(uint256)) = 2
TASK_FINISHED: public(constant(uint256)) = 3
TASK_CANCELLED: public(constant(uint256)) = 4

# @dev Round status (0: not started).
ROUND_OPEN: public(constant(uint256)) = 1
ROUND_FINALIZED: public(constant(uint256)) = 2
ROUND_ABORTED: public(constant(uint256)) = 3

# @dev Participant state in a task (0: never joined).
MEMBER_ACTIVE: public(constant(uint256)) = 1
MEMBER_SLASHED: public(constant(uint256)) = 2
MEMBER_RETURNED: public(constant(uint256)) = 3

# @dev Submission state of a participant in a round, as `submission`
# reports it (0: nothing committed).
SUB_COMMITTED: public(constant(uint256)) = 1
SUB_REVEALED: public(constant(uint256)) = 2
SUB_SCORED: public(constant(uint256)) = 3
SUB_FLAGGED: public(constant(uint256)) = 4

# @dev `_Submission.outcome` encoding: 0 = not judged, _SCORED | score <<
# _SCORE_SHIFT = scored, _FLAGGED = flagged.
_SCORED: constant(uint256) = 1
_FLAGGED: constant(uint256) = 2
_SCORE_SHIFT: constant(uint256) = 8


struct _Task:
    coordinator: address
    token: address
    model_digest: bytes32
    initial_weights: bytes32
    dataset_digest: bytes32
    rounds: uint256
    reward_pool: uint256
    min_stake: uint256
    commit_window: uint256
    reveal_window: uint256
    max_participants: uint256
    quorum: uint256
    pool: uint256
    staked: uint256
    # participants joined and not slashed: +1 on join, -1 on slash (reclaim_stake, once the task is over,
    # leaves it). Joining closes with the first round and slashing closes a round, so it does not change
    # while a round is open, and a round's commits (each by an active participant) never exceed it.
    active: uint256
    status: uint256
    round: uint256
    deadline: uint256


# @dev What `task` returns: the task, plus `round_reward` (reward_pool //
# rounds) and the number of participants that joined.
struct TaskInfo:
    coordinator: address
    token: address
    model_digest: bytes32
    initial_weights: bytes32
    dataset_digest: bytes32
    rounds: uint256
    reward_pool: uint256
    round_reward: uint256
    min_stake: uint256
    commit_window: uint256
    reveal_window: uint256
    max_participants: uint256
    quorum: uint256
    pool: uint256
    staked: uint256
    status: uint256
    round: uint256
    deadline: uint256
    participants: uint256


struct RoundInfo:
    global_digest: bytes32
    commit_deadline: uint256
    reveal_deadline: uint256
    aggregated_digest: bytes32
    commits: uint256
    reveals: uint256
    status: uint256
    rewarded: uint256
    slashed: uint256


struct _Member:
    stake: uint256
    state: uint256


struct _Submission:
    commitment: bytes32
    update_digest: bytes32
    outcome: uint256
    flag_reason: bytes32


# @dev Number of tasks created; task ids are 1..task_count.
task_count: public(uint256)

_tasks: HashMap[uint256, _Task]

# @dev task id -> participants, in joining order.
_members: HashMap[uint256, DynArray[address, MAX_PARTICIPANTS]]

# @dev task id -> participant -> stake and state.
_member: HashMap[uint256, HashMap[address, _Member]]

# @dev task id -> round -> round record.
_rounds: HashMap[uint256, HashMap[uint256, RoundInfo]]

# @dev task id -> round -> participant -> submission. A reveal stores a
# non-zero update digest, so "revealed" needs no slot of its own.
_subs: HashMap[uint256, HashMap[uint256, HashMap[address, _Submission]]]

# @dev account -> token -> amount it can withdraw.
withdrawable: public(HashMap[address, HashMap[address, uint256]])


event TaskCreated:
    task_id: indexed(uint256)
    coordinator: indexed(address)
    token: indexed(address)
    model_digest: bytes32
    initial_weights: bytes32
    dataset_digest: bytes32
    rounds: uint256
    reward_pool: uint256
    min_stake: uint256
    commit_window: uint256
    reveal_window: uint256
    max_participants: uint256
    quorum: uint256


event Joined:
    task_id: indexed(uint256)
    participant: indexed(address)
    stake: uint256


event RoundStarted:
    task_id: indexed(uint256)
    round: indexed(uint256)
    global_digest: bytes32
    commit_deadline: uint256
    reveal_deadline: uint256


event Committed:
    task_id: indexed(uint256)
    round: indexed(uint256)
    participant: indexed(address)
    commitment: bytes32


event Revealed:
    task_id: indexed(uint256)
    round: indexed(uint256)
    participant: indexed(address)
    update_digest: bytes32


event Rewarded:
    task_id: indexed(uint256)
    round: indexed(uint256)
    participant: indexed(address)
    score_bps: uint256
    amount: uint256


event Slashed:
    task_id: indexed(uint256)
    round: indexed(uint256)
    participant: indexed(address)
    stake: uint256
    reason: bytes32


event RoundFinalized:
    task_id: indexed(uint256)
    round: indexed(uint256)
    aggregated_digest: bytes32
    reveals: uint256
    rewarded: uint256
    slashed: uint256


event RoundAborted:
    task_id: indexed(uint256)
    round: indexed(uint256)
    reveals: uint256


event TaskFinished:
    task_id: indexed(uint256)


event TaskCancelled:
    task_id: indexed(uint256)


event TaskAbandoned:
    task_id: indexed(uint256)
    caller: indexed(address)
    round: uint256


event StakeReturned:
    task_id: indexed(uint256)
    participant: indexed(address)
    amount: uint256


event PoolReclaimed:
    task_id: indexed(uint256)
    coordinator: indexed(address)
    amount: uint256


event Withdrawn:
    account: indexed(address)
    token: indexed(address)
    amount: uint256


# ------------------------------------------------------------------------------------------------------ tasks


@external
@nonreentrant
def create_task(
    token: address,
    model_digest: bytes32,
    initial_weights: bytes32,
    dataset_digest: bytes32,
    rounds: uint256,
    reward_pool: uint256,
    min_stake: uint256,
    commit_window: uint256,
    reveal_window: uint256,
    max_participants: uint256,
    quorum: uint256,
) -> uint256:
    """
    @notice Creates a task coordinated by the caller and returns its id
            (the previous id + 1). The reward pool is pulled from the
            caller: approve this contract for `reward_pool` of `token`
            first.
    @dev Requires, in this order: `token` is a contract ("token is not a
         contract"); the three digests are non-zero ("zero digest");
         `1 <= rounds <= MAX_ROUNDS` ("rounds out of range"); a non-zero
         reward pool ("zero reward pool") small enough that no reward
         computation overflows (`<= (2**256 - 1) // 10,000`, "reward
         pool too large"); a non-zero minimum stake ("zero minimum
         stake"); `1 <= commit_window, reveal_window <= MAX_WINDOW`
         ("commit window out of range", "reveal window out of range");
         `1 <= max_participants <= MAX_PARTICIPANTS` ("max participants
         out of range"); `1 <= quorum <= max_participants` ("quorum out of
         range"); then a successful `transferFrom` ("token transfer
         failed", or the token's own reason). Emits `TaskCreated`.
    @param token The ERC-20 of stakes and rewards.
    @param model_digest Digest of the model architecture.
    @param initial_weights Digest of the initial weights.
    @param dataset_digest Digest of the approved validation dataset.
    @param rounds Number of rounds.
    @param reward_pool Total reward; each round pays at most reward_pool // rounds.
    @param min_stake Least stake a participant joins with.
    @param commit_window Seconds from `start_round` to the commit deadline.
    @param reveal_window Seconds from the commit deadline to the reveal deadline.
    @param max_participants Most participants.
    @param quorum Fewest reveals a round needs to be finalized.
    """
    assert token.is_contract, "token is not a contract"
    assert model_digest != empty(bytes32) and initial_weights != empty(bytes32) and dataset_digest != empty(bytes32), (
        "zero digest"
    )
    assert rounds != 0 and rounds <= MAX_ROUNDS, "rounds out of range"
    assert reward_pool != 0, "zero reward pool"
    assert reward_pool <= max_value(uint256) // BPS, "reward pool too large"
    assert min_stake != 0, "zero minimum stake"
    assert commit_window != 0 and commit_window <= MAX_WINDOW, "commit window out of range"
    assert reveal_window != 0 and reveal_window <= MAX_WINDOW, "reveal window out of range"
    assert max_participants != 0 and max_participants <= MAX_PARTICIPANTS, "max participants out of range"
    assert quorum != 0 and quorum <= max_participants, "quorum out of range"

    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    self._tasks[task_id] = _Task(
        coordinator=msg.sender,
        token=token,
        model_digest=model_digest,
        initial_weights=initial_weights,
        dataset_digest=dataset_digest,
        rounds=rounds,
        reward_pool=reward_pool,
        min_stake=min_stake,
        commit_window=commit_window,
        reveal_window=reveal_window,
        max_participants=max_participants,
        quorum=quorum,
        pool=reward_pool,
        staked=0,
        active=0,
        status=TASK_OPEN,
        round=0,
        deadline=block.timestamp + STALL_TIMEOUT,
    )
    log TaskCreated(
        task_id=task_id,
        coordinator=msg.sender,
        token=token,
        model_digest=model_digest,
        initial_weights=initial_weights,
        dataset_digest=dataset_digest,
        rounds=rounds,
        reward_pool=reward_pool,
        min_stake=min_stake,
        commit_window=commit_window,
        reveal_window=reveal_window,
        max_participants=max_participants,
        quorum=quorum,
    )
    self._pull(token, reward_pool)
    return task_id


@external
@nonreentrant
def join(task_id: uint256, stake: uint256):
    """
    @notice Joins task `task_id` with `stake` of its token, pulled from
            the caller (approve this contract first). The stake is held
            until the task is over, then returned with `reclaim_stake`,
            unless the participant is slashed.
    @dev Requires, in this order: the task exists ("unknown task") and is
         OPEN ("task not open"); the caller is not its coordinator
         ("coordinator cannot join") and has not joined ("already
         joined"); `stake >= min_stake` ("stake below minimum"); a free
         place ("task full"); then a successful `transferFrom` ("token
         transfer failed", or the token's own reason). Emits `Joined`.
    """
    status: uint256 = self._tasks[task_id].status
    assert status != 0, "unknown task"
    assert status == TASK_OPEN, "task not open"
    assert msg.sender != self._tasks[task_id].coordinator, "coordinator cannot join"
    assert self._member[task_id][msg.sender].state == 0, "already joined"
    assert stake >= self._tasks[task_id].min_stake, "stake below minimum"
    assert len(self._members[task_id]) < self._tasks[task_id].max_participants, "task full"

    self._members[task_id].append(msg.sender)
    self._member[task_id][msg.sender] = _Member(stake=stake, state=MEMBER_ACTIVE)
    self._tasks[task_id].staked += stake
    self._tasks[task_id].active += 1
    log Joined(task_id=task_id, participant=msg.sender, stake=stake)
    self._pull(self._tasks[task_id].token, stake)


@external
@nonreentrant
def cancel(task_id: uint256):
    """
    @notice Cancels a task that has not started: every participant may
            then `reclaim_stake` and the coordinator `reclaim_pool`.
    @dev Requires the task to exist ("unknown task"), the caller to be its
         coordinator ("caller is not the coordinator") and the task OPEN
         ("task not open"). Emits `TaskCancelled`.
    """
    self._check_coordinator(task_id)
    assert self._tasks[task_id].status == TASK_OPEN, "task not open"
    self._tasks[task_id].status = TASK_CANCELLED
    self._tasks[task_id].deadline = 0
    log TaskCancelled(task_id=task_id)


@external
@nonreentrant
def abandon(task_id: uint256):
    """
    @notice Ends a task whose coordinator missed its deadline (see the
            contract's notice): an OPEN task is cancelled, a RUNNING one
            finished (its open round, if any, is aborted and pays
            nothing). Anyone may call it.
    @dev Requires the task to exist ("unknown task"), to be OPEN or RUNNING
         ("task is over") and `block.timestamp >= deadline` ("coordinator
         not late"). Emits `TaskAbandoned`, then `TaskCancelled` or
         (`RoundAborted` and) `TaskFinished`.
    """
    status: uint256 = self._tasks[task_id].status
    assert status != 0, "unknown task"
    assert status == TASK_OPEN or status == TASK_RUNNING, "task is over"
    assert block.timestamp >= self._tasks[task_id].deadline, "coordinator not late"
    round: uint256 = self._tasks[task_id].round
    log TaskAbandoned(task_id=task_id, caller=msg.sender, round=round)
    self._tasks[task_id].deadline = 0
    if status == TASK_OPEN:
        self._tasks[task_id].status = TASK_CANCELLED
        log TaskCancelled(task_id=task_id)
        return
    if self._rounds[task_id][round].status == ROUND_OPEN:
        self._rounds[task_id][round].status = ROUND_ABORTED
        log RoundAborted(task_id=task_id, round=round, reveals=self._rounds[task_id][round].reveals)
    self._tasks[task_id].status = TASK_FINISHED
    log TaskFinished(task_id=task_id)


# ----------------------------------------------------------------------------------------------------- rounds


@external
@nonreentrant
def start_round(task_id: uint256, global_digest: bytes32) -> uint256:
    """
    @notice Starts the next round (1 for the first) with the global model
            `global_digest` and returns its number. Its commit window runs
            `commit_window` seconds from now, its reveal window
            `reveal_window` seconds after that. The first start closes
            joining.
    @dev Requires, in this order: the task exists ("unknown task"); the
         caller is its coordinator ("caller is not the coordinator"); the
         task is OPEN or RUNNING ("task is over"); for the first round, at
         least `quorum` participants ("not enough participants"); for a
         later one, the current round closed ("round in progress"); a
         non-zero digest ("zero model digest"). Emits `RoundStarted`.
    """
    self._check_coordinator(task_id)
    status: uint256 = self._tasks[task_id].status
    assert status == TASK_OPEN or status == TASK_RUNNING, "task is over"
    round: uint256 = self._tasks[task_id].round
    if status == TASK_OPEN:
        assert len(self._members[task_id]) >= self._tasks[task_id].quorum, "not enough participants"
        self._tasks[task_id].status = TASK_RUNNING
    else:
        assert self._rounds[task_id][round].status != ROUND_OPEN, "round in progress"
    assert global_digest != empty(bytes32), "zero model digest"

    round += 1
    commit_deadline: uint256 = block.timestamp + self._tasks[task_id].commit_window
    reveal_deadline: uint256 = commit_deadline + self._tasks[task_id].reveal_window
    self._tasks[task_id].round = round
    self._tasks[task_id].deadline = reveal_deadline + STALL_TIMEOUT
    # field by field: the record of a round never started is all zeros, and writing its zero fields again
    # would cost 2,200 gas each
    self._rounds[task_id][round].global_digest = global_digest
    self._rounds[task_id][round].commit_deadline = commit_deadline
    self._rounds[task_id][round].reveal_deadline = reveal_deadline
    self._rounds[task_id][round].status = ROUND_OPEN
    log RoundStarted(
        task_id=task_id,
        round=round,
        global_digest=global_digest,
        commit_deadline=commit_deadline,
        reveal_deadline=reveal_deadline,
    )
    return round


@external
@nonreentrant
def commit(task_id: uint256, round: uint256, commitment: bytes32):
    """
    @notice Commits the caller's update for `round` of `task_id`:
            `commitment = commitment(task_id, round, caller, update_digest,
            salt)` (see the `commitment` view), with a secret random salt.
    @dev Requires, in this order: the task exists ("unknown task") and is
         RUNNING ("task not running"); `round` is its current round ("not
         the current round") and still open ("round closed"); the caller
         joined ("not a participant") and was not slashed ("participant
         slashed"); `block.timestamp < commit_deadline` ("commit window
         closed"); a non-zero commitment ("zero commitment"); no earlier
         commitment in this round ("already committed"). Emits
         `Committed`.
    """
    self._check_open_round(task_id, round)
    member_state: uint256 = self._member[task_id][msg.sender].state
    assert member_state != 0, "not a participant"
    assert member_state == MEMBER_ACTIVE, "participant slashed"
    assert block.timestamp < self._rounds[task_id][round].commit_deadline, "commit window closed"
    assert commitment != empty(bytes32), "zero commitment"
    assert self._subs[task_id][round][msg.sender].commitment == empty(bytes32), "already committed"

    self._subs[task_id][round][msg.sender].commitment = commitment
    self._rounds[task_id][round].commits += 1
    log Committed(task_id=task_id, round=round, participant=msg.sender, commitment=commitment)


@external
@nonreentrant
def reveal(task_id: uint256, round: uint256, update_digest: bytes32, salt: bytes32):
    """
    @notice Reveals the update the caller committed to in `round` of
            `task_id`. Only revealed updates can be scored (or flagged).
    @dev Requires, in this order: the task exists ("unknown task") and is
         RUNNING ("task not running"); `round` is its current round ("not
         the current round") and still open ("round closed"); the commit
         phase is over ("commit window still open"): `block.timestamp >=
         commit_deadline`, or the round's `commits` equal
         `active_participants(task_id)` (every participant that may commit
         has committed in this round: slashed ones do not count, nor does
         the coordinator, which cannot join); `block.timestamp <
         reveal_deadline` ("reveal window closed"); the caller committed
         ("nothing committed") and has not revealed ("already revealed");
         a non-zero update digest ("zero update digest"); and
         `commitment(task_id, round, caller, update_digest, salt)` equals
         the commitment ("reveal does not match commitment"). Emits
         `Revealed`.
    """
    self._check_open_round(task_id, round)
    if block.timestamp < self._rounds[task_id][round].commit_deadline:
        # the commit phase ends early once everyone who may commit has: no commitment can come after a reveal
        assert self._rounds[task_id][round].commits == self._tasks[task_id].active, "commit window still open"
    assert block.timestamp < self._rounds[task_id][round].reveal_deadline, "reveal window closed"
    committed: bytes32 = self._subs[task_id][round][msg.sender].commitment
    assert committed != empty(bytes32), "nothing committed"
    assert self._subs[task_id][round][msg.sender].update_digest == empty(bytes32), "already revealed"
    assert update_digest != empty(bytes32), "zero update digest"
    assert self._commitment(task_id, round, msg.sender, update_digest, salt) == committed, (
        "reveal does not match commitment"
    )

    self._subs[task_id][round][msg.sender].update_digest = update_digest
    self._rounds[task_id][round].reveals += 1
    log Revealed(task_id=task_id, round=round, participant=msg.sender, update_digest=update_digest)


@external
@nonreentrant
def finalize_round(
    task_id: uint256,
    round: uint256,
    aggregated_digest: bytes32,
    scored: DynArray[address, MAX_PARTICIPANTS],
    scores_bps: DynArray[uint256, MAX_PARTICIPANTS],
    flagged: DynArray[address, MAX_PARTICIPANTS],
    reasons: DynArray[bytes32, MAX_PARTICIPANTS],
):
    """
    @notice Closes `round` of `task_id` with the aggregated model
            `aggregated_digest`: credits each `scored[i]` with
            `round_reward * scores_bps[i] // 10,000` and slashes each
            `flagged[i]` (its whole stake moves into the pool; it cannot
            commit again, and no later commit phase waits for it) for
            `reasons[i]`. Unused basis points and rounding dust stay in the
            pool. After the last round the task is FINISHED.
    @dev Requires, in this order: the task exists ("unknown task"); the
         caller is its coordinator ("caller is not the coordinator"); the
         task is RUNNING ("task not running"); `round` is its current
         round ("not the current round") and still open ("round closed");
         the reveal phase is over ("reveal window still open"):
         `block.timestamp >= reveal_deadline`, or, before it, the commit
         phase is over (`block.timestamp >= commit_deadline`, or `commits`
         equal the task's active participants, as for `reveal`) and
         every commitment was revealed (`reveals == commits`); at least
         `quorum` reveals ("below quorum"); a non-zero digest ("zero
         aggregated digest"); lists of matching lengths ("scores length
         mismatch", "flags length mismatch"); every scored participant
         revealed in this round ("score for a participant that did not
         reveal") and is scored once ("participant scored twice"); each
         score, and their sum, at most 10,000 ("scores above 10,000");
         every flagged participant revealed in this round ("flagged
         participant did not reveal"), is flagged once ("participant
         flagged twice") and not scored ("flagged participant was
         scored"). Emits `Rewarded` per scored participant, `Slashed` per
         flagged one, `RoundFinalized`, and `TaskFinished` after the last
         round.
    """
    self._check_coordinator(task_id)
    self._check_closable(task_id, round)
    reveals: uint256 = self._rounds[task_id][round].reveals
    assert reveals >= self._tasks[task_id].quorum, "below quorum"
    assert aggregated_digest != empty(bytes32), "zero aggregated digest"
    assert len(scored) == len(scores_bps), "scores length mismatch"
    assert len(flagged) == len(reasons), "flags length mismatch"

    token: address = self._tasks[task_id].token
    round_reward: uint256 = self._tasks[task_id].reward_pool // self._tasks[task_id].rounds
    total_bps: uint256 = 0
    rewarded: uint256 = 0
    for i: uint256 in range(len(scored), bound=MAX_PARTICIPANTS):
        who: address = scored[i]
        score: uint256 = scores_bps[i]
        assert score <= BPS, "scores above 10,000"
        total_bps += score
        assert self._subs[task_id][round][who].update_digest != empty(bytes32), (
            "score for a participant that did not reveal"
        )
        assert self._subs[task_id][round][who].outcome == 0, "participant scored twice"
        self._subs[task_id][round][who].outcome = _SCORED | (score << _SCORE_SHIFT)
        amount: uint256 = round_reward * score // BPS
        rewarded += amount
        if amount != 0:
            self.withdrawable[who][token] += amount
        log Rewarded(task_id=task_id, round=round, participant=who, score_bps=score, amount=amount)
    assert total_bps <= BPS, "scores above 10,000"

    slashed: uint256 = 0
    for i: uint256 in range(len(flagged), bound=MAX_PARTICIPANTS):
        who: address = flagged[i]
        assert self._subs[task_id][round][who].update_digest != empty(bytes32), "flagged participant did not reveal"
        outcome: uint256 = self._subs[task_id][round][who].outcome
        assert outcome != _FLAGGED, "participant flagged twice"
        assert outcome == 0, "flagged participant was scored"
        self._subs[task_id][round][who].outcome = _FLAGGED
        self._subs[task_id][round][who].flag_reason = reasons[i]
        # a participant that revealed in this round was active when it committed, and slashing only
        # happens here, once per participant (it can never commit again): its stake is still held
        stake: uint256 = self._member[task_id][who].stake
        self._member[task_id][who].state = MEMBER_SLASHED
        slashed += stake
        log Slashed(task_id=task_id, round=round, participant=who, stake=stake, reason=reasons[i])
    if len(flagged) != 0:
        # each flagged participant was active (it revealed) and is now slashed, once (flagged twice reverted)
        self._tasks[task_id].active -= len(flagged)

    # rewarded <= round_reward <= pool: every earlier round took at most round_reward from the pool
    self._tasks[task_id].pool = self._tasks[task_id].pool - rewarded + slashed
    self._tasks[task_id].staked -= slashed
    self._rounds[task_id][round].aggregated_digest = aggregated_digest
    self._rounds[task_id][round].status = ROUND_FINALIZED
    self._rounds[task_id][round].rewarded = rewarded
    self._rounds[task_id][round].slashed = slashed
    log RoundFinalized(
        task_id=task_id,
        round=round,
        aggregated_digest=aggregated_digest,
        reveals=reveals,
        rewarded=rewarded,
        slashed=slashed,
    )
    self._next(task_id, round)


@external
@nonreentrant
def abort_round(task_id: uint256, round: uint256):
    """
    @notice Closes `round` of `task_id` without aggregating, when fewer
            than `quorum` participants revealed: nobody is paid or
            slashed, and the task moves on to the next round (or is
            FINISHED after the last).
    @dev Requires, in this order: the task exists ("unknown task"); the
         caller is its coordinator ("caller is not the coordinator"); the
         task is RUNNING ("task not running"); `round` is its current
         round ("not the current round") and still open ("round closed");
         the reveal phase is over, as for `finalize_round` ("reveal window
         still open"); fewer than `quorum` reveals ("quorum reached:
         finalize instead"). Emits `RoundAborted`, and `TaskFinished` after
         the last round.
    """
    self._check_coordinator(task_id)
    self._check_closable(task_id, round)
    reveals: uint256 = self._rounds[task_id][round].reveals
    assert reveals < self._tasks[task_id].quorum, "quorum reached: finalize instead"
    self._rounds[task_id][round].status = ROUND_ABORTED
    log RoundAborted(task_id=task_id, round=round, reveals=reveals)
    self._next(task_id, round)


# ----------------------------------------------------------------------------------------------------- payments


@external
@nonreentrant
def reclaim_stake(task_id: uint256) -> uint256:
    """
    @notice Once the task is FINISHED or CANCELLED, credits the caller's
            stake back to its `withdrawable` balance (collect it with
            `withdraw`) and returns it.
    @dev Requires, in this order: the task exists ("unknown task") and is
         over ("task not over"); the caller joined ("not a participant"),
         was not slashed ("stake slashed") and has not reclaimed already
         ("stake already returned"). Emits `StakeReturned`.
    """
    self._check_over(task_id)
    state: uint256 = self._member[task_id][msg.sender].state
    assert state != 0, "not a participant"
    assert state != MEMBER_SLASHED, "stake slashed"
    assert state != MEMBER_RETURNED, "stake already returned"
    amount: uint256 = self._member[task_id][msg.sender].stake
    self._member[task_id][msg.sender].state = MEMBER_RETURNED
    self._tasks[task_id].staked -= amount
    self.withdrawable[msg.sender][self._tasks[task_id].token] += amount
    log StakeReturned(task_id=task_id, participant=msg.sender, amount=amount)
    return amount


@external
@nonreentrant
def reclaim_pool(task_id: uint256) -> uint256:
    """
    @notice Once the task is FINISHED or CANCELLED, credits what is left
            of its pool (undistributed rewards, rounding dust, slashed
            stakes) to the coordinator's `withdrawable` balance and returns
            it.
    @dev Requires, in this order: the task exists ("unknown task"); the
         caller is its coordinator ("caller is not the coordinator"); the
         task is over ("task not over"); a non-empty pool ("pool empty").
         Emits `PoolReclaimed`.
    """
    self._check_coordinator(task_id)
    self._check_over(task_id)
    amount: uint256 = self._tasks[task_id].pool
    assert amount != 0, "pool empty"
    self._tasks[task_id].pool = 0
    self.withdrawable[msg.sender][self._tasks[task_id].token] += amount
    log PoolReclaimed(task_id=task_id, coordinator=msg.sender, amount=amount)
    return amount


@external
@nonreentrant
def withdraw(token: address) -> uint256:
    """
    @notice Sends the caller its whole `withdrawable` balance of `token`
            (rewards, returned stakes, a reclaimed pool: every task in that
            token together) and returns the amount.
    @dev Requires a non-zero balance ("nothing to withdraw"). The balance
         is zeroed before the transfer; a failed transfer reverts
         everything ("token transfer failed", or the token's own reason).
         Emits `Withdrawn`.
    """
    amount: uint256 = self.withdrawable[msg.sender][token]
    assert amount != 0, "nothing to withdraw"
    self.withdrawable[msg.sender][token] = 0
    log Withdrawn(account=msg.sender, token=token, amount=amount)
    assert extcall IERC20(token).transfer(msg.sender, amount, default_return_value=True), "token transfer failed"
    return amount


# ------------------------------------------------------------------------------------------------------- views


@external
@view
def task(task_id: uint256) -> TaskInfo:
    """
    @notice Everything about task `task_id` (see `TaskInfo`): its
            parameters, `round_reward`, the remaining `pool`, the stakes
            held (`staked`), `status` (TASK_*), the current `round` (0
            before the first), the coordinator's `deadline` (0 once over)
            and the number of `participants`.
    @dev Reverts for an id never created ("unknown task").
    """
    self._check_exists(task_id)
    t: _Task = self._tasks[task_id]
    return TaskInfo(
        coordinator=t.coordinator,
        token=t.token,
        model_digest=t.model_digest,
        initial_weights=t.initial_weights,
        dataset_digest=t.dataset_digest,
        rounds=t.rounds,
        reward_pool=t.reward_pool,
        round_reward=t.reward_pool // t.rounds,
        min_stake=t.min_stake,
        commit_window=t.commit_window,
        reveal_window=t.reveal_window,
        max_participants=t.max_participants,
        quorum=t.quorum,
        pool=t.pool,
        staked=t.staked,
        status=t.status,
        round=t.round,
        deadline=t.deadline,
        participants=len(self._members[task_id]),
    )


@external
@view
def participants(task_id: uint256) -> DynArray[address, MAX_PARTICIPANTS]:
    """
    @notice The participants of task `task_id`, in joining order (slashed
            ones included; see `participant`).
    @dev Reverts for an id never created ("unknown task").
    """
    self._check_exists(task_id)
    return self._members[task_id]


@external
@view
def active_participants(task_id: uint256) -> uint256:
    """
    @notice The number of participants of task `task_id` that joined and
            were not slashed (the coordinator never joins; a stake
            returned once the task is over still counts). It is fixed
            while a round is open, and a round's commit phase is over as
            soon as its `commits` reach it (see `reveal`).
    @dev Reverts for an id never created ("unknown task").
    """
    self._check_exists(task_id)
    return self._tasks[task_id].active


@external
@view
def participant(task_id: uint256, account: address) -> (uint256, uint256):
    """
    @notice `(stake, state)` of `account` in task `task_id`: state 0 never
            joined, MEMBER_ACTIVE, MEMBER_SLASHED, MEMBER_RETURNED (stake
            reclaimed).
    """
    m: _Member = self._member[task_id][account]
    return (m.stake, m.state)


@external
@view
def round_info(task_id: uint256, round: uint256) -> RoundInfo:
    """
    @notice Round `round` of task `task_id`: the global model it started
            from, its deadlines, the aggregated model (zero until
            finalized), the numbers of commitments and reveals, `status`
            (0 not started, ROUND_OPEN, ROUND_FINALIZED, ROUND_ABORTED) and
            the amounts rewarded and slashed.
    @dev Reverts for an id never created ("unknown task").
    """
    self._check_exists(task_id)
    return self._rounds[task_id][round]


@external
@view
def submission(task_id: uint256, round: uint256, account: address) -> (bytes32, bytes32, uint256, uint256, bytes32):
    """
    @notice `(commitment, update_digest, state, score_bps, flag_reason)` of
            `account` in `round` of task `task_id`: state 0 nothing,
            SUB_COMMITTED, SUB_REVEALED, SUB_SCORED (with its score) or
            SUB_FLAGGED (with its reason); update digest zero until
            revealed.
    """
    s: _Submission = self._subs[task_id][round][account]
    state: uint256 = 0
    score: uint256 = 0
    if s.outcome == _FLAGGED:
        state = SUB_FLAGGED
    elif s.outcome & _SCORED != 0:
        state = SUB_SCORED
        score = s.outcome >> _SCORE_SHIFT
    elif s.update_digest != empty(bytes32):
        state = SUB_REVEALED
    elif s.commitment != empty(bytes32):
        state = SUB_COMMITTED
    return (s.commitment, s.update_digest, state, score, s.flag_reason)


@external
@pure
def commitment(
    task_id: uint256, round: uint256, participant: address, update_digest: bytes32, salt: bytes32
) -> bytes32:
    """
    @notice The commitment to `update_digest` that `participant` sends to
            `commit`: `keccak256(abi_encode(task_id, round, participant,
            update_digest, salt))`, the keccak-256 of five 32-byte words.
            Compute it off chain: sending the salt to a node to call this
            would disclose it.
    """
    return self._commitment(task_id, round, participant, update_digest, salt)


# ---------------------------------------------------------------------------------------------------- internal


@internal
@pure
def _commitment(
    task_id: uint256, round: uint256, participant: address, update_digest: bytes32, salt: bytes32
) -> bytes32:
    return keccak256(abi_encode(task_id, round, participant, update_digest, salt))


@internal
@view
def _check_exists(task_id: uint256):
    """
    @dev The task was created ("unknown task").
    """
    assert self._tasks[task_id].status != 0, "unknown task"


@internal
@view
def _check_coordinator(task_id: uint256):
    """
    @dev The task exists ("unknown task") and the caller is its coordinator
         ("caller is not the coordinator").
    """
    coordinator: address = self._tasks[task_id].coordinator
    assert coordinator != empty(address), "unknown task"
    assert msg.sender == coordinator, "caller is not the coordinator"


@internal
@view
def _check_over(task_id: uint256):
    """
    @dev The task exists ("unknown task") and is FINISHED or CANCELLED
         ("task not over").
    """
    status: uint256 = self._tasks[task_id].status
    assert status != 0, "unknown task"
    assert status == TASK_FINISHED or status == TASK_CANCELLED, "task not over"


@internal
@view
def _check_open_round(task_id: uint256, round: uint256):
    """
    @dev The task exists ("unknown task") and is RUNNING ("task not
         running"), `round` is its current round ("not the current round")
         and that round is open ("round closed").
    """
    status: uint256 = self._tasks[task_id].status
    assert status != 0, "unknown task"
    assert status == TASK_RUNNING, "task not running"
    assert round == self._tasks[task_id].round, "not the current round"
    assert self._rounds[task_id][round].status == ROUND_OPEN, "round closed"


@internal
@view
def _check_closable(task_id: uint256, round: uint256):
    """
    @dev `_check_open_round`, and the reveal phase is over ("reveal window
         still open"): the reveal deadline has passed, or the commit phase
         is over (the commit deadline has passed, or the round's commits
         equal the task's active participants, as in `reveal`) and every
         commitment was revealed. With no active participant left (all
         slashed), a round's commit phase is over as it starts, and it can
         be closed (aborted) at once.
    """
    self._check_open_round(task_id, round)
    if block.timestamp >= self._rounds[task_id][round].reveal_deadline:
        return
    if block.timestamp < self._rounds[task_id][round].commit_deadline:
        assert self._rounds[task_id][round].commits == self._tasks[task_id].active, "reveal window still open"
    assert self._rounds[task_id][round].reveals == self._rounds[task_id][round].commits, "reveal window still open"


@internal
def _next(task_id: uint256, round: uint256):
    """
    @dev After `round` closed: FINISHED if it was the last, else the
         coordinator has STALL_TIMEOUT to start the next.
    """
    if round == self._tasks[task_id].rounds:
        self._tasks[task_id].status = TASK_FINISHED
        self._tasks[task_id].deadline = 0
        log TaskFinished(task_id=task_id)
    else:
        self._tasks[task_id].deadline = block.timestamp + STALL_TIMEOUT


@internal
def _pull(token: address, amount: uint256):
    """
    @dev Takes `amount` of `token` from the caller with `transferFrom`.
    """
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), (
        "token transfer failed"
    )

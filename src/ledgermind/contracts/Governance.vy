# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title Governance
@license Apache-2.0
@notice A consortium's decisions about the assets of an AssetRegistry:
        which datasets are approved for training deployable models, and
        which models are promoted for deployment. Members propose and
        vote (one member, one vote); a proposal passes once `quorum`
        members voted for it within `voting_period` seconds, and takes
        effect when anyone `execute`s it, at least `timelock` seconds
        after it passed (time for everyone to see it coming).

        Four actions: APPROVE_DATASET, REVOKE_DATASET (on dataset
        tokens), APPROVE_MODEL, REVOKE_MODEL (on model tokens). Every
        proposal, vote and decision is an event: the history of approvals,
        promotions and revocations cannot be rewritten.

        `lineage_approved(asset_id)` is what the Marketplace and inference
        providers ask: every dataset in the asset's lineage (followed
        through parent models on the AssetRegistry) is approved. A lineage
        too large to check (more than MAX_LINEAGE tokens) counts as not
        approved: deny by default.

        Access: snekmate `access_control`. The deployer holds
        `DEFAULT_ADMIN_ROLE` and `MEMBER_ROLE`; the admin grants and
        revokes membership and sets quorum, timelock and voting period.
"""

from ethereum.ercs import IERC165
implements: IERC165

from snekmate.auth.interfaces import IAccessControl
implements: IAccessControl

from snekmate.auth import access_control
initializes: access_control

exports: access_control.__interface__


interface IAssetRegistry:
    def exists(token_id: uint256) -> bool: view
    def kind_of(token_id: uint256) -> uint8: view
    def parents_of(token_id: uint256) -> DynArray[uint256, 32]: view


# @dev Role that may propose and vote; administered by `DEFAULT_ADMIN_ROLE`.
MEMBER_ROLE: public(constant(bytes32)) = keccak256("MEMBER_ROLE")

APPROVE_DATASET: public(constant(uint8)) = 1
REVOKE_DATASET: public(constant(uint8)) = 2
APPROVE_MODEL: public(constant(uint8)) = 3
REVOKE_MODEL: public(constant(uint8)) = 4

# @dev AssetRegistry kinds.
KIND_DATASET: constant(uint8) = 1
KIND_MODEL: constant(uint8) = 2

# @dev Most tokens `lineage_approved` visits.
MAX_LINEAGE: public(constant(uint256)) = 128


struct Proposal:
    action: uint8
    target: uint256
    proposer: address
    deadline: uint256
    yes: uint256
    no: uint256
    passed_at: uint256
    executed: bool


asset_registry: public(immutable(address))

quorum: public(uint256)
timelock: public(uint256)
voting_period: public(uint256)

proposal_count: public(uint256)
proposals: public(HashMap[uint256, Proposal])

# @dev proposal id -> member -> voted.
voted: public(HashMap[uint256, HashMap[address, bool]])

approved_dataset: public(HashMap[uint256, bool])
approved_model: public(HashMap[uint256, bool])


event Proposed:
    proposal_id: indexed(uint256)
    action: uint8
    target: indexed(uint256)
    proposer: indexed(address)
    deadline: uint256


event Voted:
    proposal_id: indexed(uint256)
    voter: indexed(address)
    support: bool
    yes: uint256
    no: uint256


event Passed:
    proposal_id: indexed(uint256)
    executable_at: uint256


event Executed:
    proposal_id: indexed(uint256)
    action: uint8
    target: indexed(uint256)
    approved: bool


event ParametersSet:
    quorum: uint256
    timelock: uint256
    voting_period: uint256


@deploy
def __init__(asset_registry_: address, quorum_: uint256, timelock_: uint256, voting_period_: uint256):
    """
    @notice The deployer becomes admin and the first member.
    @param asset_registry_ The AssetRegistry ("registry is not a contract").
    @param quorum_ Votes for a proposal to pass (>= 1).
    @param timelock_ Seconds between passing and execution.
    @param voting_period_ Seconds a proposal stays open for votes (>= 1).
    """
    assert asset_registry_.is_contract, "registry is not a contract"
    access_control.__init__()
    access_control._grant_role(MEMBER_ROLE, msg.sender)
    asset_registry = asset_registry_
    self._set_parameters(quorum_, timelock_, voting_period_)


@external
def set_parameters(quorum_: uint256, timelock_: uint256, voting_period_: uint256):
    """
    @notice Sets quorum, timelock and voting period of later proposals
            (open ones keep their deadline; quorum and timelock apply to
            votes cast from now on).
    @dev Requires `DEFAULT_ADMIN_ROLE` (snekmate's "access_control:
         account is missing role"), `quorum_ >= 1` ("zero quorum") and
         `voting_period_ >= 1` ("zero voting period"). Emits
         `ParametersSet`.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._set_parameters(quorum_, timelock_, voting_period_)


@external
def propose(action: uint8, target: uint256) -> uint256:
    """
    @notice Proposes `action` on the asset token `target`; returns the
            proposal id (1, 2, 3...). The proposer's vote is not implied.
    @dev Requires `MEMBER_ROLE` ("access_control: account is missing
         role"), a known action ("unknown action"), a minted target
         ("unknown asset") of the kind the action is about ("not a
         dataset", "not a model"). Emits `Proposed`.
    """
    access_control._check_role(MEMBER_ROLE, msg.sender)
    assert action >= APPROVE_DATASET and action <= REVOKE_MODEL, "unknown action"
    assert staticcall IAssetRegistry(asset_registry).exists(target), "unknown asset"
    kind: uint8 = staticcall IAssetRegistry(asset_registry).kind_of(target)
    if action <= REVOKE_DATASET:
        assert kind == KIND_DATASET, "not a dataset"
    else:
        assert kind == KIND_MODEL, "not a model"
    pid: uint256 = self.proposal_count + 1
    self.proposal_count = pid
    deadline: uint256 = block.timestamp + self.voting_period
    self.proposals[pid] = Proposal(
        action=action, target=target, proposer=msg.sender, deadline=deadline, yes=0, no=0, passed_at=0,
        executed=False
    )
    log Proposed(proposal_id=pid, action=action, target=target, proposer=msg.sender, deadline=deadline)
    return pid


@external
def vote(proposal_id: uint256, support: bool):
    """
    @notice Votes for (`support`) or against a proposal. It passes when
            the votes for it reach the quorum.
    @dev Requires `MEMBER_ROLE`, a known proposal ("unknown proposal"),
         not executed ("already executed"), still open ("voting closed"),
         and no earlier vote by the caller ("already voted"). Emits
         `Voted`, and `Passed` when this vote reaches the quorum.
    """
    access_control._check_role(MEMBER_ROLE, msg.sender)
    p: Proposal = self.proposals[proposal_id]
    assert p.action != 0, "unknown proposal"
    assert not p.executed, "already executed"
    assert block.timestamp < p.deadline, "voting closed"
    assert not self.voted[proposal_id][msg.sender], "already voted"
    self.voted[proposal_id][msg.sender] = True
    if support:
        p.yes += 1
    else:
        p.no += 1
    if p.passed_at == 0 and p.yes >= self.quorum:
        p.passed_at = block.timestamp
        log Passed(proposal_id=proposal_id, executable_at=block.timestamp + self.timelock)
    self.proposals[proposal_id] = p
    log Voted(proposal_id=proposal_id, voter=msg.sender, support=support, yes=p.yes, no=p.no)


@external
def execute(proposal_id: uint256):
    """
    @notice Applies a passed proposal once its timelock is over. Anyone
            may call it.
    @dev Requires a known proposal ("unknown proposal"), not executed
         ("already executed"), passed ("not passed") and the timelock over
         ("timelock not over"). Emits `Executed`.
    """
    p: Proposal = self.proposals[proposal_id]
    assert p.action != 0, "unknown proposal"
    assert not p.executed, "already executed"
    assert p.passed_at != 0, "not passed"
    assert block.timestamp >= p.passed_at + self.timelock, "timelock not over"
    self.proposals[proposal_id].executed = True
    approve: bool = p.action == APPROVE_DATASET or p.action == APPROVE_MODEL
    if p.action <= REVOKE_DATASET:
        self.approved_dataset[p.target] = approve
    else:
        self.approved_model[p.target] = approve
    log Executed(proposal_id=proposal_id, action=p.action, target=p.target, approved=approve)


@external
@view
def lineage_approved(asset_id: uint256) -> bool:
    """
    @notice Whether every dataset in the lineage of `asset_id` (itself if
            it is a dataset; through parent models otherwise) is approved.
            False for an unknown asset, or a lineage of more than
            MAX_LINEAGE tokens.
    """
    if not staticcall IAssetRegistry(asset_registry).exists(asset_id):
        return False
    stack: DynArray[uint256, MAX_LINEAGE] = [asset_id]
    visited: uint256 = 0
    for _: uint256 in range(MAX_LINEAGE):
        if len(stack) == 0:
            return True
        token: uint256 = stack.pop()
        visited += 1
        if staticcall IAssetRegistry(asset_registry).kind_of(token) == KIND_DATASET:
            if not self.approved_dataset[token]:
                return False
            continue
        for parent: uint256 in staticcall IAssetRegistry(asset_registry).parents_of(token):
            if len(stack) == MAX_LINEAGE or visited + len(stack) >= MAX_LINEAGE:
                return False
            stack.append(parent)
    return len(stack) == 0


@internal
def _set_parameters(quorum_: uint256, timelock_: uint256, voting_period_: uint256):
    assert quorum_ >= 1, "zero quorum"
    assert voting_period_ >= 1, "zero voting period"
    self.quorum = quorum_
    self.timelock = timelock_
    self.voting_period = voting_period_
    log ParametersSet(quorum=quorum_, timelock=timelock_, voting_period=voting_period_)

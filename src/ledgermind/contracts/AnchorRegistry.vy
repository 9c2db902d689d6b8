# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title AnchorRegistry
@license Apache-2.0
@notice Transparency-log checkpoints anchored on chain. For each log
        (identified by a 32-byte `log_id`), operators append anchors
        `(tree_size, root, checkpoint_hash)` whose tree size strictly
        increases. Anyone can read the latest anchor of a log and the
        root anchored at any tree size, so a verifier can check a
        consistency proof from an anchored root to a newer checkpoint.

        Access: the deployer holds `DEFAULT_ADMIN_ROLE` (snekmate
        `access_control`) and grants or revokes `OPERATOR_ROLE`. Nobody
        is an operator by default, not even the deployer.

        Storage layout (why it is shaped like this): one anchor costs
        three storage writes. `root_at` needs the root of every anchored
        size, so the root gets a fresh slot per anchor. `latest` needs
        the newest size, block number and checkpoint hash of a log: size,
        block number and anchor count share one packed slot and the
        checkpoint hash has one slot, both overwritten in place. Older
        checkpoint hashes and the operator only live in the `Anchored`
        event, which is where indexers read history from.
"""

from ethereum.ercs import IERC165
implements: IERC165

from snekmate.auth.interfaces import IAccessControl
implements: IAccessControl

from snekmate.auth import access_control
initializes: access_control

# Exports `hasRole`, `getRoleAdmin`, `grantRole`, `revokeRole`,
# `renounceRole`, `set_role_admin`, `DEFAULT_ADMIN_ROLE` and
# `supportsInterface` (ERC-165 and IAccessControl).
exports: access_control.__interface__


# @dev Role allowed to call `anchor`; administered by `DEFAULT_ADMIN_ROLE`.
OPERATOR_ROLE: public(constant(bytes32)) = keccak256("OPERATOR_ROLE")


# @dev Bit layout of `LogHead.packed`: tree size in bits 0-63, block
# number in bits 64-127, anchor count in bits 128-191.
_MASK64: constant(uint256) = 2**64 - 1


# @dev The newest anchor of a log, minus its root (which is in `_roots`).
# Both fields are zero for a log that was never anchored.
struct LogHead:
    packed: uint256
    checkpoint_hash: bytes32


# @dev log id -> newest anchor. One mapping, not two, so that `anchor`
# hashes the key once for both slots.
_heads: HashMap[bytes32, LogHead]

# @dev log id -> tree size -> root anchored at that size.
_roots: HashMap[bytes32, HashMap[uint64, bytes32]]


event Anchored:
    log_id: indexed(bytes32)
    tree_size: uint64
    root: bytes32
    checkpoint_hash: bytes32
    operator: indexed(address)


@deploy
def __init__():
    """
    @notice The deployer becomes the admin (`DEFAULT_ADMIN_ROLE`); it
            must grant `OPERATOR_ROLE` (to itself or others) before
            anything can be anchored.
    """
    access_control.__init__()


@external
def anchor(log_id: bytes32, tree_size: uint64, root: bytes32, checkpoint_hash: bytes32):
    """
    @notice Anchors the checkpoint of `log_id` at `tree_size`.
    @dev Requires the caller to hold `OPERATOR_ROLE`
         ("access_control: account is missing role"), a non-zero root
         ("zero root") and tree size ("zero tree size"), and a tree size
         strictly larger than the log's latest anchored size ("tree size
         must increase"). Emits `Anchored`.

         Gas (bench/bench_gas.py): 59,955-59,991 per anchor, 21,000 base
         included, for any tree size below 2**32 (calldata adds 12 gas per
         non-zero byte of the size: 60,039 at 2**64 - 1); 94,155 for the
         first anchor of a log. The storage writes (34,200), the event
         (2,268), the base and the calldata (~22,750) leave ~800 gas for
         everything else under the 60,000 target: that budget is why a few
         things below are written the way they are.
    @param log_id The 32-byte identifier of the log (e.g. the SHA-256 of
           its origin line).
    @param tree_size The number of entries the checkpoint commits to.
    @param root The RFC 9162 root hash of the tree at `tree_size`.
    @param checkpoint_hash The SHA-256 of the signed checkpoint note. Not
           checked for zero: a zero hash matches no note, so such an
           anchor is useless to a verifier but cannot mislead one.
    """
    # Inlined rather than `access_control._check_role`: same check and
    # message, without an internal call.
    assert access_control.hasRole[OPERATOR_ROLE][msg.sender], "access_control: account is missing role"
    assert root != empty(bytes32), "zero root"

    head: uint256 = self._heads[log_id].packed
    # A log only grows: an equal size would be a second root for the same
    # tree (a fork), a smaller one a rollback. Zero fails this test too
    # (no head is below zero) and is told apart only on the failure path.
    if convert(tree_size, uint256) <= head & _MASK64:
        assert tree_size != 0, "zero tree size"
        raise "tree size must increase"

    # Packing needs no range checks: the count cannot reach 2**64 because
    # every anchor adds at least one entry to a uint64-sized tree, and the
    # block number would need 2**64 blocks (half a billion years at one
    # block per millisecond) to spill into the count bits.
    self._heads[log_id] = LogHead(
        packed=convert(tree_size, uint256) | (block.number << 64) | (unsafe_add(head >> 128, 1) << 128),
        checkpoint_hash=checkpoint_hash,
    )
    self._roots[log_id][tree_size] = root

    log Anchored(
        log_id=log_id,
        tree_size=tree_size,
        root=root,
        checkpoint_hash=checkpoint_hash,
        operator=msg.sender,
    )


@external
@view
def latest(log_id: bytes32) -> (uint64, bytes32, bytes32, uint64):
    """
    @notice Returns the newest anchor of `log_id`.
    @dev All fields are zero for a log that was never anchored.
    @return (tree_size, root, checkpoint_hash, block_number) where
            `block_number` is the block that included the anchor.
    """
    state: LogHead = self._heads[log_id]
    head: uint256 = state.packed
    tree_size: uint64 = convert(head & _MASK64, uint64)
    return (
        tree_size,
        self._roots[log_id][tree_size],
        state.checkpoint_hash,
        convert((head >> 64) & _MASK64, uint64),
    )


@external
@view
def root_at(log_id: bytes32, tree_size: uint64) -> bytes32:
    """
    @notice Returns the root anchored for `log_id` at exactly
            `tree_size`, or zero if no anchor has that size.
    """
    return self._roots[log_id][tree_size]


@external
@view
def anchor_count(log_id: bytes32) -> uint64:
    """
    @notice Returns how many anchors `log_id` has.
    """
    return convert(self._heads[log_id].packed >> 128, uint64)

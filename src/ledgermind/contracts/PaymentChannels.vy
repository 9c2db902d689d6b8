# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title PaymentChannels
@license Apache-2.0
@notice Unidirectional payment channels for paid inference. A client (the
        channel's sender) locks a deposit for a provider (the recipient),
        then pays per request off chain by signing vouchers: EIP-712 typed
        data `Voucher(bytes32 channelId,uint256 amount)` in the domain
        {name: "ledgermind PaymentChannels", version: "1", chainId,
        verifyingContract: this contract}. `amount` is CUMULATIVE: the
        total the recipient may claim from the channel so far, so only the
        newest voucher matters and one `settle` transaction redeems any
        number of requests.

        Channel id: `keccak256(abi_encode(sender, recipient, token, salt))`,
        i.e. the keccak-256 of the four 32-byte ABI words (addresses left-
        padded with zeros), computable off chain before `open` (see also
        the `channel_id` view). The chain and this contract are not in the
        id: vouchers are bound to them by the EIP-712 domain. An id is
        never reused, even after the channel is closed, so a voucher can
        never be replayed against a later channel.

        Money: the deposit is native coin (`token == empty(address)`) or
        an ERC-20 pulled with `transferFrom` (approve this contract
        first). Fee-on-transfer and rebasing tokens are not supported: the
        contract credits the amounts it was asked to move. Payments are
        PULL-based: `settle` and `reclaim` only credit `withdrawable`, and
        the owner of a balance collects it with `withdraw(token)`.

        Life of a channel: `open` -> any number of `top_up`, `extend` (by
        the sender) and `settle` (by the recipient, each with a voucher for
        more than what was paid so far, at most the deposit) -> after
        `expiry` the sender may `reclaim` what was not paid, which closes
        the channel for good. The recipient may settle until the channel
        is reclaimed, even after expiry, but should settle before: from
        expiry on, the sender can close the channel at any moment.
        Vouchers are signed by externally owned accounts (secp256k1, 65-
        byte `r || s || v` or 64-byte EIP-2098); a contract cannot be a
        channel's sender.

        Every state-changing function holds Vyper's reentrancy lock and
        follows checks-effects-interactions.
"""

from ethereum.ercs import IERC20

from snekmate.utils.interfaces import IERC5267
implements: IERC5267

from snekmate.utils import ecdsa

from snekmate.utils import eip712_domain_separator
initializes: eip712_domain_separator

# EIP-5267: lets wallets show the domain they sign vouchers for.
exports: eip712_domain_separator.eip712Domain


# @dev EIP-712 type hash of a voucher; must match ledgermind.market.eip712.
VOUCHER_TYPEHASH: public(constant(bytes32)) = keccak256("Voucher(bytes32 channelId,uint256 amount)")

_EIP712_NAME: constant(String[50]) = "ledgermind PaymentChannels"
_EIP712_VERSION: constant(String[20]) = "1"

# @dev Bit layout of `_Channel.packed`: token in bits 0-159, expiry in bits
# 160-223, closed flag in bit 224. Vyper 0.4 does not pack structs and a
# fresh slot costs 22,100 gas at `open`; this saves one.
_ADDRESS_MASK: constant(uint256) = 2**160 - 1
_EXPIRY_SHIFT: constant(uint256) = 160
_EXPIRY_MASK: constant(uint256) = 2**64 - 1
_CLOSED_BIT: constant(uint256) = 2**224


# @dev A channel; all fields are zero for an id never opened.
struct _Channel:
    sender: address
    recipient: address
    deposit: uint256
    paid: uint256
    packed: uint256


# @dev channel id -> channel. Records are never deleted (ids are not reused).
_channels: HashMap[bytes32, _Channel]

# @dev account -> token (empty(address) = native coin) -> amount it can
# withdraw.
withdrawable: public(HashMap[address, HashMap[address, uint256]])


event ChannelOpened:
    channel_id: indexed(bytes32)
    sender: indexed(address)
    recipient: indexed(address)
    token: address
    deposit: uint256
    expiry: uint256


event ChannelToppedUp:
    channel_id: indexed(bytes32)
    amount: uint256
    deposit: uint256


event ChannelExtended:
    channel_id: indexed(bytes32)
    expiry: uint256


event ChannelSettled:
    channel_id: indexed(bytes32)
    recipient: indexed(address)
    amount: uint256
    payout: uint256


event ChannelReclaimed:
    channel_id: indexed(bytes32)
    sender: indexed(address)
    refund: uint256


event Withdrawn:
    account: indexed(address)
    token: indexed(address)
    amount: uint256


@deploy
def __init__():
    """
    @notice Fixes the EIP-712 domain: name "ledgermind PaymentChannels",
            version "1", this chain and this contract.
    """
    eip712_domain_separator.__init__(_EIP712_NAME, _EIP712_VERSION)


@external
@payable
@nonreentrant
def open(recipient: address, token: address, amount: uint256, expiry: uint256, salt: bytes32) -> bytes32:
    """
    @notice Opens a channel from the caller to `recipient` holding
            `amount` of `token` (empty(address) = native coin, sent as
            `msg.value`) until `expiry`, and returns its id
            `keccak256(abi_encode(msg.sender, recipient, token, salt))`.
    @dev Requires, in this order: a non-zero recipient ("zero recipient")
         other than the caller ("recipient is sender"); `amount > 0`
         ("zero amount"); `block.timestamp < expiry` ("expiry in the
         past") and `expiry < 2**64` ("expiry out of range"); an id never
         used ("channel exists"); then the payment: for native coin
         `msg.value == amount` ("msg.value does not match amount"), for a
         token no `msg.value` ("msg.value with a token payment"), a token
         contract ("token is not a contract") and a successful
         `transferFrom` of `amount` ("token transfer failed", or the
         token's own reason). Emits `ChannelOpened`.
    @param recipient Who may settle vouchers (the provider).
    @param token ERC-20 of the deposit, or empty(address) for native coin.
    @param amount The deposit.
    @param expiry Unix time from which the sender may reclaim.
    @param salt Any value that makes the id unique per channel.
    """
    assert recipient != empty(address), "zero recipient"
    assert recipient != msg.sender, "recipient is sender"
    assert amount != 0, "zero amount"
    assert block.timestamp < expiry, "expiry in the past"
    assert expiry <= _EXPIRY_MASK, "expiry out of range"
    channel_id: bytes32 = keccak256(abi_encode(msg.sender, recipient, token, salt))
    assert self._channels[channel_id].sender == empty(address), "channel exists"

    self._channels[channel_id] = _Channel(
        sender=msg.sender,
        recipient=recipient,
        deposit=amount,
        paid=0,
        packed=convert(token, uint256) | (expiry << _EXPIRY_SHIFT),
    )
    log ChannelOpened(
        channel_id=channel_id, sender=msg.sender, recipient=recipient, token=token, deposit=amount, expiry=expiry
    )
    self._pull(token, amount, msg.value)
    return channel_id


@external
@payable
@nonreentrant
def top_up(channel_id: bytes32, amount: uint256):
    """
    @notice Adds `amount` to the deposit of an open channel (native coin
            as `msg.value`, or the channel's token via `transferFrom`).
    @dev Requires the channel to exist ("unknown channel"), the caller to
         be its sender ("caller is not the channel sender"), the channel
         not reclaimed ("channel closed"), `amount > 0` ("zero amount"),
         and the payment as in `open`. A top-up after expiry is allowed
         (extend the channel too, or the sender can still reclaim it all).
         Emits `ChannelToppedUp`.
    """
    packed: uint256 = self._sender_channel(channel_id)
    assert amount != 0, "zero amount"
    deposit: uint256 = self._channels[channel_id].deposit + amount
    self._channels[channel_id].deposit = deposit
    log ChannelToppedUp(channel_id=channel_id, amount=amount, deposit=deposit)
    self._pull(convert(packed & _ADDRESS_MASK, address), amount, msg.value)


@external
@nonreentrant
def extend(channel_id: bytes32, new_expiry: uint256):
    """
    @notice Moves the expiry of an open channel later, to `new_expiry`.
    @dev Requires the channel to exist ("unknown channel"), the caller to
         be its sender ("caller is not the channel sender"), the channel
         not reclaimed ("channel closed"), `new_expiry` after the current
         expiry ("expiry must increase") and in the future ("expiry in the
         past"), and `new_expiry < 2**64` ("expiry out of range"). Emits
         `ChannelExtended`.
    """
    packed: uint256 = self._sender_channel(channel_id)
    assert new_expiry > (packed >> _EXPIRY_SHIFT) & _EXPIRY_MASK, "expiry must increase"
    assert block.timestamp < new_expiry, "expiry in the past"
    assert new_expiry <= _EXPIRY_MASK, "expiry out of range"
    self._channels[channel_id].packed = (packed & _ADDRESS_MASK) | (new_expiry << _EXPIRY_SHIFT)
    log ChannelExtended(channel_id=channel_id, expiry=new_expiry)


@external
@nonreentrant
def settle(channel_id: bytes32, amount: uint256, signature: Bytes[65]) -> uint256:
    """
    @notice Redeems the voucher `(channel_id, amount)` signed by the
            channel's sender: credits `amount - paid` to the recipient's
            `withdrawable` balance and returns it. The channel stays open
            for later vouchers with larger amounts.
    @dev Requires, in this order: the channel exists ("unknown channel");
         the caller is its recipient ("caller is not the channel
         recipient"); it was not reclaimed ("channel closed"); `amount`
         is at most the deposit ("voucher above deposit") and more than
         what was already paid ("voucher already redeemed": a voucher
         cannot be redeemed twice, nor an older one after a newer); the
         signature recovers to the sender ("voucher not signed by
         sender", or snekmate's "ecdsa: ..." reasons for a malformed
         signature). Emits `ChannelSettled`.
    @param amount The voucher's cumulative amount.
    @param signature The sender's EIP-712 signature of the voucher.
    """
    recipient: address = self._channels[channel_id].recipient
    assert recipient != empty(address), "unknown channel"
    assert msg.sender == recipient, "caller is not the channel recipient"
    packed: uint256 = self._channels[channel_id].packed
    assert packed & _CLOSED_BIT == 0, "channel closed"
    assert amount <= self._channels[channel_id].deposit, "voucher above deposit"
    paid: uint256 = self._channels[channel_id].paid
    assert amount > paid, "voucher already redeemed"
    digest: bytes32 = eip712_domain_separator._hash_typed_data_v4(
        keccak256(abi_encode(VOUCHER_TYPEHASH, channel_id, amount))
    )
    assert ecdsa._recover_sig(digest, signature) == self._channels[channel_id].sender, "voucher not signed by sender"

    payout: uint256 = unsafe_sub(amount, paid)
    self._channels[channel_id].paid = amount
    token: address = convert(packed & _ADDRESS_MASK, address)
    self.withdrawable[recipient][token] += payout
    log ChannelSettled(channel_id=channel_id, recipient=recipient, amount=amount, payout=payout)
    return payout


@external
@nonreentrant
def reclaim(channel_id: bytes32) -> uint256:
    """
    @notice After expiry, closes the channel and credits what was not paid
            (`deposit - paid`) to the sender's `withdrawable` balance;
            returns it. No voucher can be settled afterwards.
    @dev Requires the channel to exist ("unknown channel"), the caller to
         be its sender ("caller is not the channel sender"), the channel
         not reclaimed ("channel closed") and `block.timestamp >= expiry`
         ("channel not expired"). Emits `ChannelReclaimed`.
    """
    packed: uint256 = self._sender_channel(channel_id)
    assert block.timestamp >= (packed >> _EXPIRY_SHIFT) & _EXPIRY_MASK, "channel not expired"
    refund: uint256 = self._channels[channel_id].deposit - self._channels[channel_id].paid
    self._channels[channel_id].packed = packed | _CLOSED_BIT
    self.withdrawable[msg.sender][convert(packed & _ADDRESS_MASK, address)] += refund
    log ChannelReclaimed(channel_id=channel_id, sender=msg.sender, refund=refund)
    return refund


@external
@nonreentrant
def withdraw(token: address) -> uint256:
    """
    @notice Sends the caller its whole `withdrawable` balance of `token`
            (empty(address) = native coin) and returns the amount.
    @dev Requires a non-zero balance ("nothing to withdraw"). The balance
         is zeroed before the transfer; a failed transfer reverts
         everything ("native transfer failed", "token transfer failed").
         Native coin is sent with all remaining gas, so contract
         recipients work; the reentrancy lock stops them re-entering.
         Emits `Withdrawn`.
    """
    amount: uint256 = self.withdrawable[msg.sender][token]
    assert amount != 0, "nothing to withdraw"
    self.withdrawable[msg.sender][token] = 0
    log Withdrawn(account=msg.sender, token=token, amount=amount)
    if token == empty(address):
        assert raw_call(msg.sender, b"", value=amount, revert_on_failure=False), "native transfer failed"
    else:
        assert extcall IERC20(token).transfer(msg.sender, amount, default_return_value=True), "token transfer failed"
    return amount


@external
@view
def channel(channel_id: bytes32) -> (address, address, address, uint256, uint256, uint256, bool):
    """
    @notice Returns `(sender, recipient, token, deposit, paid, expiry,
            closed)` of a channel; all zero for an id never opened.
            `paid` is the largest voucher amount settled so far.
    """
    c: _Channel = self._channels[channel_id]
    return (
        c.sender,
        c.recipient,
        convert(c.packed & _ADDRESS_MASK, address),
        c.deposit,
        c.paid,
        (c.packed >> _EXPIRY_SHIFT) & _EXPIRY_MASK,
        c.packed & _CLOSED_BIT != 0,
    )


@external
@pure
def channel_id(sender: address, recipient: address, token: address, salt: bytes32) -> bytes32:
    """
    @notice The id `open` gives a channel: `keccak256(abi_encode(sender,
            recipient, token, salt))`.
    """
    return keccak256(abi_encode(sender, recipient, token, salt))


@external
@view
def domain_separator() -> bytes32:
    """
    @notice The EIP-712 domain separator vouchers are signed under.
    """
    return eip712_domain_separator._domain_separator_v4()


@external
@view
def voucher_digest(channel_id: bytes32, amount: uint256) -> bytes32:
    """
    @notice The EIP-712 digest the sender signs for the voucher
            `(channel_id, amount)`.
    """
    return eip712_domain_separator._hash_typed_data_v4(keccak256(abi_encode(VOUCHER_TYPEHASH, channel_id, amount)))


@internal
@view
def _sender_channel(channel_id: bytes32) -> uint256:
    """
    @dev Checks that `channel_id` exists ("unknown channel"), that the
         caller is its sender ("caller is not the channel sender") and
         that it is not closed ("channel closed"); returns its packed
         token, expiry and flag.
    """
    sender: address = self._channels[channel_id].sender
    assert sender != empty(address), "unknown channel"
    assert msg.sender == sender, "caller is not the channel sender"
    packed: uint256 = self._channels[channel_id].packed
    assert packed & _CLOSED_BIT == 0, "channel closed"
    return packed


@internal
def _pull(token: address, amount: uint256, sent: uint256):
    """
    @dev Takes `amount` of `token` from the caller: native coin must have
         come as `sent` (the call's msg.value), a token is pulled with
         `transferFrom` (and then no native coin may come with it).
    """
    if token == empty(address):
        assert sent == amount, "msg.value does not match amount"
        return
    assert sent == 0, "msg.value with a token payment"
    assert token.is_contract, "token is not a contract"
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), (
        "token transfer failed"
    )

# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title ProviderRegistry
@license Apache-2.0
@notice Decentralised serving: who serves inference for which model, where
        and at what price. Anyone may announce that it serves a model token
        of the AssetRegistry (clients verify the signed receipts of what
        they get, so no permission is needed to serve); only the announcer
        can update or withdraw its own entry.

        An entry is `(provider, endpoint, price, token)`: the provider's
        account (which signs its receipts and is the recipient of its
        PaymentChannels), its endpoint URL, its price per inference in the
        smallest unit of `token`, and `token` (an ERC-20, or empty(address)
        for native coin). The list of a model is unbounded and enumerable:
        `provider_count` and `providers(model_id, offset)`, 32 entries per
        page, so nobody can lock others out by filling it. Withdrawing an
        entry moves the last entry into its place (order is not kept).
"""


# @dev The part of the AssetRegistry this contract reads.
interface IAssetRegistry:
    def kind_of(token_id: uint256) -> uint8: view


# @dev AssetRegistry kind of a model.
_KIND_MODEL: constant(uint8) = 2

# @dev Entries returned per call of `providers`.
PAGE_SIZE: public(constant(uint256)) = 32

# @dev Bit layout of `_Entry.packed`: token in bits 0-159, position in the
# model's list plus one in bits 160-255 (zero: not announced).
_ADDRESS_MASK: constant(uint256) = 2**160 - 1
_POSITION_SHIFT: constant(uint256) = 160


# @dev One announcement, as returned by the views.
struct Provider:
    provider: address
    endpoint: String[256]
    price: uint256
    token: address


struct _Entry:
    endpoint: String[256]
    price: uint256
    packed: uint256


# @dev The AssetRegistry whose model tokens providers announce.
asset_registry: public(immutable(address))

# @dev model id -> provider -> entry.
_entries: HashMap[uint256, HashMap[address, _Entry]]

# @dev model id -> position -> provider, positions 0 .. count - 1.
_lists: HashMap[uint256, HashMap[uint256, address]]

# @dev model id -> number of providers announced.
provider_count: public(HashMap[uint256, uint256])


event ProviderAnnounced:
    model_id: indexed(uint256)
    provider: indexed(address)
    endpoint: String[256]
    price: uint256
    token: address


event ProviderWithdrawn:
    model_id: indexed(uint256)
    provider: indexed(address)


@deploy
def __init__(asset_registry_: address):
    """
    @param asset_registry_ The AssetRegistry contract (must have code).
    """
    assert asset_registry_.is_contract, "registry is not a contract"
    asset_registry = asset_registry_


@external
def announce(model_id: uint256, endpoint: String[256], price: uint256, token: address):
    """
    @notice Announces (or updates) that the caller serves `model_id` at
            `endpoint` for `price` units of `token` per inference.
    @dev Requires, in this order: `model_id` is a minted token ("unknown
         model") of kind model ("not a model"); a non-empty endpoint
         ("empty endpoint"); `token` is empty(address) or a contract
         ("token is not a contract"). A second call by the same provider
         replaces its entry in place. Emits `ProviderAnnounced`.
    """
    kind: uint8 = staticcall IAssetRegistry(asset_registry).kind_of(model_id)
    assert kind != 0, "unknown model"
    assert kind == _KIND_MODEL, "not a model"
    assert len(endpoint) != 0, "empty endpoint"
    assert token == empty(address) or token.is_contract, "token is not a contract"

    position: uint256 = self._entries[model_id][msg.sender].packed >> _POSITION_SHIFT
    if position == 0:
        count: uint256 = self.provider_count[model_id]
        self._lists[model_id][count] = msg.sender
        position = count + 1
        self.provider_count[model_id] = position
    self._entries[model_id][msg.sender] = _Entry(
        endpoint=endpoint, price=price, packed=convert(token, uint256) | (position << _POSITION_SHIFT)
    )
    log ProviderAnnounced(model_id=model_id, provider=msg.sender, endpoint=endpoint, price=price, token=token)


@external
def withdraw_announcement(model_id: uint256):
    """
    @notice Removes the caller's entry for `model_id`.
    @dev Requires the caller to have announced it ("not announced"). The
         model's last entry takes the freed position. Emits
         `ProviderWithdrawn`.
    """
    position: uint256 = self._entries[model_id][msg.sender].packed >> _POSITION_SHIFT
    assert position != 0, "not announced"
    last: uint256 = self.provider_count[model_id] - 1
    if position - 1 != last:
        moved: address = self._lists[model_id][last]
        self._lists[model_id][position - 1] = moved
        entry_packed: uint256 = self._entries[model_id][moved].packed
        self._entries[model_id][moved].packed = (entry_packed & _ADDRESS_MASK) | (position << _POSITION_SHIFT)
    self._lists[model_id][last] = empty(address)
    self.provider_count[model_id] = last
    self._entries[model_id][msg.sender] = empty(_Entry)
    log ProviderWithdrawn(model_id=model_id, provider=msg.sender)


@external
@view
def providers(model_id: uint256, offset: uint256 = 0) -> DynArray[Provider, PAGE_SIZE]:
    """
    @notice Up to `PAGE_SIZE` (32) providers of `model_id` from position
            `offset` on; empty past the end. Call again with `offset + 32`
            while a page comes back full.
    """
    page: DynArray[Provider, PAGE_SIZE] = []
    count: uint256 = self.provider_count[model_id]
    if offset >= count:
        return page
    n: uint256 = min(count - offset, PAGE_SIZE)
    for i: uint256 in range(n, bound=PAGE_SIZE):
        who: address = self._lists[model_id][offset + i]
        page.append(self._provider(model_id, who))
    return page


@external
@view
def provider_of(model_id: uint256, provider: address) -> Provider:
    """
    @notice The entry of `provider` for `model_id`; all fields empty if it
            has not announced it.
    """
    if self._entries[model_id][provider].packed == 0:
        return empty(Provider)
    return self._provider(model_id, provider)


@internal
@view
def _provider(model_id: uint256, who: address) -> Provider:
    entry: _Entry = self._entries[model_id][who]
    return Provider(
        provider=who, endpoint=entry.endpoint, price=entry.price, token=convert(entry.packed & _ADDRESS_MASK, address)
    )

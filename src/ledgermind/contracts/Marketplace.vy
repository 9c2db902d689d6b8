# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title Marketplace
@license Apache-2.0
@notice ledgermind's market for the assets of the AssetRegistry (ERC-721,
        token id = asset digest). Four ways to trade an asset:

        1. Access tokens at a fixed price (Ocean's fixed-rate exchange):
           the asset owner lists its AccessToken (created with the
           AccessTokenFactory, with this contract authorised as minter)
           with `list_access`; `buy_access(asset_id, n)` mints `n` whole
           tokens (n * 10**18 units) to the buyer for `n * price`.
        2. A free dispenser (Ocean's dispenser): `enable_dispenser`, then
           anyone may `dispense` one whole token at a time, at most
           `max_per_address` per address over the dispenser's life.
        3. Time-bound licences: `list_licence`, `buy_licence` extends the
           buyer's licence by the listed duration from
           max(now, current expiry).
        4. The asset NFT itself: `list_asset` (after approving this
           contract), `buy_asset` moves the NFT and pays the ERC-2981
           royalty of the AssetRegistry on every sale, resales included.

        `has_access(asset_id, holder)` (a valid licence, or at least one
        whole access token) is what data and inference providers check.

        Splits (access and licence sales): at listing the owner sets
        contributors and their shares in basis points (at most 16, each
        > 0, together <= 10,000), e.g. the owners of the datasets in the
        asset's lineage (`list_access_with_lineage` does that from the
        AssetRegistry's `parents_of`). On each sale, of the price `p`:
        the platform fee `p * fee_bps // 10_000` goes to the fee
        recipient; of the rest `r`, each contributor gets
        `r * share // 10_000`; the asset owner gets what remains, rounding
        dust included, so the parts add up to `p` exactly. NFT sales pay
        the royalty `royaltyInfo(asset_id, p)` to its receiver, the fee,
        and the rest to the seller.

        Listings (and the dispenser) belong to the account that was the
        asset's owner when it made them: once the NFT has another owner
        they are void (refused at purchase) until the new owner lists
        again. Prices are in the smallest unit of the payment token, an
        ERC-20 (approve this contract; fee-on-transfer and rebasing tokens
        are not supported) or empty(address) for native coin, sent as
        `msg.value` (exactly the price).

        Payments are PULL-based: every part of every payment is credited
        to `withdrawable[account][token]` (event `Credited`), and each
        account collects its own balance with `withdraw(token)`. All
        functions that move value or call other contracts hold Vyper's
        reentrancy lock and follow checks-effects-interactions.

        Admin: snekmate `ownable`; the owner sets the platform fee (at
        most `MAX_FEE_BPS`, 10%; 0 at deployment) and its recipient (the
        deployer at deployment).
"""

from ethereum.ercs import IERC20

from snekmate.auth import ownable
initializes: ownable

exports: (
    ownable.owner,
    ownable.transfer_ownership,
    ownable.renounce_ownership,
)


# @dev The parts of the AssetRegistry (ERC-721 + ERC-2981 + lineage) read here.
interface IAssetRegistry:
    def ownerOf(token_id: uint256) -> address: view
    def getApproved(token_id: uint256) -> address: view
    def isApprovedForAll(owner: address, operator: address) -> bool: view
    def transferFrom(owner: address, to: address, token_id: uint256): payable
    def royaltyInfo(token_id: uint256, sale_price: uint256) -> (address, uint256): view
    def parents_of(token_id: uint256) -> DynArray[uint256, 32]: view
    def kind_of(token_id: uint256) -> uint8: view


interface IGovernance:
    def lineage_approved(asset_id: uint256) -> bool: view


interface IAccessTokenFactory:
    def access_token(asset_id: uint256) -> address: view


interface IAccessToken:
    def mint(to: address, amount: uint256): nonpayable
    def is_minter(account: address) -> bool: view
    def balanceOf(account: address) -> uint256: view


# @dev Most contributors of one listing.
MAX_CONTRIBUTORS: public(constant(uint256)) = 16

# @dev Basis points in a whole.
BPS: public(constant(uint256)) = 10_000

# @dev Ceiling of the platform fee, in basis points (10%).
MAX_FEE_BPS: public(constant(uint256)) = 1_000

# @dev Units of one whole access token (AccessToken has 18 decimals).
ONE_TOKEN: public(constant(uint256)) = 10**18


struct AccessListing:
    seller: address
    price: uint256
    payment_token: address
    contributors: DynArray[address, MAX_CONTRIBUTORS]
    shares_bps: DynArray[uint16, MAX_CONTRIBUTORS]


struct LicenceListing:
    seller: address
    price: uint256
    duration: uint256
    payment_token: address
    contributors: DynArray[address, MAX_CONTRIBUTORS]
    shares_bps: DynArray[uint16, MAX_CONTRIBUTORS]


struct AssetListing:
    seller: address
    price: uint256
    payment_token: address


struct Dispenser:
    owner: address
    max_per_address: uint256


# @dev The AssetRegistry whose tokens are traded.
asset_registry: public(immutable(address))

# @dev The AccessTokenFactory that knows each asset's access token.
access_factory: public(immutable(address))

# @dev The Governance whose approvals gate model sales, or empty(address)
# for none (the default: set with `set_governance`).
governance: public(address)

# @dev Platform fee in basis points of every sale, and who receives it.
fee_bps: public(uint256)
fee_recipient: public(address)

# @dev Listings by asset id; `seller == empty(address)` means not listed.
access_listing: public(HashMap[uint256, AccessListing])
licence_listing: public(HashMap[uint256, LicenceListing])
asset_listing: public(HashMap[uint256, AssetListing])

# @dev Dispensers by asset id; `owner == empty(address)` means disabled.
dispenser: public(HashMap[uint256, Dispenser])

# @dev asset id -> address -> whole tokens dispensed to it so far.
dispensed: public(HashMap[uint256, HashMap[address, uint256]])

# @dev asset id -> holder -> unix time its licence ends (exclusive).
licence_expiry: public(HashMap[uint256, HashMap[address, uint256]])

# @dev account -> token (empty(address) = native coin) -> amount it can withdraw.
withdrawable: public(HashMap[address, HashMap[address, uint256]])


event GovernanceSet:
    governance: indexed(address)


event FeeSet:
    fee_bps: uint256
    fee_recipient: indexed(address)


event AccessListed:
    asset_id: indexed(uint256)
    seller: indexed(address)
    price: uint256
    payment_token: address
    contributors: DynArray[address, MAX_CONTRIBUTORS]
    shares_bps: DynArray[uint16, MAX_CONTRIBUTORS]


event AccessDelisted:
    asset_id: indexed(uint256)


event AccessBought:
    asset_id: indexed(uint256)
    buyer: indexed(address)
    tokens: uint256
    payment_token: address
    total: uint256


event DispenserEnabled:
    asset_id: indexed(uint256)
    owner: indexed(address)
    max_per_address: uint256


event DispenserDisabled:
    asset_id: indexed(uint256)


event Dispensed:
    asset_id: indexed(uint256)
    to: indexed(address)
    total_dispensed: uint256


event LicenceListed:
    asset_id: indexed(uint256)
    seller: indexed(address)
    price: uint256
    duration: uint256
    payment_token: address
    contributors: DynArray[address, MAX_CONTRIBUTORS]
    shares_bps: DynArray[uint16, MAX_CONTRIBUTORS]


event LicenceDelisted:
    asset_id: indexed(uint256)


event LicenceBought:
    asset_id: indexed(uint256)
    holder: indexed(address)
    price: uint256
    payment_token: address
    expiry: uint256


event AssetListed:
    asset_id: indexed(uint256)
    seller: indexed(address)
    price: uint256
    payment_token: address


event AssetDelisted:
    asset_id: indexed(uint256)


event AssetSold:
    asset_id: indexed(uint256)
    seller: indexed(address)
    buyer: indexed(address)
    price: uint256
    payment_token: address
    royalty_receiver: address
    royalty: uint256
    fee: uint256


event Credited:
    account: indexed(address)
    token: indexed(address)
    amount: uint256


event Withdrawn:
    account: indexed(address)
    token: indexed(address)
    amount: uint256


@deploy
def __init__(asset_registry_: address, access_factory_: address):
    """
    @notice The deployer becomes the owner (admin) and the fee recipient;
            the fee starts at 0.
    @param asset_registry_ The AssetRegistry ("registry is not a contract").
    @param access_factory_ The AccessTokenFactory of that registry
           ("factory is not a contract").
    """
    assert asset_registry_.is_contract, "registry is not a contract"
    assert access_factory_.is_contract, "factory is not a contract"
    ownable.__init__()
    asset_registry = asset_registry_
    access_factory = access_factory_
    self.fee_recipient = msg.sender


# ------------------------------------------------------------------------------------------------------ admin


@external
def set_fee(fee_bps: uint256, fee_recipient: address):
    """
    @notice Sets the platform fee (basis points of every later sale) and
            its recipient. Balances already credited are not touched.
    @dev Requires the owner (snekmate's "ownable: caller is not the
         owner"), `fee_bps <= MAX_FEE_BPS` ("fee above cap") and a
         non-zero recipient ("zero fee recipient"). Emits `FeeSet`.
    """
    ownable._check_owner()
    assert fee_bps <= MAX_FEE_BPS, "fee above cap"
    assert fee_recipient != empty(address), "zero fee recipient"
    self.fee_bps = fee_bps
    self.fee_recipient = fee_recipient
    log FeeSet(fee_bps=fee_bps, fee_recipient=fee_recipient)


@external
def set_governance(governance_: address):
    """
    @notice From now on, every listing and sale of a model needs
            `governance_.lineage_approved(model)`: all datasets in its
            on-chain lineage approved by the consortium. empty(address)
            turns the gate off. Listings made before stay, but cannot be
            bought while their lineage is not approved.
    @dev Requires the owner ("ownable: caller is not the owner") and a
         contract or empty(address) ("governance is not a contract").
         Emits `GovernanceSet`.
    """
    ownable._check_owner()
    assert governance_ == empty(address) or governance_.is_contract, "governance is not a contract"
    self.governance = governance_
    log GovernanceSet(governance=governance_)


# ------------------------------------------------------------------------------------ access tokens, fixed price


@external
@nonreentrant
def list_access(
    asset_id: uint256,
    price_per_token: uint256,
    payment_token: address,
    contributors: DynArray[address, MAX_CONTRIBUTORS],
    shares_bps: DynArray[uint16, MAX_CONTRIBUTORS],
):
    """
    @notice Lists the access token of `asset_id` at `price_per_token` per
            whole token, paid in `payment_token`, with the payment split
            between `contributors` by `shares_bps` (see the contract's
            notice). Listing again replaces the listing.
    @dev Requires, in this order: the caller owns the asset ("caller is
         not asset owner"; "erc721: invalid token ID" if unminted); a
         non-zero price ("zero price"); a valid payment token ("payment
         token is not a contract"); valid shares ("shares length
         mismatch", "zero contributor", "zero share", "shares above
         100%"); an access token exists ("no access token") and this
         contract may mint it ("marketplace is not a minter"). Emits
         `AccessListed`.
    """
    self._list_access(asset_id, price_per_token, payment_token, contributors, shares_bps)


@external
@nonreentrant
def list_access_with_lineage(asset_id: uint256, price_per_token: uint256, payment_token: address, lineage_bps: uint256):
    """
    @notice Lists access like `list_access`, with the contributors taken
            from the chain: the current owner of each parent of the asset
            (`AssetRegistry.parents_of`) gets `lineage_bps // n` basis
            points, n being the number of parents; the division's
            remainder stays with the asset owner. The owners are read
            once, now: later transfers of the parents do not change the
            listing (list again to refresh it).
    @dev Requires what `list_access` requires, and that the asset has
         parents ("asset has no parents"), at most MAX_CONTRIBUTORS of
         them ("too many contributors"), `lineage_bps <= 10_000` ("shares
         above 100%") and `lineage_bps >= n` ("zero share"). Emits
         `AccessListed`.
    """
    parents: DynArray[uint256, 32] = staticcall IAssetRegistry(asset_registry).parents_of(asset_id)
    n: uint256 = len(parents)
    assert n != 0, "asset has no parents"
    assert n <= MAX_CONTRIBUTORS, "too many contributors"
    assert lineage_bps <= BPS, "shares above 100%"
    share: uint16 = convert(lineage_bps // n, uint16)
    contributors: DynArray[address, MAX_CONTRIBUTORS] = []
    shares_bps: DynArray[uint16, MAX_CONTRIBUTORS] = []
    for parent: uint256 in parents:
        contributors.append(staticcall IAssetRegistry(asset_registry).ownerOf(parent))
        shares_bps.append(share)
    self._list_access(asset_id, price_per_token, payment_token, contributors, shares_bps)


@external
@nonreentrant
def delist_access(asset_id: uint256):
    """
    @notice Ends the access listing of `asset_id`.
    @dev Requires a listing ("not listed for access") and the caller to be
         its seller or the asset's current owner ("caller is not asset
         owner"). Emits `AccessDelisted`.
    """
    seller: address = self.access_listing[asset_id].seller
    assert seller != empty(address), "not listed for access"
    self._check_manager(asset_id, seller)
    self.access_listing[asset_id] = empty(AccessListing)
    log AccessDelisted(asset_id=asset_id)


@external
@payable
@nonreentrant
def buy_access(asset_id: uint256, amount_tokens: uint256):
    """
    @notice Buys `amount_tokens` whole access tokens of `asset_id` (minted
            to the caller as `amount_tokens * 10**18` units) for
            `amount_tokens * price_per_token`, split and credited as the
            listing says.
    @dev Requires, in this order: a listing ("not listed for access"); a
         non-zero amount ("zero amount"); the seller still owns the asset
         ("listing void: asset owner changed"); the payment: native
         `msg.value` equal to the total ("msg.value does not match
         price"), or for a token no `msg.value` ("msg.value with a token
         payment") and a successful `transferFrom` ("token transfer
         failed"); the access token accepts this contract as minter (its
         "caller is not a minter"). Emits `Credited` per part, the token's
         `Transfer` and `AccessBought`.
    """
    listing: AccessListing = self.access_listing[asset_id]
    assert listing.seller != empty(address), "not listed for access"
    assert amount_tokens != 0, "zero amount"
    self._check_governance(asset_id)
    assert staticcall IAssetRegistry(asset_registry).ownerOf(asset_id) == listing.seller, (
        "listing void: asset owner changed"
    )
    total: uint256 = listing.price * amount_tokens
    self._split(listing.seller, listing.payment_token, total, listing.contributors, listing.shares_bps)
    log AccessBought(
        asset_id=asset_id, buyer=msg.sender, tokens=amount_tokens, payment_token=listing.payment_token, total=total
    )
    self._collect(listing.payment_token, total, msg.value)
    token: address = staticcall IAccessTokenFactory(access_factory).access_token(asset_id)
    extcall IAccessToken(token).mint(msg.sender, amount_tokens * ONE_TOKEN)


# ---------------------------------------------------------------------------------------------------- dispenser


@external
@nonreentrant
def enable_dispenser(asset_id: uint256, max_per_address: uint256):
    """
    @notice Lets anyone take free access tokens of `asset_id`, one whole
            token per `dispense`, at most `max_per_address` per address
            (counted over the dispenser's whole life, so giving tokens
            away does not earn more). Enabling again changes the cap.
    @dev Requires the caller to own the asset ("caller is not asset
         owner"), `max_per_address > 0` ("zero cap"), an access token
         ("no access token") this contract may mint ("marketplace is not a
         minter"). Emits `DispenserEnabled`.
    """
    self._check_owner_of(asset_id)
    assert max_per_address != 0, "zero cap"
    self._check_governance(asset_id)
    self._check_mintable(asset_id)
    self.dispenser[asset_id] = Dispenser(owner=msg.sender, max_per_address=max_per_address)
    log DispenserEnabled(asset_id=asset_id, owner=msg.sender, max_per_address=max_per_address)


@external
@nonreentrant
def disable_dispenser(asset_id: uint256):
    """
    @notice Stops the dispenser of `asset_id`.
    @dev Requires an enabled dispenser ("dispenser not enabled") and the
         caller to be who enabled it or the asset's current owner ("caller
         is not asset owner"). Emits `DispenserDisabled`.
    """
    owner: address = self.dispenser[asset_id].owner
    assert owner != empty(address), "dispenser not enabled"
    self._check_manager(asset_id, owner)
    self.dispenser[asset_id] = empty(Dispenser)
    log DispenserDisabled(asset_id=asset_id)


@external
@nonreentrant
def dispense(asset_id: uint256):
    """
    @notice Mints one whole access token of `asset_id` to the caller, free.
    @dev Requires an enabled dispenser ("dispenser not enabled") whose
         owner still owns the asset ("dispenser void: asset owner
         changed") and the caller below its cap ("dispenser cap
         reached"). Emits `Dispensed` and the token's `Transfer`.
    """
    d: Dispenser = self.dispenser[asset_id]
    assert d.owner != empty(address), "dispenser not enabled"
    assert staticcall IAssetRegistry(asset_registry).ownerOf(asset_id) == d.owner, (
        "dispenser void: asset owner changed"
    )
    self._check_governance(asset_id)
    count: uint256 = self.dispensed[asset_id][msg.sender] + 1
    assert count <= d.max_per_address, "dispenser cap reached"
    self.dispensed[asset_id][msg.sender] = count
    log Dispensed(asset_id=asset_id, to=msg.sender, total_dispensed=count)
    token: address = staticcall IAccessTokenFactory(access_factory).access_token(asset_id)
    extcall IAccessToken(token).mint(msg.sender, ONE_TOKEN)


# ----------------------------------------------------------------------------------------------------- licences


@external
@nonreentrant
def list_licence(
    asset_id: uint256,
    price: uint256,
    duration_seconds: uint256,
    payment_token: address,
    contributors: DynArray[address, MAX_CONTRIBUTORS] = [],
    shares_bps: DynArray[uint16, MAX_CONTRIBUTORS] = [],
):
    """
    @notice Sells time-bound licences of `asset_id`: `price` (in
            `payment_token`) for `duration_seconds` of access, split like
            access sales (no contributors by default). Listing again
            replaces the listing; licences sold stay valid.
    @dev Requires the caller to own the asset ("caller is not asset
         owner"), a non-zero price ("zero price") and duration ("zero
         duration"), a valid payment token ("payment token is not a
         contract") and valid shares (as in `list_access`). Needs no
         access token. Emits `LicenceListed`.
    """
    self._check_owner_of(asset_id)
    assert price != 0, "zero price"
    assert duration_seconds != 0, "zero duration"
    self._check_governance(asset_id)
    self._check_payment_token(payment_token)
    self._check_shares(contributors, shares_bps)
    self.licence_listing[asset_id] = LicenceListing(
        seller=msg.sender,
        price=price,
        duration=duration_seconds,
        payment_token=payment_token,
        contributors=contributors,
        shares_bps=shares_bps,
    )
    log LicenceListed(
        asset_id=asset_id,
        seller=msg.sender,
        price=price,
        duration=duration_seconds,
        payment_token=payment_token,
        contributors=contributors,
        shares_bps=shares_bps,
    )


@external
@nonreentrant
def delist_licence(asset_id: uint256):
    """
    @notice Ends the licence listing of `asset_id`; licences sold stay valid.
    @dev Requires a listing ("not listed for licence") and the caller to be
         its seller or the asset's current owner ("caller is not asset
         owner"). Emits `LicenceDelisted`.
    """
    seller: address = self.licence_listing[asset_id].seller
    assert seller != empty(address), "not listed for licence"
    self._check_manager(asset_id, seller)
    self.licence_listing[asset_id] = empty(LicenceListing)
    log LicenceDelisted(asset_id=asset_id)


@external
@payable
@nonreentrant
def buy_licence(asset_id: uint256) -> uint256:
    """
    @notice Buys one licence period of `asset_id` for the caller: its
            licence then ends `duration` seconds after max(now, its
            current end). Returns the new end (unix seconds, exclusive).
    @dev Requires a listing ("not listed for licence") whose seller still
         owns the asset ("listing void: asset owner changed") and the
         payment as in `buy_access`. Emits `Credited` per part and
         `LicenceBought`.
    """
    listing: LicenceListing = self.licence_listing[asset_id]
    assert listing.seller != empty(address), "not listed for licence"
    assert staticcall IAssetRegistry(asset_registry).ownerOf(asset_id) == listing.seller, (
        "listing void: asset owner changed"
    )
    self._check_governance(asset_id)
    expiry: uint256 = max(self.licence_expiry[asset_id][msg.sender], block.timestamp) + listing.duration
    self.licence_expiry[asset_id][msg.sender] = expiry
    self._split(listing.seller, listing.payment_token, listing.price, listing.contributors, listing.shares_bps)
    log LicenceBought(
        asset_id=asset_id, holder=msg.sender, price=listing.price, payment_token=listing.payment_token, expiry=expiry
    )
    self._collect(listing.payment_token, listing.price, msg.value)
    return expiry


@external
@view
def has_access(asset_id: uint256, holder: address) -> bool:
    """
    @notice Whether `holder` may use `asset_id` now: its licence has not
            ended, or it holds at least one whole access token.
    """
    if self.licence_expiry[asset_id][holder] > block.timestamp:
        return True
    token: address = staticcall IAccessTokenFactory(access_factory).access_token(asset_id)
    if token == empty(address):
        return False
    return staticcall IAccessToken(token).balanceOf(holder) >= ONE_TOKEN


# ------------------------------------------------------------------------------------------------ the asset NFT


@external
@nonreentrant
def list_asset(asset_id: uint256, price: uint256, payment_token: address):
    """
    @notice Offers the asset NFT `asset_id` for `price` in
            `payment_token`. Approve this contract for the token (or for
            all tokens) first. Listing again changes the price.
    @dev Requires the caller to own the asset ("caller is not asset
         owner"), a non-zero price ("zero price"), a valid payment token
         ("payment token is not a contract") and this contract approved
         ("marketplace not approved"). Emits `AssetListed`.
    """
    self._check_owner_of(asset_id)
    assert price != 0, "zero price"
    self._check_governance(asset_id)
    self._check_payment_token(payment_token)
    assert (
        staticcall IAssetRegistry(asset_registry).getApproved(asset_id) == self
        or staticcall IAssetRegistry(asset_registry).isApprovedForAll(msg.sender, self)
    ), "marketplace not approved"
    self.asset_listing[asset_id] = AssetListing(seller=msg.sender, price=price, payment_token=payment_token)
    log AssetListed(asset_id=asset_id, seller=msg.sender, price=price, payment_token=payment_token)


@external
@nonreentrant
def delist(asset_id: uint256):
    """
    @notice Withdraws the NFT offer of `asset_id`.
    @dev Requires an offer ("asset not listed") and the caller to be its
         seller or the asset's current owner ("caller is not asset
         owner"). Emits `AssetDelisted`.
    """
    seller: address = self.asset_listing[asset_id].seller
    assert seller != empty(address), "asset not listed"
    self._check_manager(asset_id, seller)
    self.asset_listing[asset_id] = empty(AssetListing)
    log AssetDelisted(asset_id=asset_id)


@external
@payable
@nonreentrant
def buy_asset(asset_id: uint256):
    """
    @notice Buys the asset NFT `asset_id` at its listed price: the NFT
            moves from the seller to the caller; the ERC-2981 royalty goes
            to its receiver, the fee to the fee recipient, the rest to the
            seller (all credited). The offer ends.
    @dev Requires, in this order: an offer ("asset not listed"); the
         seller still owns the asset ("listing void: seller no longer owns
         the asset"); the caller is not the seller ("buyer is seller");
         royalty and fee within the price ("royalty and fee exceed
         price"); the payment as in `buy_access`; the approval still in
         place (the registry's "erc721: caller is not token owner or
         approved"). Emits `Credited` per part, `AssetSold` and the
         registry's `Transfer`.
    """
    listing: AssetListing = self.asset_listing[asset_id]
    assert listing.seller != empty(address), "asset not listed"
    assert staticcall IAssetRegistry(asset_registry).ownerOf(asset_id) == listing.seller, (
        "listing void: seller no longer owns the asset"
    )
    assert msg.sender != listing.seller, "buyer is seller"
    self._check_governance(asset_id)
    receiver: address = empty(address)
    royalty: uint256 = 0
    receiver, royalty = staticcall IAssetRegistry(asset_registry).royaltyInfo(asset_id, listing.price)
    if receiver == empty(address):
        royalty = 0
    fee: uint256 = listing.price * self.fee_bps // BPS
    assert royalty + fee <= listing.price, "royalty and fee exceed price"

    self.asset_listing[asset_id] = empty(AssetListing)
    self._credit(receiver, listing.payment_token, royalty)
    self._credit(self.fee_recipient, listing.payment_token, fee)
    self._credit(listing.seller, listing.payment_token, unsafe_sub(listing.price, royalty + fee))
    log AssetSold(
        asset_id=asset_id,
        seller=listing.seller,
        buyer=msg.sender,
        price=listing.price,
        payment_token=listing.payment_token,
        royalty_receiver=receiver,
        royalty=royalty,
        fee=fee,
    )
    self._collect(listing.payment_token, listing.price, msg.value)
    extcall IAssetRegistry(asset_registry).transferFrom(listing.seller, msg.sender, asset_id)


# ----------------------------------------------------------------------------------------------------- payments


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


# ----------------------------------------------------------------------------------------------------- internal


@internal
def _list_access(
    asset_id: uint256,
    price_per_token: uint256,
    payment_token: address,
    contributors: DynArray[address, MAX_CONTRIBUTORS],
    shares_bps: DynArray[uint16, MAX_CONTRIBUTORS],
):
    self._check_owner_of(asset_id)
    assert price_per_token != 0, "zero price"
    self._check_governance(asset_id)
    self._check_payment_token(payment_token)
    self._check_shares(contributors, shares_bps)
    self._check_mintable(asset_id)
    self.access_listing[asset_id] = AccessListing(
        seller=msg.sender,
        price=price_per_token,
        payment_token=payment_token,
        contributors=contributors,
        shares_bps=shares_bps,
    )
    log AccessListed(
        asset_id=asset_id,
        seller=msg.sender,
        price=price_per_token,
        payment_token=payment_token,
        contributors=contributors,
        shares_bps=shares_bps,
    )


@internal
@view
def _check_owner_of(asset_id: uint256):
    """
    @dev The caller owns the asset NFT ("caller is not asset owner").
    """
    assert staticcall IAssetRegistry(asset_registry).ownerOf(asset_id) == msg.sender, "caller is not asset owner"


@internal
@view
def _check_manager(asset_id: uint256, lister: address):
    """
    @dev The caller made the listing, or owns the asset now ("caller is not
         asset owner").
    """
    if msg.sender != lister:
        self._check_owner_of(asset_id)


@internal
@view
def _check_governance(asset_id: uint256):
    """
    @dev With a governance set, a model's whole lineage must be approved
         ("lineage not approved by governance"). Datasets trade freely:
         governance decides what may train deployable models.
    """
    if self.governance == empty(address):
        return
    if staticcall IAssetRegistry(asset_registry).kind_of(asset_id) != 2:
        return
    assert staticcall IGovernance(self.governance).lineage_approved(asset_id), "lineage not approved by governance"


@internal
@view
def _check_mintable(asset_id: uint256):
    """
    @dev The asset has an access token ("no access token") that this
         contract may mint ("marketplace is not a minter").
    """
    token: address = staticcall IAccessTokenFactory(access_factory).access_token(asset_id)
    assert token != empty(address), "no access token"
    assert staticcall IAccessToken(token).is_minter(self), "marketplace is not a minter"


@internal
@view
def _check_payment_token(payment_token: address):
    """
    @dev Native coin, or an ERC-20 contract ("payment token is not a contract").
    """
    assert payment_token == empty(address) or payment_token.is_contract, "payment token is not a contract"


@internal
@pure
def _check_shares(contributors: DynArray[address, MAX_CONTRIBUTORS], shares_bps: DynArray[uint16, MAX_CONTRIBUTORS]):
    """
    @dev One share per contributor ("shares length mismatch"), no zero
         address ("zero contributor"), no zero share ("zero share"), at
         most 10,000 basis points in all ("shares above 100%").
    """
    assert len(contributors) == len(shares_bps), "shares length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(contributors), bound=MAX_CONTRIBUTORS):
        assert contributors[i] != empty(address), "zero contributor"
        assert shares_bps[i] != 0, "zero share"
        total += convert(shares_bps[i], uint256)
    assert total <= BPS, "shares above 100%"


@internal
def _split(
    owner: address,
    token: address,
    total: uint256,
    contributors: DynArray[address, MAX_CONTRIBUTORS],
    shares_bps: DynArray[uint16, MAX_CONTRIBUTORS],
):
    """
    @dev Credits `total`: the fee off the top, then each contributor's
         share of the rest, then what remains (rounding dust included) to
         `owner`. The parts add up to `total` exactly.
    """
    fee: uint256 = total * self.fee_bps // BPS
    self._credit(self.fee_recipient, token, fee)
    net: uint256 = unsafe_sub(total, fee)
    rest: uint256 = net
    for i: uint256 in range(len(contributors), bound=MAX_CONTRIBUTORS):
        part: uint256 = net * convert(shares_bps[i], uint256) // BPS
        self._credit(contributors[i], token, part)
        rest -= part
    self._credit(owner, token, rest)


@internal
def _credit(account: address, token: address, amount: uint256):
    """
    @dev Adds `amount` to what `account` can withdraw; nothing for zero.
    """
    if amount == 0:
        return
    self.withdrawable[account][token] += amount
    log Credited(account=account, token=token, amount=amount)


@internal
def _collect(payment_token: address, amount: uint256, sent: uint256):
    """
    @dev Takes the payment from the caller: native coin must have come as
         `sent` (the call's msg.value) and equal `amount`; an ERC-20 is
         pulled with `transferFrom`, and then no native coin may come.
    """
    if payment_token == empty(address):
        assert sent == amount, "msg.value does not match price"
        return
    assert sent == 0, "msg.value with a token payment"
    assert extcall IERC20(payment_token).transferFrom(msg.sender, self, amount, default_return_value=True), (
        "token transfer failed"
    )

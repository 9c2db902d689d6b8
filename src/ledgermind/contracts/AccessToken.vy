# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title AccessToken
@license Apache-2.0
@notice The ERC-20 access token ("datatoken", as in Ocean Protocol) of one
        asset of the AssetRegistry: holding one whole token (10**18 units)
        grants access to the asset, which for a model means
        `inferences_per_token` inferences. Providers decide how access is
        consumed (e.g. the holder burns a token, or sends it to them);
        `Marketplace.has_access` reads the balance.

        Deployed only by the AccessTokenFactory from an ERC-5202 blueprint
        (`create_from_blueprint`), one per asset: look an asset's token up
        with `AccessTokenFactory.access_token(asset_id)`, never trust a
        token that claims an `asset_id` on its own.

        Who mints: the CURRENT owner of the asset NFT, and the minters it
        authorised with `set_minter` (e.g. the Marketplace, which mints to
        buyers and from its dispenser). Authorisations are kept per
        granting owner, so when the NFT changes hands every minter the
        previous owner authorised loses the role at once, and the new
        owner starts from none. `owner()` is the asset's current owner.

        Token logic is snekmate's `erc20` (transfers, EIP-2612 `permit`,
        EIP-5267 `eip712Domain`, `burn`/`burn_from`); snekmate's own
        minter role and ownership functions are not exported, because the
        asset NFT decides who mints.
"""

from ethereum.ercs import IERC20
implements: IERC20

from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed

from snekmate.tokens.interfaces import IERC20Permit
implements: IERC20Permit

from snekmate.utils.interfaces import IERC5267
implements: IERC5267

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

# Not exported: `erc20.mint`, `erc20.set_minter`, `erc20.is_minter` (the
# minter rule below replaces them), `transfer_ownership`,
# `renounce_ownership` and `ownable.owner` (the asset NFT's owner is this
# token's owner; see `owner`).
exports: (
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
    erc20.burn,
    erc20.burn_from,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712_domain_separator.eip712Domain,
)


# @dev The part of the AssetRegistry this contract reads.
interface IAssetRegistry:
    def ownerOf(token_id: uint256) -> address: view


_NAME: constant(String[25]) = "ledgermind access token"
_SYMBOL: constant(String[5]) = "LMACC"
_DECIMALS: constant(uint8) = 18
_EIP712_NAME: constant(String[50]) = "ledgermind AccessToken"
_EIP712_VERSION: constant(String[20]) = "1"

# @dev The AssetRegistry that holds the asset NFT.
asset_registry: public(immutable(address))

# @dev The asset (AssetRegistry token id = asset digest) this token opens.
asset_id: public(immutable(uint256))

# @dev How many inferences one whole token (10**18 units) buys.
inferences_per_token: public(immutable(uint256))

# @dev The AccessTokenFactory that deployed this token.
factory: public(immutable(address))

# @dev granting asset owner -> minter -> authorised.
_minters: HashMap[address, HashMap[address, bool]]


event MinterSet:
    owner: indexed(address)
    minter: indexed(address)
    status: bool


@deploy
def __init__(
    asset_registry_: address, asset_id_: uint256, inferences_per_token_: uint256, owner_: address, minter_: address
):
    """
    @notice Called by the AccessTokenFactory, which has checked that
            `owner_` owns the asset; authorises `minter_` on behalf of
            `owner_` unless it is empty(address).
    """
    ownable.__init__()
    erc20.__init__(_NAME, _SYMBOL, _DECIMALS, _EIP712_NAME, _EIP712_VERSION)
    # snekmate made the deployer (the factory) a minter; that role is not
    # used here (`mint` below has its own rule), so say so in the log too.
    erc20.is_minter[msg.sender] = False
    log erc20.RoleMinterChanged(minter=msg.sender, status=False)
    asset_registry = asset_registry_
    asset_id = asset_id_
    inferences_per_token = inferences_per_token_
    factory = msg.sender
    if minter_ != empty(address):
        self._minters[owner_][minter_] = True
        log MinterSet(owner=owner_, minter=minter_, status=True)


@external
def mint(to: address, amount: uint256):
    """
    @notice Mints `amount` units (10**18 = one access) to `to`.
    @dev Requires the caller to be the asset's current owner or a minter
         it authorised ("caller is not a minter"); `to` must not be the
         zero address (snekmate's "erc20: mint to the zero address").
         Emits `Transfer`.
    """
    assert self._is_minter(msg.sender), "caller is not a minter"
    erc20._mint(to, amount)


@external
def set_minter(minter: address, status: bool):
    """
    @notice Authorises (`status = True`) or revokes a minter on behalf of
            the asset's current owner.
    @dev Requires the caller to own the asset NFT ("caller is not asset
         owner") and a non-zero minter ("zero minter"). Emits `MinterSet`.
    """
    owner: address = staticcall IAssetRegistry(asset_registry).ownerOf(asset_id)
    assert msg.sender == owner, "caller is not asset owner"
    assert minter != empty(address), "zero minter"
    self._minters[owner][minter] = status
    log MinterSet(owner=owner, minter=minter, status=status)


@external
@view
def is_minter(account: address) -> bool:
    """
    @notice Whether `account` may mint now: the asset's current owner, or
            a minter that owner authorised.
    """
    return self._is_minter(account)


@external
@view
def owner() -> address:
    """
    @notice The current owner of the asset NFT, who controls minting.
    """
    return staticcall IAssetRegistry(asset_registry).ownerOf(asset_id)


@internal
@view
def _is_minter(account: address) -> bool:
    owner: address = staticcall IAssetRegistry(asset_registry).ownerOf(asset_id)
    return account == owner or self._minters[owner][account]

# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title AccessTokenFactory
@license Apache-2.0
@notice Creates the one AccessToken (ERC-20 "datatoken") of an asset of the
        AssetRegistry. Only the asset NFT's current owner can create it,
        once per asset; `access_token(asset_id)` is the canonical lookup.

        Tokens are deployed with `create_from_blueprint` from an AccessToken
        blueprint (ERC-5202, deployed once, passed to the constructor),
        with CREATE2 salt = the asset id: each token is a full contract of
        its own (no proxy, so snekmate's immutables work) and its address
        depends only on this factory, the blueprint and the constructor
        arguments.
"""


# @dev The part of the AssetRegistry this contract reads.
interface IAssetRegistry:
    def ownerOf(token_id: uint256) -> address: view


# @dev The AssetRegistry that holds the asset NFTs.
asset_registry: public(immutable(address))

# @dev The ERC-5202 blueprint of AccessToken.
blueprint: public(immutable(address))

# @dev asset id -> its AccessToken; empty(address) if none yet.
access_token: public(HashMap[uint256, address])


event AccessTokenCreated:
    asset_id: indexed(uint256)
    token: indexed(address)
    creator: indexed(address)
    inferences_per_token: uint256
    minter: address


@deploy
def __init__(asset_registry_: address, blueprint_: address):
    """
    @param asset_registry_ The AssetRegistry ("registry is not a contract").
    @param blueprint_ An ERC-5202 blueprint of AccessToken ("blueprint is
           not a contract").
    """
    assert asset_registry_.is_contract, "registry is not a contract"
    assert blueprint_.is_contract, "blueprint is not a contract"
    asset_registry = asset_registry_
    blueprint = blueprint_


@external
def create_access_token(asset_id: uint256, inferences_per_token: uint256, minter: address) -> address:
    """
    @notice Creates the access token of `asset_id`, where one whole token
            buys `inferences_per_token` inferences, optionally authorising
            `minter` (e.g. the Marketplace; empty(address) for none) on the
            caller's behalf; returns the token's address.
    @dev Requires the asset to be minted ("erc721: invalid token ID"), the
         caller to own it ("caller is not asset owner"),
         `inferences_per_token > 0` ("zero inferences per token") and no
         token for this asset yet ("access token exists"). Emits
         `AccessTokenCreated` (and the token's `MinterSet`).
    """
    owner: address = staticcall IAssetRegistry(asset_registry).ownerOf(asset_id)
    assert msg.sender == owner, "caller is not asset owner"
    assert inferences_per_token != 0, "zero inferences per token"
    assert self.access_token[asset_id] == empty(address), "access token exists"
    token: address = create_from_blueprint(
        blueprint,
        asset_registry,
        asset_id,
        inferences_per_token,
        owner,
        minter,
        salt=convert(asset_id, bytes32),
    )
    self.access_token[asset_id] = token
    log AccessTokenCreated(
        asset_id=asset_id, token=token, creator=owner, inferences_per_token=inferences_per_token, minter=minter
    )
    return token

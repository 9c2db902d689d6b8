# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title AssetRegistry
@license Apache-2.0
@notice ERC-721 registry of ledgermind assets: every dataset or model can
        be minted once as a token whose id is its 32-byte SHA-256 asset
        digest read as a big-endian integer (`convert(digest, uint256)`),
        so anyone knows an asset's token id before it is minted. A token
        records the asset's kind, its metadata URI (the reference to its
        signed statement) and its lineage: the token ids of the datasets
        and models it was derived from, which must all be minted first.
        Lineage is therefore acyclic, and a token's record never changes:
        nothing can be burned or edited, because other tokens' lineage may
        point at it.

        Token logic is snekmate's `erc721` (with enumeration and EIP-4494
        `permit`) and `erc2981` (royalties); this contract only adds the
        asset record, the mint rules and per-token royalty control.

        Who may mint: deny by default. Only accounts with snekmate's
        `erc721` minter role (`is_minter`) can mint; the deployer is the
        contract owner and the first minter, and the owner grants or
        revokes the role with `set_minter` (e.g. to the ledgermind node
        that mints on behalf of the actor whose signed statement it has
        logged). The minter chooses the recipient `to`, who then owns the
        token like any ERC-721 token.

        Royalties: the current owner of a token sets its ERC-2981 royalty
        (receiver and basis points, capped at `MAX_ROYALTY_BPS`). The
        royalty stays with the token on transfer, and the new owner can
        change it.
"""

from ethereum.ercs import IERC165
implements: IERC165

from ethereum.ercs import IERC721
implements: IERC721

from snekmate.tokens.interfaces import IERC721Metadata
implements: IERC721Metadata

from snekmate.tokens.interfaces import IERC721Enumerable
implements: IERC721Enumerable

from snekmate.extensions.interfaces import IERC2981
implements: IERC2981

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc721
initializes: erc721[ownable := ownable]

from snekmate.extensions import erc2981
initializes: erc2981[ownable := ownable]


# Not exported on purpose: `erc721.safe_mint` (sequential ids; `mint`
# replaces it), `erc721.burn` (lineage must not dangle), `erc721.
# supportsInterface` and `erc2981.supportsInterface` (merged below), and
# erc2981's owner-only royalty setters (the contract owner must not set
# royalties on tokens it does not own).
exports: (
    erc721.balanceOf,
    erc721.ownerOf,
    erc721.approve,
    erc721.getApproved,
    erc721.setApprovalForAll,
    erc721.isApprovedForAll,
    erc721.transferFrom,
    erc721.safeTransferFrom,
    erc721.name,
    erc721.symbol,
    erc721.tokenURI,
    erc721.totalSupply,
    erc721.tokenByIndex,
    erc721.tokenOfOwnerByIndex,
    erc721.is_minter,
    erc721.set_minter,
    erc721.permit,
    erc721.nonces,
    erc721.DOMAIN_SEPARATOR,
    erc721.eip712_domain_separator.eip712Domain,
    # erc721's versions, which move the minter role along with ownership
    erc721.transfer_ownership,
    erc721.renounce_ownership,
    ownable.owner,
    erc2981.royaltyInfo,
)


# @dev Asset kinds.
KIND_DATASET: public(constant(uint8)) = 1
KIND_MODEL: public(constant(uint8)) = 2

# @dev Most parents one asset can list.
MAX_PARENTS: public(constant(uint256)) = 32

# @dev Royalty ceiling in basis points (10%): ERC-2981 itself allows 100%,
# which would let an owner take a whole resale price.
MAX_ROYALTY_BPS: public(constant(uint96)) = 1_000

# @dev ERC-165 identifiers of what this contract implements. ERC-4906 is
# left out: metadata never changes, so no `MetadataUpdate` is ever emitted.
_SUPPORTED_INTERFACES: constant(bytes4[6]) = [
    0x01FFC9A7, # ERC-165
    0x80AC58CD, # ERC-721
    0x5B5E139F, # ERC-721 metadata
    0x780E9D63, # ERC-721 enumeration
    0x589C5CE2, # ERC-4494 (permit)
    0x2A55205A, # ERC-2981
]

# @dev Collection and EIP-712 domain names; fixed so that the deploy
# bytecode takes no constructor arguments.
_NAME: constant(String[25]) = "ledgermind assets"
_SYMBOL: constant(String[5]) = "LMA"
_EIP712_NAME: constant(String[50]) = "ledgermind AssetRegistry"
_EIP712_VERSION: constant(String[20]) = "1"


# @dev token id -> kind (bits 0-7) and number of parents (bits 8-15);
# zero means never minted. Packed by hand into one slot because Vyper
# 0.4 does not pack structs and a mint pays 22,100 gas per fresh slot.
# The digest is not stored: it is the token id.
_records: HashMap[uint256, uint256]

# @dev token id -> index -> parent token id, ascending by index.
_parents: HashMap[uint256, HashMap[uint256, uint256]]


event Minted:
    digest: indexed(bytes32)
    owner: indexed(address)
    kind: uint8
    parents: DynArray[uint256, MAX_PARENTS]
    metadata_uri: String[256]


event RoyaltySet:
    token_id: indexed(uint256)
    receiver: indexed(address)
    bps: uint96


@deploy
def __init__():
    """
    @notice The deployer becomes the contract owner and the first minter.
    """
    ownable.__init__()
    erc721.__init__(_NAME, _SYMBOL, "", _EIP712_NAME, _EIP712_VERSION)
    erc2981.__init__()


@external
def mint(
    to: address, digest: bytes32, kind: uint8, metadata_uri: String[256], parents: DynArray[uint256, MAX_PARENTS]
) -> uint256:
    """
    @notice Mints the asset `digest` to `to` and returns its token id,
            `convert(digest, uint256)`.
    @dev Requires, in this order: the caller is a minter ("caller is not
         a minter"); `kind` is 1 (dataset) or 2 (model) ("unknown kind");
         `digest` is not zero ("zero digest"); `metadata_uri` is not
         empty ("empty metadata uri"); the asset was never minted
         ("already minted"); a dataset lists no parents ("dataset has
         parents"); `parents` is strictly ascending, so it has no
         duplicates and one encoding ("parents not strictly ascending");
         every parent is minted ("unknown parent"). `to` must not be the
         zero address and, if it is a contract, must accept ERC-721
         tokens (snekmate's "erc721: ..." reasons). Emits `Transfer` and
         `Minted`.
    @param to The owner of the new token.
    @param digest The asset's SHA-256 digest (its ledgermind id).
    @param kind 1 for a dataset, 2 for a model.
    @param metadata_uri Where the asset's signed statement is found;
           returned by `tokenURI`.
    @param parents Token ids of the assets this one derives from.
    """
    assert erc721.is_minter[msg.sender], "caller is not a minter"
    assert kind == KIND_DATASET or kind == KIND_MODEL, "unknown kind"
    assert digest != empty(bytes32), "zero digest"
    assert len(metadata_uri) != 0, "empty metadata uri"
    token_id: uint256 = convert(digest, uint256)
    assert self._records[token_id] == 0, "already minted"

    n: uint256 = len(parents)
    assert n == 0 or kind != KIND_DATASET, "dataset has parents"
    previous: uint256 = 0
    for i: uint256 in range(n, bound=MAX_PARENTS):
        parent: uint256 = parents[i]
        # Ascending order rules out duplicates in O(n) and gives each
        # lineage one encoding. Token id 0 is never minted, so comparing
        # the first parent against 0 rejects nothing valid.
        assert parent > previous, "parents not strictly ascending"
        assert self._records[parent] != 0, "unknown parent"
        self._parents[token_id][i] = parent
        previous = parent

    # Checks-effects-interactions: the record and the token exist before
    # the receiver hook runs, so a re-entrant mint of the same digest fails.
    self._records[token_id] = convert(kind, uint256) | (n << 8)
    # Written directly rather than through `erc721._set_token_uri`, which
    # would also emit an ERC-4906 `MetadataUpdate` for what is a mint.
    erc721._token_uris[token_id] = metadata_uri
    erc721._mint(to, token_id)
    log Minted(digest=digest, owner=to, kind=kind, parents=parents, metadata_uri=metadata_uri)
    assert erc721._check_on_erc721_received(
        empty(address), to, token_id, b""
    ), "erc721: transfer to non-IERC721Receiver implementer"
    return token_id


@external
def set_royalty(token_id: uint256, receiver: address, bps: uint96):
    """
    @notice Sets the ERC-2981 royalty of `token_id`: `bps` basis points
            of a sale price, paid to `receiver`. `bps = 0` means none.
    @dev Requires the caller to own the token ("caller is not token
         owner"; an unminted token gives "erc721: invalid token ID"),
         `bps <= MAX_ROYALTY_BPS` ("royalty above cap") and a non-zero
         receiver ("erc2981: invalid receiver"). Approved operators cannot
         set royalties. Emits `RoyaltySet`.
    """
    assert erc721._owner_of(token_id) == msg.sender, "caller is not token owner"
    assert bps <= MAX_ROYALTY_BPS, "royalty above cap"
    erc2981._set_token_royalty(token_id, receiver, bps)
    log RoyaltySet(token_id=token_id, receiver=receiver, bps=bps)


@external
@view
def supportsInterface(interface_id: bytes4) -> bool:
    """
    @notice ERC-165: true for ERC-165, ERC-721 (+ metadata, enumeration),
            ERC-4494 and ERC-2981.
    """
    return interface_id in _SUPPORTED_INTERFACES


@external
@view
def exists(token_id: uint256) -> bool:
    """
    @notice Whether `token_id` has been minted.
    """
    return self._records[token_id] != 0


@external
@view
def kind_of(token_id: uint256) -> uint8:
    """
    @notice The kind of `token_id`: 1 dataset, 2 model, 0 if never minted.
    """
    return convert(self._records[token_id] & 255, uint8)


@external
@view
def asset(token_id: uint256) -> (bytes32, uint8, DynArray[uint256, MAX_PARENTS]):
    """
    @notice Returns `(digest, kind, parents)` of a minted asset.
    @dev Reverts with "unknown asset" if `token_id` was never minted.
    """
    record: uint256 = self._records[token_id]
    assert record != 0, "unknown asset"
    return (convert(token_id, bytes32), convert(record & 255, uint8), self._parents_of(token_id, record >> 8))


@external
@view
def parents_of(token_id: uint256) -> DynArray[uint256, MAX_PARENTS]:
    """
    @notice Returns the parent token ids of a minted asset, ascending.
    @dev Reverts with "unknown asset" if `token_id` was never minted.
    """
    record: uint256 = self._records[token_id]
    assert record != 0, "unknown asset"
    return self._parents_of(token_id, record >> 8)


@internal
@view
def _parents_of(token_id: uint256, n: uint256) -> DynArray[uint256, MAX_PARENTS]:
    """
    @dev The `n` parents of `token_id`; requires `n <= MAX_PARENTS`.
    """
    parents: DynArray[uint256, MAX_PARENTS] = []
    for i: uint256 in range(n, bound=MAX_PARENTS):
        parents.append(self._parents[token_id][i])
    return parents

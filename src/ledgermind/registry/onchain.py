"""Registered assets as ERC-721 tokens in the AssetRegistry contract, with their lineage on chain.

The token id is the asset digest read as a uint256, so anyone can find a dataset's or model's token
from its bytes. A model is minted only after every dataset and parent model in its lineage is minted:
the contract refuses unknown parents, and we check first to say which one is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledgermind.chain.connection import Chain, ChainError
from ledgermind.chain.deployments import Deployment, contract
from ledgermind.errors import InvalidInputError
from ledgermind.registry.service import Registry

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

KINDS = {"dataset": 1, "model": 2}
KIND_NAMES = {v: k for k, v in KINDS.items()}
MINT_GAS = 400_000  # plus MINT_GAS_PER_PARENT for each parent (a 32-parent model uses ~1.06M)
MINT_GAS_PER_PARENT = 25_000


def token_id(digest: str) -> int:
    return int(digest, 16)


def metadata_uri(origin: str, log_index: int) -> str:
    """Where the asset's registration statement lives: entry ``log_index`` of the log ``origin``."""
    return f"ledgermind://{origin}/entries/{log_index}"


def _exists(chain: Chain, registry: Any, tid: int) -> bool:
    return bool(chain.call(registry.functions.exists(tid)))


def mint(
    chain: Chain, deployment: Deployment, account: LocalAccount, registry: Registry, ref: str, origin: str
) -> dict[str, Any]:
    """Mint a registered asset to ``account``. Raises InvalidInputError if already minted, ChainError if a
    parent is not minted (naming it) or the transaction fails."""
    row = registry.resolve(ref)
    c = contract(chain, deployment)
    tid = token_id(row.digest)
    if _exists(chain, c, tid):
        owner = chain.call(c.functions.ownerOf(tid))
        raise InvalidInputError(f"{row.kind} {row.name!r} is already minted on chain {chain.chain_id} (owner {owner})")
    parent_ids = []
    for parent, _relation in registry.index.parents(row.digest):
        prow = registry.index.asset(parent)
        if prow is None:
            raise ChainError(f"cannot mint {row.name!r}: its parent {parent[:12]} is not registered in the log")
        if not _exists(chain, c, token_id(parent)):
            raise ChainError(
                f"cannot mint {row.name!r}: its parent {prow.kind} {prow.name!r} ({parent[:12]}) is not minted on "
                f"chain {chain.chain_id}: mint it first"
            )
        parent_ids.append(token_id(parent))
    parent_ids = sorted(set(parent_ids))  # the contract wants one encoding of a lineage: strictly ascending
    if not chain.call(c.functions.is_minter(account.address)):
        raise ChainError(
            f"account {account.address} may not mint on chain {chain.chain_id}: the AssetRegistry owner can allow it "
            f"with 'ledgermind deploy --grant {account.address}'"
        )
    chain.ensure_funds(account.address)
    uri = metadata_uri(origin, row.log_index)
    receipt = chain.transact(
        account, c.functions.mint(account.address, bytes.fromhex(row.digest), KINDS[row.kind], uri, parent_ids),
        MINT_GAS + MINT_GAS_PER_PARENT * len(parent_ids),
    )
    return {
        "id": row.digest, "tokenId": hex(tid), "kind": row.kind, "name": row.name, "owner": account.address,
        "parents": [hex(p) for p in parent_ids], "metadataURI": uri, "chainId": chain.chain_id,
        "contract": deployment.address, "txHash": receipt.tx_hash, "blockNumber": receipt.block_number,
        "gasUsed": receipt.gas_used,
    }


def owned(chain: Chain, deployment: Deployment, owner: str, registry: Registry) -> list[dict[str, Any]]:
    """Tokens ``owner`` holds now, with what the log says about each."""
    c = contract(chain, deployment)
    token_ids = _tokens_of(chain, c, owner)
    out = []
    for tid in token_ids:
        digest = f"{tid:064x}"
        row = registry.index.asset(digest)
        out.append({
            "id": digest, "tokenId": hex(tid), "kind": row.kind if row else KIND_NAMES.get(_kind(chain, c, tid), "?"),
            "name": row.name if row else None, "logIndex": row.log_index if row else None, "owner": owner,
            "chainId": chain.chain_id,
        })
    return out


def _kind(chain: Chain, c: Any, tid: int) -> int:
    try:
        return int(chain.call(c.functions.kind_of(tid)))
    except ChainError:
        return 0


def _tokens_of(chain: Chain, c: Any, owner: str) -> list[int]:
    names = {f.get("name") for f in c.abi if f.get("type") == "function"}
    if "tokenOfOwnerByIndex" in names:
        n = int(chain.call(c.functions.balanceOf(owner)))
        return [int(chain.call(c.functions.tokenOfOwnerByIndex(owner, i))) for i in range(n)]
    # without the enumerable extension: every token that ever reached the owner, kept if still theirs
    logs = c.events.Transfer().get_logs(from_block=0, argument_filters={"to": owner})
    seen = []
    for log in logs:
        tid = int(log["args"].get("token_id", log["args"].get("tokenId")))
        if tid not in seen and chain.call(c.functions.ownerOf(tid)).lower() == owner.lower():
            seen.append(tid)
    return seen

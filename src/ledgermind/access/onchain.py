"""The one question access control asks the chain: may this holder use this asset right now?

The Marketplace contract answers it with ``has_access(asset_id, holder)``: a licence that has not expired, or
at least one whole access token of the asset. Only that function's ABI is needed here, so this works with
any deployment of the contract whatever else its interface grows.
"""

from __future__ import annotations

import re
from typing import Any

from ledgermind.chain.connection import Chain
from ledgermind.errors import InvalidInputError

HAS_ACCESS_ABI: list[dict[str, Any]] = [{
    "type": "function", "name": "has_access", "stateMutability": "view",
    "inputs": [{"name": "asset_id", "type": "uint256"}, {"name": "holder", "type": "address"}],
    "outputs": [{"name": "", "type": "bool"}],
}]
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX64 = re.compile(r"(0x)?[0-9a-fA-F]{64}")


def asset_id_int(asset_id: str | bytes) -> int:
    """An asset digest (64 hex, optionally 0x-prefixed, or 32 bytes) as the uint256 the contracts key on."""
    if isinstance(asset_id, bytes):
        if len(asset_id) != 32:
            raise InvalidInputError(f"asset id must be 32 bytes, got {len(asset_id)}")
        return int.from_bytes(asset_id, "big")
    if not isinstance(asset_id, str) or not _HEX64.fullmatch(asset_id):
        raise InvalidInputError(f"asset id must be a 64-hex digest, got {asset_id!r}")
    return int(asset_id.removeprefix("0x"), 16)


def holder_has_access(chain: Chain, marketplace_address: str, asset_id: str | bytes, holder: str) -> bool:
    """True if the Marketplace at ``marketplace_address`` on ``chain`` says ``holder`` may use ``asset_id`` now.

    Raises InvalidInputError for a malformed address or asset id; ChainError if the chain cannot answer (not
    reachable, no contract at the address, the call reverts): callers deny access then.
    """
    from web3 import Web3

    for what, value in (("marketplace", marketplace_address), ("holder", holder)):
        if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
            raise InvalidInputError(f"{what} must be a 0x-prefixed 20-byte address, got {value!r}")
    market = chain.w3.eth.contract(address=Web3.to_checksum_address(marketplace_address), abi=HAS_ACCESS_ABI)
    # chain.call turns every failure (unreachable, no code at the address, a revert) into one ChainError line
    answer = chain.call(market.functions.has_access(asset_id_int(asset_id), Web3.to_checksum_address(holder)))
    return answer is True

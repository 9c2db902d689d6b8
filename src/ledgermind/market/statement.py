"""The ``market/v1`` statement: an account's signed record of a market transaction it made on chain.

The chain already holds the transaction; the statement puts it in the log beside the asset's registration and
lineage, so a model's history (registered, minted, listed, sold, used) reads from one place and is covered by
the log's anchored checkpoints. Its subject is the asset; a withdrawal, which concerns no asset, names the
account instead (digest: SHA-256 of its lowercase address), and so does a change of the platform fee.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ledgermind.statements import MARKET, Envelope, make_statement, sign_envelope, utc_now

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledgermind.market.onchain import MarketTx


def market_envelope(account: LocalAccount, tx: MarketTx, chain_id: int, asset_name: str | None = None) -> Envelope:
    """Sign the ``market/v1`` statement of ``tx``, sent by ``account`` on chain ``chain_id``.

    Raises InvalidInputError if the transaction's details do not fit the predicate (a bug of the caller)."""
    predicate = {
        "action": tx.action, "account": account.address, "chainId": chain_id, "contract": tx.contract,
        "txHash": tx.receipt.tx_hash.lower(), "blockNumber": tx.receipt.block_number, "time": utc_now(),
    }
    for key in ("price", "token", "quantity", "duration", "expiry", "contributors", "amount", "feeBps", "feeRecipient"):
        if tx.details.get(key) is not None:
            predicate[key] = tx.details[key]
    if tx.asset is not None:
        subject = (asset_name or tx.asset, tx.asset)
    else:
        subject = (f"account:{account.address}", hashlib.sha256(account.address.lower().encode()).hexdigest())
    return sign_envelope(make_statement([subject], MARKET, predicate).to_bytes(), account)

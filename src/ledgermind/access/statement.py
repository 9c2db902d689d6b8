"""The ``access/v1`` predicate: a provider's signed record of one access decision, granted or refused.

The predicate's schema (``AccessV1``) lives with the other predicate types in ``ledgermind.statements``, so any
process reading a log knows it; this module builds and signs the statements.

The statement's subject is the dataset (by its plaintext digest); the envelope is signed by the provider's
account. When the holder's EIP-712 signature is included, together with ``chainId`` and
``verifyingContract`` anyone can recompute the request's digest and recover the holder: a granted access
then proves the holder asked for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledgermind.market.eip712 import AccessRequest
from ledgermind.statements import ACCESS as ACCESS_PREDICATE
from ledgermind.statements import Envelope, make_statement, sign_envelope, utc_now
from ledgermind.statements.intoto import AccessV1

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

def access_envelope(
    provider: LocalAccount,
    request: AccessRequest,
    *,
    asset: str,
    name: str,
    granted: bool,
    reason: str,
    chain_id: int,
    verifying_contract: str,
    path: str | None = None,
) -> Envelope:
    """Sign the ``access/v1`` statement of one decision on ``request`` about the dataset ``asset`` (named ``name``).

    ``reason`` is cut to one line of at most 500 characters. Raises InvalidInputError if the request's fields
    cannot be recorded (e.g. a holder that is not an address; callers parse requests first, so this is a bug).
    """
    line = " ".join(reason.split())[:500] or "no reason given"
    predicate = {
        "holder": request.holder, "asset": asset, "action": request.action[:64] or "?", "granted": granted,
        "reason": line, "nonce": str(request.nonce), "time": utc_now(), "expiry": str(request.expiry),
        "chainId": chain_id, "verifyingContract": verifying_contract, "signature": "0x" + request.signature.hex(),
    }
    if path is not None:
        predicate["path"] = path
    statement = make_statement([(name[:1024] or asset, asset)], ACCESS_PREDICATE, predicate)
    return sign_envelope(statement.to_bytes(), provider)

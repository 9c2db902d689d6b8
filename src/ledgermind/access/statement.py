"""The ``access/v1`` predicate: a provider's signed record of one access decision, granted or refused.

Registered with ``ledgermind.statements`` when this module is imported (``import ledgermind.access`` does it):
any process that reads access statements out of a log must import it too, or the log rejects them as an
unknown predicate type (deny by default).

The statement's subject is the dataset (by its plaintext digest); the envelope is signed by the provider's
account. When the holder's EIP-712 signature is included, together with ``chainId`` and
``verifyingContract`` anyone can recompute the request's digest and recover the holder: a granted access
then proves the holder asked for it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledgermind.market.eip712 import AccessRequest
from ledgermind.statements import (
    PREDICATE_NAMESPACE,
    Envelope,
    make_statement,
    register_predicate,
    sign_envelope,
    utc_now,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

ACCESS_PREDICATE = PREDICATE_NAMESPACE + "access/v1"

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_UINT256 = re.compile(r"0|[1-9][0-9]{0,77}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")


class AccessV1(BaseModel):
    """Who asked for what, and what the provider decided and why."""

    model_config = ConfigDict(extra="forbid")

    holder: str  # as claimed in the request; ``reason`` says when its signature did not check out
    asset: str
    action: str = Field(min_length=1, max_length=64)
    granted: bool
    reason: str = Field(min_length=1, max_length=500)
    nonce: str  # decimal uint256: JSON numbers lose precision above 2**53
    time: str
    expiry: str | None = None
    path: str | None = Field(default=None, max_length=4096)  # the one file served from a folder asset
    chainId: int | None = Field(default=None, ge=0)
    verifyingContract: str | None = None
    signature: str | None = None

    @field_validator("holder", "verifyingContract")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS.fullmatch(v):
            raise ValueError("must be a 0x-prefixed 20-byte address")
        return v

    @field_validator("asset")
    @classmethod
    def _digest(cls, v: str) -> str:
        if not _HEX64.fullmatch(v):
            raise ValueError("must be 64 lowercase hex characters (a SHA-256 digest)")
        return v

    @field_validator("nonce", "expiry")
    @classmethod
    def _uint(cls, v: str | None) -> str | None:
        if v is not None and (not _UINT256.fullmatch(v) or int(v) >= 2**256):
            raise ValueError("must be a decimal uint256")
        return v

    @field_validator("signature")
    @classmethod
    def _sig(cls, v: str | None) -> str | None:
        if v is not None and not _SIGNATURE.fullmatch(v):
            raise ValueError("must be 0x and 65 bytes of lowercase hex")
        return v


register_predicate(ACCESS_PREDICATE, AccessV1)


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

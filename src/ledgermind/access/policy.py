"""Who may download a private dataset: deny by default, grant only when every check passes.

A request is an EIP-712 ``AccessRequest(holder, assetId, action, nonce, expiry)`` signed by the holder under the
domain ``ledgermind Access`` v1 (chain id, verifying contract = the Marketplace). ``AccessPolicy.decide`` grants
it only if, in this order:

1. it is for this dataset and this action (else 400: the client built the wrong request);
2. it has not expired (401) and does not claim more than ``max_validity`` seconds (400: a long-lived request
   would make its nonce worth keeping for as long);
3. its signature recovers the holder it names (401);
4. its nonce is new for that holder, recorded durably *now*, before anything is served (409 on a replay, even
   after a restart; the nonce is spent even if a later check refuses);
5. the chain says the holder has access: a live licence or a whole access token (403; 503 if the chain cannot
   answer, which is a refusal too).

Every outcome is a ``Decision`` with an HTTP status and a one-line reason; nothing here raises for bad input.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledgermind.access.onchain import holder_has_access
from ledgermind.access.store import AccessStore
from ledgermind.chain.connection import Chain
from ledgermind.errors import InvalidInputError, LedgermindError, SignatureError, StorageError
from ledgermind.market.eip712 import AccessRequest

__all__ = [
    "ACCESS_HEADER", "DOWNLOAD", "MAX_VALIDITY", "AccessPolicy", "Decision", "dataset_digest", "holder_has_access",
    "parse_access_header",
]

ACCESS_HEADER = "X-Ledgermind-Access"
DOWNLOAD = "download"
MAX_VALIDITY = 3600  # seconds a request may claim to stay valid
MAX_HEADER_CHARS = 4096
_FIELDS = {"holder", "assetId", "action", "nonce", "expiry", "signature"}
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_ASSET = re.compile(r"0x[0-9a-fA-F]{64}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_UINT = re.compile(r"[0-9]{1,78}")
_ID = re.compile(r"(?:0x|sha256:)?([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class Decision:
    """What the policy decided: ``status`` is 200 when granted, else the HTTP status of the refusal."""

    granted: bool
    status: int
    reason: str


def dataset_digest(dataset_id: str) -> str:
    """The 64 lowercase hex digest in a dataset id (optionally ``0x``- or ``sha256:``-prefixed).

    Over HTTP a dataset is named by its digest only: that is what a client verifies the bytes against.
    Raises InvalidInputError for anything else."""
    m = _ID.fullmatch(dataset_id.strip()) if isinstance(dataset_id, str) else None
    if m is None:
        raise InvalidInputError(f"dataset id must be a 64-hex digest, got {str(dataset_id)[:80]!r}")
    return m.group(1).lower()


def parse_access_header(value: str | None) -> AccessRequest:
    """Parse the ``X-Ledgermind-Access`` header: the JSON of ``AccessRequest.to_json()``.

    Stricter than ``AccessRequest.from_json``: exactly its six fields, hex where hex is due, nonce and expiry
    decimal uint256 (strings or integers), action 1-64 characters. Raises InvalidInputError with one line.
    """
    if not value:
        raise InvalidInputError(f"missing {ACCESS_HEADER} header: sign an AccessRequest (see the dataset's /terms)")
    if len(value) > MAX_HEADER_CHARS:
        raise InvalidInputError(f"{ACCESS_HEADER} header is longer than {MAX_HEADER_CHARS} characters")
    try:
        obj = json.loads(value)
    except ValueError:
        raise InvalidInputError(f"{ACCESS_HEADER} header is not JSON") from None
    if not isinstance(obj, dict) or set(obj) != _FIELDS:
        fields = ", ".join(sorted(_FIELDS))
        raise InvalidInputError(f"{ACCESS_HEADER} header must be a JSON object with exactly: {fields}")
    checks = (("holder", _ADDRESS, "a 0x-prefixed 20-byte address"), ("assetId", _ASSET, "0x and 32 bytes of hex"),
              ("signature", _SIGNATURE, "0x and 65 bytes of hex"))
    for name, pattern, what in checks:
        if not isinstance(obj[name], str) or not pattern.fullmatch(obj[name]):
            raise InvalidInputError(f"{ACCESS_HEADER} {name} must be {what}")
    if not isinstance(obj["action"], str) or not 0 < len(obj["action"]) <= 64:
        raise InvalidInputError(f"{ACCESS_HEADER} action must be a string of 1 to 64 characters")
    for name in ("nonce", "expiry"):
        if not _is_uint256(obj[name]):
            raise InvalidInputError(f"{ACCESS_HEADER} {name} must be a decimal uint256")
    return AccessRequest.from_json(obj)


def _is_uint256(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return 0 <= v < 2**256
    return isinstance(v, str) and bool(_UINT.fullmatch(v)) and int(v) < 2**256


class AccessPolicy:
    """Decides access requests for one Marketplace on one chain, remembering nonces in ``store``."""

    def __init__(
        self,
        store: AccessStore,
        chain: Chain,
        marketplace: str,
        *,
        max_validity: int = MAX_VALIDITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Requires ``marketplace`` to be the Marketplace contract's address on ``chain`` (the EIP-712 domain's
        verifying contract). Raises InvalidInputError if it is not an address."""
        if not isinstance(marketplace, str) or not _ADDRESS.fullmatch(marketplace):
            raise InvalidInputError(f"marketplace must be a 0x-prefixed 20-byte address, got {marketplace!r}")
        self.store = store
        self.chain = chain
        self.chain_id = chain.chain_id
        self.marketplace = marketplace
        self.max_validity = max_validity
        self.clock = clock

    def decide(self, request: AccessRequest, asset: str, action: str = DOWNLOAD) -> Decision:
        """Decide ``request`` for ``action`` on the dataset whose digest is ``asset`` (64 lowercase hex).

        Spends the request's nonce once its signature checks out (see the module docstring for the order).
        """
        now = self.clock()
        if request.asset_id.hex() != asset:
            return Decision(False, 400, f"the request is for asset {request.asset_id.hex()}, not {asset}")
        if request.action != action:
            return Decision(False, 400, f"the request is for action {request.action!r}; this serves {action!r}")
        if now > request.expiry:
            return Decision(False, 401, f"the request expired at {request.expiry} (now {int(now)}): sign a new one")
        if request.expiry > now + self.max_validity:
            return Decision(False, 400, f"the request expires more than {self.max_validity} s from now: ask for less")
        try:
            holder = request.check(self.chain_id, self.marketplace, now)
        except (SignatureError, InvalidInputError) as e:
            return Decision(False, 401, f"bad signature: {e}")
        try:
            fresh = self.store.use_nonce(holder, request.nonce, asset, request.expiry, int(now))
        except StorageError as e:
            return Decision(False, 503, str(e))
        if not fresh:
            return Decision(False, 409, f"nonce {request.nonce} was already used by {holder}: replay refused")
        try:
            allowed = holder_has_access(self.chain, self.marketplace, asset, holder)
        except LedgermindError as e:
            return Decision(False, 503, f"cannot check access on chain {self.chain_id}: {e}")
        if not allowed:
            return Decision(
                False, 403, f"{holder} has no licence or access token for asset {asset} on chain {self.chain_id}"
            )
        return Decision(True, 200, f"{holder} has access on chain {self.chain_id} (Marketplace {self.marketplace})")

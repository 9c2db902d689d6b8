"""Signed requests to a ledgermind node's REST API, for clients, tests and the load benchmark.

Every state-changing request carries four headers: the signer's address, a single-use nonce, an expiry (unix
seconds) and an EIP-712 signature (the same typed-data scheme wallets show as ``eth_signTypedData_v4``) over::

    EIP712Domain(string name,string version,uint256 chainId)        name "ledgermind node", version "1"
    NodeRequest(string node,string action,bytes32 body,uint256 nonce,uint256 expiry)

``node`` is the node's log origin (``GET /v1/node`` says it), ``action`` is the method and path
(``"POST /v1/statements"``) and ``body`` the SHA-256 of the exact request body bytes. So a signature is good for
one request to one node on one chain, once, until it expires.

    from ledgermind.node.signing import NodeSession, event_envelope
    with NodeSession("http://127.0.0.1:8700", account) as node:
        node.post("/v1/statements", {"envelope": event_envelope(account, "supply-chain", "shipped", {"kg": 4})})
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ledgermind.statements import DATASET, EVENT, MODEL, canonical_json, make_statement, sign_envelope, utc_now
from ledgermind.statements.dsse import keccak, recover_signer_from_hash

if TYPE_CHECKING:
    import httpx
    from eth_account.signers.local import LocalAccount

DOMAIN_NAME, DOMAIN_VERSION = "ledgermind node", "1"
SIGNER_HEADER = "X-Ledgermind-Signer"
NONCE_HEADER = "X-Ledgermind-Nonce"
EXPIRY_HEADER = "X-Ledgermind-Expiry"
SIGNATURE_HEADER = "X-Ledgermind-Signature"
DEFAULT_TTL = 300  # seconds a signed request stays good for

REQUEST_TYPES = {
    "NodeRequest": [
        {"name": "node", "type": "string"},
        {"name": "action", "type": "string"},
        {"name": "body", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
    ]
}
DOMAIN_TYPES = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}]
_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId)"
_REQUEST_TYPE = b"NodeRequest(string node,string action,bytes32 body,uint256 nonce,uint256 expiry)"


def domain_separator(chain_id: int) -> bytes:
    return keccak(keccak(_DOMAIN_TYPE) + keccak(DOMAIN_NAME.encode()) + keccak(DOMAIN_VERSION.encode())
                  + chain_id.to_bytes(32, "big"))


@dataclass(frozen=True)
class NodeRequest:
    """What a signature on a node request covers. ``body`` is the SHA-256 of the raw request body."""

    node: str
    action: str
    body: bytes
    nonce: int
    expiry: int

    def digest(self, chain_id: int) -> bytes:
        """The EIP-712 digest signed (requires 0 <= nonce, expiry < 2**256 and a 32-byte body digest)."""
        struct = keccak(keccak(_REQUEST_TYPE) + keccak(self.node.encode()) + keccak(self.action.encode())
                        + self.body + self.nonce.to_bytes(32, "big") + self.expiry.to_bytes(32, "big"))
        return keccak(b"\x19\x01" + domain_separator(chain_id) + struct)

    def sign(self, account: LocalAccount, chain_id: int) -> bytes:
        return bytes(account.unsafe_sign_hash(self.digest(chain_id)).signature)

    def signer(self, chain_id: int, signature: bytes) -> str:
        """The checksummed address that made ``signature``. Raises SignatureError."""
        return recover_signer_from_hash(self.digest(chain_id), signature)

    def typed_data(self, chain_id: int) -> dict[str, Any]:
        """The request as EIP-712 typed data (what a wallet's ``eth_signTypedData_v4`` takes)."""
        return {
            "types": {"EIP712Domain": DOMAIN_TYPES, **REQUEST_TYPES},
            "primaryType": "NodeRequest",
            "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id},
            "message": {"node": self.node, "action": self.action, "body": "0x" + self.body.hex(),
                        "nonce": self.nonce, "expiry": self.expiry},
        }


def body_digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def signed_headers(account: LocalAccount, chain_id: int, node: str, method: str, path: str, body: bytes, *,
                   nonce: int | None = None, expiry: int | None = None, ttl: int = DEFAULT_TTL) -> dict[str, str]:
    """The four headers that make ``method path`` with ``body`` a request signed by ``account``. The nonce is
    random unless given; the expiry is ``ttl`` seconds from now unless given."""
    nonce = secrets.randbits(63) if nonce is None else nonce
    expiry = int(time.time()) + ttl if expiry is None else expiry
    request = NodeRequest(node, f"{method.upper()} {path}", body_digest(body), nonce, expiry)
    return {
        SIGNER_HEADER: account.address,
        NONCE_HEADER: str(nonce),
        EXPIRY_HEADER: str(expiry),
        SIGNATURE_HEADER: "0x" + request.sign(account, chain_id).hex(),
    }


# ---------------------------------------------------------------------- statements a client signs itself
def event_envelope(account: LocalAccount, domain: str, type: str, data: dict[str, Any] | None = None,
                   subject: tuple[str, str] | None = None) -> dict[str, Any]:
    """A signed ``event/v1`` statement (the JSON form of its DSSE envelope). The subject defaults to
    (``domain/type``, SHA-256 of the data's canonical JSON). Raises InvalidInputError for a bad event."""
    data = data or {}
    subject = subject or (f"{domain}/{type}", hashlib.sha256(canonical_json(data)).hexdigest())
    predicate = {"domain": domain, "type": type, "time": utc_now(), "data": data, "related": []}
    return sign_envelope(make_statement([subject], EVENT, predicate).to_bytes(), account).to_json()


def asset_envelope(account: LocalAccount, kind: str, name: str, digest: str, size: int,
                   manifest: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    """A signed registration record of a dataset or model (``kind``) the signer keeps: its name, digest (the
    asset id: SHA-256 of its manifest's canonical JSON, see ``ledgermind.fingerprint``), size, optional manifest
    and metadata fields of the dataset/v1 or model/v1 predicate (licence, source, trainingDatasets as
    ``[{"digest": ...}]``, metrics...). The bytes never leave the signer. Raises InvalidInputError."""
    ptype = {"dataset": DATASET, "model": MODEL}.get(kind)
    if ptype is None:
        from ledgermind.errors import InvalidInputError

        raise InvalidInputError(f"unknown asset kind {kind!r}: dataset or model")
    predicate = {"name": name, "size": size, "registeredAt": utc_now(), **metadata}
    if manifest is not None:
        predicate["manifest"] = manifest
    return sign_envelope(make_statement([(name, digest)], ptype, predicate).to_bytes(), account).to_json()


def path_envelope(account: LocalAccount, kind: str, path: str, **metadata: Any) -> dict[str, Any]:
    """``asset_envelope`` for the file or folder at ``path``, fingerprinted here (the bytes stay here)."""
    from pathlib import Path

    from ledgermind.fingerprint import fingerprint

    p = Path(path).expanduser()
    fp = fingerprint(p)
    return asset_envelope(account, kind, metadata.pop("name", p.name), fp.digest, fp.size, fp.manifest,
                          cid=fp.cid, **metadata)


# ---------------------------------------------------------------------- an HTTP session
class NodeSession:
    """An httpx session to a node that signs every write with ``account`` (reads are unsigned). It learns the
    node's chain id and name from ``GET /v1/node`` once."""

    def __init__(self, base_url: str, account: LocalAccount | None = None, *, timeout: float = 30.0,
                 client: httpx.Client | None = None) -> None:
        import httpx

        self.http = client or httpx.Client(base_url=base_url, timeout=timeout)
        self.account = account
        info = self.http.get("/v1/node")
        info.raise_for_status()
        self.info = info.json()
        self.chain_id: int = self.info["chainId"]
        self.node: str = self.info["node"]

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> NodeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params or None)

    def signed(self, method: str, path: str, payload: Any, **sign: Any) -> tuple[bytes, dict[str, str]]:
        """The body bytes and headers of a signed request (``sign`` passes nonce, expiry, ttl through)."""
        if self.account is None:
            raise ValueError("this session has no account to sign with")
        body = orjson.dumps(payload)
        headers = signed_headers(self.account, self.chain_id, self.node, method, path, body, **sign)
        return body, {**headers, "Content-Type": "application/json"}

    def post(self, path: str, payload: Any, **sign: Any) -> httpx.Response:
        body, headers = self.signed("POST", path, payload, **sign)
        return self.http.post(path, content=body, headers=headers)

"""DSSE envelopes signed by Ethereum accounts (secp256k1).

The signature covers the DSSE pre-authentication encoding ``PAE(payloadType, payload)`` as an EIP-191
``personal_sign`` message, so any Ethereum wallet can produce it, and the signer's address (the
signature's ``keyid``) is the actor's identity: the same account that sends its transactions.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import coincurve
import orjson

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

try:  # the C implementation is 4x faster than eth-hash's default backend: it matters at 10k signatures/s
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        return _keccak_256(data).digest()

except ImportError:  # pragma: no cover - safe-pysha3 is a dependency; keep working without it
    from eth_hash.auto import keccak

from ledgermind.errors import InvalidInputError, SignatureError
from ledgermind.statements.canonical import canonical_json

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_ENVELOPE_BYTES = 1 << 20
_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\U0010ffff]*')  # printable ASCII without quote or backslash
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _eip191_hash(message: bytes) -> bytes:
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


@lru_cache(maxsize=4096)
def checksum_address(raw: bytes) -> str:
    """EIP-55 mixed-case form of a 20-byte address (cached: the same actors sign again and again)."""
    hex_addr = raw.hex()
    mask = keccak(hex_addr.encode()).hex()
    return "0x" + "".join(c.upper() if int(m, 16) >= 8 else c for c, m in zip(hex_addr, mask))


def recover_signer(message: bytes, signature: bytes) -> str:
    """Return the checksummed address whose key made EIP-191 ``signature`` (65 bytes r||s||v) over ``message``.

    Rejects malleable (high-s) signatures. Raises SignatureError when nothing can be recovered.
    """
    return recover_signer_from_hash(_eip191_hash(message), signature)


def recover_signer_from_hash(digest: bytes, signature: bytes) -> str:
    """Return the checksummed address whose key signed the 32-byte ``digest`` (EIP-191 or EIP-712 hash).

    Rejects malleable (high-s) signatures. Raises SignatureError when nothing can be recovered.
    """
    if len(signature) != 65:
        raise SignatureError(f"signature has {len(signature)} bytes, expected 65 (r || s || v)")
    v = signature[64]
    v = v - 27 if v >= 27 else v
    if v not in (0, 1):
        raise SignatureError(f"signature recovery id v={signature[64]} is not 27 or 28")
    if int.from_bytes(signature[32:64], "big") > _SECP256K1_N // 2:
        raise SignatureError("signature is malleable (s in the upper half of the curve order)")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(signature[:64] + bytes([v]), digest, hasher=None)
    except Exception as e:  # coincurve raises plain Exception on invalid points
        raise SignatureError(f"signature does not recover a public key: {e}") from e
    return checksum_address(keccak(pub.format(compressed=False)[1:])[12:])


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: the exact payload bytes, their type, and one (keyid, signature) per signer."""

    payload: bytes
    payload_type: str
    signatures: tuple[tuple[str, bytes], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": k, "sig": base64.b64encode(s).decode()} for k, s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON of the envelope: the exact bytes a log entry holds."""
        if _PLAIN.fullmatch(self.payload_type) and all(_PLAIN.fullmatch(k) for k, _ in self.signatures):
            # keys in sorted order and only strings that need no escaping: this is the RFC 8785 form,
            # built directly because it is on the hot path of every submission
            sigs = ",".join(f'{{"keyid":"{k}","sig":"{base64.b64encode(s).decode()}"}}' for k, s in self.signatures)
            return (
                f'{{"payload":"{base64.b64encode(self.payload).decode()}","payloadType":"{self.payload_type}",'
                f'"signatures":[{sigs}]}}'
            ).encode()
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, obj: Any) -> Envelope:
        """Parse the JSON form. Raises InvalidInputError with the first thing that is wrong."""
        if not isinstance(obj, dict):
            raise InvalidInputError("envelope must be a JSON object")
        extra = set(obj) - {"payload", "payloadType", "signatures"}
        if extra:
            raise InvalidInputError(f"envelope has unknown fields: {', '.join(sorted(extra))}")
        payload_b64, ptype, sigs = obj.get("payload"), obj.get("payloadType"), obj.get("signatures")
        if not isinstance(payload_b64, str) or not isinstance(ptype, str) or not isinstance(sigs, list):
            raise InvalidInputError("envelope needs string 'payload', string 'payloadType' and list 'signatures'")
        try:
            payload = binascii.a2b_base64(payload_b64, strict_mode=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidInputError("envelope payload is not base64") from e
        parsed: list[tuple[str, bytes]] = []
        for s in sigs:
            if not isinstance(s, dict) or not isinstance(s.get("keyid"), str) or not isinstance(s.get("sig"), str):
                raise InvalidInputError("each envelope signature needs string 'keyid' and 'sig'")
            try:
                parsed.append((s["keyid"], binascii.a2b_base64(s["sig"], strict_mode=True)))
            except (binascii.Error, ValueError) as e:
                raise InvalidInputError("envelope signature is not base64") from e
        return cls(payload, ptype, tuple(parsed))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise InvalidInputError(f"envelope of {len(raw)} bytes exceeds the {MAX_ENVELOPE_BYTES}-byte limit")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise InvalidInputError(f"envelope is not JSON: {e}") from e
        return cls.from_json(obj)

    def signer(self) -> str:
        """Verify the envelope's single signature and return the signer's checksummed address.

        Requires exactly one signature whose ``keyid`` is the address that made it. Raises SignatureError.
        """
        if len(self.signatures) != 1:
            raise SignatureError(f"envelope has {len(self.signatures)} signatures, expected exactly 1 (its actor)")
        keyid, sig = self.signatures[0]
        address = recover_signer(pae(self.payload_type, self.payload), sig)
        if address.lower() != keyid.lower():
            raise SignatureError(f"signature was made by {address}, not by the claimed signer {keyid}")
        return address


def sign_envelope(payload: bytes, account: LocalAccount, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> Envelope:
    """Sign ``payload`` with ``account`` (EIP-191 over the DSSE PAE) and wrap it in an envelope."""
    from eth_account.messages import encode_defunct  # eth-account takes ~1 s to import: only signers pay

    signed = account.sign_message(encode_defunct(primitive=pae(payload_type, payload)))
    return Envelope(payload, payload_type, ((account.address, bytes(signed.signature)),))

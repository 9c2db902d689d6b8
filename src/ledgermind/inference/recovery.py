"""Recovering the signer of a voucher or a ticket book: secp256k1 public-key recovery over its EIP-712 digest.

One recovery costs ~60 us here. A provider does it twice per ticket book (voucher and book), on the event loop:
with books of up to 256 tickets that is under 1 us per request, less than handing signatures to a worker (a thread
waits for the GIL that coincurve's calls give up; a child process costs a pipe round trip and makes the
requests of a new book arrive late, splitting the receipt log's group commits).
"""

from __future__ import annotations

import coincurve

from ledgermind.errors import SignatureError
from ledgermind.statements.dsse import keccak

# half the secp256k1 order, big-endian: s above it is malleable (32-byte strings compare as the numbers do)
_HALF_N = (0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2).to_bytes(32, "big")
_NO_KEY = "signature does not recover a public key"


def normalise(signature: bytes) -> bytes:
    """``signature`` (65 bytes ``r || s || v``, v in {0, 1, 27, 28}) with v as 0 or 1: what libsecp256k1 takes.

    Raises SignatureError for a malformed signature or a malleable one (s in the upper half of the curve
    order), as ``statements.recover_signer_from_hash`` does.
    """
    if len(signature) != 65:
        raise SignatureError(f"signature has {len(signature)} bytes, expected 65 (r || s || v)")
    v = signature[64]
    v = v - 27 if v >= 27 else v
    if v not in (0, 1):
        raise SignatureError(f"signature recovery id v={signature[64]} is not 27 or 28")
    if signature[32:64] > _HALF_N:
        raise SignatureError("signature is malleable (s in the upper half of the curve order)")
    return signature if signature[64] == v else signature[:64] + bytes((v,))


def _recover_normalised(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address of the key that made ``signature`` (normalised) over ``digest``. Raises SignatureError."""
    try:
        pub = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except Exception as e:  # coincurve raises plain Exception on invalid points
        raise SignatureError(f"{_NO_KEY}: {e}") from e
    return keccak(pub.format(compressed=False)[1:])[12:]


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address whose key signed the 32-byte ``digest``: what ``recover_signer_from_hash``
    checksums, with the same checks. Raises SignatureError."""
    return _recover_normalised(digest, normalise(signature))

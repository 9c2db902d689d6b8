"""Checkpoints: C2SP tlog-checkpoint note bodies, signed per C2SP signed-note with Ed25519.

A checkpoint body is three lines: the log's origin, the decimal tree size, the base64 root hash.
The signed note appends a blank line and one signature line per signer:
``— <key name> base64(4-byte key ID || Ed25519 signature over the body)``.
Verifier keys travel in the vkey form ``<name>+<hex key ID>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledgermind.log.hashing import HASH_SIZE

ED25519_TYPE = b"\x01"
_DASH = "\u2014 "
MAX_SIGNATURES = 16


class CheckpointError(ValueError):
    """A checkpoint or signed note is malformed, or its signature does not verify."""


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise CheckpointError(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: its origin, size and RFC 9162 root hash (the note body, unsigned)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = field(default=())

    def body(self) -> bytes:
        """Return the note text (ending in a newline) that signatures cover."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return ("\n".join(lines) + "\n").encode()

    @classmethod
    def parse_body(cls, text: bytes) -> Checkpoint:
        """Parse a checkpoint note body. Raises CheckpointError on anything off-format."""
        try:
            s = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CheckpointError("checkpoint is not valid UTF-8") from e
        if not s.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = s[:-1].split("\n")
        if len(lines) < 3 or any(line == "" for line in lines):
            raise CheckpointError("checkpoint body must have at least 3 non-empty lines (origin, size, root)")
        origin, size_s, root_s, *ext = lines
        if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")) or not size_s.isascii():
            raise CheckpointError(f"checkpoint tree size {size_s!r} is not a decimal without leading zeros")
        try:
            root = base64.b64decode(root_s, validate=True)
        except binascii.Error as e:
            raise CheckpointError(f"checkpoint root hash {root_s!r} is not base64") from e
        if len(root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash has {len(root)} bytes, expected {HASH_SIZE}")
        return cls(origin, int(size_s), root, tuple(ext))


class NoteSigner:
    """An Ed25519 signer of notes under a key name (for a log, the key name is its origin)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(name, self.public_key)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    def private_pem(self) -> bytes:
        """PKCS#8 PEM of the private key, for the log's key file (never printed or logged)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> NoteSigner:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError("log key file does not hold an Ed25519 private key")
        return cls(name, key)

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.public_key)

    def vkey(self) -> str:
        return self.verifier().vkey()

    def sign(self, body: bytes) -> bytes:
        """Return the signed note: body, blank line, this key's signature line."""
        sig = self._key.sign(body)
        line = f"{_DASH}{self.name} {base64.b64encode(self.key_id + sig).decode()}\n"
        return body + b"\n" + line.encode()


class NoteVerifier:
    """Verifies notes signed by one known Ed25519 key."""

    def __init__(self, name: str, public_key: bytes) -> None:
        _check_name(name)
        if len(public_key) != 32:
            raise CheckpointError(f"Ed25519 public key has {len(public_key)} bytes, expected 32")
        self.name = name
        self.public_key = bytes(public_key)
        self.key_id = key_id(name, self.public_key)
        self._key = Ed25519PublicKey.from_public_bytes(self.public_key)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(ED25519_TYPE + self.public_key).decode()}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``name+hexid+base64key``. Raises CheckpointError if malformed or the ID does not match."""
        parts = vkey.strip().split("+", 2)  # the base64 key may itself contain "+"
        if len(parts) != 3:
            raise CheckpointError("verifier key must look like name+keyid+base64key")
        name, hex_id, b64 = parts
        try:
            raw = base64.b64decode(b64, validate=True)
            want_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as e:
            raise CheckpointError("verifier key has a malformed key ID or key") from e
        if len(raw) != 33 or raw[:1] != ED25519_TYPE:
            raise CheckpointError("verifier key is not an Ed25519 signed-note key")
        v = cls(name, raw[1:])
        if v.key_id != want_id:
            raise CheckpointError(f"verifier key ID {hex_id} does not match its key (expected {v.key_id.hex()})")
        return v

    def open(self, note: bytes) -> bytes:
        """Verify a signed note and return its body.

        Signatures by other keys are ignored; the note is rejected if this key's signature is missing or
        invalid, or if the note is malformed (not UTF-8, control characters, no signature block).
        """
        try:
            text = note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CheckpointError("signed note is not valid UTF-8") from e
        if any(ord(c) < 0x20 and c != "\n" for c in text):
            raise CheckpointError("signed note contains control characters")
        split = text.rfind("\n\n")
        if split < 0 or not text.endswith("\n"):
            raise CheckpointError("signed note has no signature block (expected a blank line before signatures)")
        body, sig_block = text[: split + 1], text[split + 2 :]
        lines = sig_block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise CheckpointError(f"signed note has {len(lines)} signatures, at most {MAX_SIGNATURES} accepted")
        found = False
        for line in lines:
            if not line.startswith(_DASH):
                raise CheckpointError(f"malformed signature line {line[:40]!r}")
            name, _, b64 = line[len(_DASH) :].partition(" ")
            try:
                blob = base64.b64decode(b64, validate=True)
            except binascii.Error as e:
                raise CheckpointError(f"signature of {name!r} is not base64") from e
            if len(blob) < 5:
                raise CheckpointError(f"signature of {name!r} is too short")
            if name != self.name or blob[:4] != self.key_id:
                continue
            try:
                self._key.verify(blob[4:], body.encode())
            except InvalidSignature as e:
                raise CheckpointError(f"signature by {self.name} (key {self.key_id.hex()}) does not verify") from e
            found = True
        if not found:
            raise CheckpointError(f"note carries no signature by the expected key {self.name} ({self.key_id.hex()})")
        return body.encode()

    def open_checkpoint(self, note: bytes) -> Checkpoint:
        """Verify a signed checkpoint note and parse its body; its origin must equal this key's name."""
        cp = Checkpoint.parse_body(self.open(note))
        if cp.origin != self.name:
            raise CheckpointError(f"checkpoint origin {cp.origin!r} does not match the log key name {self.name!r}")
        return cp

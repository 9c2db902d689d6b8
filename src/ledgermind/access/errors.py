"""The failures of private data access, each a one-line ``LedgermindError`` the CLI prints as is."""

from __future__ import annotations

from ledgermind.errors import LedgermindError


class IntegrityError(LedgermindError):
    """Bytes failed a check: a ciphertext chunk did not authenticate (modified, reordered, truncated), or
    decrypted or downloaded bytes do not have the digest they were registered with."""


class AccessRefused(LedgermindError):
    """A provider refused a request; ``status`` is its HTTP status, the message its one-line reason."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

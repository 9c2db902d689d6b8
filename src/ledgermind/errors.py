"""Errors every layer raises: one class per kind of failure, each with a one-line message.

The CLI prints ``str(error)`` on one line and exits non-zero; the Python API lets them propagate.
"""

from __future__ import annotations


class LedgermindError(Exception):
    """Base of every expected failure: bad input, missing data, a failed check."""


class InvalidInputError(LedgermindError, ValueError):
    """The caller passed something malformed (a bad path, a malformed statement, a corrupt bundle)."""


class NotFoundError(LedgermindError, LookupError):
    """An identifier, digest, index or file does not exist."""


class SignatureError(LedgermindError):
    """A signature does not verify, or was made by someone other than the claimed signer."""


class StorageError(LedgermindError):
    """The on-disk state cannot be used: locked, corrupt, or written by an incompatible version."""

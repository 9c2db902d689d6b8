"""RFC 8785 canonical JSON (JCS): one byte string per JSON value, so digests are reproducible."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from ledgermind.errors import InvalidInputError


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` per RFC 8785. Raises InvalidInputError for NaN, infinities or non-JSON types."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise InvalidInputError(f"value cannot be canonical JSON: {e}") from e


def is_canonical(raw: bytes, parsed: Any) -> bool:
    """True if ``raw`` is exactly the RFC 8785 form of ``parsed`` (the JSON it decodes to)."""
    # fast path: for ASCII keys, integers and strings the stdlib's compact sorted form equals RFC 8785
    fast = json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if fast.encode() == raw:
        return True
    try:
        return rfc8785.dumps(parsed) == raw
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return False

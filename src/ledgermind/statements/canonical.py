"""RFC 8785 canonical JSON (JCS): one byte string per JSON value, so digests are reproducible."""

from __future__ import annotations

from typing import Any

import orjson
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
    # Fast path for the common case. Without non-ASCII text (key order by code point = by UTF-16 unit)
    # and without fractions or exponents (number formats differ for floats), orjson's compact
    # sorted form is byte for byte the RFC 8785 form. Anything else takes the exact, slower path.
    if raw.isascii() and not _has_float(parsed):
        try:
            return orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS) == raw
        except (orjson.JSONEncodeError, TypeError):
            return False
    try:
        return rfc8785.dumps(parsed) == raw
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return False


def _has_float(value: Any) -> bool:
    t = type(value)
    if t is float:
        return True
    if t is dict:
        return any(_has_float(v) for v in value.values())
    if t is list:
        return any(_has_float(v) for v in value)
    return False

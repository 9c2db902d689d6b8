"""RFC 8785 canonical JSON (JCS): one byte string per JSON value, so digests are reproducible."""

from __future__ import annotations

import re
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


# a number with a fraction or exponent right after ':', ',' or '[' (where canonical JSON puts values);
# it may also match inside a string, which only sends that payload down the exact path
_FLOAT_SYNTAX = re.compile(rb"[:,\[]-?[0-9]+[.eE]")


def is_canonical(raw: bytes, parsed: Any) -> bool:
    """True if ``raw`` is exactly the RFC 8785 form of ``parsed`` (the JSON it decodes to)."""
    # Fast path. For ASCII text, key order by code point equals RFC 8785's order by UTF-16 unit, and
    # orjson's compact sorted output equals RFC 8785 except, possibly, in how floats are written: so
    # if the bytes match orjson's and every float is written the same way by both, they are canonical.
    if raw.isascii():
        try:
            fast = orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):
            return False
        if fast == raw:
            if not _FLOAT_SYNTAX.search(raw):
                return True
            return all(rfc8785.dumps(f) == orjson.dumps(f) for f in _floats(parsed))
    try:
        return rfc8785.dumps(parsed) == raw
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return False


def _floats(value: Any) -> list[float]:
    found, stack = [], [value]
    while stack:
        v = stack.pop()
        if type(v) is float:
            found.append(v)
        elif type(v) is dict:
            stack.extend(v.values())
        elif type(v) is list:
            stack.extend(v)
    return found

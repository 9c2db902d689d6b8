"""Digests of inference inputs and outputs: SHA-256 of their RFC 8785 canonical JSON.

A client and a provider must agree on the exact bytes of "the input" without exchanging them twice, so the
input digest in a receipt is ``sha256(canonical_json(inputs))`` of the JSON value the client sent, and the output
digest the same over the JSON value the provider answered with.

Model inputs and outputs are mostly (nested) arrays of numbers, and the general RFC 8785 encoder spends ~3 us per
float. For arrays of numbers orjson already writes RFC 8785's bytes except for a few spellings: integral floats
("1001.0" where RFC 8785 writes "1001"), exponents (RFC 8785 follows ECMAScript: "1e-7", but "0.000001"), and NaN
or infinities (orjson writes null, RFC 8785 refuses them). Only those tokens are rewritten, by the general
encoder; anything with strings or objects takes the general path whole. The tests compare both on random values.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from ledgermind.statements.canonical import canonical_json

# Whole number tokens only (the lookbehind anchors each at a token start, which also keeps the scan linear):
# exponent notation first (so "1.0e+20" is one token), then integral floats, then integers of 16+ digits, which
# RFC 8785 refuses beyond 2**53 - 1.
_SPECIAL = re.compile(rb"(?<![0-9.e+-])-?(?:[0-9.]+e[-+]?[0-9]+|[0-9]+\.0(?![0-9e])|[0-9]{16,}(?![0-9.e]))")
_SAFE = 2**53


def _rewrite(match: re.Match[bytes]) -> bytes:
    token = match.group()
    if b"." not in token and b"e" not in token:
        return canonical_json(int(token))  # raises InvalidInputError beyond 2**53 - 1, as RFC 8785 does
    x = float(token)
    if x.is_integer() and -_SAFE < x < _SAFE:
        return str(int(x)).encode()  # also turns -0.0 into "0"
    return canonical_json(x)


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value``. Raises InvalidInputError for NaN, infinities or non-JSON types."""
    if type(value) is list:
        try:
            raw = orjson.dumps(value)
        except (orjson.JSONEncodeError, TypeError):
            return canonical_json(value)  # says what is wrong, or handles what orjson cannot (huge integers)
        if b'"' not in raw and b"{" not in raw and b"null" not in raw:
            return _SPECIAL.sub(_rewrite, raw)
    return canonical_json(value)


def json_digest(value: Any) -> str:
    """SHA-256 (64 lowercase hex) of the canonical JSON of ``value``: the digest receipts carry."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()

"""Open a submitted envelope: parse, check the payload type, canonical form, statement and signature."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ledgermind.errors import InvalidInputError
from ledgermind.statements.canonical import is_canonical
from ledgermind.statements.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope
from ledgermind.statements.intoto import Statement, parse_statement


@dataclass(frozen=True)
class SignedStatement:
    """A statement whose envelope verified: who signed it, what it says, and the exact entry bytes."""

    signer: str
    statement: Statement
    envelope: Envelope
    entry: bytes  # canonical JSON of the envelope: what the log stores and hashes


def open_envelope(raw: bytes | Envelope) -> SignedStatement:
    """Verify an envelope (bytes of its JSON, or parsed) and its statement.

    Raises InvalidInputError for anything malformed (not JSON, wrong payload type, non-canonical payload,
    invalid statement) and SignatureError for a bad or mismatched signature.
    """
    env = raw if isinstance(raw, Envelope) else Envelope.from_bytes(raw)
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise InvalidInputError(f"payloadType is {env.payload_type!r}, expected {IN_TOTO_PAYLOAD_TYPE!r}")
    try:
        obj = orjson.loads(env.payload)
    except orjson.JSONDecodeError as e:
        raise InvalidInputError(f"statement payload is not JSON: {e}") from e
    if not is_canonical(env.payload, obj):
        raise InvalidInputError("statement payload is not RFC 8785 canonical JSON")
    statement = parse_statement(obj)
    signer = env.signer()
    entry = env.to_bytes()
    if not isinstance(raw, Envelope) and raw == entry:
        entry = raw  # share the caller's bytes instead of keeping a second copy
    return SignedStatement(signer, statement, env, entry)

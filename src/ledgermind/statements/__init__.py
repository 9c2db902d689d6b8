"""Signed statements: in-toto Statement v1 payloads in DSSE envelopes signed by Ethereum accounts."""

from ledgermind.statements.canonical import canonical_json, is_canonical
from ledgermind.statements.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, pae, recover_signer, sign_envelope
from ledgermind.statements.intoto import (
    ACCESS,
    DATASET,
    EVALUATION,
    EVENT,
    FEDERATION,
    INFERENCE_RECEIPT,
    MARKET,
    MODEL,
    PREDICATE_NAMESPACE,
    STATEMENT_TYPE,
    Statement,
    make_statement,
    parse_statement,
    predicate_types,
    register_predicate,
    statement_from_payload,
    utc_now,
)
from ledgermind.statements.verify import SignedStatement, open_envelope

__all__ = [
    "ACCESS",
    "DATASET",
    "EVALUATION",
    "EVENT",
    "FEDERATION",
    "INFERENCE_RECEIPT",
    "IN_TOTO_PAYLOAD_TYPE",
    "MARKET",
    "MODEL",
    "PREDICATE_NAMESPACE",
    "STATEMENT_TYPE",
    "Envelope",
    "SignedStatement",
    "Statement",
    "canonical_json",
    "is_canonical",
    "make_statement",
    "open_envelope",
    "pae",
    "parse_statement",
    "predicate_types",
    "recover_signer",
    "register_predicate",
    "sign_envelope",
    "statement_from_payload",
    "utc_now",
]

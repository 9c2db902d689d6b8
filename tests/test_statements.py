"""Statements: in-toto v1 validation, RFC 8785 payloads, DSSE envelopes signed by Ethereum accounts."""

from __future__ import annotations

import base64
import json

import pytest
import rfc8785

from ledgermind.errors import InvalidInputError, SignatureError
from ledgermind.statements import (
    DATASET,
    EVENT,
    INFERENCE_RECEIPT,
    MODEL,
    Envelope,
    canonical_json,
    is_canonical,
    make_statement,
    open_envelope,
    pae,
    parse_statement,
    recover_signer,
    sign_envelope,
    utc_now,
)

D1 = "ab" * 32
D2 = "cd" * 32


def event_statement(**data):
    return make_statement([("shipment-7", D1)], EVENT, {"domain": "supply-chain", "type": "shipped", "time": utc_now(), "data": data})


def test_pae_matches_the_dsse_spec_example():
    # DSSE v1 protocol document: PAE("http://example.com/HelloWorld", "hello world")
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_statement_round_trip_is_canonical_json(accounts):
    st = event_statement(temp_c=4.5, count=3, note="ümlaut")
    payload = st.to_bytes()
    assert payload == rfc8785.dumps(json.loads(payload))
    obj = json.loads(payload)
    assert obj["_type"] == "https://in-toto.io/Statement/v1"
    assert obj["subject"] == [{"name": "shipment-7", "digest": {"sha256": D1}}]
    env = sign_envelope(payload, accounts[0])
    opened = open_envelope(env.to_bytes())
    assert opened.signer == accounts[0].address
    assert opened.statement == st
    assert opened.entry == env.to_bytes() == rfc8785.dumps(env.to_json())


def test_signature_is_eip191_over_pae_so_wallets_can_make_it(accounts):
    from eth_account import Account
    from eth_account.messages import encode_defunct

    payload = event_statement().to_bytes()
    env = sign_envelope(payload, accounts[1])
    keyid, sig = env.signatures[0]
    assert keyid == accounts[1].address
    wallet_sig = Account.sign_message(encode_defunct(primitive=pae(env.payload_type, payload)), accounts[1].key).signature
    assert bytes(wallet_sig) == sig
    assert recover_signer(pae(env.payload_type, payload), sig) == accounts[1].address


def test_forged_or_tampered_envelopes_are_rejected(accounts):
    env = sign_envelope(event_statement().to_bytes(), accounts[0])
    # another actor claims the signature
    claimed = Envelope(env.payload, env.payload_type, ((accounts[2].address, env.signatures[0][1]),))
    with pytest.raises(SignatureError, match="not by the claimed signer"):
        open_envelope(claimed.to_bytes())
    # payload changed after signing
    tampered = Envelope(env.payload.replace(b"shipped", b"stolen!"), env.payload_type, env.signatures)
    with pytest.raises(SignatureError):
        open_envelope(tampered.to_bytes())
    # no signature, two signatures
    with pytest.raises(SignatureError, match="expected exactly 1"):
        open_envelope(Envelope(env.payload, env.payload_type, ()).to_bytes())
    with pytest.raises(SignatureError, match="expected exactly 1"):
        open_envelope(Envelope(env.payload, env.payload_type, env.signatures * 2).to_bytes())
    # malleable high-s twin of a valid signature
    sig = env.signatures[0][1]
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (n - s).to_bytes(32, "big") + bytes([55 - sig[64]])  # v: 27 <-> 28
    with pytest.raises(SignatureError, match="malleable"):
        open_envelope(Envelope(env.payload, env.payload_type, ((env.signatures[0][0], twin),)).to_bytes())


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"payload": "!!", "payloadType": "x", "signatures": []}', "base64"),
        (b'{"payload": "", "payloadType": "x", "signatures": [], "extra": 1}', "unknown fields"),
    ],
)
def test_malformed_envelopes_give_one_clear_reason(raw, message):
    with pytest.raises(InvalidInputError, match=message):
        open_envelope(raw)


def _signed_raw(obj, account, payload_type="application/vnd.in-toto+json", canonical=True):
    payload = rfc8785.dumps(obj) if canonical else json.dumps(obj, indent=1).encode()
    return sign_envelope(payload, account, payload_type).to_bytes()


def test_statement_rules_are_enforced(accounts):
    good = event_statement().to_json()
    open_envelope(_signed_raw(good, accounts[0]))
    cases = [
        ({**good, "_type": "https://in-toto.io/Statement/v0.1"}, "_type"),
        ({**good, "subject": []}, "non-empty subject"),
        ({**good, "subject": [{"name": "x", "digest": {"sha256": "XYZ"}}]}, "64 lowercase hex"),
        ({**good, "subject": [{"name": "x", "digest": {"sha512": D1}}]}, "sha256"),
        ({**good, "predicateType": "https://example.com/unknown/v1"}, "unknown predicateType"),
        ({**good, "predicate": {"domain": "d"}}, "predicate"),
        ({**good, "predicate": {**good["predicate"], "surprise": 1}}, "Extra inputs"),
        ({**good, "bogus": 1}, "unknown fields"),
    ]
    for obj, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            open_envelope(_signed_raw(obj, accounts[0]))
    with pytest.raises(InvalidInputError, match="canonical"):
        open_envelope(_signed_raw(good, accounts[0], canonical=False))
    with pytest.raises(InvalidInputError, match="payloadType"):
        open_envelope(_signed_raw(good, accounts[0], payload_type="text/plain"))


def test_every_predicate_type_validates():
    ref = {"digest": D1, "name": "d", "logIndex": 0}
    manifest = {"type": "ledgermind/manifest/v1", "shardSize": 8388608, "files": [{"path": "a", "size": 1, "sha256": D2}]}
    make_statement([("d", D1)], DATASET, {"name": "d", "licence": "CC0-1.0", "rows": 3, "consent": True,
                                          "containsPii": False, "size": 1, "manifest": manifest, "registeredAt": utc_now(),
                                          "schema": {"format": "csv", "columns": [{"name": "a", "type": "int"}]}})
    make_statement([("m", D2)], MODEL, {"name": "m", "trainingDatasets": [ref], "metrics": {"acc": 0.9}, "size": 5,
                                        "registeredAt": utc_now()})
    make_statement([("out", D2)], INFERENCE_RECEIPT, {"model": ref, "inputDigest": D1, "outputDigest": D2,
                                                       "provider": "0x" + "11" * 20, "time": utc_now()})
    with pytest.raises(InvalidInputError, match="provider"):
        make_statement([("out", D2)], INFERENCE_RECEIPT, {"model": ref, "inputDigest": D1, "outputDigest": D2,
                                                           "provider": "bob", "time": utc_now()})


def test_canonical_json_rejects_nan_and_detects_non_canonical_bytes():
    with pytest.raises(InvalidInputError):
        canonical_json({"x": float("nan")})
    obj = {"b": 1.0, "a": [1, 2]}
    assert is_canonical(rfc8785.dumps(obj), obj)
    assert not is_canonical(json.dumps(obj).encode(), obj)


def test_envelope_json_form_uses_dsse_field_names(accounts):
    env = sign_envelope(event_statement().to_bytes(), accounts[0]).to_json()
    assert set(env) == {"payload", "payloadType", "signatures"}
    assert set(env["signatures"][0]) == {"keyid", "sig"}
    assert len(base64.b64decode(env["signatures"][0]["sig"])) == 65


def test_digests_and_addresses_with_a_trailing_newline_are_rejected():
    with pytest.raises(InvalidInputError, match="64 lowercase hex"):
        make_statement([("x", D1 + "\n")], EVENT, {"domain": "d", "type": "t", "time": utc_now()})
    ref = {"digest": D1}
    with pytest.raises(InvalidInputError, match="provider"):
        make_statement([("out", D2)], INFERENCE_RECEIPT, {"model": ref, "inputDigest": D1, "outputDigest": D2,
                                                           "provider": "0x" + "11" * 20 + "\n", "time": utc_now()})

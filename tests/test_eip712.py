"""EIP-712: the reference example of the EIP (../shared/data/eip712) checks the encoder we compare against;
our vouchers and access requests must hash exactly as that encoder does, and recover their signers."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from ledgermind.errors import InvalidInputError, SignatureError
from ledgermind.market.eip712 import (
    ACCESS_NAME,
    ACCESS_TYPES,
    ACCESS_VERSION,
    CHANNELS_NAME,
    CHANNELS_VERSION,
    VOUCHER_TYPES,
    AccessRequest,
    Voucher,
)
from ledgermind.statements.dsse import keccak

DOMAIN_TYPE = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
               {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
CONTRACT = "0x" + "cc" * 20


def test_reference_example_of_the_eip():
    """The Mail example: digest and the signature by keccak256("cow") as published with EIP-712."""
    mail = {
        "types": {
            "EIP712Domain": DOMAIN_TYPE,
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                     {"name": "contents", "type": "string"}],
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
                   "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {"from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                    "contents": "Hello, Bob!"},
    }
    signable = encode_typed_data(full_message=mail)
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert digest.hex() == "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    cow = Account.from_key(keccak(b"cow"))
    assert cow.address.lower() == "0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826"
    sig = Account.sign_message(signable, cow.key)
    assert sig.v == 28
    assert f"0x{sig.r:064x}" == "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"
    assert f"0x{sig.s:064x}" == "0x07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562"


def _reference(types, primary, name, version, message):
    return encode_typed_data(full_message={
        "types": {"EIP712Domain": DOMAIN_TYPE, **types}, "primaryType": primary,
        "domain": {"name": name, "version": version, "chainId": 1337, "verifyingContract": CONTRACT},
        "message": message,
    })


def test_vouchers_hash_and_sign_like_the_reference_encoder():
    payer = Account.create()
    v = Voucher(os.urandom(32), 10**18 + 7).sign(payer, 1337, CONTRACT)
    ref = _reference(VOUCHER_TYPES, "Voucher", CHANNELS_NAME, CHANNELS_VERSION,
                     {"channelId": v.channel_id, "amount": v.amount})
    assert bytes(Account.sign_message(ref, payer.key).signature) == v.signature
    assert v.signer(1337, CONTRACT) == payer.address
    assert Voucher.from_json(v.to_json()) == v
    # another chain or contract: same bytes, another signer
    assert v.signer(1, CONTRACT) != payer.address
    assert v.signer(1337, "0x" + "dd" * 20) != payer.address


def test_access_requests_hash_sign_and_check():
    holder, other = Account.create(), Account.create()
    req = AccessRequest(holder.address, os.urandom(32), "download", 42, 2**40).sign(holder, 1337, CONTRACT)
    ref = _reference(ACCESS_TYPES, "AccessRequest", ACCESS_NAME, ACCESS_VERSION,
                     {"holder": holder.address, "assetId": req.asset_id, "action": "download", "nonce": 42,
                      "expiry": 2**40})
    assert bytes(Account.sign_message(ref, holder.key).signature) == req.signature
    assert req.check(1337, CONTRACT) == holder.address
    assert AccessRequest.from_json(req.to_json()) == req
    forged = AccessRequest(other.address, req.asset_id, "download", 42, 2**40, req.signature)
    with pytest.raises(SignatureError, match="not by the holder"):
        forged.check(1337, CONTRACT)
    with pytest.raises(InvalidInputError, match="expired"):
        req.check(1337, CONTRACT, now=2**40 + 1)
    with pytest.raises(InvalidInputError, match="malformed"):
        AccessRequest.from_json({"holder": holder.address})

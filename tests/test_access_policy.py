"""The access policy alone: header parsing, the durable nonce store (real SQLite), and the decisions that do not
need a Marketplace, on the real embedded chain (the granted path is in test_access_http)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account

from ledgermind.access.policy import AccessPolicy, dataset_digest, parse_access_header
from ledgermind.access.statement import ACCESS_PREDICATE, access_envelope
from ledgermind.access.store import AccessStore
from ledgermind.chain.connection import Chain
from ledgermind.errors import InvalidInputError
from ledgermind.market.eip712 import AccessRequest
from ledgermind.statements import open_envelope

ASSET = "ab" * 32
NO_CODE = "0x" + "42" * 20  # an address with no contract: the chain cannot answer has_access there


@pytest.fixture()
def chain(tmp_path: Path):
    c = Chain.connect(tmp_path / "chain")
    yield c
    c.close()


@pytest.fixture()
def store(tmp_path: Path):
    with AccessStore(tmp_path / "access.sqlite") as s:
        yield s


def _request(holder, *, asset: str = ASSET, nonce: int = 7, expiry: int | None = None, chain_id: int = 1337,
             contract: str = NO_CODE, action: str = "download") -> AccessRequest:
    req = AccessRequest(holder.address, bytes.fromhex(asset), action, nonce, expiry or int(time.time()) + 60)
    return req.sign(holder, chain_id, contract)


def test_headers_parse_strictly() -> None:
    holder = Account.create()
    good = _request(holder).to_json()
    assert parse_access_header(json.dumps(good)) == AccessRequest.from_json(good)
    assert parse_access_header(json.dumps({**good, "nonce": 7, "expiry": int(good["expiry"])})).nonce == 7
    for bad, why in [
        (None, "missing"), ("{", "not JSON"), (json.dumps([good]), "exactly"),
        (json.dumps({**good, "holder": "0x" + "g" * 40}), "holder must be"),
        (json.dumps({**good, "nonce": "0x10"}), "nonce must be"), (json.dumps({**good, "nonce": str(2**256)}), "nonce must be"),
        (json.dumps({**good, "expiry": -1}), "expiry must be"), (json.dumps({**good, "action": 5}), "action must be"),
    ]:
        with pytest.raises(InvalidInputError, match=why) as info:
            parse_access_header(bad)
        assert "\n" not in str(info.value)


def test_dataset_ids_are_digests() -> None:
    assert dataset_digest("0x" + ASSET.upper()) == dataset_digest("sha256:" + ASSET) == ASSET
    for bad in ["", "patients.csv", ASSET[:-1], ASSET + "0"]:
        with pytest.raises(InvalidInputError, match="64-hex digest"):
            dataset_digest(bad)


def test_a_used_nonce_stays_used_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "access.sqlite"
    with AccessStore(path) as first:
        assert first.use_nonce("0xAbC" + "0" * 37, 2**255, ASSET, 2**40, 100)
    with AccessStore(path) as second:
        assert not second.use_nonce("0xabc" + "0" * 37, 2**255, ASSET, 2**40, 101)  # holders compare case-blind
        assert second.use_nonce("0xabc" + "0" * 37, 2**255 + 1, ASSET, 2**40, 101)


def test_one_nonce_is_accepted_once_among_racing_stores(tmp_path: Path) -> None:
    stores = [AccessStore(tmp_path / "access.sqlite") for _ in range(4)]  # as four provider processes would
    results: list[bool] = []
    start = threading.Barrier(len(stores))

    def race(s: AccessStore) -> None:
        start.wait()
        results.append(s.use_nonce("0x" + "11" * 20, 5, ASSET, 2**40, 1))

    threads = [threading.Thread(target=race, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert sorted(results) == [False, False, False, True]


def test_only_expired_nonces_are_pruned(store: AccessStore) -> None:
    holder = "0x" + "22" * 20
    assert store.use_nonce(holder, 1, ASSET, expiry=100, now=50)
    assert store.use_nonce(holder, 2, ASSET, expiry=300, now=50)
    store.prune(now=200)
    assert store.use_nonce(holder, 1, ASSET, expiry=100, now=200)  # gone: its request cannot pass the expiry check
    assert not store.use_nonce(holder, 2, ASSET, expiry=300, now=200)


def test_refusals_before_the_chain_and_the_chain_not_answering(chain: Chain, store: AccessStore) -> None:
    holder, other = Account.create(), Account.create()
    policy = AccessPolicy(store, chain, NO_CODE)

    def status(req: AccessRequest) -> tuple[int, str]:
        d = policy.decide(req, ASSET)
        assert not d.granted and "\n" not in d.reason
        return d.status, d.reason

    assert status(_request(holder, asset="cd" * 32))[0] == 400
    assert status(_request(holder, action="infer"))[0] == 400
    assert status(_request(holder, expiry=int(time.time()) - 1))[0] == 401
    assert status(_request(holder, expiry=int(time.time()) + 7200))[0] == 400
    assert status(_request(holder, chain_id=1))[0] == 401  # signed for another chain: recovers someone else
    forged = AccessRequest(other.address, bytes.fromhex(ASSET), "download", 8, int(time.time()) + 60,
                           _request(holder, nonce=8).signature)
    code, reason = status(forged)  # the holder is part of what was signed: the signature recovers a stranger
    assert code == 401 and reason.startswith("bad signature: access request signed by 0x")
    assert reason.endswith(f"not by the holder {other.address}")
    # none of those spent a nonce: they never proved who sent them
    code, reason = status(_request(holder, nonce=8))
    assert code == 503 and reason.startswith("cannot check access on chain 1337")
    assert status(_request(holder, nonce=8))[0] == 409  # the nonce was spent by the request that reached the chain


def test_access_statements_are_valid_signed_log_entries() -> None:
    provider, holder = Account.create(), Account.create()
    env = access_envelope(provider, _request(holder), asset=ASSET, name="patients.csv", granted=False,
                          reason="line one\nline two", chain_id=1337, verifying_contract=NO_CODE)
    opened = open_envelope(env.to_bytes())
    assert opened.signer == provider.address and opened.statement.predicate_type == ACCESS_PREDICATE
    assert opened.statement.predicate["reason"] == "line one line two"
    assert opened.statement.subjects == (("patients.csv", ASSET),)

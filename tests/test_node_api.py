"""The node's REST API over real HTTP on loopback, served by ``ledgermind up``'s pieces on a home the CLI wrote:
reads return what the CLI registered (with proofs that verify), signed writes land in the log, and every request
that is unsigned, replayed, expired, signed for another chain, node or body, or by the wrong actor is refused with
a one-line reason and changes nothing. Bodies over the cap get 413, clients over their rate 429."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from eth_account import Account

from ledgermind.cli.up import start_up
from ledgermind.config import load_settings
from ledgermind.log import leaf_hash, verify_consistency, verify_inclusion
from ledgermind.node.app import NodeOptions, create_app
from ledgermind.node.serve import ApiServer
from ledgermind.node.signing import (
    NONCE_HEADER,
    SIGNER_HEADER,
    NodeRequest,
    NodeSession,
    asset_envelope,
    body_digest,
    event_envelope,
    path_envelope,
    signed_headers,
)

from .conftest import InProcessCLI

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A home where the CLI registered a dataset and a model trained on it and proposed approving the dataset,
    served by ``start_up`` on free ports; yields (api url, CLI, ids, the operator's account)."""
    root = tmp_path_factory.mktemp("node")
    cli = InProcessCLI(root / "home")
    (root / "data.csv").write_text("age,bp,label\n51,130.5,1\n38,118.0,0\n64,142.2,1\n")
    (root / "model.bin").write_bytes(b"weights" * 50)
    operator = cli("account", "new", "--default").stdout.strip()
    data = cli.json("register", "dataset", str(root / "data.csv"), "--licence", "CC-BY-4.0", "--mint")
    model = cli.json("register", "model", str(root / "model.bin"), "--trained-on", data["id"])
    proposal = cli.json("gov", "propose", "approve-dataset", data["id"])
    settings = load_settings(root / "home", auto_anchor=False)
    up = start_up(settings, api_port=0, rpc_port=0, options=NodeOptions(rate=1e6, burst=10**6, max_body_bytes=64_000))
    from ledgermind.accounts import DEV_PASSWORD, Keystore

    account = Keystore(settings.keystore_dir).unlock(operator, DEV_PASSWORD)
    try:
        yield up.api_url, cli, {"data": data["id"], "model": model["id"], "proposal": proposal["proposal_id"]}, account
    finally:
        up.stop()


@pytest.fixture()
def actor():
    return Account.create()


def _error(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"]
    for w in words:
        assert w in body["error"], body["error"]


def test_reads_return_what_the_cli_wrote_with_proofs_that_verify(node):
    url, cli, ids, _ = node
    with NodeSession(url) as s:
        assets = s.get("/v1/assets").json()  # in the order registered; other tests of the module add theirs later
        registered = [(a["id"], a["kind"]) for a in assets["items"]]
        assert registered[:2] == [(ids["data"], "dataset"), (ids["model"], "model")]
        models = s.get("/v1/assets", kind="model").json()["items"]
        assert {a["kind"] for a in models} == {"model"} and models[0]["name"] == "model.bin"
        shown = s.get(f"/v1/assets/{ids['data'][:10]}").json()
        assert shown["id"] == ids["data"] and shown["statement"]["predicate"]["licence"] == "CC-BY-4.0"
        assert shown == cli.json("show", ids["data"])

        graph = s.get("/v1/assets/model.bin/lineage").json()
        assert graph["root"] == ids["model"] and {n["id"] for n in graph["nodes"]} == {ids["model"], ids["data"]}
        assert graph["edges"] == [{"child": ids["model"], "parent": ids["data"], "relation": "trainedOn"}]

        info = s.get("/v1/log").json()
        assert info == {k: v for k, v in cli.json("log", "info").items() if k != "path"}
        size = info["size"]
        page = s.get("/v1/log/entries", order="desc", limit=2).json()
        assert page["size"] == size and [e["logIndex"] for e in page["items"]] == [size - 1, size - 2]

        entry = s.get(f"/v1/log/entries/{shown['logIndex']}").json()
        proof = entry["inclusionProof"]
        assert proof["leafHash"] == leaf_hash(orjson.dumps(entry["envelope"], option=orjson.OPT_SORT_KEYS)).hex()
        assert verify_inclusion(bytes.fromhex(proof["leafHash"]), shown["logIndex"], proof["treeSize"],
                                [bytes.fromhex(h) for h in proof["hashes"]], bytes.fromhex(proof["rootHash"]))
        inc = s.get("/v1/log/proofs/inclusion", index=1, size=2).json()
        assert verify_inclusion(bytes.fromhex(inc["leafHash"]), 1, 2, [bytes.fromhex(h) for h in inc["hashes"]],
                                bytes.fromhex(inc["rootHash"]))
        con = s.get("/v1/log/proofs/consistency", first=1).json()
        assert con["second"] == size and verify_consistency(1, size, [bytes.fromhex(h) for h in con["hashes"]],
                                                            bytes.fromhex(con["firstRoot"]), bytes.fromhex(con["secondRoot"]))
        assert s.get("/v1/log/checkpoint").json()["note"] == info["checkpoint"]

        datasets = s.get("/v1/statements", predicate="dataset/v1").json()
        assert [d["subject"]["digest"] for d in datasets][:1] == [ids["data"]]  # other tests may register more
        assert datasets[0]["statement"]["predicateType"].endswith("/dataset/v1")
        gov = s.get("/v1/governance").json()
        assert [p["proposal_id"] for p in gov["proposals"]][:1] == [ids["proposal"]]
        detail = s.get(f"/v1/governance/proposals/{ids['proposal']}").json()
        # the CLI proposed; a later test of the module votes on it through the API
        assert [st["statement"]["predicate"]["action"] for st in detail["statements"]][:1] == ["propose"]
        assert s.get("/v1/market/listings").json() == []
        assert s.get("/v1/federations").json() == []


def test_unknown_things_are_404_with_one_line(node):
    url, *_ = node
    with httpx.Client(base_url=url) as http:
        _error(http.get("/v1/assets/nosuchasset"), 404, "nosuchasset")
        _error(http.get("/v1/log/entries/999999"), 404, "999999")
        _error(http.get("/v1/governance/proposals/4000"), 404, "4000")
        _error(http.get("/v1/federations/7"), 404, "7")
        _error(http.get("/v1/log/proofs/consistency", params={"first": 5, "second": 2}), 400, "size1 <= size2")
        _error(http.get("/v1/log/entries/-1"), 422)


def test_signed_statements_land_in_the_log(node, actor):
    url, cli, ids, _ = node
    with NodeSession(url, actor) as s:
        env = event_envelope(actor, "supply-chain", "shipped", {"carrier": "ACME", "temp_c": 4.1})
        r = s.post("/v1/statements", {"envelope": env})
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["signer"] == actor.address and done["predicateType"].endswith("/event/v1")
        entry = s.get(f"/v1/log/entries/{done['logIndex']}").json()
        assert entry["signer"] == actor.address and entry["statement"]["predicate"]["data"]["carrier"] == "ACME"
        assert cli.json("log", "entry", str(done["logIndex"]))["signer"] == actor.address
        mine = s.get("/v1/statements", signer=actor.address.lower()).json()
        assert [m["logIndex"] for m in mine] == [done["logIndex"]]


def test_asset_records_register_by_digest_once(node, actor, tmp_path):
    url, cli, ids, _ = node
    (tmp_path / "sensor.csv").write_text("t,v\n1,2.5\n2,2.7\n")
    with NodeSession(url, actor) as s:
        env = path_envelope(actor, "dataset", str(tmp_path / "sensor.csv"), licence="CC0-1.0")
        first = s.post("/v1/assets", {"envelope": env})
        assert first.status_code == 200, first.text
        reg = first.json()
        assert reg["created"] and reg["signer"] == actor.address and reg["name"] == "sensor.csv"
        size = s.get("/v1/log").json()["size"]
        again = s.post("/v1/assets", {"envelope": env}).json()
        assert again == {**reg, "created": False} and s.get("/v1/log").json()["size"] == size
        # the CLI sees it, and the same bytes verify against it
        assert cli.json("verify", str(tmp_path / "sensor.csv"))["ok"] is True

        model = asset_envelope(actor, "model", "tuned.bin", "ab" * 32, 10,
                               trainingDatasets=[{"digest": reg["id"]}, {"digest": "cd" * 32}])
        _error(s.post("/v1/assets", {"envelope": model}), 404, "cdcdcdcdcdcd", "register it first")
        event = event_envelope(actor, "x", "y")
        _error(s.post("/v1/assets", {"envelope": event}), 400, "dataset/v1 or model/v1")
        assert s.get("/v1/log").json()["size"] == size


def test_refused_requests_change_nothing(node, actor):
    url, _, _, _ = node
    other = Account.create()
    with NodeSession(url, actor) as s:
        size = s.get("/v1/log").json()["size"]
        payload = {"envelope": event_envelope(actor, "d", "t", {"n": 1})}
        body = orjson.dumps(payload)
        path = "/v1/statements"

        def post(headers, content=body):
            return s.http.post(path, content=content, headers={**headers, "Content-Type": "application/json"})

        _error(s.http.post(path, json=payload), 401, "unsigned", "X-Ledgermind-Signer")
        good = signed_headers(actor, s.chain_id, s.node, "POST", path, body)
        assert post(good).status_code == 200
        _error(post(good), 401, "replayed", good[NONCE_HEADER])
        _error(post(signed_headers(actor, s.chain_id, s.node, "POST", path, body, expiry=int(time.time()) - 1)),
               401, "expired")
        _error(post(signed_headers(actor, s.chain_id, s.node, "POST", path, body, ttl=7200)), 401, "ahead")
        _error(post(signed_headers(actor, s.chain_id + 1, s.node, "POST", path, body)), 401, "chain id")
        _error(post(signed_headers(actor, s.chain_id, "another.node/1", "POST", path, body)), 401, "not by")
        _error(post(signed_headers(actor, s.chain_id, s.node, "POST", "/v1/assets", body)), 401, "not by")
        tampered = orjson.dumps({"envelope": event_envelope(actor, "d", "t", {"n": 2})})
        _error(post(signed_headers(actor, s.chain_id, s.node, "POST", path, body), content=tampered), 401, "not by")
        _error(post({**signed_headers(other, s.chain_id, s.node, "POST", path, body), SIGNER_HEADER: actor.address}),
               401, "not by")
        # signed fine, but the statement is another actor's
        theirs = orjson.dumps({"envelope": event_envelope(other, "d", "t")})
        _error(post(signed_headers(actor, s.chain_id, s.node, "POST", path, theirs), content=theirs), 403,
               other.address)
        _error(post({**good, SIGNER_HEADER: "0x123"}), 401, "X-Ledgermind-Signer")
        _error(s.post("/v1/anchors", {}), 403, "not an operator")
        _error(s.post("/v1/governance/proposals/1/votes", {"support": True}), 403, "not an operator")
        assert s.get("/v1/log").json()["size"] == size + 1  # the one good request


def test_the_signature_is_eip712_typed_data(actor):
    from eth_account.messages import encode_typed_data

    req = NodeRequest("ledgermind.local/abc", "POST /v1/statements", body_digest(b"{}"), 7, 1_900_000_000)
    typed = encode_typed_data(full_message=req.typed_data(1337))
    signed = Account.sign_message(typed, actor.key)
    assert req.signer(1337, bytes(signed.signature)) == actor.address


def test_operators_anchor_and_vote(node):
    url, cli, ids, operator = node
    with NodeSession(url, operator) as s:
        r = s.post("/v1/anchors", {})
        assert r.status_code == 200, r.text
        anchored = r.json()["anchored"]
        assert anchored["status"] == "anchored" and anchored["treeSize"] == s.get("/v1/log").json()["size"]
        assert [a["txHash"] for a in s.get("/v1/anchors").json() if a["status"] == "anchored"][-1] == anchored["txHash"]
        tx = s.get(f"/v1/chain/transactions/{anchored['txHash']}").json()
        assert tx["from"] == operator.address and tx["status"] == 1 and tx["to"] == anchored["contract"]
        _error(s.get(f"/v1/chain/transactions/0x{'ab' * 32}"), 404, "no transaction")

        r = s.post(f"/v1/governance/proposals/{ids['proposal']}/votes", {"support": True})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "passed" and r.json()["yes"] == 1
        votes = s.get("/v1/statements", predicate="governance/v1", order="desc", limit=1).json()
        assert votes[0]["logIndex"] == r.json()["logIndex"] and votes[0]["signer"] == operator.address
        _error(s.post(f"/v1/governance/proposals/{ids['proposal']}/votes", {"support": True}), 409, "reverted")
        _error(s.post("/v1/governance/proposals/999/votes", {"support": True}), 400, "no proposal 999")


def test_bodies_over_the_cap_get_413(node, actor):
    url, *_ = node
    with NodeSession(url, actor) as s:
        big = {"envelope": event_envelope(actor, "d", "t", {"blob": "x" * 70_000})}
        _error(s.post("/v1/statements", big), 413, "64000-byte limit")

        def chunks():
            yield b'{"envelope": "'
            for _ in range(100):
                yield b"y" * 1000

        _error(s.http.post("/v1/statements", content=chunks()), 413, "64000-byte limit")


def test_clients_over_their_rate_get_429_with_headers(node):
    url, cli, _, _ = node
    settings = load_settings(cli.home, auto_anchor=False)
    api = ApiServer(create_app(settings, NodeOptions(rate=1, burst=3)), port=0).start()
    try:
        with httpx.Client(base_url=api.url) as http:
            answers = [http.get("/healthz") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
        assert answers[0].headers["X-RateLimit-Limit"] == "1" and answers[0].headers["X-RateLimit-Burst"] == "3"
        assert int(answers[3].headers["Retry-After"]) >= 1
        _error(answers[3], 429, "rate limit")
    finally:
        api.stop()

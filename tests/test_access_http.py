"""Private data access over real HTTP on loopback, against the real Marketplace on the real embedded chain.

One provider home per module: a dataset registered in its log, encrypted into its blob store, minted in the
AssetRegistry and sold as a licence (and, for a folder, given away as access tokens by the Marketplace's
dispenser). Holders are fresh accounts; every test reads the provider's log to see what was recorded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from ledgermind.access import ACCESS_PREDICATE, AccessRefused, IntegrityError, offer_dataset
from ledgermind.access.client import download, fetch_terms
from ledgermind.access.crypto import CHUNK_SIZE, TAG_BYTES, EncryptedAsset
from ledgermind.access.onchain import holder_has_access
from ledgermind.access.policy import ACCESS_HEADER
from ledgermind.access.serve import ProviderServer, provider_app, service_from_client
from ledgermind.access.store import AccessStore
from ledgermind.client import Client
from ledgermind.config import load_settings
from ledgermind.contracts import load
from ledgermind.errors import InvalidInputError, LedgermindError
from ledgermind.fingerprint import fingerprint
from ledgermind.market.eip712 import AccessRequest

ZERO = "0x" + "00" * 20
LICENCE_PRICE = 10**15
GAS = 1_500_000


@dataclasses.dataclass
class World:
    client: Client
    marketplace: Any
    registry: Any
    factory: Any
    server: ProviderServer
    store: AccessStore
    data: Path  # a single-file dataset, sold as licences
    folder: Path  # a folder dataset, free access tokens from the dispenser
    tmp: Path

    @property
    def chain(self):
        return self.client.chain()

    @property
    def provider(self):
        return self.client.account()

    @property
    def url(self) -> str:
        return self.server.url

    def transact(self, account, call, value: int = 0, gas: int = GAS):
        self.chain.ensure_funds(account.address)
        return self.chain.transact(account, call, gas, value)

    def publish(self, path: Path, licence: bool = True) -> str:
        """Register, encrypt and offer ``path``, mint it, and sell licences of it; return its digest."""
        reg = self.client.register_dataset(path, licence="private")
        offer_dataset(path, blobs=self.client.blobs, keys_dir=self.client.settings.home / "keys", store=self.store)
        self.transact(self.provider, self.registry.functions.mint(
            self.provider.address, bytes.fromhex(reg.digest), 1, f"ledgermind://test/{reg.log_index}", []))
        if licence:
            self.transact(self.provider, self.marketplace.functions.list_licence(
                int(reg.digest, 16), LICENCE_PRICE, 3600, ZERO, [], []))
        return reg.digest

    def licensed_holder(self, digest: str):
        holder = Account.create()
        self.transact(holder, self.marketplace.functions.buy_licence(int(digest, 16)), value=LICENCE_PRICE)
        return holder

    def accesses(self, digest: str) -> list[tuple[str, dict[str, Any]]]:
        """(signer, predicate) of every access statement about ``digest`` in the provider's log, in order."""
        reg = self.client.registry
        reg.sync()
        return [
            (signer, self.client.ledger.read(index).statement.predicate)
            for index, ptype, signer in reg.index.statements_about(digest) if ptype == ACCESS_PREDICATE
        ]

    def log_size(self) -> int:
        return self.client.ledger.store.size()


def _deploy(chain, account, name: str, *args: Any):
    art = load(name)
    receipt = chain.deploy(account, art["bytecode"], art["abi"], args, gas=8_000_000)
    return chain.w3.eth.contract(address=receipt.contract_address, abi=art["abi"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("access")
    client = Client(settings=load_settings(tmp / "provider", auto_anchor=False))
    chain, provider = client.chain(), client.account()
    chain.ensure_funds(provider.address)
    registry = _deploy(chain, provider, "AssetRegistry")
    blueprint = chain.send(provider, {"data": load("AccessToken")["blueprintBytecode"]}, 3_000_000).contract_address
    factory = _deploy(chain, provider, "AccessTokenFactory", registry.address, blueprint)
    market = _deploy(chain, provider, "Marketplace", registry.address, factory.address)
    if not chain.call(registry.functions.is_minter(provider.address)):
        chain.transact(provider, registry.functions.set_minter(provider.address, True), 200_000)

    data = tmp / "patients.csv"
    data.write_text("id,age,diagnosis\n" + "".join(f"{i},{20 + i % 60},code-{i % 7}\n" for i in range(2000)))
    folder = tmp / "scans"
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "a.raw").write_bytes(os.urandom(CHUNK_SIZE + 77))
    (folder / "labels.csv").write_text("scan,label\na,benign\n")

    service, store = service_from_client(client, market.address)
    server = ProviderServer(provider_app(service)).start()
    w = World(client, market, registry, factory, server, store, data, folder, tmp)
    try:
        yield w
    finally:
        server.stop()
        store.close()
        client.close()


def _header(holder, digest: str, w: World, *, nonce: int | None = None, expiry: int | None = None,
            claimed: str | None = None, action: str = "download") -> str:
    req = AccessRequest(holder.address, bytes.fromhex(digest), action,
                        secrets.randbits(256) if nonce is None else nonce,
                        int(time.time()) + 60 if expiry is None else expiry)
    signed = req.sign(holder, w.chain.chain_id, w.marketplace.address)
    if claimed is not None:  # the holder field names someone else; the signature stays the signer's
        signed = dataclasses.replace(signed, holder=claimed)
    return json.dumps(signed.to_json())


def _get(w: World, digest: str, header: str | None, **params: str) -> httpx.Response:
    headers = {ACCESS_HEADER: header} if header is not None else {}
    return httpx.get(f"{w.url}/v1/datasets/{digest}", headers=headers, params=params, timeout=30)


def _error(resp: httpx.Response) -> str:
    body = resp.json()
    assert set(body) == {"error"} and "\n" not in body["error"], body
    return body["error"]


@pytest.fixture(scope="module")
def data_id(world: World) -> str:
    return world.publish(world.data)


# ---------------------------------------------------------------------------------------------- granted


def test_terms_say_what_to_sign_and_describe_the_registered_bytes(world: World, data_id: str) -> None:
    terms = fetch_terms(world.url, data_id)
    assert terms["assetId"] == "0x" + data_id and terms["chainId"] == world.chain.chain_id
    assert terms["verifyingContract"] == world.marketplace.address == terms["eip712"]["domain"]["verifyingContract"]
    assert terms["eip712"]["domain"]["name"] == "ledgermind Access" and terms["provider"] == world.provider.address
    assert terms["manifest"] == fingerprint(world.data).manifest and terms["kind"] == "file"


def test_a_licence_holder_downloads_and_the_bytes_verify(world: World, data_id: str) -> None:
    holder = world.licensed_holder(data_id)
    assert holder_has_access(world.chain, world.marketplace.address, data_id, holder.address)
    before = len(world.accesses(data_id))

    got = download(world.url, data_id, holder, world.tmp / "bought" / "patients.csv", world.chain)

    assert got.read_bytes() == world.data.read_bytes()
    report = world.client.verify(got)  # `ledgermind verify` on the received copy
    assert report.ok and any(c.name == "fingerprint" and c.status == "PASS" for c in report.checks)
    accesses = world.accesses(data_id)
    assert len(accesses) == before + 1
    signer, predicate = accesses[-1]
    assert signer == world.provider.address
    assert predicate["holder"] == holder.address and predicate["granted"] is True
    assert predicate["action"] == "download" and predicate["asset"] == data_id and predicate["path"] == "patients.csv"
    # the holder's own signature is in the record: anyone can check the holder asked
    request = AccessRequest(predicate["holder"], bytes.fromhex(data_id), "download", int(predicate["nonce"]),
                            int(predicate["expiry"]), bytes.fromhex(predicate["signature"][2:]))
    assert request.check(predicate["chainId"], predicate["verifyingContract"], now=0) == holder.address


def test_the_access_statement_is_durable_before_the_bytes_arrive(world: World, data_id: str) -> None:
    holder = world.licensed_holder(data_id)
    with httpx.stream("GET", f"{world.url}/v1/datasets/{data_id}", timeout=30,
                      headers={ACCESS_HEADER: _header(holder, data_id, world)}) as resp:
        assert resp.status_code == 200
        index = int(resp.headers["X-Ledgermind-Log-Index"])
        # headers are out, the body not read yet: the statement is already in the log
        statement = world.client.ledger.read(index).statement
        assert statement.predicate_type == ACCESS_PREDICATE and statement.predicate["holder"] == holder.address
        assert resp.headers["X-Ledgermind-Digest"] == fingerprint(world.data).files[0].sha256
        assert int(resp.headers["Content-Length"]) == world.data.stat().st_size
        assert resp.read() == world.data.read_bytes()


def test_a_token_holder_downloads_a_folder_as_a_whole_or_one_file(world: World) -> None:
    digest = world.publish(world.folder, licence=False)
    asset = int(digest, 16)
    world.transact(world.provider, world.factory.functions.create_access_token(asset, 1, world.marketplace.address),
                   gas=4_000_000)
    world.transact(world.provider, world.marketplace.functions.enable_dispenser(asset, 1))
    holder = Account.create()
    assert not holder_has_access(world.chain, world.marketplace.address, digest, holder.address)
    world.transact(holder, world.marketplace.functions.dispense(asset))
    assert holder_has_access(world.chain, world.marketplace.address, digest, holder.address)

    whole = download(world.url, digest, holder, world.tmp / "scans-copy", world.chain)
    assert fingerprint(whole).digest == digest
    one = download(world.url, digest, holder, world.tmp, world.chain, path="2024/a.raw")
    assert one == world.tmp / "a.raw" and one.read_bytes() == (world.folder / "2024" / "a.raw").read_bytes()
    paths = [p.get("path") for _, p in world.accesses(digest) if p["granted"]]
    assert paths == [None, "2024/a.raw"]


# ---------------------------------------------------------------------------------------------- refused


def test_a_non_holder_is_refused_403_and_the_refusal_is_logged(world: World, data_id: str) -> None:
    stranger = Account.create()
    dest = world.tmp / "stolen.csv"
    with pytest.raises(AccessRefused, match=r"refused \(403\): .* no licence or access token") as info:
        download(world.url, data_id, stranger, dest, world.chain)
    assert info.value.status == 403 and not dest.exists()
    assert [p for p in world.tmp.iterdir() if p.name.startswith(".tmp-")] == []
    signer, predicate = world.accesses(data_id)[-1]
    assert signer == world.provider.address
    assert predicate["holder"] == stranger.address and predicate["granted"] is False
    assert "no licence or access token" in predicate["reason"]


def test_a_replayed_nonce_is_refused_409(world: World, data_id: str) -> None:
    holder = world.licensed_holder(data_id)
    header = _header(holder, data_id, world)
    assert _get(world, data_id, header).status_code == 200
    replay = _get(world, data_id, header)
    assert replay.status_code == 409 and "replay refused" in _error(replay)
    assert world.accesses(data_id)[-1][1]["reason"].endswith("replay refused")


def test_concurrent_copies_of_one_request_are_served_once(world: World, data_id: str) -> None:
    holder = world.licensed_holder(data_id)
    header = _header(holder, data_id, world)
    start = threading.Barrier(4)
    codes: list[int] = []

    def fire() -> None:
        start.wait()
        codes.append(_get(world, data_id, header).status_code)

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409, 409, 409]


def test_an_expired_request_is_refused_401(world: World, data_id: str) -> None:
    holder = world.licensed_holder(data_id)
    resp = _get(world, data_id, _header(holder, data_id, world, expiry=int(time.time()) - 5))
    assert resp.status_code == 401 and "expired" in _error(resp)
    assert resp.headers["WWW-Authenticate"].startswith("EIP712")
    too_long = _get(world, data_id, _header(holder, data_id, world, expiry=int(time.time()) + 10 * 3600))
    assert too_long.status_code == 400 and "3600 s" in _error(too_long)


def test_a_signature_by_someone_else_than_the_holder_is_refused_401(world: World, data_id: str) -> None:
    holder, thief = world.licensed_holder(data_id), Account.create()
    resp = _get(world, data_id, _header(thief, data_id, world, claimed=holder.address))
    assert resp.status_code == 401 and f"not by the holder {holder.address}" in _error(resp)
    _, predicate = world.accesses(data_id)[-1]
    assert predicate["granted"] is False and predicate["reason"].startswith("bad signature")


def test_a_request_for_another_asset_or_action_is_refused_400(world: World, data_id: str) -> None:
    holder = world.licensed_holder(data_id)
    other = _get(world, data_id, _header(holder, "ab" * 32, world))
    assert other.status_code == 400 and "is for asset abab" in _error(other)
    infer = _get(world, data_id, _header(holder, data_id, world, action="infer"))
    assert infer.status_code == 400 and "action 'infer'" in _error(infer)


def test_malformed_headers_are_400_and_leave_no_trace(world: World, data_id: str) -> None:
    holder = world.licensed_holder(data_id)
    good = json.loads(_header(holder, data_id, world))
    bad = [None, "", "not json", "[]", json.dumps({**good, "extra": 1}),
           json.dumps({k: v for k, v in good.items() if k != "nonce"}),
           json.dumps({**good, "holder": "0x" + "zz" * 20}), json.dumps({**good, "holder": "0x1234"}),
           json.dumps({**good, "assetId": data_id}), json.dumps({**good, "signature": "0x00"}),
           json.dumps({**good, "nonce": -1}), json.dumps({**good, "nonce": str(2**256)}), json.dumps({**good, "nonce": 1.5}),
           json.dumps({**good, "expiry": True}), json.dumps({**good, "action": ""}), json.dumps({**good, "action": "x" * 65}),
           "x" * 5000]
    size = world.log_size()
    for header in bad:
        resp = _get(world, data_id, header)
        assert resp.status_code == 400, (header, resp.text)
        assert ACCESS_HEADER in _error(resp)
    assert world.log_size() == size


def test_unknown_datasets_are_404_and_bad_ids_400(world: World, data_id: str) -> None:
    holder = world.licensed_holder(data_id)
    unknown = "cd" * 32
    for resp in (httpx.get(f"{world.url}/v1/datasets/{unknown}/terms"), _get(world, unknown, _header(holder, unknown, world))):
        assert resp.status_code == 404 and "not offered here" in _error(resp)
    for resp in (httpx.get(f"{world.url}/v1/datasets/patients.csv/terms"), _get(world, "abc", None)):
        assert resp.status_code == 400 and "64-hex digest" in _error(resp)
    missing = _get(world, data_id, _header(holder, data_id, world), path="other.csv")
    assert missing.status_code == 404 and "no file 'other.csv'" in _error(missing)
    with pytest.raises(AccessRefused, match="404"):
        download(world.url, unknown, holder, world.tmp / "nothing", world.chain)
    with pytest.raises(InvalidInputError, match="not the expected digest"):
        download(world.url, data_id, holder, world.tmp / "nothing", world.chain, expected_digest=unknown)
    assert not (world.tmp / "nothing").exists()


def test_odd_requests_never_get_a_5xx(world: World, data_id: str) -> None:
    holder = world.licensed_holder(data_id)
    odd_ids = ["", "%00", "..", "0x" + data_id, "sha256:" + data_id.upper(), data_id + "00", "é" * 64, "%2e%2e%2fetc"]
    odd_paths = ["../../etc/passwd", "/etc/passwd", "", "patients.csv/..", "\x00", "a" * 5000]
    for dataset in odd_ids:
        for suffix in ("", "/terms"):
            resp = httpx.get(f"{world.url}/v1/datasets/{dataset}{suffix}", headers={ACCESS_HEADER: "{}"})
            assert resp.status_code < 500, (dataset, suffix, resp.text)
    for path in odd_paths:
        resp = _get(world, data_id, _header(holder, data_id, world), path=path)
        assert resp.status_code in (400, 404), (path, resp.text)


def test_a_replay_is_refused_even_after_the_provider_is_killed_and_restarted(world: World, data_id: str) -> None:
    from ledgermind.chain.rpc_server import NodeServer

    holder = world.licensed_holder(data_id)
    header = _header(holder, data_id, world, expiry=int(time.time()) + 600)
    # the chain stays in this process; the provider process reaches it through a node, as `ledgermind node` offers
    with NodeServer(world.chain.embedded, port=0):
        def start() -> tuple[subprocess.Popen[str], str]:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ledgermind.access.serve", "--home", str(world.client.settings.home),
                 "--marketplace", world.marketplace.address, "--port", "0"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "LEDGERMIND_AUTO_ANCHOR": "0"},
            )
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            return proc, json.loads(line)["url"]

        proc, url = start()
        try:
            first = httpx.get(f"{url}/v1/datasets/{data_id}", headers={ACCESS_HEADER: header}, timeout=30)
            assert first.status_code == 200 and first.content == world.data.read_bytes()
        finally:
            proc.send_signal(signal.SIGKILL)  # no clean shutdown: only what was committed survives
            proc.wait()
        proc, url = start()
        try:
            replay = httpx.get(f"{url}/v1/datasets/{data_id}", headers={ACCESS_HEADER: header}, timeout=30)
            assert replay.status_code == 409 and "replay refused" in _error(replay)
            fresh = httpx.get(f"{url}/v1/datasets/{data_id}", headers={ACCESS_HEADER: _header(holder, data_id, world)},
                              timeout=30)
            assert fresh.status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait() == 0


def test_the_runner_says_in_one_line_what_is_wrong(world: World, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ledgermind.access.serve", "--home", str(tmp_path / "empty"), "--rpc-url",
         "http://127.0.0.1:9", "--port", "0"], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: cannot reach")


# ---------------------------------------------------------------------------------------------- tampering


def _tamper(world: World, digest: str, offset: int) -> None:
    offer = world.store.offered(digest)
    enc = EncryptedAsset.load(world.client.blobs, offer.manifest)
    blob = world.client.blobs.path(enc.files[0].blob)
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[offset] ^= 0x01
    blob.write_bytes(data)


def test_tampered_ciphertext_is_never_served_and_nothing_reaches_dest(world: World) -> None:
    first = world.tmp / "first-chunk.bin"
    first.write_bytes(os.urandom(1000))
    later = world.tmp / "later-chunk.bin"
    later.write_bytes(os.urandom(2 * CHUNK_SIZE + 5))
    a, b = world.publish(first), world.publish(later)
    _tamper(world, a, 10)
    _tamper(world, b, CHUNK_SIZE + TAG_BYTES + 10)  # chunk 1: the response has started when it is found
    holder_a, holder_b = world.licensed_holder(a), world.licensed_holder(b)

    # found before the response starts: the provider's own fault, said in one line, and on record
    with pytest.raises(AccessRefused, match=r"\(500\): the provider cannot serve .* chunk 0 .* failed authentication"):
        download(world.url, a, holder_a, world.tmp / "a.bin", world.chain)
    assert not (world.tmp / "a.bin").exists()
    assert world.accesses(a)[-1][1]["granted"] is False

    # found mid-stream: the connection is cut, the client keeps nothing
    with pytest.raises(LedgermindError, match="download from .* failed") as info:
        download(world.url, b, holder_b, world.tmp / "b.bin", world.chain)
    assert "\n" not in str(info.value) and not (world.tmp / "b.bin").exists()
    assert [p for p in world.tmp.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_provider_lying_about_the_bytes_is_caught_by_the_client(world: World, data_id: str) -> None:
    """A provider that serves the true terms but other bytes (a bug, or malice): the client checks what it got
    against the manifest the dataset id is the digest of, and keeps nothing."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response

    terms = fetch_terms(world.url, data_id)
    size = world.data.stat().st_size
    liar = FastAPI()
    liar.get("/v1/datasets/{dataset_id}/terms")(lambda dataset_id: JSONResponse(terms))
    liar.get("/v1/datasets/{dataset_id}")(lambda dataset_id: Response(b"x" * size))
    holder = world.licensed_holder(data_id)
    dest = world.tmp / "lies" / "sub" / "lie.csv"
    with ProviderServer(liar) as server:
        with pytest.raises(IntegrityError, match=f"received patients.csv has {size} bytes and digest [0-9a-f]{{64}}; registered"):
            download(server.url, data_id, holder, dest, world.chain)
        assert not (world.tmp / "lies").exists()  # not even the folders made for it
        terms["manifest"]["files"][0]["size"] += 1  # terms describing other bytes than the id names
        with pytest.raises(IntegrityError, match="hashes to"):
            download(server.url, data_id, holder, dest, world.chain)
    assert not (world.tmp / "lies").exists()


def test_an_offer_recorded_under_the_wrong_id_is_not_served(world: World) -> None:
    honest = world.tmp / "honest.csv"
    honest.write_text("a,b\n1,2\n")
    digest = world.publish(honest)
    other = world.tmp / "other" / "honest.csv"
    other.parent.mkdir()
    other.write_text("a,b\n6,6\n")
    enc = offer_dataset(other, blobs=world.client.blobs, keys_dir=world.tmp / "other-keys", store=world.store)
    world.store.offer(digest, enc.manifest_digest, "honest.csv", 0)
    resp = httpx.get(f"{world.url}/v1/datasets/{digest}/terms")
    assert resp.status_code == 500 and f"is for asset {enc.asset}" in _error(resp)

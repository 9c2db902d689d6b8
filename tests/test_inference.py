"""Paid inference over real HTTP: a provider (uvicorn on a loopback port) serving a registered scikit-learn model,
paid through the PaymentChannels contract on the embedded chain, every answer a signed receipt in its log.

From the client's side: paid requests whose receipts verify; 64 concurrent clients on shared channels with no
failure, and a settlement equal to what was served; every kind of bad request refused with a 4xx and a one-line
reason, with no money moving; a restart that forgets nothing; a tampered model file the provider refuses.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import orjson
import pytest
from eth_account import Account
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ledgermind import Client
from ledgermind.chain.connection import Chain
from ledgermind.contracts import load
from ledgermind.inference.adapters import ServedModel, load_registered
from ledgermind.inference.channels import PaymentChannels
from ledgermind.inference.client import InferenceClient, PaidChannel, Payer
from ledgermind.inference.digests import json_digest
from ledgermind.inference.errors import ModelMismatchError
from ledgermind.inference.receipts import verify_receipt
from ledgermind.inference.server import ServerThread
from ledgermind.inference.service import InferenceService, Offer
from ledgermind.inference.signing import Signer, voucher_domain
from ledgermind.inference.tickets import TicketBook, TicketChain, TicketRef
from ledgermind.market.eip712 import AccessRequest, Voucher

X, Y = load_breast_cancer(return_X_y=True)
PRICE = 10
LICENCE_PRICE = 10**15
ZERO = "0x" + "00" * 20


@dataclass
class World:
    lm: Client
    chain: Chain
    channels: PaymentChannels
    model: ServedModel
    path: Path
    service: InferenceService
    server: ServerThread
    market: Any

    @property
    def url(self) -> str:
        return self.server.url

    def infer_url(self, model: str | None = None) -> str:
        return f"{self.url}/v1/models/{model or self.model.digest}/infer"


def start(lm: Client, model: ServedModel, channels: PaymentChannels, marketplace: str) -> tuple[InferenceService, ServerThread]:
    service = InferenceService.from_client(lm, [Offer(model, PRICE)], channels_address=channels.address,
                                           marketplace=marketplace)
    return service, ServerThread(service, settle_interval=0).start()


def deploy(chain: Chain, account, name: str, *args):
    art = load(name)
    receipt = chain.deploy(account, art["bytecode"], art["abi"], args, gas=8_000_000)
    return chain.w3.eth.contract(address=receipt.contract_address, abi=art["abi"])


def marketplace_selling_licences(chain: Chain, owner, model: str):
    """AssetRegistry + AccessTokenFactory + Marketplace, the model minted to ``owner`` and licences of it listed."""
    registry = deploy(chain, owner, "AssetRegistry")
    blueprint = chain.send(owner, {"data": load("AccessToken")["blueprintBytecode"]}, 3_000_000).contract_address
    factory = deploy(chain, owner, "AccessTokenFactory", registry.address, blueprint)
    market = deploy(chain, owner, "Marketplace", registry.address, factory.address)
    if not chain.call(registry.functions.is_minter(owner.address)):
        chain.transact(owner, registry.functions.set_minter(owner.address, True), 200_000)
    chain.transact(owner, registry.functions.mint(owner.address, bytes.fromhex(model), 2, "ledgermind://model", []),
                   1_500_000)
    chain.transact(owner, market.functions.list_licence(int(model, 16), LICENCE_PRICE, 3600, ZERO, [], []), 1_500_000)
    return market


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEDGERMIND_AUTO_ANCHOR", "0")
        path = tmp / "cancer.joblib"
        joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, Y), path)
        data = tmp / "cancer.csv"
        np.savetxt(data, np.c_[X, Y][:50], delimiter=",", header=",".join(f"f{i}" for i in range(31)), comments="")
        lm = Client(tmp / "provider")
        dataset = lm.register_dataset(data, licence="CC-BY-4.0")
        registered = lm.register_model(path, trained_on=[dataset.digest], metrics={"accuracy": 0.98})
        model = load_registered(lm, registered.digest, path)
        chain = lm.chain()
        channels = PaymentChannels.deploy(chain, lm.account())
        market = marketplace_selling_licences(chain, lm.account(), model.digest)
        service, server = start(lm, model, channels, market.address)
        w = World(lm, chain, channels, model, path, service, server, market)
        yield w
        w.server.stop()
        lm.close()


def payer(world: World) -> Payer:
    return Payer(Account.create(), world.channels)


def paid(world: World, channel: PaidChannel, inputs, price: int | None = None, **headers) -> httpx.Response:
    payment = channel.pay(PRICE * len(inputs) if price is None else price)
    return httpx.post(world.infer_url(), json={"inputs": inputs}, headers={**payment.headers, **headers})


# ---------------------------------------------------------------------- the happy path
def test_paid_requests_answer_with_receipts_that_verify(world):
    with InferenceClient([world.url], payer=payer(world), deposit=10_000) as client:
        results = [client.infer(world.model.digest, X[i].tolist()) for i in range(3)]
        batch = client.infer(world.model.digest, X[10:14].tolist())
    assert [r.outputs for r in results] == [[int(Y[0])], [int(Y[1])], [int(Y[2])]]
    assert batch.price == 4 * PRICE and len(batch.outputs) == 4
    r = results[-1]
    assert r.provider == world.service.provider and r.receipt.signer == r.provider
    predicate = r.receipt.statement.predicate
    assert predicate["model"]["digest"] == world.model.digest and predicate["inputDigest"] == json_digest(X[2].tolist())

    report = verify_receipt(r.log_index, world.lm, model=world.model.digest, provider=r.provider,
                            inputs=X[2].tolist(), outputs=r.outputs)
    assert report.ok, report.to_json()
    assert {c.name for c in report.checks} >= {"signature", "inclusion", "checkpoint", "model", "input", "output"}
    # the envelope the client got, checked against the log; and the bundle, offline against the pinned log key
    assert verify_receipt(r.envelope, world.lm, log_index=r.log_index, model="cancer.joblib").ok
    bundle = httpx.get(f"{world.url}/v1/receipts/{r.log_index}").json()
    offline = verify_receipt(bundle, model=world.model.digest, log_key=world.lm.log_info()["publicKey"])
    assert offline.ok, offline.to_json()
    # what the model did not answer does not verify
    wrong = verify_receipt(r.log_index, world.lm, outputs=[1 - r.outputs[0]], model=world.model.digest)
    assert not wrong.ok and {c.name for c in wrong.checks if c.status == "FAIL"} == {"output"}
    forged = dict(bundle)
    env = dict(bundle["dsseEnvelope"])
    env["payload"] = env["payload"][:-8] + ("A" * 8 if env["payload"][-8:] != "A" * 8 else "B" * 8)
    forged["dsseEnvelope"] = env
    assert not verify_receipt(forged, log_key=world.lm.log_info()["publicKey"]).ok
    other = verify_receipt(r.log_index, world.lm, model="cancer.csv")
    assert not other.ok  # a dataset is not the model the receipt names

    terms = httpx.get(f"{world.url}/v1/models/{world.model.digest}").json()
    assert terms["price"] == str(PRICE) and terms["provider"] == world.service.provider
    assert terms["channels"] == world.channels.address and terms["chainId"] == world.chain.chain_id
    assert terms["model"]["digest"] == world.model.digest and terms["model"]["shape"] == [None, 30]
    assert httpx.get(f"{world.url}/v1/models/cancer.joblib").json()["model"]["digest"] == world.model.digest
    assert httpx.get(f"{world.url}/healthz").json()["ok"] is True


def test_64_concurrent_clients_on_shared_channels_then_settle(world):
    """64 threads pay through 4 channels (16 each) at once: no request fails, the provider counts exactly what
    it served, and once each payer sends its closing voucher, settling pays the provider exactly the sum of the
    served prices (not the unused tickets its last ticket book paid ahead)."""
    payers = [payer(world) for _ in range(4)]
    chans = [p.open(world.service.provider, 10**9) for p in payers]
    per_client = 8
    failures: list[str] = []
    prices: dict[bytes, int] = {c.channel_id: 0 for c in chans}
    lock = threading.Lock()
    barrier = threading.Barrier(64)

    def client(i: int) -> None:
        channel = chans[i % 4]
        with httpx.Client(base_url=world.url, timeout=60) as http:
            barrier.wait()
            for j in range(per_client):
                rows = X[(i + j) % 500 : (i + j) % 500 + 1 + j % 3].tolist()
                payment = channel.pay(PRICE * len(rows))
                r = http.post(f"/v1/models/{world.model.digest}/infer", json={"inputs": rows},
                              headers=payment.headers)
                with lock:
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                    else:
                        payment.accepted()  # later tickets of the book go without it, as InferenceClient sends them
                        prices[channel.channel_id] += int(r.json()["price"])

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(client, range(64)))
    assert failures == []
    for c in chans:  # every ticket sent paid for one answer
        assert world.service.channels.status(c.channel_id)["served"] == str(prices[c.channel_id]) == str(c.committed)
        assert prices[c.channel_id] < c.issued <= prices[c.channel_id] + c.max_tickets * 3 * PRICE  # the last book paid ahead
        closing = c.close_out()
        assert closing is not None and closing.amount == prices[c.channel_id]
        body = {**closing.to_json(), "chainId": world.chain.chain_id, "contract": world.channels.address}
        assert httpx.post(f"{world.url}/v1/channels/close", json=body).json()["closing"] == str(closing.amount)
    before = world.channels.withdrawable(world.service.provider)  # other tests of the module may settle too
    done = {bytes.fromhex(s["channelId"][2:]): int(s["amount"]) for s in
            (world.service.settle(c.channel_id)[0] for c in chans)}
    for c in chans:
        assert world.channels.channel(c.channel_id).paid == done[c.channel_id] == prices[c.channel_id]
    assert world.channels.withdrawable(world.service.provider) - before == sum(prices.values())


def test_closing_vouchers_are_checked(world):
    p = payer(world)
    chan = p.open(world.service.provider, 10_000)
    for _ in range(4):  # books of 1 and 2 tickets, then one of 4: the last voucher is 70, 40 served
        assert paid(world, chan, [X[0].tolist()]).status_code == 200
    close = f"{world.url}/v1/channels/close"

    def voucher(amount: int, account=None, **fields) -> dict:
        v = Voucher(chan.channel_id, amount).sign(account or p.account, world.chain.chain_id, world.channels.address)
        return {**v.to_json(), **fields}

    refused(httpx.post(close, content=b"{"), 400, "not JSON")
    refused(httpx.post(close, json={"amount": "30"}), 400, "channelId, amount, signature")
    refused(httpx.post(close, json=voucher(40, chainId=1)), 400, "not for PaymentChannels")
    refused(httpx.post(close, json=voucher(40, account=Account.create())), 401, "not by the channel")
    refused(httpx.post(close, json=voucher(30)), 402, "does not cover the requests served: served 40")
    refused(httpx.post(close, json=voucher(80)), 400, "at most the best voucher 70")
    other = Voucher(os.urandom(32), 5).sign(p.account, world.chain.chain_id, world.channels.address)
    refused(httpx.post(close, json=other.to_json()), 404, "paid this provider nothing")
    assert world.service.channels.status(chan.channel_id)["closing"] is None
    assert httpx.post(close, json=voucher(40)).json()["closing"] == "40"
    assert paid(world, chan, [X[0].tolist()]).status_code == 200  # a ticket after closing: the book's voucher again
    assert world.service.settle(chan.channel_id)[0]["amount"] == "70"


# ---------------------------------------------------------------------- refusals
def refused(r: httpx.Response, status: int, words: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and words in body["error"], body
    return body["error"]


def test_the_book_goes_along_until_a_request_of_it_is_answered(world):
    sent: list[bool] = []  # whether each request carried the ticket book
    http = httpx.Client(event_hooks={"request": [lambda r: sent.append("X-Ledgermind-Voucher" in r.headers)
                                                 if r.url.path.endswith("/infer") else None]})
    p = payer(world)
    chan = p.open(world.service.provider, 10_000)
    with InferenceClient([world.url], channels={world.service.provider: chan}, http=http) as client:
        for i in range(7):  # books of 1, 2 and 4 tickets, one request at a time
            client.infer(world.model.digest, X[i].tolist())
        assert sent == [True, True, False, True, False, False, False]
        # a provider that does not know a book the client takes as known (its state was lost) answers 409, and
        # the client sends the ticket again with the book
        stale = chan.pay(PRICE)  # the first ticket of a new book (8 tickets), never sent ...
        stale.accepted()  # ... yet taken as known
        sent.clear()
        result = client.infer(world.model.digest, X[8].tolist())
        assert sent == [False, True] and result.price == PRICE
    http.close()
    status = world.service.channels.status(chan.channel_id)
    assert status["served"] == str(8 * PRICE)


def test_settling_mid_book_keeps_the_books_prepaid_tickets(world):
    chan = payer(world).open(world.service.provider, 10_000)
    with InferenceClient([world.url], channels={world.service.provider: chan}) as client:
        for i in range(4):  # books of 1, 2 and 4 tickets: the 4th request opens the last, voucher 7 prices
            client.infer(world.model.digest, X[i].tolist())
        world.service.settle(chan.channel_id)  # the provider redeems it, 3 of its tickets still unspent
        assert world.channels.channel(chan.channel_id).paid == 7 * PRICE
        for i in range(4):  # the rest of the settled book, then a new book above it
            assert client.infer(world.model.digest, X[i].tolist()).price == PRICE
    status = world.service.channels.status(chan.channel_id)
    assert status["served"] == str(8 * PRICE) and status["best"] == str(15 * PRICE)


def test_bad_payments_are_refused_and_no_money_moves(world):
    p = payer(world)
    chan = p.open(world.service.provider, 100)
    chan.max_tickets = 1  # one ticket per book: every voucher is for exactly what was served
    row = [X[0].tolist()]
    assert paid(world, chan, row).status_code == 200  # voucher 10
    first = chan.pay(PRICE)
    assert httpx.post(world.infer_url(), json={"inputs": row}, headers=first.headers).status_code == 200  # 20
    size = world.lm.log_info()["size"]
    before = world.service.channels.status(chan.channel_id)
    signer, domain = Signer(p.account.key), voucher_domain(world.chain.chain_id, world.channels.address)

    def tk(index: int, link: bytes = bytes(32), amount: int = 30) -> str:
        return TicketRef(chan.channel_id, amount, index, link).header()

    def post(header: str | None = None, ticket: str | None = tk(1), **kw) -> httpx.Response:
        headers = {}
        if header is not None:
            headers["X-Ledgermind-Voucher"] = header
        if ticket is not None:
            headers["X-Ledgermind-Ticket"] = ticket
        return httpx.post(world.infer_url(), json={"inputs": row}, headers=headers, **kw)

    def book(amount: int, account=None, signed_chain_id=None, links: TicketChain | None = None,
             **fields) -> tuple[str, str]:
        """A ticket book for ``amount`` and its first ticket; ``fields`` replace those of the header."""
        links = links or TicketChain(4)
        d = voucher_domain(signed_chain_id or world.chain.chain_id, world.channels.address)
        b = TicketBook.sign(Signer(account.key) if account else signer, d, chan.channel_id, amount, links.anchor)
        header = {**orjson.loads(b.header(world.chain.chain_id, world.channels.address)), **fields}
        return orjson.dumps(header).decode(), tk(1, links.links[1], amount)

    refused(post(ticket=None), 402, "payment required")
    refused(post("{not json"), 400, "not JSON")
    refused(post('{"channelId": "0x12", "amount": "5", "signature": "0x00", "anchor": "0x00", "bookSignature": "0x"}'),
            400, "malformed voucher")
    refused(post(orjson.dumps(Voucher(chan.channel_id, 30).to_json()).decode()), 400, "anchor, bookSignature")
    refused(post(*book(30, anchor="0x1234")), 400, "anchor must be 32 bytes")
    refused(post(book(30)[0], ticket=None), 402, "needs a X-Ledgermind-Ticket")
    cid, zeros = chan.channel_id.hex(), "00" * 32
    for bad in ("1", f"1:{zeros}", f"{cid}{zeros}:30:x", f"{cid}{zeros}:30:0", f"{cid}{'zz' * 32}:30:1",
                f"{cid}00:30:1", f"{cid}{zeros}:-3:1", f"{cid}{zeros}:{2**256}:1", f"{'zz' * 32}{zeros}:30:1",
                f"{cid}{zeros}:30:1:1", f"{cid}{zeros}:30", f"{cid}{zeros[:-4]} 0 0:30:1", f"{cid}:30:1:{zeros}"):
        refused(post(book(30)[0], ticket=bad), 400, "X-Ledgermind-Ticket")
    refused(post(book(30)[0], ticket=tk(1, amount=40)), 400, "names voucher 40")
    refused(post(None, tk(1)), 409, "unknown ticket book")  # a ticket alone, of a book never sent
    refused(post(*book(30, account=Account.create())), 401, "not by the channel")
    good = TicketBook.sign(signer, domain, chan.channel_id, 30, TicketChain(1).anchor)
    nobody = book(30, signature="0x" + "00" * 64 + "1b")[0]  # r = s = 0: recovers no key
    refused(post(nobody), 401, "bad voucher signature")
    high_s = (0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
              - int.from_bytes(good.signature[32:64], "big")).to_bytes(32, "big")
    malleated = good.signature[:32] + high_s + bytes([55 - good.signature[64]])
    refused(post(book(30, bookSignature="0x" + malleated.hex())[0]), 401, "malleable")
    refused(post(first.with_book["X-Ledgermind-Voucher"], first.ticket), 409, "replayed ticket")
    refused(post(None, first.ticket), 409, "replayed ticket")
    links = TicketChain(8)
    header, _ = book(30, links=links)
    refused(post(header, tk(2, links.links[3])), 401, "bad ticket")  # not link 2
    refused(post(header, tk(300, links.links[1])), 401, "bad ticket")  # too far ahead of a known link
    refused(post(first.with_book["X-Ledgermind-Voucher"], tk(2, amount=20)), 401, "bad ticket")
    refused(post(None, tk(2, amount=20)), 401, "bad ticket")
    other, other_ticket = book(20)  # the amount of an accepted book, with another chain
    refused(post(other, other_ticket), 409, "another ticket book")
    refused(post(*book(15)), 402, "does not cover the requests served: served 20, voucher 15")
    refused(post(*book(1000)), 402, "above the channel")
    refused(post(book(30, chainId=1)[0]), 400, "voucher is for chain 1")
    refused(post(*book(30, signed_chain_id=1)), 401, "not by the channel")  # signed for another chain: another signer
    refused(post(book(30, contract="0x" + "11" * 20)[0]), 400, "this provider uses")
    assert world.lm.log_info()["size"] == size  # no receipt for a refused request
    assert world.service.channels.status(chan.channel_id) == before
    assert world.channels.channel(chan.channel_id).paid == 0

    world.service.settle(chan.channel_id)
    assert world.channels.channel(chan.channel_id).paid == 20
    refused(post(None, tk(1, amount=10)), 409, "unknown ticket book")  # below what is settled: forgotten
    refused(post(*book(19)), 402, "not above what is already settled")
    assert paid(world, chan, row).status_code == 200  # the channel goes on: voucher 30

    soon = p.open(world.service.provider, 100, duration=100)  # inside the provider's 300 s margin
    refused(paid(world, soon, row), 402, "settlement margin")
    assert world.channels.channel(soon.channel_id).paid == 0


def test_expired_channel_is_gone(world):
    p = payer(world)
    chan = p.open(world.service.provider, 100, duration=1000)
    with world.chain.embedded.lock:  # the chain's clock moves past the expiry: the sender could reclaim now
        world.chain.embedded.tester.time_travel(chan.expiry + 5)
    refused(paid(world, chan, [X[0].tolist()]), 410, "expired")
    assert p.reclaim(chan) == 100  # all of it back: nothing was served


def test_bad_inputs_are_4xx_never_5xx(world):
    chan = payer(world).open(world.service.provider, 10_000)
    size = world.lm.log_info()["size"]

    def post(content: bytes, model: str | None = None, **headers) -> httpx.Response:
        payment = chan.pay(PRICE)  # each attempt carries a fresh, valid ticket: the input alone is wrong
        return httpx.post(world.infer_url(model), content=content,
                          headers={**payment.headers, "content-type": "application/json", **headers})

    refused(post(b"{"), 400, "not JSON")
    refused(post(b"[1, 2]"), 400, '{"inputs"')
    refused(post(b'{"inputs": [[1]], "extra": 1}'), 400, "nothing else")
    refused(post(b'{"inputs": [[1, 2]]}'), 422, "shape [rows, 30]")
    refused(post(b'{"inputs": [["a", "b"]]}'), 422, "numbers")
    refused(post(b'{"inputs": [[1, 2], [3]]}'), 422, "rectangular")
    refused(post(b'{"inputs": [' + b",".join([b"1e400"] * 30) + b"]}"), 400, "infinity")
    refused(post(orjson.dumps({"inputs": [[1.0] * 30] * 2000})), 422, "rows")
    refused(post(b'{"inputs": [' + b"1," * 600_000 + b"1]}"), 413, "limit")
    refused(post(b'{"inputs": [[1]]}', model="f" * 64), 404, "unknown model")
    refused(post(b'{"inputs": [[1]]}', model="no-such-model"), 404, "unknown model")
    refused(httpx.get(f"{world.url}/v1/nothing-here"), 404, "Not Found")
    refused(httpx.get(f"{world.url}/v1/receipts/999999"), 404, "no entry")
    refused(httpx.get(f"{world.url}/v1/receipts/0"), 404, "not an inference receipt")
    refused(httpx.get(f"{world.url}/v1/receipts/minus"), 422, "index")
    refused(httpx.put(world.infer_url()), 405, "Method Not Allowed")
    assert world.lm.log_info()["size"] == size
    status = world.service.channels.status(chan.channel_id)
    assert status["served"] == "0" and world.channels.channel(chan.channel_id).paid == 0


def test_restart_rebuilds_channel_state_from_receipts(world):
    p = payer(world)
    chan = p.open(world.service.provider, 10_000)
    row = [X[3].tolist()]
    answers = [paid(world, chan, row) for _ in range(5)]  # books of 1, 2 and 4 tickets: vouchers 10, 30, 70
    assert all(a.status_code == 200 for a in answers)
    replay = {k: answers[4].request.headers[k] for k in ("X-Ledgermind-Voucher", "X-Ledgermind-Ticket")}
    world.server.stop()
    service, server = start(world.lm, world.model, world.channels, world.market.address)  # as a new process would
    world.service, world.server = service, server
    assert service.restored >= 5
    status = service.channels.status(chan.channel_id)
    assert status["served"] == "50" and status["best"] == "70"
    refused(httpx.post(world.infer_url(), json={"inputs": row}, headers=replay), 409, "replayed ticket")
    assert paid(world, chan, row).status_code == 200  # the next ticket of the restored book
    assert service.channels.status(chan.channel_id)["served"] == "60"
    assert service.settle(chan.channel_id)[0]["amount"] == "70"


def test_provider_refuses_a_tampered_model_file(world, tmp_path):
    copy = tmp_path / world.path.name
    raw = bytearray(world.path.read_bytes())
    raw[-10] ^= 0xFF
    copy.write_bytes(bytes(raw))
    with pytest.raises(ModelMismatchError) as e:
        load_registered(world.lm, world.model.digest, copy)
    assert e.value.expected == world.model.digest and f"sha256:{e.value.found}" in str(e.value)


# ---------------------------------------------------------------------- access-token and licence holders
def test_licence_holders_infer_with_access_requests(world):
    holder = Account.create()
    world.chain.ensure_funds(holder.address)
    world.chain.transact(holder, world.market.functions.buy_licence(int(world.model.digest, 16)), 1_500_000,
                         LICENCE_PRICE)

    def header(account, action: str = "infer", nonce: int | None = None) -> str:
        req = AccessRequest(account.address, bytes.fromhex(world.model.digest), action,
                            secrets.randbits(256) if nonce is None else nonce, int(time.time()) + 60)
        return orjson.dumps(req.sign(account, world.chain.chain_id, world.market.address).to_json()).decode()

    def post(h: str) -> httpx.Response:
        return httpx.post(world.infer_url(), json={"inputs": X[:2].tolist()}, headers={"X-Ledgermind-Access": h},
                          timeout=30)

    first = header(holder)
    ok = post(first)
    assert ok.status_code == 200, ok.text
    answer = ok.json()
    assert answer["price"] == "0" and "payment" not in answer
    receipt = verify_receipt(answer["receipt"]["logIndex"], world.lm, model=world.model.digest,
                             inputs=X[:2].tolist(), outputs=answer["outputs"])
    assert receipt.ok
    assert world.lm.ledger.read(answer["receipt"]["logIndex"]).statement.predicate["channel"].startswith(
        f"access:eip155:{world.chain.chain_id}:{world.market.address}/{holder.address}?nonce=")
    refused(post(first), 409, "already used")
    refused(post(header(Account.create())), 403, "no licence or access token")
    refused(post(header(holder, action="download")), 400, "action")
    refused(post("{}"), 400, "malformed access request")
    with InferenceClient([world.url], access=(holder, world.chain.chain_id, world.market.address)) as client:
        result = client.infer(world.model.digest, X[5].tolist())
    assert result.price == 0 and result.outputs == [int(Y[5])]

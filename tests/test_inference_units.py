"""Paid inference, part by part: digests, signatures, model adapters, receipts, and the channel acceptance rule
on the real embedded chain (no HTTP here; see test_inference.py for the provider over HTTP)."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import pickle
import time

import joblib
import numpy as np
import pytest
import rfc8785
from eth_account import Account
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ledgermind import Client
from ledgermind.chain.connection import Chain
from ledgermind.errors import InvalidInputError, NotFoundError, SignatureError
from ledgermind.inference import recovery
from ledgermind.inference.adapters import CallableAdapter, OnnxAdapter, load_model, load_registered, model_format
from ledgermind.inference.channels import PaymentChannels, ProviderChannels, Ticket, channel_id
from ledgermind.inference.client import PaidChannel, Payer, Payment, _rows
from ledgermind.inference.digests import canonical_bytes, json_digest
from ledgermind.inference.errors import ModelMismatchError, PaymentRefused
from ledgermind.inference.receipts import (
    AccessRef,
    ReceiptFactory,
    ReceiptRecord,
    VoucherRef,
    check_receipt,
    open_receipt,
)
from ledgermind.inference.service import TICKET_HEADER, VOUCHER_HEADER, parse_voucher_header
from ledgermind.inference.signing import Signer, VoucherDomain
from ledgermind.inference.tickets import MAX_AHEAD, ChainCheck, TicketBook, TicketChain, TicketRef, parse_ticket
from ledgermind.market.eip712 import Voucher
from ledgermind.statements import open_envelope, sign_envelope

X, Y = load_breast_cancer(return_X_y=True)


@pytest.fixture(scope="module")
def estimator():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, Y)


# ---------------------------------------------------------------------- digests
finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(finite, st.integers(-(2**53) + 1, 2**53 - 1))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(numbers, st.lists(numbers, max_size=6)), max_size=8))
def test_canonical_bytes_are_rfc8785(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_canonical_bytes_edge_numbers_and_general_values():
    for x in [0.0, -0.0, 1001.0, 1e-7, 1e-6, 9.99e-5, 1e-4, 1e16, 1e21, 2.0**53, 5e-324, 1.7976931348623157e308,
              4503599627370495.5, 123456789.125, 2**53 - 1, -(2**53 - 1)]:
        assert canonical_bytes([x, [x]]) == rfc8785.dumps([x, [x]]), x
    for general in ([{"b": 1, "a": [1.0, "é"]}], ["x", None, True], {"k": [1.5]}, 3.0, []):
        assert canonical_bytes(general) == rfc8785.dumps(general)
    for bad in ([math.nan], [[1.0, math.inf]], [2**53], [2**70]):
        with pytest.raises(InvalidInputError):
            canonical_bytes(bad)
    assert json_digest([[1, 2.5]]) == "%s" % __import__("hashlib").sha256(b"[[1,2.5]]").hexdigest()


# ---------------------------------------------------------------------- signatures
def test_fast_signer_makes_eth_account_signatures():
    account = Account.create()
    signer = Signer(account.key)
    assert signer.address == account.address
    for n in (0, 1, 55, 300, 4000):
        payload = os.urandom(n)
        assert signer.sign_envelope(payload) == sign_envelope(payload, account)
    contract = "0x" + "ab" * 20
    domain = VoucherDomain(1337, contract)
    for amount in (0, 1, 10**18 + 3, 2**256 - 1):
        cid = os.urandom(32)
        reference = Voucher(cid, amount).sign(account, 1337, contract)
        assert domain.sign(signer, cid, amount) == reference
        assert domain.digest(cid, amount) == reference.digest(1337, contract)
        assert domain.signer_of(reference) == account.address
    with pytest.raises(SignatureError):
        domain.signer_of(Voucher(cid, 1, b"\x00" * 65))


# ---------------------------------------------------------------------- signer recovery off the event loop
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _signed_digests(n: int) -> list[tuple[bytes, bytes, str]]:
    """(digest, signature, signer) for ``n`` random digests, signed by a few accounts."""
    signers = [Signer(Account.create().key) for _ in range(3)]
    out = []
    for i in range(n):
        digest, signer = os.urandom(32), signers[i % len(signers)]
        out.append((digest, signer.sign_digest(digest), signer.address))
    return out


def test_recovery_gives_each_signature_its_signer_and_refuses_bad_ones():
    items = _signed_digests(50)
    for d, sig, signer in items:
        assert recovery.recover_address(d, sig) == bytes.fromhex(signer[2:])
    digest, good, _ = items[0]
    s = int.from_bytes(good[32:64], "big")
    bad = [
        (bytes(64) + b"\x1b", "does not recover a public key"),  # r = s = 0
        (good[:32] + (_N - s).to_bytes(32, "big") + bytes([55 - good[64]]), "malleable"),  # n - s, other v
        (good[:64] + b"\x1d", "v=29"),
        (good[:64], "64 bytes"),
    ]
    for sig, reason in bad:
        with pytest.raises(SignatureError, match=reason):
            recovery.recover_address(digest, sig)


# ---------------------------------------------------------------------- adapters
def test_sklearn_adapter_validates_inputs(estimator):
    adapter = load_model(pickle.dumps(estimator), "pickle")
    assert adapter.describe()["shape"] == [None, 30]
    assert adapter.predict(X[:3].tolist()).tolist() == estimator.predict(X[:3]).tolist()
    assert adapter.predict(X[0].tolist()).shape == (1,)  # one example without its batch dimension
    cases = {
        "strings": [["a"] * 30],
        "booleans": [[True] * 30],
        "rectangular": [[1.0] * 30, [1.0] * 29],
        "shape": [[1.0] * 29],
        "NaN": [[math.nan] * 30],
        "infinity": [[1.0] * 29 + [math.inf]],
        "rows": [[1.0] * 30] * 1025,
        "empty": [],
        "dimensions": [[[1.0] * 30]],
        "array of numbers": "1,2,3",
        "numbers": [[None] * 30],
    }
    for word, bad in cases.items():
        with pytest.raises(InvalidInputError, match=word):
            adapter.predict(bad)
    small = load_model(pickle.dumps(estimator), "pickle", max_rows=10, max_elements=100)
    with pytest.raises(InvalidInputError, match="limit of 100"):
        small.predict([[1.0] * 30] * 4)


def test_onnx_and_numpy_adapters(estimator, tmp_path):
    from skl2onnx import to_onnx

    onnx_bytes = to_onnx(estimator, X[:1].astype(np.float32)).SerializeToString()
    adapter = load_model(onnx_bytes, "onnx")
    assert isinstance(adapter, OnnxAdapter) and adapter.dtype == np.float32
    assert adapter.predict(X[:20].tolist()).tolist() == estimator.predict(X[:20]).tolist()
    with pytest.raises(InvalidInputError, match="float32"):
        adapter.predict([[1e39] * 30])  # finite in JSON, infinite as the model's float32
    with pytest.raises(InvalidInputError, match="ONNX"):
        load_model(b"not a model", "onnx")

    weights = tmp_path / "w.npz"
    np.savez(weights, w=np.arange(3.0), b=np.array(1.0))
    linear = load_model(weights.read_bytes(), "npz", fn=lambda x, p: x @ p["w"] + p["b"], n_features=3)
    assert linear.predict([[1, 2, 3]]).tolist() == [9.0]
    with pytest.raises(InvalidInputError, match="fn"):
        load_model(weights.read_bytes(), "npz")
    plain = CallableAdapter(lambda x: x.sum(axis=1), dtype=np.int64)
    assert plain.predict([[1, 2], [3, 4]]).tolist() == [3, 7]
    with pytest.raises(InvalidInputError, match="integers"):
        plain.predict([[1.5, 2]])
    assert model_format("m.ONNX") == "onnx" and model_format("m.bin", "joblib") == "joblib"
    with pytest.raises(InvalidInputError, match="cannot tell"):
        model_format("m.bin")


def test_torch_is_an_optional_extra_with_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # an installation without the extra: `import torch` fails
    with pytest.raises(InvalidInputError, match="pip install torch"):
        load_model(b"whatever", "torch")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="the torch extra is not installed (pip install torch==2.13.0); .ci/run installs it")
def test_torchscript_models_are_served_on_the_cpu():
    import io

    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buf)
    adapter = load_model(buf.getvalue(), "torch", input_shape=(None, 30))
    x = X[:4].astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(adapter.predict(x.tolist())), want, rtol=1e-6)
    assert adapter.framework == "pytorch"
    with pytest.raises(InvalidInputError, match="not a TorchScript model"):
        load_model(b"not a model", "torch")


def test_load_registered_refuses_a_tampered_file(tmp_path, estimator, monkeypatch):
    monkeypatch.setenv("LEDGERMIND_AUTO_ANCHOR", "0")
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    with Client(tmp_path / "home") as lm:
        reg = lm.register_model(path, trained_on=[], store=True)
        served = load_registered(lm, reg.digest, path)
        assert served.digest == reg.digest and served.adapter.framework == "scikit-learn"
        stored = load_registered(lm, reg.digest)  # from the blob store
        assert stored.adapter.predict(X[:2].tolist()).tolist() == served.adapter.predict(X[:2].tolist()).tolist()
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 1
        path.write_bytes(bytes(raw))
        with pytest.raises(ModelMismatchError) as e:
            load_registered(lm, reg.digest, path)
        assert e.value.expected == reg.digest and e.value.found != reg.digest
        assert reg.digest in str(e.value) and e.value.found in str(e.value)
        with pytest.raises(NotFoundError):
            load_registered(lm, "no-such-model", path)


# ---------------------------------------------------------------------- receipts
def test_receipts_are_signed_canonical_statements():
    account = Account.create()
    factory = ReceiptFactory(Signer(account.key))
    ref = VoucherRef(1337, "0x" + "Ab" * 20, os.urandom(32), 12345, 7, os.urandom(65), os.urandom(32), os.urandom(65))
    assert VoucherRef.parse(ref.to_field()) == ref
    short = VoucherRef(1337, "0x" + "Ab" * 20, ref.channel_id, 12345, 8)  # the book recorded before
    assert VoucherRef.parse(short.to_field()) == short and short.to_field().endswith("&ticket=8")
    access = AccessRef(1337, "0x" + "cd" * 20, account.address, 7)
    assert AccessRef.parse(access.to_field()) == access and VoucherRef.parse(access.to_field()) is None
    model = {"digest": "ab" * 32, "name": "modèle", "logIndex": 3}  # non-ASCII name: the exact encoder
    entry = factory.sign(model, json_digest([[1, 2]]), json_digest([0]), "20", ref.to_field())
    signed = open_envelope(entry)  # what the log's readers do: canonical, schema, signature
    assert signed.signer == account.address and signed.entry == entry
    assert check_receipt(entry, provider=account.address, model="ab" * 32, inputs=[[1, 2]], outputs=[0]) .signer == account.address
    with pytest.raises(InvalidInputError, match="input digest"):
        check_receipt(entry, inputs=[[1, 3]])
    with pytest.raises(InvalidInputError, match="output digest"):
        check_receipt(entry, outputs=[1])
    with pytest.raises(InvalidInputError, match="expected sha256"):
        check_receipt(entry, model="cd" * 32)
    with pytest.raises(SignatureError):
        check_receipt(entry, provider=Account.create().address)
    other = Signer(Account.create().key)
    forged = other.sign_envelope(open_receipt(entry).envelope.payload)  # someone else signs our statement
    with pytest.raises(SignatureError, match="names provider"):
        open_receipt(forged.to_bytes())


# ---------------------------------------------------------------------- the acceptance rule, on chain
@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    c = Chain.connect(tmp_path_factory.mktemp("chain"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def contract(chain):
    return PaymentChannels.deploy(chain, Account.create())


def test_channel_id_matches_the_contract(contract):
    a, b, salt = Account.create().address, Account.create().address, os.urandom(32)
    token = "0x" + "00" * 20
    assert channel_id(a, b, token, salt) == bytes(contract.chain.call(contract.contract.functions.channel_id(a, b, token, salt)))


def spend(channels: ProviderChannels, payment: Payment, price: int | None = None) -> Ticket:
    """What the provider does with a request's payment headers (the client sends the book until it is answered)."""
    headers = payment.headers
    book = headers.get(VOUCHER_HEADER)
    ticket = channels.accept_sync(parse_ticket(headers[TICKET_HEADER]),
                                  None if book is None else parse_voucher_header(book, channels.chain_id, channels.address),
                                  payment.price if price is None else price)
    payment.accepted()
    return ticket


def signed_book(account, chain, contract, cid: bytes, amount: int) -> tuple[TicketRef, TicketBook]:
    """The ticket of a one-ticket book for ``amount`` on channel ``cid``, and the book, signed by ``account``."""
    links = TicketChain(1)
    book = TicketBook.sign(Signer(account.key), VoucherDomain(chain.chain_id, contract.address), cid, amount,
                           links.anchor)
    return TicketRef(cid, amount, 1, links.links[1]), book


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**256 - 1), st.integers(1, 2**32),
       st.binary(min_size=32, max_size=32))
def test_ticket_headers_round_trip(cid, amount, index, link):
    ref = TicketRef(cid, amount, index, link)
    assert parse_ticket(ref.header()) == ref


@given(st.text(max_size=300))
def test_ticket_header_parser_refuses_with_a_reason(value):
    try:
        ref = parse_ticket(value)
    except ValueError as e:
        assert str(e).startswith("ticket ")
    else:
        assert parse_ticket(ref.header()) == ref and len(ref.channel_id) == len(ref.link) == 32


def test_tickets_in_any_order_are_accepted_and_never_underpay(chain, contract):
    provider, payer = Account.create(), Payer(Account.create(), contract)
    channel = payer.open(provider.address, 10_000)
    channel.max_tickets = 1  # a voucher per request: the provider is paid exactly what it served
    book = ProviderChannels(contract, provider.address)
    payments = [channel.pay(10) for _ in range(20)]  # cumulative: 10, 20, ..., 200
    order = [19, 0, 5, 3, 18, 1, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    for i in order:
        spend(book, payments[i])
    status = book.status(channel.channel_id)
    assert status["served"] == "200" and status["best"] == "200"
    with pytest.raises(PaymentRefused) as replay:
        spend(book, payments[7])
    assert replay.value.status == 409 and "replayed ticket" in replay.value.reason
    # a voucher for less than what was served plus this request, once nothing prepaid covers it
    with pytest.raises(PaymentRefused, match="served 200, voucher 205") as e:
        book.accept_sync(*signed_book(payer.account, chain, contract, channel.channel_id, 205), 10)
    assert e.value.status == 402
    # the provider settles: what it redeems is what it served
    done = book.settle(channel.channel_id, provider)
    assert done is not None and done.amount == 200 and contract.channel(channel.channel_id).paid == 200
    with pytest.raises(PaymentRefused, match="already settled"):
        book.accept_sync(*signed_book(payer.account, chain, contract, channel.channel_id, 150), 0)
    assert book.settle(channel.channel_id, provider) is None  # nothing more to redeem


def test_a_book_pays_ahead_and_its_tickets_arrive_in_any_order(chain, contract):
    provider, payer = Account.create(), Payer(Account.create(), contract)
    channel = payer.open(provider.address, 10**6)
    channel.max_tickets = 64
    book = ProviderChannels(contract, provider.address)
    payments = [channel.pay(3) for _ in range(1 + 2 + 4 + 8 + 16 + 32 + 64 + 64)]  # books double up to 64 tickets
    assert [p.amount for p in payments[:3]] == [3, 9, 9] and {p.index for p in payments[-64:]} == set(range(1, 65))
    rng = np.random.default_rng(7)
    for i in rng.permutation(len(payments)):  # concurrent requests: any order
        spend(book, payments[i])
    status = book.status(channel.channel_id)
    assert status["served"] == str(3 * len(payments)) == str(channel.committed)
    assert status["best"] == str(channel.issued) and channel.issued == channel.committed  # the last book is spent
    # a forged link, an index too far ahead, a link spent twice
    nxt = channel.pay(3)  # the first ticket of a new book, sent with the book
    spend(book, nxt)
    with pytest.raises(PaymentRefused, match="replayed ticket"):
        spend(book, nxt)
    following = channel.pay(3)
    assert VOUCHER_HEADER not in following.headers  # a book answered before: the ticket alone pays
    forged = parse_ticket(following.ticket)._replace(link=os.urandom(32))
    with pytest.raises(PaymentRefused, match="bad ticket") as e:
        book.accept_sync(forged, None, 3)
    assert e.value.status == 401
    spend(book, following)
    for unseen in (TicketRef(channel.channel_id, 10**5, 1, os.urandom(32)),  # a book this provider never saw
                   TicketRef(os.urandom(32), 5, 1, os.urandom(32))):  # on a channel never seen
        with pytest.raises(PaymentRefused, match="unknown ticket book") as e:
            book.accept_sync(unseen, None, 3)
        assert e.value.status == 409
    chain_ = TicketChain(MAX_AHEAD + 2)
    check = ChainCheck(chain_.anchor)
    assert not check.valid(MAX_AHEAD + 1, chain_.links[MAX_AHEAD + 1])  # beyond the walk: refused, cheaply
    assert check.valid(MAX_AHEAD, chain_.links[MAX_AHEAD]) and check.valid(MAX_AHEAD + 1, chain_.links[MAX_AHEAD + 1])
    assert not check.valid(3, chain_.links[4]) and check.valid(3, chain_.links[3])


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(1, 41)), st.integers(0, 39))
def test_a_chain_check_holds_what_is_in_flight_not_what_was_spent(order, undo_at):
    """Tickets spent in any order: each is checked and spent once; what the check keeps shrinks back to one link
    and no index once every ticket up to the last is spent; a ticket given back checks and spends again."""
    links = TicketChain(40)
    check = ChainCheck(links.anchor)
    for n, i in enumerate(order):
        assert not check.spent(i) and check.valid(i, links.links[i])
        check.spend(i)
        assert check.spent(i)
        assert min(check.known) >= check.floor and all(u > check.floor for u in check.used)  # nothing below
        if n == undo_at:  # its request was not served
            check.unspend(i, links.links[i])
            assert not check.spent(i) and check.valid(i, links.links[i])
            check.spend(i)
    assert check.floor == 40 and not check.used and list(check.known) == [40]
    assert all(check.spent(i) for i in range(1, 41)) and not check.spent(41)
    assert not check.valid(40, links.links[39])


def test_ticket_chains_are_sha256_chains():
    """The links are hashed with CPython's own SHA-256 where it has one: the chain is still plain SHA-256, as
    the protocol says and any other implementation would compute it."""
    links = TicketChain(6).links
    assert all(hashlib.sha256(links[i]).digest() == links[i - 1] for i in range(1, 7))
    assert ChainCheck(links[0]).valid(6, links[6])


@given(st.lists(st.tuples(st.integers(1, 12), st.booleans()), max_size=40))
def test_take_is_spent_valid_and_spend_in_one_step(tickets):
    """``take`` (the fast path's one call, with its shortcut for the next ticket in order) decides and keeps
    state exactly as ``spent``, ``valid`` and ``spend`` do, for tickets in any order, replayed or forged."""
    links = TicketChain(12)
    one, two = ChainCheck(links.anchor), ChainCheck(links.anchor)
    for i, forged in tickets:
        link = os.urandom(32) if forged else links.links[i]
        expected = not two.spent(i) and two.valid(i, link)
        if expected:
            two.spend(i)
        assert one.take(i, link) == expected
        assert (one.floor, one.used, one.known) == (two.floor, two.used, two.known)


_STEPS = st.lists(st.tuples(st.sampled_from(["next", "compact", "replay", "forge", "costly"]), st.integers(0, 99)),
                  min_size=1, max_size=30)


@pytest.fixture(scope="module")
def paying_channel(chain, contract):
    """A provider, and a channel paying it."""
    provider, payer = Account.create(), Payer(Account.create(), contract)
    return ProviderChannels(contract, provider.address), payer.open(provider.address, 10**6)


@settings(max_examples=150, deadline=None)
@given(at=st.integers(0, 200), char=st.sampled_from(list("0123456789abcdefABCDEF:+-_ \t\u0663\u00b2\u00e9x")),
       op=st.sampled_from(["replace", "insert", "delete", "upper", "none"]))
def test_the_fast_path_takes_no_ticket_header_the_parser_refuses(paying_channel, at, char, op):
    """``accept_known`` reads the header in fewer steps than ``parse_ticket``: a header changed by one
    character (non-ASCII digits, signs, spaces, case, separators) is taken only if it is the same ticket."""
    channels, channel = paying_channel
    payment = channel.pay(3)
    while VOUCHER_HEADER in payment.headers:  # a book the provider has not seen: it learns it from this ticket
        spend(channels, payment)
        payment = channel.pay(3)
    header = payment.ticket
    i = at % (len(header) + 1)
    changed = {"replace": header[:i] + char + header[i + 1:], "insert": header[:i] + char + header[i:],
               "delete": header[:i] + header[i + 1:], "upper": header[:i].upper() + header[i:], "none": header}[op]
    taken = channels.accept_known(changed, 3)
    event("taken" if taken is not None else "left to the full rule")
    assert taken is not None or op != "none"  # the fast path does take a ticket of a known book
    if taken is not None:
        assert parse_ticket(changed) == parse_ticket(header)
        assert (taken.index, taken.link) == (parse_ticket(header).index, parse_ticket(header).link)


@settings(max_examples=20, deadline=None)
@given(steps=_STEPS)
def test_the_fast_path_decides_as_the_full_rule(chain, contract, steps):
    """The same tickets offered to a provider that tries ``accept_known`` first (as the service does) and to one
    that only applies the full rule: every ticket is accepted by both or refused by both with the same status,
    and both end owed the same."""
    provider, payer = Account.create(), Payer(Account.create(), contract)
    channel = payer.open(provider.address, 10**6)
    channel.max_tickets = 4
    fast, full = ProviderChannels(contract, provider.address), ProviderChannels(contract, provider.address)
    sent: list[tuple[str, TicketBook | None, int]] = []

    def book_of(payment: Payment, with_book: bool) -> TicketBook | None:
        header = payment.with_book[VOUCHER_HEADER]
        return parse_voucher_header(header, fast.chain_id, fast.address) if with_book else None

    for kind, n in steps:
        if kind in ("replay", "forge") and not sent:
            kind = "next"
        if kind == "replay":
            header, book, price = sent[n % len(sent)]
        else:
            payment = channel.pay(3)
            header, book, price = payment.ticket, book_of(payment, kind != "compact"), 3
            if kind == "forge":
                header = parse_ticket(header)._replace(link=os.urandom(32)).header()
            if kind == "costly":  # more than any voucher covers
                price = 10**6
        outcomes = []
        for provider_channels, first in ((fast, True), (full, False)):
            try:
                taken = provider_channels.accept_known(header, price, book) if first else None
                taken = taken or provider_channels.accept_sync(parse_ticket(header), book, price)
                outcomes.append(("accepted", taken.channel))
            except PaymentRefused as e:
                outcomes.append((e.status, e.reason))
        assert outcomes[0] == outcomes[1], (kind, outcomes)
        sent.append((header, book, price))
    assert fast.status(channel.channel_id) == full.status(channel.channel_id)


def test_restore_from_receipts_keeps_served_books_and_spent_tickets(chain, contract):
    provider, payer = Account.create(), Payer(Account.create(), contract)
    channel = payer.open(provider.address, 1_000)
    first = ProviderChannels(contract, provider.address)
    payments = [channel.pay(25) for _ in range(4)]  # books of 1 and 2 tickets, then one of 4: vouchers 25, 75, 175
    records = []
    for i, p in enumerate(payments):
        ticket = spend(first, p)
        records.append(ReceiptRecord(i, 25, ticket.channel))
        first.recorded(ticket)  # its receipt is durable
    assert [VoucherRef.parse(r.channel).anchor != b"" for r in records] == [True, True, False, True]
    foreign = VoucherRef(1, "0x" + "11" * 20, channel.channel_id, 5, 1, bytes(65), bytes(32), bytes(65))
    records.append(ReceiptRecord(9, 99, foreign.to_field()))
    book = ProviderChannels(contract, provider.address)
    assert book.restore(records) == 4  # the receipt of another contract is not ours to count
    with pytest.raises(PaymentRefused) as e:
        spend(book, payments[2])
    assert e.value.status == 409
    spend(book, channel.pay(25))  # the next ticket of the restored book
    assert book.status(channel.channel_id)["served"] == "125"
    assert book.settle(channel.channel_id, provider).amount == 175


def test_channel_facts_are_reread_on_top_up_and_expiry(chain, contract):
    provider, payer = Account.create(), Payer(Account.create(), contract)
    channel = payer.open(provider.address, 100)
    book = ProviderChannels(contract, provider.address, refresh_interval=0.0, margin=300)
    spend(book, channel.pay(100))
    over = signed_book(payer.account, chain, contract, channel.channel_id, 150)
    with pytest.raises(PaymentRefused, match="above the channel 0x.* deposit 100"):
        book.accept_sync(*over, 50)
    payer.top_up(channel, 100)
    book.accept_sync(*over, 50)  # the top-up is seen without a restart
    soon = payer.open(provider.address, 100, expiry=int(time.time()) + 200)
    with pytest.raises(PaymentRefused, match="settlement margin") as e:
        spend(book, soon.pay(10))
    assert e.value.status == 402
    late = payer.open(provider.address, 100, duration=1000)
    with chain.embedded.lock:
        chain.embedded.tester.time_travel(late.expiry + 10)
    with pytest.raises(PaymentRefused, match="expired") as e:
        spend(book, late.pay(10))
    assert e.value.status == 410
    with pytest.raises(PaymentRefused, match="unknown channel") as e:
        book.accept_sync(*signed_book(payer.account, chain, contract, os.urandom(32), 10), 10)
    assert e.value.status == 402
    with pytest.raises(PaymentRefused, match="not by the channel") as e:
        book.accept_sync(*signed_book(Account.create(), chain, contract, channel.channel_id, 180), 10)
    assert e.value.status == 401


def test_books_grow_with_what_the_channel_has_paid_for():
    """A new channel's books pay for 1, 2, 4, ... requests (never more ahead than already paid for); a channel
    resumed after use signs full books at once; a price-0 book is full."""
    def sizes(channel: PaidChannel, price: int, n: int) -> list[int]:
        books = []
        for _ in range(n):
            payment = channel.pay(price)
            if payment.index == 1:
                books.append(payment.book.chain.count)
        return books

    def channel(issued: int) -> PaidChannel:
        return PaidChannel(os.urandom(32), key=Account.create().key, chain_id=1, contract=Account.create().address,
                           recipient=Account.create().address, deposit=10**9, issued=issued)

    assert sizes(channel(0), 3, 300) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert sizes(channel(3 * 1000), 3, 300) == [MAX_AHEAD, MAX_AHEAD]
    assert sizes(channel(3 * 20), 3, 100) == [21, 42, 84]  # one more than the 20, 41, 83 requests paid for
    assert sizes(channel(0), 0, 300) == [MAX_AHEAD, MAX_AHEAD]


def test_paid_channel_hands_out_distinct_tickets_across_threads(contract):
    import threading

    channel = PaidChannel(os.urandom(32), key=Account.create().key, chain_id=contract.chain_id, contract=contract.address,
                          recipient=Account.create().address, deposit=10**6)
    tickets: list[tuple[int, int]] = []
    lock = threading.Lock()

    def spend() -> None:
        for _ in range(50):
            p = channel.pay(3)
            with lock:
                tickets.append((p.amount, p.index))

    threads = [threading.Thread(target=spend) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tickets)) == 800 and channel.committed == 2400
    for amount in {a for a, _ in tickets}:  # each book's tickets are 1..n, all handed out but the last book's
        used = sorted(i for a, i in tickets if a == amount)
        assert used == list(range(1, len(used) + 1))
    assert 2400 <= channel.issued <= 2400 + channel.max_tickets * 3
    with pytest.raises(InvalidInputError, match="top it up"):
        channel.pay(10**6)
    with pytest.raises(InvalidInputError, match="max_tickets must be 1..256"):
        PaidChannel(os.urandom(32), key=Account.create().key, chain_id=contract.chain_id, contract=contract.address,
                    recipient=Account.create().address, deposit=10, max_tickets=MAX_AHEAD + 1)
    assert _rows([[1, 2], [3, 4]], [None, 2]) == 2 and _rows([1, 2], [None, 2]) == 1 and _rows([1, 2], None) == 1

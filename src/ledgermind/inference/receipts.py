"""Inference receipts: what a provider's model answered, signed by the provider and appended to its log.

Every served request yields an in-toto statement of predicate type ``inference-receipt/v1`` (model digest,
input and output digests, provider address, time, price, channel) in a DSSE envelope signed by the provider's
account, exactly as ``ledgermind.statements.sign_envelope`` would sign it. The response carries the envelope
and its log index, so anyone can later prove what the model answered to what.

How a receipt records its payment (the ``channel`` field): the predicate has no voucher field, and the provider
must be able to rebuild its channel state from its receipts alone (see ``channels``), so the field holds the
payment as a URI: ``eip155:<chain id>:<PaymentChannels>/<channel id>?voucher=<amount>&ticket=<i>``, and, until
a receipt recording it in full is durable, the ticket book too: ``&sig=<voucher signature>&anchor=<chain
anchor>&bookSig=<book signature>`` (see ``tickets``). An access-token request:
``access:eip155:<chain id>:<contract>/<holder>?nonce=<nonce>``. A voucher is safe to publish: only the channel's
recipient can redeem it, and it proves the payer agreed to pay for this much.

Appends are batched: ``ReceiptLog.append`` from any number of concurrent requests becomes one ``LogStore.submit``
per event-loop turn, and the LogStore commits whatever is queued in one transaction; a request is answered only
after its receipt is durable.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from ledgermind.errors import InvalidInputError, LedgermindError, NotFoundError, SignatureError
from ledgermind.inference.digests import json_digest
from ledgermind.inference.signing import Signer
from ledgermind.log.store import LogStore
from ledgermind.registry.verify import FAIL, ProvenEntry, VerifyReport, check_entry, parse_bundle_entry
from ledgermind.statements import INFERENCE_RECEIPT, STATEMENT_TYPE, Envelope, SignedStatement, canonical_json, open_envelope

if TYPE_CHECKING:
    from ledgermind.client import Client

OUTPUT_SUBJECT = "output"
_VOUCHER_REF = re.compile(
    r"eip155:([0-9]{1,20}):(0x[0-9a-fA-F]{40})/0x([0-9a-f]{64})\?voucher=([0-9]{1,78})&ticket=([0-9]{1,10})"
    r"(?:&sig=0x([0-9a-f]{130})&anchor=0x([0-9a-f]{64})&bookSig=0x([0-9a-f]{130}))?"
)
_ACCESS_REF = re.compile(r"access:eip155:([0-9]{1,20}):(0x[0-9a-fA-F]{40})/(0x[0-9a-fA-F]{40})\?nonce=([0-9]{1,78})")


# ---------------------------------------------------------------------- payment references
def voucher_field(chain_id: int, contract: str, channel_id: bytes, amount: int, ticket: int | None = None) -> str:
    """The ``channel`` field of a receipt paid by ticket ``ticket`` of a book of voucher ``amount``
    (``book_fields`` are appended while the book is not durably recorded). Without a ticket: the field's
    prefix, which the provider computes once per book and completes per request."""
    prefix = f"eip155:{chain_id}:{contract}/0x{channel_id.hex()}?voucher={amount}&ticket="
    return prefix if ticket is None else f"{prefix}{ticket}"


def book_fields(signature: bytes, anchor: bytes, book_signature: bytes) -> str:
    return f"&sig=0x{signature.hex()}&anchor=0x{anchor.hex()}&bookSig=0x{book_signature.hex()}"


@dataclass(frozen=True)
class VoucherRef:
    """The payment of a request, as a receipt's ``channel`` field records it (``signature``, ``anchor`` and
    ``book_signature`` are empty when the field refers to a book recorded earlier)."""

    chain_id: int
    contract: str
    channel_id: bytes
    amount: int
    ticket: int
    signature: bytes = b""
    anchor: bytes = b""
    book_signature: bytes = b""

    def to_field(self) -> str:
        text = voucher_field(self.chain_id, self.contract, self.channel_id, self.amount, self.ticket)
        return text + book_fields(self.signature, self.anchor, self.book_signature) if self.anchor else text

    @classmethod
    def parse(cls, text: str | None) -> VoucherRef | None:
        """The payment in a receipt's channel field, or None if the field holds something else."""
        m = _VOUCHER_REF.fullmatch(text) if isinstance(text, str) else None
        if m is None:
            return None
        full = m[7] is not None
        return cls(int(m[1]), m[2], bytes.fromhex(m[3]), int(m[4]), int(m[5]),
                   bytes.fromhex(m[6]) if full else b"", bytes.fromhex(m[7]) if full else b"",
                   bytes.fromhex(m[8]) if full else b"")


@dataclass(frozen=True)
class AccessRef:
    """The access request (of an access-token or licence holder) that a request was served under."""

    chain_id: int
    contract: str
    holder: str
    nonce: int

    def to_field(self) -> str:
        return f"access:eip155:{self.chain_id}:{self.contract}/{self.holder}?nonce={self.nonce}"

    @classmethod
    def parse(cls, text: str | None) -> AccessRef | None:
        m = _ACCESS_REF.fullmatch(text) if isinstance(text, str) else None
        return None if m is None else cls(int(m[1]), m[2], m[3], int(m[4]))


# ---------------------------------------------------------------------- building and signing
class ReceiptFactory:
    """Builds and signs the receipts of one provider account."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self.provider = signer.address
        self._second = -1
        self._stamp = ""
        # check once that what we build is what the statement schema accepts, so a schema change fails at
        # start-up and not in the log's readers
        probe = self.sign({"digest": "0" * 64, "name": "probe", "logIndex": 0}, "0" * 64, "0" * 64, "0",
                          VoucherRef(1, "0x" + "00" * 20, bytes(32), 1, 1, bytes(65), bytes(32), bytes(65)).to_field())
        open_envelope(probe)

    def _now(self) -> str:
        second = int(time.time())
        if second != self._second:  # RFC 3339 UTC, second precision: the same string for a whole second
            self._second = second
            self._stamp = datetime.fromtimestamp(second, timezone.utc).isoformat().replace("+00:00", "Z")
        return self._stamp

    def statement(self, model: dict[str, Any], input_digest: str, output_digest: str, price: str,
                  channel: str | None) -> bytes:
        """The RFC 8785 bytes of the receipt statement (requires 64-hex digests and a decimal price)."""
        predicate: dict[str, Any] = {
            "model": model, "inputDigest": input_digest, "outputDigest": output_digest, "provider": self.provider,
            "time": self._now(), "price": price,
        }
        if channel is not None:
            predicate["channel"] = channel
        obj = {"_type": STATEMENT_TYPE, "subject": [{"name": OUTPUT_SUBJECT, "digest": {"sha256": output_digest}}],
               "predicateType": INFERENCE_RECEIPT, "predicate": predicate}
        raw = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        # no floats here, so for printable ASCII without escapes orjson's sorted output is the RFC 8785 form;
        # anything else (a model name in another script, say) takes the exact encoder
        if raw.isascii() and b"\\" not in raw:
            return raw
        return canonical_json(obj)

    def sign(self, model: dict[str, Any], input_digest: str, output_digest: str, price: str,
             channel: str | None) -> bytes:
        """The signed envelope's bytes: what the log stores and the response carries."""
        return self.signer.sign_envelope(self.statement(model, input_digest, output_digest, price, channel)).to_bytes()


# ---------------------------------------------------------------------- batched durable appends
class ReceiptLog:
    """Appends receipts to a LogStore in batches from an asyncio event loop.

    One batch is in the log's hands at a time: entries arriving while it commits wait and go together as the
    next ``submit``. Under load a commit (an fsync) carries every request that arrived during the previous
    one, and the log's writer thread wakes once per commit rather than once per request, which keeps it from
    taking the GIL from the event loop hundreds of times a second. Each caller resumes, with its log index,
    once its entry is durable.
    """

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self._pending: list[tuple[bytes, asyncio.Future[int]]] = []
        self._busy = False  # a batch is being committed
        self._scheduled = False
        self.batches = 0
        self.entries = 0

    async def append(self, entry: bytes) -> int:
        """Queue ``entry`` and wait until it is durable; returns its log index. Raises StorageError."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        self._pending.append((entry, fut))
        if not self._busy and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush, loop)  # after the other requests of this loop turn have queued theirs
        return await fut

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if self._busy or not self._pending:
            return
        batch, self._pending = self._pending, []
        self.batches += 1
        self.entries += len(batch)
        try:
            done = self.store.submit([entry for entry, _ in batch])
        except LedgermindError as e:
            self._finish(batch, None, e, loop)
            return
        self._busy = True
        done.add_done_callback(lambda f: loop.call_soon_threadsafe(self._committed, batch, f, loop))

    def _committed(self, batch: list[tuple[bytes, asyncio.Future[int]]], done: Any,
                   loop: asyncio.AbstractEventLoop) -> None:
        self._busy = False
        error = done.exception()
        self._finish(batch, None if error is not None else done.result(), error, loop)

    def _finish(self, batch: list[tuple[bytes, asyncio.Future[int]]], start: int | None, error: BaseException | None,
                loop: asyncio.AbstractEventLoop) -> None:
        for i, (_, fut) in enumerate(batch):
            if fut.done():  # the request was cancelled (client went away): its receipt is durable anyway
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(start + i)  # type: ignore[operator]
        if self._pending:
            self._flush(loop)


# ---------------------------------------------------------------------- reading back
@dataclass(frozen=True)
class ReceiptRecord:
    """One receipt of a provider, as read back from its log (for rebuilding its payment state)."""

    index: int
    price: int
    channel: str | None


def provider_receipts(store: LogStore, provider: str, start: int = 0) -> Iterator[ReceiptRecord]:
    """Every inference receipt signed by ``provider`` in ``store`` from entry ``start`` on, in log order.

    These are the provider's own entries in its own log, whose integrity the tree guarantees: they are not
    re-verified here (rebuilding state at start-up reads every entry once). Entries that are not receipts of
    this provider are skipped by a byte search before any parsing.
    """
    needle = f'"keyid":"{provider}"'.encode()
    for index, entry in store.entries(start):
        if needle not in entry:
            continue
        try:
            env = orjson.loads(entry)
            statement = orjson.loads(base64.b64decode(env["payload"]))
            if statement.get("predicateType") != INFERENCE_RECEIPT:
                continue
            predicate = statement["predicate"]
            yield ReceiptRecord(index, int(predicate.get("price") or 0), predicate.get("channel"))
        except (ValueError, KeyError, TypeError, binascii.Error):
            continue  # not a statement of ours after all


# ---------------------------------------------------------------------- checking
def open_receipt(envelope: Any) -> SignedStatement:
    """Open a receipt envelope (bytes, its JSON, or an Envelope): signature, schema, predicate type.

    Raises InvalidInputError (malformed, not a receipt) or SignatureError (bad signature, or signed by someone
    other than the provider the receipt names).
    """
    if isinstance(envelope, dict):
        envelope = Envelope.from_json(envelope)
    elif isinstance(envelope, str):
        envelope = envelope.encode()
    signed = open_envelope(envelope)
    st = signed.statement
    if st.predicate_type != INFERENCE_RECEIPT:
        raise InvalidInputError(f"not an inference receipt: predicate type {st.predicate_type}")
    named = st.predicate["provider"]
    if named.lower() != signed.signer.lower():
        raise SignatureError(f"receipt names provider {named} but was signed by {signed.signer}")
    return signed


def check_receipt(envelope: Any, *, provider: str | None = None, model: str | None = None,
                  inputs: Any = None, outputs: Any = None, input_digest: str | None = None) -> SignedStatement:
    """Open a receipt and check it says what the caller expects; return it.

    ``provider``: the address that must have signed it. ``model``: the registered model digest it must name.
    ``inputs``/``outputs``: the JSON values sent and received, whose digests it must carry (or ``input_digest``).
    Raises SignatureError or InvalidInputError naming the first mismatch.
    """
    signed = open_receipt(envelope)
    p = signed.statement.predicate
    if provider is not None and signed.signer.lower() != provider.lower():
        raise SignatureError(f"receipt signed by {signed.signer}, expected the provider {provider}")
    if model is not None and p["model"]["digest"] != model:
        raise InvalidInputError(f"receipt names model sha256:{p['model']['digest']}, expected sha256:{model}")
    if input_digest is None and inputs is not None:
        input_digest = json_digest(inputs)
    if input_digest is not None and p["inputDigest"] != input_digest:
        raise InvalidInputError(f"receipt input digest {p['inputDigest']} is not the digest of what was sent ({input_digest})")
    if outputs is not None and p["outputDigest"] != (got := json_digest(outputs)):
        raise InvalidInputError(f"receipt output digest {p['outputDigest']} is not the digest of the answer ({got})")
    return signed


def verify_receipt(
    receipt: int | bytes | str | dict[str, Any] | Envelope,
    source: Client | LogStore | None = None,
    *,
    log_index: int | None = None,
    model: str | None = None,
    provider: str | None = None,
    inputs: Any = None,
    outputs: Any = None,
    log_key: str | None = None,
) -> VerifyReport:
    """Verify an inference receipt: its signature, its inclusion in the provider's log, and that it names the
    registered model. Never raises for a receipt that does not verify: the report says what failed.

    ``receipt`` is a log index (``source`` required), an envelope (bytes, JSON text or dict; give its
    ``log_index`` and a ``source`` to check inclusion), or a receipt bundle (``GET /v1/receipts/{index}``:
    the envelope with its inclusion proof and checkpoint; checked offline, against ``log_key`` if given).
    ``source`` is the provider's Client (its log and registry) or LogStore. ``model`` is the digest (or, with a
    Client, any reference) of the model the receipt must name; with a Client the named digest must also be a
    registered model. ``provider``, ``inputs`` and ``outputs`` are checked when given.
    Raises InvalidInputError only for arguments that cannot be used at all (an index without a log).
    """
    from ledgermind.log import CheckpointError, NoteVerifier

    store = _store_of(source)
    report = VerifyReport(target=f"receipt {receipt}" if isinstance(receipt, int) else "receipt")
    proven: ProvenEntry | None = None
    verifier = store.verifier if store is not None else None
    if isinstance(receipt, dict) and "dsseEnvelope" in receipt:  # a bundle: the proof travels with it
        proven, vkey = parse_bundle_entry(receipt, "receipt")
        try:
            verifier = NoteVerifier.from_vkey(log_key or vkey)
        except CheckpointError as e:
            raise InvalidInputError(f"log key is malformed: {e}") from e
        if log_key is None and store is None:
            report.add("log key", None, f"taken from the bundle ({verifier.name}); pin it to trust only that log")
        elif log_key is not None and vkey != log_key:
            report.add("log key", False, f"bundle log key {vkey} is not the pinned {log_key}")
        entry = proven.entry
        report.target = f"receipt {proven.index}"
    elif isinstance(receipt, int):
        if store is None:
            raise InvalidInputError("a receipt given by log index needs the provider's log (a Client or LogStore)")
        try:
            entry = store.entry(receipt)
        except NotFoundError as e:
            report.add("inclusion", False, str(e))
            return report
        log_index = receipt
    else:
        try:
            entry = _envelope_bytes(receipt)
        except LedgermindError as e:
            report.add("signature", False, str(e))
            return report
    if proven is None and store is not None and log_index is not None:
        try:
            cp = store.checkpoint_covering(log_index)
            stored = store.entry(log_index)
        except NotFoundError as e:
            report.add("inclusion", False, str(e))
        else:
            if stored != entry:
                report.add("inclusion", False, f"log entry {log_index} is not this receipt")
            else:
                proven = ProvenEntry(log_index, entry, cp.size, cp.root, store.inclusion_proof(log_index, cp.size), cp.note)
    if proven is not None and verifier is not None:
        check_entry(report, proven, verifier)  # signature, checkpoint, inclusion
        statement = _opened(report, entry)
    else:
        if not any(c.name == "inclusion" for c in report.checks):
            report.add("inclusion", None, "not checked: give the receipt's log index and the provider's log, or a receipt bundle")
        statement = _opened(report, entry, add=True)
    if statement is not None:
        _check_claims(report, statement, source, model, provider, inputs, outputs)
    report.sort()
    return report


def _store_of(source: Any) -> LogStore | None:
    if source is None or isinstance(source, LogStore):
        return source
    return source.ledger.store  # a Client


def _envelope_bytes(receipt: Any) -> bytes:
    if isinstance(receipt, Envelope):
        return receipt.to_bytes()
    if isinstance(receipt, dict):
        return Envelope.from_json(receipt).to_bytes()
    if isinstance(receipt, str):
        receipt = receipt.encode()
    return Envelope.from_bytes(receipt).to_bytes()


def _opened(report: VerifyReport, entry: bytes, add: bool = False) -> SignedStatement | None:
    try:
        signed = open_receipt(entry)
    except LedgermindError as e:
        if add or not any(c.name == "signature" and c.status == FAIL for c in report.checks):
            report.add("receipt", False, str(e))
        return None
    if add:
        report.add("signature", True, f"receipt signed by its provider {signed.signer}")
    return signed


def _check_claims(report: VerifyReport, signed: SignedStatement, source: Any, model: str | None,
                  provider: str | None, inputs: Any, outputs: Any) -> None:
    p = signed.statement.predicate
    named = p["model"]["digest"]
    if provider is not None:
        ok = signed.signer.lower() == provider.lower()
        report.add("provider", ok, f"signed by {signed.signer}" + ("" if ok else f", expected {provider}"))
    expected = model
    if source is not None and not isinstance(source, LogStore):  # a Client: resolve names and check registration
        try:
            expected = source.registry.resolve(model, "model").digest if model is not None else None
            row = source.registry.index.asset(named)
            registered = row is not None and row.kind == "model"
            report.add("model", registered and (expected is None or named == expected),
                       f"names registered model {row.name!r} sha256:{named} (log index {row.log_index})" if registered
                       and (expected is None or named == expected) else
                       f"names sha256:{named}, " + ("expected sha256:" + expected if expected and named != expected
                                                    else "which is not a registered model in this log"))
        except LedgermindError as e:
            report.add("model", False, str(e))
    elif expected is not None:
        ok = named == expected
        report.add("model", ok, f"names model sha256:{named}" + ("" if ok else f", expected sha256:{expected}"))
    else:
        report.add("model", None, f"names model sha256:{named}; not compared (give the registered model or its log)")
    if inputs is not None:
        got = json_digest(inputs)
        report.add("input", got == p["inputDigest"], f"input digest {p['inputDigest']}" + ("" if got == p["inputDigest"] else f", the given inputs hash to {got}"))
    if outputs is not None:
        got = json_digest(outputs)
        report.add("output", got == p["outputDigest"], f"output digest {p['outputDigest']}" + ("" if got == p["outputDigest"] else f", the given outputs hash to {got}"))

"""The provider, without HTTP: take a request for a model, get paid for it, run the model, sign and log a receipt.

``InferenceService.infer`` is what ``POST /v1/models/{id}/infer`` runs. In order: find the model (404), parse
and validate the inputs (400/413/422), take the payment (a voucher on a payment channel, or an access request
of a token or licence holder; deny by default: 402 without one), run the model (requests arriving together
are predicted in one batch), sign the receipt, append it to the log and wait until it is durable, answer.
Every refusal is a RequestRefused carrying its HTTP status and a one-line reason, and nothing is charged for a
request that is refused or not served.

``InferenceService.from_client`` wires one from a ledgermind Client: the acting account is the provider (it
signs receipts and is the recipient of its channels), the Client's log takes the receipts, its chain and
deployments give the PaymentChannels contract, and the channel state is rebuilt from earlier receipts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from ledgermind.errors import InvalidInputError, LedgermindError, NotFoundError, StorageError
from ledgermind.inference.adapters import ServedModel
from ledgermind.inference.channels import ZERO_ADDRESS, PaymentChannels, ProviderChannels, Ticket
from ledgermind.inference.digests import json_digest
from ledgermind.inference.errors import PaymentRefused, RequestRefused
from ledgermind.inference.receipts import AccessRef, ReceiptFactory, ReceiptLog, provider_receipts
from ledgermind.inference.signing import Signer
from ledgermind.inference.tickets import TicketBook, TicketRef, parse_ticket
from ledgermind.log.store import LogStore
from ledgermind.market.eip712 import AccessRequest, Voucher

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledgermind.client import Client

log = logging.getLogger("ledgermind.inference")

VOUCHER_HEADER = "X-Ledgermind-Voucher"
TICKET_HEADER = "X-Ledgermind-Ticket"
ACCESS_HEADER = "X-Ledgermind-Access"
INFER_ACTION = "infer"
MAX_BODY_BYTES = 1 << 20
MAX_HEADER_CHARS = 4096
_VOUCHER_REQUIRED = frozenset({"channelId", "amount", "signature", "anchor", "bookSignature"})
_PARSED_CACHE = 4096  # voucher headers kept parsed: a ticket book's header is sent with each of its tickets
_VOUCHER_FIELDS = _VOUCHER_REQUIRED | {"chainId", "contract"}
_HEX64 = re.compile(r"(?:sha256:|0x)?([0-9a-f]{64})")


# ---------------------------------------------------------------------- access-token holders
AccessDecider = Callable[[AccessRequest, str], tuple[bool, int, str]]
"""``decide(request, model_digest) -> (granted, http_status, reason)``: the one function behind which access
for token and licence holders is checked (signature, expiry, single-use nonce, on-chain access)."""


def marketplace_access(client: Client, marketplace: str) -> tuple[AccessDecider, int, str]:
    """The Marketplace's access check (``ledgermind.access.AccessPolicy``: the holder must have an access token
    or a licence, ``has_access(asset_id, holder)``; nonces are spent durably in ``access.sqlite``).
    Returns (decider, chain id, the EIP-712 verifying contract)."""
    from ledgermind.access import AccessPolicy, AccessStore

    chain = client.chain()
    policy = AccessPolicy(AccessStore(client.settings.home / "access.sqlite"), chain, marketplace)

    def decide(request: AccessRequest, model: str) -> tuple[bool, int, str]:
        d = policy.decide(request, model, INFER_ACTION)
        return d.granted, d.status, d.reason

    return decide, chain.chain_id, marketplace


# ---------------------------------------------------------------------- header parsing
def parse_voucher_header(value: str, chain_id: int, contract: str) -> TicketBook:
    """The ``X-Ledgermind-Voucher`` header: a ticket book, the JSON of ``Voucher.to_json()`` plus ``anchor`` (the
    hash chain's, 32 bytes hex) and ``bookSignature`` (65 bytes hex), optionally with the ``chainId`` and
    ``contract`` it was signed for (then they must be this provider's). Raises RequestRefused(400)."""
    if len(value) > MAX_HEADER_CHARS:
        raise RequestRefused(400, f"{VOUCHER_HEADER} header is longer than {MAX_HEADER_CHARS} characters")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise RequestRefused(400, f"{VOUCHER_HEADER} header is not JSON") from None
    if type(obj) is not dict or not _VOUCHER_REQUIRED <= obj.keys() <= _VOUCHER_FIELDS:
        raise RequestRefused(400, f"{VOUCHER_HEADER} must be a JSON object with channelId, amount, signature, "
                                  f"anchor, bookSignature (and optionally chainId, contract)")
    # the first comparisons settle what clients send (this chain id as a number, the contract as the terms
    # spell it); only other spellings are normalised
    claimed = obj.get("chainId", chain_id)
    if claimed != chain_id:
        try:
            claimed = int(claimed)
        except (TypeError, ValueError):
            raise RequestRefused(400, f"{VOUCHER_HEADER} chainId must be an integer") from None
        if claimed != chain_id:
            raise RequestRefused(400, f"voucher is for chain {claimed}; this provider is paid on chain {chain_id}")
    named = obj.get("contract", contract)
    if named != contract and str(named).lower() != contract.lower():
        raise RequestRefused(400, f"voucher is for PaymentChannels {named}; this provider uses {contract}")
    voucher = _voucher(obj)
    anchor, signature = _hex_field(obj, "anchor", 32), _hex_field(obj, "bookSignature", 65)
    return TicketBook(voucher, anchor, signature)


def _voucher(obj: dict[str, Any]) -> Voucher:
    """The voucher in a JSON object with channelId, amount and signature. Raises RequestRefused(400)."""
    if type(obj["amount"]) not in (int, str):  # not a bool, a float or anything else
        raise RequestRefused(400, "voucher amount must be a decimal integer")
    try:
        voucher = Voucher.from_json(obj)
    except InvalidInputError as e:
        raise RequestRefused(400, str(e)) from None
    if voucher.amount >= 2**256:
        raise RequestRefused(400, "voucher amount does not fit in uint256")
    return voucher


def _hex_field(obj: dict[str, Any], name: str, size: int) -> bytes:
    value = obj[name]
    try:
        raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise RequestRefused(400, f"voucher {name} must be {size} bytes of hex")
    return raw


def parse_access_header(value: str) -> AccessRequest:
    """The ``X-Ledgermind-Access`` header: the JSON of ``AccessRequest.to_json()``. Raises RequestRefused(400)."""
    if len(value) > MAX_HEADER_CHARS:
        raise RequestRefused(400, f"{ACCESS_HEADER} header is longer than {MAX_HEADER_CHARS} characters")
    try:
        return AccessRequest.from_json(orjson.loads(value))
    except orjson.JSONDecodeError:
        raise RequestRefused(400, f"{ACCESS_HEADER} header is not JSON") from None
    except (InvalidInputError, ValueError, TypeError) as e:
        raise RequestRefused(400, str(e).splitlines()[0]) from None


def parse_body(body: bytes) -> Any:
    """The ``inputs`` of a request body ``{"inputs": ...}``. Raises RequestRefused(400/413)."""
    if len(body) > MAX_BODY_BYTES:
        raise RequestRefused(413, f"request body of {len(body)} bytes exceeds the {MAX_BODY_BYTES}-byte limit")
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RequestRefused(400, f"request body is not JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(obj, dict) or set(obj) != {"inputs"}:
        raise RequestRefused(400, 'request body must be a JSON object {"inputs": [...]} and nothing else')
    return obj["inputs"]


# ---------------------------------------------------------------------- batching predictions
class PredictBatcher:
    """Runs the predictions requested during one event-loop turn as one call of the model.

    Single-row requests dominate serving, and per call overhead dominates single rows (scikit-learn spends
    ~250 us checking one row, ~350 us for 64): batching what arrives together costs no latency and gives the
    throughput back. If a batch fails, its requests are retried one by one, so one bad request fails alone.
    """

    def __init__(self, model: ServedModel, max_rows: int = 4096) -> None:
        self.model = model
        self.max_rows = max_rows
        self._pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self._rows = 0
        self.calls = 0

    async def predict(self, x: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[np.ndarray] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._run)
        self._pending.append((x, fut))
        self._rows += x.shape[0]
        if self._rows >= self.max_rows:
            self._run()
        return await fut

    def _run(self) -> None:
        batch, self._pending, self._rows = self._pending, [], 0
        if not batch:
            return
        adapter = self.model.adapter
        self.calls += 1
        if len(batch) == 1:
            self._settle(batch[0][1], lambda: adapter.predict_valid(batch[0][0]))
            return
        try:
            out = adapter.predict_valid(np.concatenate([x for x, _ in batch]))
        except Exception:  # noqa: BLE001 - find out which request it was: each on its own
            for x, fut in batch:
                self._settle(fut, lambda x=x: adapter.predict_valid(x))
            return
        start = 0
        for x, fut in batch:
            if not fut.done():
                fut.set_result(out[start : start + x.shape[0]])
            start += x.shape[0]

    @staticmethod
    def _settle(fut: asyncio.Future[np.ndarray], run: Callable[[], np.ndarray]) -> None:
        try:
            result = run()
        except Exception as e:  # noqa: BLE001 - handed to the request that asked
            if not fut.done():
                fut.set_exception(e)
            return
        if not fut.done():
            fut.set_result(result)


# ---------------------------------------------------------------------- the service
@dataclass(frozen=True)
class Offer:
    """What a model costs here: ``price`` in the smallest unit of ``token`` per input row (0: free)."""

    model: ServedModel
    price: int = 0


class InferenceService:
    """Serves registered models for payment; everything ``create_app`` exposes over HTTP.

    ``store`` takes the receipts (the provider's log). ``account``, if given, lets the service settle its
    channels on chain (``settle``, and automatically before expiry while the server runs). ``access`` checks
    access-token holders (``access_chain_id`` and ``access_contract`` are announced in the terms).
    """

    def __init__(
        self,
        offers: Sequence[Offer],
        *,
        signer: Signer,
        store: LogStore,
        channels: ProviderChannels | None = None,
        account: LocalAccount | None = None,
        access: AccessDecider | None = None,
        access_chain_id: int | None = None,
        access_contract: str | None = None,
        chain_id: int | None = None,
    ) -> None:
        if not offers:
            raise InvalidInputError("serve at least one model")
        if any(o.price < 0 for o in offers):
            raise InvalidInputError("prices must be >= 0")
        if any(o.price > 0 for o in offers) and channels is None and access is None:
            raise InvalidInputError("a priced model needs a way to be paid: payment channels or access tokens")
        if channels is not None and channels.provider != signer.address:
            raise InvalidInputError(f"channels pay {channels.provider}, but receipts are signed by {signer.address}")
        self.signer = signer
        self.provider = signer.address
        self.factory = ReceiptFactory(signer)
        self.store = store
        self.receipts = ReceiptLog(store)
        self.channels = channels
        self._books: dict[str, TicketBook] = {}  # voucher header -> parsed (see _payment)
        self.account = account
        self.access = access
        self.access_chain_id = access_chain_id
        self.access_contract = access_contract
        self.chain_id = channels.chain_id if channels is not None else chain_id
        self.offers: dict[str, Offer] = {}
        self._names: dict[str, str] = {}
        self._batchers: dict[str, PredictBatcher] = {}
        for offer in offers:
            m = offer.model
            self.offers[m.digest] = offer
            self._names.setdefault(m.name, m.digest)
            self._batchers[m.digest] = PredictBatcher(m)
        self.restored = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_client(
        cls,
        client: Client,
        offers: Sequence[Offer],
        *,
        token: str = ZERO_ADDRESS,
        channels_address: str | None = None,
        marketplace: str | None = None,
        margin: float = 300.0,
        restore: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> InferenceService:
        """A service whose provider is ``client``'s acting account, logging to its log, paid through the
        PaymentChannels contract at ``channels_address`` (default: the one deployed on the client's chain) and,
        with ``marketplace``, by access-token holders. Rebuilds channel state from earlier receipts."""
        account = client.account()
        store = client.ledger.store
        channels = None
        if any(o.price > 0 for o in offers) or channels_address is not None:
            chain = client.chain()
            contract = (PaymentChannels(chain, channels_address) if channels_address
                        else PaymentChannels.deployed(chain, client.deployments))
            kw: dict[str, Any] = {"clock": clock} if clock is not None else {}
            channels = ProviderChannels(contract, account.address, token=token, margin=margin, **kw)
        access = access_chain = None
        if marketplace is not None:
            access, access_chain, marketplace = marketplace_access(client, marketplace)
        service = cls(offers, signer=Signer(account.key), store=store, channels=channels, account=account,
                      access=access, access_chain_id=access_chain, access_contract=marketplace,
                      chain_id=channels.chain_id if channels else None)
        if restore:
            service.restore()
        return service

    def restore(self) -> int:
        """Rebuild the channels' state from this provider's receipts in the log (at start-up)."""
        if self.channels is not None:
            self.restored = self.channels.restore(provider_receipts(self.store, self.provider))
        return self.restored

    # ------------------------------------------------------------------ lookups
    def offer(self, ref: str) -> Offer:
        """The offer of model ``ref``: its digest (``sha256:``/``0x`` prefixes allowed), a unique prefix of 6+
        hex characters, or its name. Raises RequestRefused(404)."""
        m = _HEX64.fullmatch(ref)
        digest = m.group(1) if m else self._names.get(ref)
        if digest is None and 6 <= len(ref) < 64 and all(c in "0123456789abcdef" for c in ref):
            found = [d for d in self.offers if d.startswith(ref)]
            digest = found[0] if len(found) == 1 else None
        if digest is None or digest not in self.offers:
            raise RequestRefused(404, f"unknown model {ref[:80]!r}: this provider serves "
                                      f"{', '.join(sorted(o.model.name for o in self.offers.values()))}")
        return self.offers[digest]

    def terms(self, ref: str) -> dict[str, Any]:
        """What a client needs to pay for and call model ``ref`` (``GET /v1/models/{id}``)."""
        offer = self.offer(ref)
        return {
            "model": offer.model.to_json(),
            "provider": self.provider,
            "price": str(offer.price),
            "pricing": "per input row, in the smallest unit of token",
            "token": self.channels.token if self.channels else ZERO_ADDRESS,
            "chainId": self.chain_id,
            "channels": self.channels.address if self.channels else None,
            "margin": self.channels.margin if self.channels else None,
            "access": ({"chainId": self.access_chain_id, "contract": self.access_contract, "action": INFER_ACTION}
                       if self.access else None),
            "log": {"origin": self.store.origin, "publicKey": self.store.verifier.vkey()},
            "maxBodyBytes": MAX_BODY_BYTES,
        }

    # ------------------------------------------------------------------ serving
    async def infer(self, ref: str, body: bytes, voucher: str | None = None, access: str | None = None,
                    ticket: str | None = None) -> bytes:
        """Serve one request; returns the response body (JSON). Raises RequestRefused with status and reason.

        The answer is returned only once its receipt is durable in the log. A request that is refused, or
        that fails after its payment was accepted, is not charged (the payment is rolled back)."""
        offer = self.offer(ref)
        model = offer.model
        inputs = parse_body(body)
        try:
            x = model.adapter.validate(inputs)
        except InvalidInputError as e:
            raise RequestRefused(422, str(e)) from None
        price = offer.price * x.shape[0]
        paid: Ticket | None = None
        channel: str | None = None
        if offer.price > 0:
            if ticket is not None and self.channels is not None:
                # most paid requests: a ticket of a known book (sent with the book until the payer has an answer)
                book = None if voucher is None else self._books.get(voucher)
                if voucher is None or book is not None:
                    paid = self.channels.accept_known(ticket, price, book)
            if paid is None and (ticket is not None or voucher is not None):
                # a new book or channel, chain facts to re-read, or a ticket to refuse: the full rule says why
                ref, book = self._payment(voucher, ticket)
                paid = await self.channels.accept(ref, book, price)  # type: ignore[union-attr]
            if paid is not None:
                channel = paid.channel
            elif access is not None:
                channel = (await self._access(access, model.digest)).to_field()
                price = 0  # holders paid for the token or licence
            else:
                raise PaymentRefused(402, f"payment required: send {TICKET_HEADER} and {VOUCHER_HEADER} headers (a "
                                          f"ticket of a ticket book on a payment channel to {self.provider}) or "
                                          f"{ACCESS_HEADER}; "
                                          f"see GET /v1/models/{model.digest}")
        # shielded: once paid, a request completes (receipt and all) even if its client goes away meanwhile
        return await asyncio.shield(self._serve(model, inputs, x, price, channel, paid))

    async def _serve(self, model: ServedModel, inputs: Any, x: np.ndarray, price: int, channel: str | None,
                     ticket: Ticket | None) -> bytes:
        try:
            return await self._run(model, inputs, x, price, channel, ticket)
        except BaseException:
            if ticket is not None and self.channels is not None:
                self.channels.rollback(ticket)  # not served: not charged
            raise

    async def _run(self, model: ServedModel, inputs: Any, x: np.ndarray, price: int, channel: str | None,
                   ticket: Ticket | None) -> bytes:
        try:
            out = await self._batchers[model.digest].predict(x)
        except (ValueError, TypeError) as e:  # the model rejects inputs our checks let through
            raise RequestRefused(422, f"the model could not process the inputs: {str(e).splitlines()[0][:200]}") from None
        outputs = out.tolist()
        entry = self.factory.sign({"digest": model.digest, "name": model.name, "logIndex": model.log_index},
                                  json_digest(inputs), json_digest(outputs), str(price), channel)
        try:
            index = await self.receipts.append(entry)
        except StorageError as e:
            raise RequestRefused(503, f"cannot record the receipt, so the request is not served: {e}") from None
        if ticket is not None and ticket.full and self.channels is not None:
            self.channels.recorded(ticket)
        answer: dict[str, Any] = {"model": model.digest, "outputs": outputs, "price": str(price),
                                  "receipt": {"logIndex": index, "envelope": orjson.Fragment(entry)}}
        return orjson.dumps(answer)

    def _payment(self, header: str | None, ticket: str | None) -> tuple[TicketRef, TicketBook | None]:
        """The ticket a paid request carries, and the ticket book it spends if the request carries that too.
        Raises RequestRefused."""
        if self.channels is None:
            raise PaymentRefused(402, "this provider takes no payment-channel tickets")
        if ticket is None:
            raise PaymentRefused(402, f"{VOUCHER_HEADER} needs a {TICKET_HEADER} header: '<channel id><link>:<voucher "
                                      f"amount>:<index>', a link of the ticket book's hash chain")
        try:
            ref = parse_ticket(ticket)
        except ValueError as e:
            raise RequestRefused(400, f"{TICKET_HEADER}: {e}") from None
        if header is None:
            return ref, None
        book = self._books.get(header)
        if book is None:
            book = parse_voucher_header(header, self.channels.chain_id, self.channels.address)
            if len(self._books) >= _PARSED_CACHE:
                self._books.clear()
            self._books[header] = book
        if book.voucher.channel_id != ref.channel_id or book.voucher.amount != ref.amount:
            raise RequestRefused(400, f"{TICKET_HEADER} names voucher {ref.amount} on channel "
                                      f"0x{ref.channel_id.hex()[:16]}, {VOUCHER_HEADER} is voucher "
                                      f"{book.voucher.amount} on channel 0x{book.voucher.channel_id.hex()[:16]}")
        return ref, book

    async def _access(self, header: str, digest: str) -> AccessRef:
        if self.access is None or self.access_contract is None or self.access_chain_id is None:
            raise PaymentRefused(402, f"this provider takes no access tokens for this model: send {VOUCHER_HEADER}")
        request = parse_access_header(header)
        granted, status, reason = await asyncio.to_thread(self.access, request, digest)
        if not granted:
            raise PaymentRefused(status, reason)
        return AccessRef(self.access_chain_id, self.access_contract, request.holder, request.nonce)

    def close_out(self, body: bytes) -> dict[str, Any]:
        """``POST /v1/channels/close``: the payer's closing voucher (the JSON of ``Voucher.to_json()``, optionally
        with ``chainId`` and ``contract``), for what it sent through a channel that paid ahead with a ticket
        book; settlement then redeems it (see ``ProviderChannels.close_out``). Raises RequestRefused."""
        if self.channels is None:
            raise PaymentRefused(402, "this provider takes no payment-channel vouchers")
        if len(body) > MAX_HEADER_CHARS:
            raise RequestRefused(413, f"a closing voucher is at most {MAX_HEADER_CHARS} bytes")
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise RequestRefused(400, "the closing voucher is not JSON") from None
        if type(obj) is not dict or not {"channelId", "amount", "signature"} <= obj.keys() <= _VOUCHER_FIELDS:
            raise RequestRefused(400, "a closing voucher is a JSON object with channelId, amount, signature (and "
                                      "optionally chainId, contract)")
        chain_id, contract = self.channels.chain_id, self.channels.address
        if str(obj.get("chainId", chain_id)) != str(chain_id) or str(obj.get("contract", contract)).lower() != contract.lower():
            raise RequestRefused(400, f"the voucher is not for PaymentChannels {contract} on chain {chain_id}")
        voucher = _voucher(obj)
        digest = self.channels.domain.digest(voucher.channel_id, voucher.amount)
        return self.channels.close_out(voucher, self.channels.recover(digest, voucher.signature, "voucher"))

    # ------------------------------------------------------------------ settlement
    def settle(self, channel: bytes | None = None) -> list[dict[str, Any]]:
        """Redeem the best voucher of ``channel`` (or of every channel) on chain now. Raises ChainError."""
        if self.channels is None or self.account is None:
            raise InvalidInputError("this service has no payment channels or no account to settle with")
        if channel is not None:
            done = self.channels.settle(channel, self.account)
            return [done.to_json()] if done else []
        return [s.to_json() for s in self.channels.settle_all(self.account)]

    async def settle_due(self) -> list[dict[str, Any]]:
        """Settle the channels about to expire (run periodically by the server). Never raises: a failure is
        logged and retried at the next tick."""
        if self.channels is None or self.account is None:
            return []
        done = []
        for cid in self.channels.due():
            try:
                s = await asyncio.to_thread(self.channels.settle, cid, self.account)
            except LedgermindError as e:
                log.warning("settling channel 0x%s failed (retrying later): %s", cid.hex(), e)
                continue
            if s is not None:
                done.append(s.to_json())
        return done

    # ------------------------------------------------------------------ receipts
    def receipt_bundle(self, index: int) -> dict[str, Any]:
        """Receipt ``index`` with its inclusion proof and checkpoint (offline-verifiable). Raises RequestRefused(404)."""
        from ledgermind.inference.receipts import open_receipt
        from ledgermind.registry.verify import ProvenEntry, bundle_entry

        try:
            entry = self.store.entry(index)
            cp = self.store.checkpoint_covering(index)
        except NotFoundError as e:
            raise RequestRefused(404, str(e)) from None
        try:
            open_receipt(entry)
        except LedgermindError:
            raise RequestRefused(404, f"log entry {index} is not an inference receipt") from None
        proven = ProvenEntry(index, entry, cp.size, cp.root, self.store.inclusion_proof(index, cp.size), cp.note)
        return bundle_entry(proven, self.store.origin, self.store.verifier.vkey())

    def health(self) -> dict[str, Any]:
        return {"ok": True, "provider": self.provider, "models": len(self.offers), "logSize": self.store.size(),
                "receiptBatches": self.receipts.batches, "receipts": self.receipts.entries,
                "predictCalls": sum(b.calls for b in self._batchers.values()), "pid": os.getpid()}

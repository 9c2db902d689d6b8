"""Paying for inference as a client: channels, cumulative vouchers, and calls that check what comes back.

``Payer`` opens payment channels with the client's account. A ``PaidChannel`` pays each request with the next
ticket of a ticket book (``tickets``: a cumulative voucher signed for a few requests ahead, and one link of a
hash chain per request), under a lock, so any number of threads can pay through one channel at once and the
provider never sees a voucher that does not cover what it served.

``InferenceClient.infer`` calls a provider over HTTP and checks the receipt it returns: signed by the provider
announced for the model, naming the model digest asked for, carrying the digests of the inputs sent and the
outputs received. If the provider is down, refuses the payment, or answers with a receipt that does not check
out, it moves on to the next provider, paying it through that provider's own channel with a fresh ticket:
a ticket sent to one provider is never shown to another, so each attempt is paid at most once, and a request
is paid once unless a provider took the money and then failed (its voucher stays redeemable by it, which is
why providers that fail are put aside for ``down_for`` seconds).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from ledgermind.errors import InvalidInputError, LedgermindError
from ledgermind.inference.channels import ZERO_ADDRESS, ChannelInfo, PaymentChannels
from ledgermind.inference.discovery import ProviderInfo
from ledgermind.inference.errors import AllProvidersFailed, ProviderError, RequestRefused
from ledgermind.inference.receipts import check_receipt
from ledgermind.inference.service import ACCESS_HEADER, TICKET_HEADER, VOUCHER_HEADER
from ledgermind.inference.signing import Signer, voucher_domain
from ledgermind.inference.tickets import MAX_AHEAD, TicketBook, TicketChain, TicketRef
from ledgermind.market.eip712 import AccessRequest, Voucher
from ledgermind.statements import SignedStatement

if TYPE_CHECKING:
    import httpx
    from eth_account.signers.local import LocalAccount

DEFAULT_DURATION = 24 * 3600


@dataclass(slots=True)
class _Book:
    amount: int
    chain: TicketChain
    header: str
    previous: int  # the highest amount signed before this book
    next: int = 1
    known: bool = False  # the provider answered a request of it, so it knows the book


@dataclass(slots=True)
class Payment:
    """What pays one request: its ticket, the book it spends, and what ``release`` needs if the request is
    refused unpaid."""

    ticket: str  # the X-Ledgermind-Ticket header
    book: _Book
    price: int
    index: int  # the ticket's

    @property
    def amount(self) -> int:
        """The book's voucher amount (cumulative)."""
        return self.book.amount

    @property
    def headers(self) -> dict[str, str]:
        """The headers to send: the ticket, and the book until the provider is known to have it (``accepted``)."""
        if self.book.known:
            return {TICKET_HEADER: self.ticket}
        return self.with_book

    @property
    def with_book(self) -> dict[str, str]:
        """The ticket and its book (what to send again when a provider says it does not know the book)."""
        return {VOUCHER_HEADER: self.book.header, TICKET_HEADER: self.ticket}

    def accepted(self) -> None:
        """The provider answered the request this paid: it knows the book, later tickets of it go without it."""
        self.book.known = True


class PaidChannel:
    """One channel from this client to one provider, paying requests with tickets of ticket books. Thread-safe.

    ``issued`` is the amount of the last voucher signed (start from 0 for a new channel; when resuming a
    channel, from at least what was issued before, or the provider will refuse the next books). A book pays
    for up to ``n`` requests at the price of the request that opens it: its voucher is for what was committed
    so far plus ``n`` such requests, ``n`` being one more than the requests at that price that what was committed
    so far (earlier sessions included) pays for, up to ``max_tickets``: 1, 2, 4, ... on a new channel, full
    books at once on a channel resumed after use. So a client risks at most the unused tickets of its last book,
    never more than it has already spent."""

    def __init__(self, channel_id: bytes, *, key: bytes, chain_id: int, contract: str, recipient: str,
                 deposit: int, token: str = ZERO_ADDRESS, expiry: int = 0, issued: int = 0,
                 max_tickets: int = MAX_AHEAD) -> None:
        self.channel_id = channel_id
        self.chain_id = chain_id
        self.contract = contract
        self.recipient = recipient
        self.deposit = deposit
        self.token = token
        self.expiry = expiry
        if not 1 <= max_tickets <= MAX_AHEAD:  # a restarted provider checks tickets from the anchor
            raise InvalidInputError(f"max_tickets must be 1..{MAX_AHEAD}, got {max_tickets}")
        self.max_tickets = max_tickets
        self._signer = Signer(key)
        self._domain = voucher_domain(chain_id, contract)
        self._lock = threading.Lock()
        self.issued = issued  # the highest voucher amount signed
        self.committed = issued  # what the requests and payments sent so far add up to
        self._current: _Book | None = None

    @classmethod
    def from_info(cls, info: ChannelInfo, key: bytes, chain_id: int, contract: str, issued: int | None = None) -> PaidChannel:
        return cls(info.channel_id, key=key, chain_id=chain_id, contract=contract, recipient=info.recipient,
                   deposit=info.deposit, token=info.token, expiry=info.expiry,
                   issued=info.paid if issued is None else issued)

    @property
    def remaining(self) -> int:
        return self.deposit - self.committed

    def pay(self, price: int) -> Payment:
        """The next ticket, paying ``price`` for one request (signing a new book when the current one is spent).
        Raises InvalidInputError if the deposit cannot cover it (top the channel up first)."""
        if price < 0:
            raise InvalidInputError(f"price must be >= 0, got {price}")
        with self._lock:
            book = self._current
            if book is None or book.next > book.chain.count or self.committed + price > book.amount:
                book = self._new_book(price)
            index = book.next
            book.next += 1
            self.committed += price
        ticket = TicketRef(self.channel_id, book.amount, index, book.chain.links[index]).header()
        return Payment(ticket, book, price, index)

    def _new_book(self, price: int) -> _Book:
        """Sign a book for the next requests at ``price`` (caller holds the lock)."""
        if self.committed + price > self.deposit:
            raise InvalidInputError(f"channel 0x{self.channel_id.hex()[:16]} has {self.remaining} left of its "
                                    f"deposit {self.deposit}, this request costs {price}: top it up")
        size = self.max_tickets if price == 0 else min(self.max_tickets, self.committed // price + 1)
        amount = min(self.deposit, max(self.committed + price * size, self.issued + 1))
        if amount <= self.issued:  # the last voucher already pledged the whole deposit
            raise InvalidInputError(f"channel 0x{self.channel_id.hex()[:16]}: every voucher amount up to its "
                                    f"deposit {self.deposit} is signed: top it up")
        chain = TicketChain(size)
        header = TicketBook.sign(self._signer, self._domain, self.channel_id, amount, chain.anchor).header(
            self.chain_id, self.contract)
        self._signed(amount)
        self._current = _Book(amount, chain, header, self.issued)
        self.issued = amount
        return self._current

    def _signed(self, amount: int) -> None:
        """Called with the amount of each voucher signed, before it leaves this object (see book.BookedChannel)."""

    def release(self, payment: Payment) -> None:
        """Take back the price of ``payment`` after the provider refused its request without taking it (bad
        inputs are refused before payment), so the next book does not pay ahead for it. Its ticket is not
        reused; a book whose only ticket it was is taken back whole (the provider never saw it)."""
        with self._lock:
            self.committed -= payment.price
            book = self._current
            if book is payment.book and payment.index == 1 and book.next == 2 and book.amount == self.issued:
                self._current = None
                self._released(book.amount, book.previous)
                self.issued = book.previous

    def _released(self, amount: int, back_to: int) -> None:
        """Called when the book of voucher ``amount`` is taken back unseen (see book.BookedChannel)."""

    def close_out(self) -> Voucher | None:
        """A voucher for exactly what was committed, when the last book paid ahead of it (else None): send it to
        the provider when done (``InferenceClient.close`` does) so that settlement charges only what was sent.
        The next ``pay`` opens a new book."""
        with self._lock:
            if self.committed >= self.issued or self.committed <= 0:
                return None
            self._current = None
            return self._domain.sign(self._signer, self.channel_id, self.committed)

    def voucher(self, amount: int) -> Voucher:
        """A plain voucher paying ``amount`` more than any voucher signed so far (payments that are not
        inference requests: see ``Client.pay``). Raises InvalidInputError if the deposit cannot cover it."""
        if amount < 0:
            raise InvalidInputError(f"amount must be >= 0, got {amount}")
        with self._lock:
            total = self.issued + amount
            if total > self.deposit:
                raise InvalidInputError(f"channel 0x{self.channel_id.hex()[:16]} has {self.deposit - self.issued} "
                                        f"left of its deposit {self.deposit}, this payment is {amount}: top it up")
            self._signed(total)
            self.issued = self.committed = total
            self._current = None  # the credit a book paid ahead is the recipient's now
        return self._domain.sign(self._signer, self.channel_id, total)


class Payer:
    """A client account that pays providers through the PaymentChannels ``contract``."""

    def __init__(self, account: LocalAccount, contract: PaymentChannels) -> None:
        self.account = account
        self.contract = contract

    def open(self, recipient: str, deposit: int, *, token: str = ZERO_ADDRESS, duration: int = DEFAULT_DURATION,
             expiry: int | None = None, salt: bytes | None = None) -> PaidChannel:
        """Open a channel to ``recipient`` holding ``deposit`` for ``duration`` seconds (or until ``expiry``).
        Raises ChainError with the contract's reason."""
        if expiry is None:
            expiry = max(int(time.time()), self.contract.now()) + duration
        info = self.contract.open(self.account, recipient, deposit, expiry, token=token, salt=salt)
        return PaidChannel.from_info(info, self.account.key, self.contract.chain_id, self.contract.address, issued=0)

    def resume(self, channel_id: bytes, issued: int) -> PaidChannel:
        """A channel opened earlier, whose last voucher was for ``issued`` (the client's own record)."""
        info = self.contract.channel(channel_id)
        if info.sender != self.account.address:
            raise InvalidInputError(f"channel 0x{channel_id.hex()[:16]} is {info.sender}'s, not {self.account.address}'s")
        return PaidChannel.from_info(info, self.account.key, self.contract.chain_id, self.contract.address,
                                     max(issued, info.paid))

    def top_up(self, channel: PaidChannel, amount: int) -> None:
        info = self.contract.top_up(self.account, channel.channel_id, amount)
        with channel._lock:
            channel.deposit = info.deposit

    def reclaim(self, channel: PaidChannel) -> int:
        """After expiry: close the channel and collect what the provider did not redeem. Returns the refund."""
        self.contract.reclaim(self.account, channel.channel_id)
        return self.contract.withdraw(self.account, channel.token)


@dataclass(frozen=True)
class InferenceResult:
    """A checked answer: the outputs, the receipt (verified) and where it is in the provider's log."""

    outputs: Any
    receipt: SignedStatement
    envelope: dict[str, Any]
    log_index: int
    provider: str
    endpoint: str
    price: int
    attempts: int

    def to_json(self) -> dict[str, Any]:
        return {"outputs": self.outputs, "provider": self.provider, "endpoint": self.endpoint, "price": str(self.price),
                "receipt": {"logIndex": self.log_index, "envelope": self.envelope}, "attempts": self.attempts}


_INPUT_ERRORS = {400, 413, 422}  # the request itself is wrong: another provider would say the same


class InferenceClient:
    """Calls the providers of models, paying each through its own channel, failing over between them.

    ``providers``: endpoints (the provider's address is then taken from its terms) or ProviderInfo from
    ``discover_providers`` (the terms must then name the announced address). ``payer`` pays; ``deposit``
    (with ``duration`` and ``token``) is what a channel opened on first use of a provider holds; channels can
    also be given per provider address in ``channels``. ``access`` signs access requests instead of paying.
    """

    def __init__(
        self,
        providers: Sequence[str | ProviderInfo],
        *,
        payer: Payer | None = None,
        channels: dict[str, PaidChannel] | None = None,
        deposit: int = 0,
        duration: int = DEFAULT_DURATION,
        access: tuple[LocalAccount, int, str] | None = None,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        down_for: float = 30.0,
    ) -> None:
        import httpx

        if not providers:
            raise InvalidInputError("give at least one provider")
        self.providers = [p if isinstance(p, ProviderInfo) else ProviderInfo("", p.rstrip("/"), -1, "") for p in providers]
        self.payer = payer
        self.channels: dict[str, PaidChannel] = {k.lower(): v for k, v in (channels or {}).items()}
        self.deposit = deposit
        self.duration = duration
        self.access = access
        self.http = http or httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))
        self._own_http = http is None
        self.down_for = down_for
        self._down: dict[str, float] = {}
        self._terms: dict[tuple[str, str], dict[str, Any]] = {}
        self._endpoints: dict[str, str] = {}  # provider address -> the endpoint last paid through its channel
        self._lock = threading.Lock()

    def close(self) -> None:
        """Send each provider paid ahead a closing voucher for what was sent to it (``PaidChannel.close_out``;
        a provider that is down keeps the book's voucher, at most one book ahead), then close the connections."""
        for address, channel in list(self.channels.items()):
            voucher = channel.close_out()
            endpoint = self._endpoints.get(address)
            if voucher is None or endpoint is None:
                continue
            body = {**voucher.to_json(), "chainId": channel.chain_id, "contract": channel.contract}
            try:
                self.http.post(f"{endpoint}/v1/channels/close", json=body)
            except Exception:  # noqa: BLE001 - best effort: the provider may be gone; the book's voucher bounds the loss
                pass
        if self._own_http:
            self.http.close()

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ providers
    def terms(self, provider: ProviderInfo, model: str) -> dict[str, Any]:
        """A provider's terms for ``model`` (cached). Raises ProviderError if it cannot be read or does not match
        what was announced."""
        key = (provider.endpoint, model)
        cached = self._terms.get(key)
        if cached is not None:
            return cached
        r = self._request("GET", f"{provider.endpoint}/v1/models/{model}")
        if r.status_code != 200:
            raise ProviderError(f"terms: HTTP {r.status_code}: {_reason(r)}")
        try:
            terms = r.json()
            address, digest = terms["provider"], terms["model"]["digest"]
        except (ValueError, KeyError, TypeError) as e:
            raise ProviderError(f"terms are malformed: {e}") from None
        if provider.address and address.lower() != provider.address.lower():
            raise ProviderError(f"answers as {address}, but {provider.address} was announced at this endpoint")
        if digest != model:
            raise ProviderError(f"serves model {digest} under the id {model}")
        self._terms[key] = terms
        return terms

    def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        import httpx

        try:
            return self.http.request(method, url, **kw)
        except httpx.HTTPError as e:
            raise ProviderError(f"unreachable: {type(e).__name__}: {str(e)[:200]}") from None

    def channel_for(self, terms: dict[str, Any]) -> PaidChannel:
        """This client's channel to the provider of ``terms``, opened on first use if a deposit was set."""
        address = terms["provider"].lower()
        with self._lock:
            channel = self.channels.get(address)
            if channel is None:
                if self.payer is None or self.deposit <= 0:
                    raise ProviderError(f"no payment channel to {terms['provider']} (give a payer and a deposit)")
                if terms.get("chainId") != self.payer.contract.chain_id or (terms.get("channels") or "").lower() != self.payer.contract.address.lower():
                    raise ProviderError(f"is paid through PaymentChannels {terms.get('channels')} on chain "
                                        f"{terms.get('chainId')}, not {self.payer.contract.address} on chain "
                                        f"{self.payer.contract.chain_id}")
                channel = self.payer.open(terms["provider"], self.deposit, token=terms.get("token") or ZERO_ADDRESS,
                                          duration=self.duration)
                self.channels[address] = channel
        return channel

    # ------------------------------------------------------------------ calls
    def infer(self, model: str, inputs: Any) -> InferenceResult:
        """Run ``model`` (its registered digest) on ``inputs`` at the first provider that answers with a good
        receipt. Raises RequestRefused for inputs every provider would refuse (400/413/422), AllProvidersFailed
        when no provider answered well (each failure named)."""
        model = model.removeprefix("sha256:").removeprefix("0x").lower()
        if len(model) != 64:
            raise InvalidInputError("infer needs the model's registered digest (64 hex): receipts are checked against it")
        body = orjson.dumps({"inputs": inputs})
        failures: list[tuple[str, str]] = []
        now = time.monotonic()
        order = sorted(self.providers, key=lambda p: self._down.get(p.endpoint, 0) > now)  # up ones first
        for attempt, provider in enumerate(order, 1):
            try:
                return self._attempt(provider, model, inputs, body, attempt)
            except ProviderError as e:
                failures.append((provider.endpoint, str(e)))
                self._down[provider.endpoint] = time.monotonic() + self.down_for
        raise AllProvidersFailed(failures)

    def _attempt(self, provider: ProviderInfo, model: str, inputs: Any, body: bytes, attempt: int) -> InferenceResult:
        terms = self.terms(provider, model)
        headers = {"content-type": "application/json"}
        price = int(terms["price"]) * _rows(inputs, terms["model"].get("shape"))
        if price > 0 and self.access is not None and terms.get("access"):
            account, chain_id, contract = self.access
            req = AccessRequest(account.address, bytes.fromhex(model), "infer", int.from_bytes(os.urandom(16), "big"),
                                int(time.time()) + 120).sign(account, chain_id, contract)
            headers[ACCESS_HEADER] = orjson.dumps(req.to_json()).decode()
            price = 0
        channel = payment = None
        if price > 0:
            channel = self.channel_for(terms)
            self._endpoints[terms["provider"].lower()] = provider.endpoint
            payment = channel.pay(price)
            headers.update(payment.headers)
        url = f"{provider.endpoint}/v1/models/{model}/infer"
        r = self._request("POST", url, content=body, headers=headers)
        if payment is not None and r.status_code == 409 and VOUCHER_HEADER not in headers:
            headers.update(payment.with_book)  # the provider does not know the book (restarted, or forgot it)
            r = self._request("POST", url, content=body, headers=headers)
        if r.status_code in _INPUT_ERRORS:
            if channel is not None and payment is not None:
                channel.release(payment)  # refused before payment: the amount was not taken
            raise RequestRefused(r.status_code, _reason(r))
        if r.status_code != 200:
            raise ProviderError(f"HTTP {r.status_code}: {_reason(r)}")
        if payment is not None:
            payment.accepted()
        try:
            answer = r.json()
            outputs, receipt = answer["outputs"], answer["receipt"]
            envelope, index = receipt["envelope"], int(receipt["logIndex"])
        except (ValueError, KeyError, TypeError) as e:
            raise ProviderError(f"answer is malformed: {e}") from None
        try:
            signed = check_receipt(envelope, provider=terms["provider"], model=model, inputs=inputs, outputs=outputs)
        except LedgermindError as e:
            raise ProviderError(f"receipt does not check out: {e}") from None
        return InferenceResult(outputs, signed, envelope, index, terms["provider"], provider.endpoint,
                               int(signed.statement.predicate.get("price") or 0), attempt)


def _rows(inputs: Any, shape: list[Any] | None) -> int:
    """How many rows ``inputs`` has for a model taking batches of ``shape`` (a single example counts one)."""
    try:
        ndim = np.ndim(inputs)
    except ValueError:  # ragged: the provider will refuse it
        return 1
    if ndim == 0:
        return 1
    if shape is None:
        return len(inputs) if ndim > 1 else 1
    return len(inputs) if ndim >= len(shape) else 1


def _reason(r: Any) -> str:
    try:
        return str(r.json().get("error"))[:300]
    except (ValueError, AttributeError):
        return r.text[:200].replace("\n", " ")

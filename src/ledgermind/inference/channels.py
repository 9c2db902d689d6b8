"""Payment channels: the PaymentChannels contract, and the provider's view of the channels that pay it.

``PaymentChannels`` is a thin binding to the contract (open, top up, extend, settle, reclaim, withdraw, read a
channel). ``ProviderChannels`` decides, per request, whether a ticket pays for it, without a chain call per
request and without ever locking a channel, so any number of concurrent requests on one channel succeed.

Requests are paid with tickets of ticket books (``tickets``): a cumulative voucher, signed once for a few
requests ahead, and per request one link of a hash chain bound to it. The acceptance rule. Per channel the
provider keeps ``served`` (the sum of the prices of the requests it served), ``best`` (the highest voucher
amount it accepted, with its signature) and, per voucher amount, the book's chain and its spent tickets. A
request priced ``price`` with ticket ``i`` of book ``b`` (voucher ``v``) is accepted iff, in this order:

1. the channel pays this provider in the token it charges (402), is not closed (410), has not expired (410),
   and does not expire within ``margin`` seconds, the time the provider keeps to settle (402);
2. ``v.amount <= deposit`` (402) and ``v.amount > paid`` on chain (402), or ``v.amount == paid`` for a book
   already accepted (the provider settled its voucher: the tickets it paid ahead stay good);
3. if ``v.amount`` has a book already, ``b`` is that book (409); if not, the voucher's and the book's EIP-712
   signatures both recover the channel's sender (401). A ticket may come without its book once the provider
   has accepted the book (the payer sends it until a request of the book is answered); otherwise 409
   "unknown ticket book", and the payer sends it again with the book;
4. ticket ``i`` was not spent (409 "replayed ticket") and is a link of the book's chain (401);
5. ``max(best, v.amount) >= served + price`` (402 "voucher does not cover the requests served").

Then ``served += price``, ticket ``i`` is spent and ``best = max(best, v.amount)``. So the provider can always
redeem ``best >= served``: it is never under-paid, whatever order concurrent requests arrive in.

The signatures of rule 3 are recovered once per book (``recovery``); rule 4 costs one sha256 for tickets
arriving in order.

Chain facts (sender, recipient, token, deposit, paid, expiry, closed) are read once per channel and cached; a
voucher above the cached deposit, or a channel seen expiring, triggers one re-read (a top-up or an extension
may have happened), at most once per ``refresh_interval`` per channel.

Durability is the receipts': the server answers only after the request's receipt is durable in the log. Each
receipt records its voucher amount and ticket; until one recording the book in full (voucher signature,
anchor, book signature: see ``receipts.VoucherRef``) is durable, every receipt under that book records it in
full. ``restore`` rebuilds ``served``, ``best``, the books and their spent tickets from those receipts at
start-up. A request whose receipt could not be written is ``rollback``-ed.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ledgermind.chain.connection import Chain, ChainError, Receipt
from ledgermind.errors import InvalidInputError, LedgermindError, SignatureError
from ledgermind.inference import recovery
from ledgermind.inference.errors import PaymentRefused, RequestRefused
from ledgermind.inference.receipts import ReceiptRecord, VoucherRef, book_fields, voucher_field
from ledgermind.inference.signing import voucher_domain
from ledgermind.inference.tickets import MAX_AHEAD, ChainCheck, TicketBook, TicketRef, split_ticket
from ledgermind.market.eip712 import Voucher
from ledgermind.statements.dsse import checksum_address, keccak

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
# explicit gas limits: the embedded chain estimates gas slowly, and these calls have bounded cost
# (measured on py-evm: open ~120k native / ~150k with an ERC-20, settle ~70k, reclaim ~45k, withdraw ~40k)
GAS = {"open": 250_000, "top_up": 150_000, "extend": 80_000, "settle": 150_000, "reclaim": 120_000,
       "withdraw": 120_000, "approve": 100_000}


def _word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.removeprefix("0x"))


def channel_id(sender: str, recipient: str, token: str, salt: bytes) -> bytes:
    """``keccak256(abi_encode(sender, recipient, token, salt))``: the id ``open`` gives the channel."""
    if len(salt) != 32:
        raise InvalidInputError(f"salt must be 32 bytes, got {len(salt)}")
    return keccak(_word(sender) + _word(recipient) + _word(token) + salt)


@dataclass(frozen=True)
class ChannelInfo:
    """A channel as the contract reports it; every field zero for an id never opened."""

    channel_id: bytes
    sender: str
    recipient: str
    token: str
    deposit: int
    paid: int
    expiry: int
    closed: bool

    @property
    def exists(self) -> bool:
        return self.sender != ZERO_ADDRESS

    def to_json(self) -> dict[str, Any]:
        return {"channelId": "0x" + self.channel_id.hex(), "sender": self.sender, "recipient": self.recipient,
                "token": self.token, "deposit": str(self.deposit), "paid": str(self.paid), "expiry": self.expiry,
                "closed": self.closed}


class PaymentChannels:
    """The PaymentChannels contract at ``address`` on ``chain``."""

    def __init__(self, chain: Chain, address: str) -> None:
        from web3 import Web3

        from ledgermind.contracts import load

        self.chain = chain
        self.address = Web3.to_checksum_address(address)
        self.contract = chain.w3.eth.contract(address=self.address, abi=load("PaymentChannels")["abi"])

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    @classmethod
    def deploy(cls, chain: Chain, account: LocalAccount) -> PaymentChannels:
        """Deploy a new PaymentChannels contract (dev chains and tests; ``ledgermind deploy`` records one)."""
        from ledgermind.contracts import load

        art = load("PaymentChannels")
        chain.ensure_funds(account.address)
        return cls(chain, chain.deploy(account, art["bytecode"], art["abi"]).contract_address)

    @classmethod
    def deployed(cls, chain: Chain, deployments: Any) -> PaymentChannels:
        """The deployment recorded for ``chain`` in ``deployments`` (a chain.deployments.Deployments).

        Raises ChainError saying to run ``ledgermind deploy`` if there is none."""
        return cls(chain, deployments.require(chain, "PaymentChannels").address)

    # ------------------------------------------------------------------ reads
    def channel(self, cid: bytes) -> ChannelInfo:
        """Read a channel. Raises ChainError if the chain cannot answer."""
        s, r, t, deposit, paid, expiry, closed = self.chain.call(self.contract.functions.channel(cid))
        return ChannelInfo(cid, checksum_address(bytes.fromhex(s[2:])), checksum_address(bytes.fromhex(r[2:])),
                           checksum_address(bytes.fromhex(t[2:])), int(deposit), int(paid), int(expiry), bool(closed))

    def withdrawable(self, account: str, token: str = ZERO_ADDRESS) -> int:
        return int(self.chain.call(self.contract.functions.withdrawable(account, token)))

    def now(self) -> int:
        """The chain's latest block time: what ``expiry`` is compared with on chain."""
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    # ------------------------------------------------------------------ transactions
    def open(self, account: LocalAccount, recipient: str, deposit: int, expiry: int, *, token: str = ZERO_ADDRESS,
             salt: bytes | None = None) -> ChannelInfo:
        """Open a channel from ``account`` to ``recipient`` holding ``deposit`` until ``expiry`` (unix seconds).

        An ERC-20 ``token`` is approved for the deposit first. Raises ChainError with the contract's reason.
        """
        from web3 import Web3

        salt = os.urandom(32) if salt is None else salt
        recipient, token = Web3.to_checksum_address(recipient), Web3.to_checksum_address(token)
        self.chain.ensure_funds(account.address)
        value = deposit if token == ZERO_ADDRESS else 0
        if token != ZERO_ADDRESS:
            self._approve(account, token, deposit)
        self.chain.transact(account, self.contract.functions.open(recipient, token, deposit, expiry, salt),
                            GAS["open"], value=value)
        return self.channel(channel_id(account.address, recipient, token, salt))

    def _approve(self, account: LocalAccount, token: str, amount: int) -> None:
        from ledgermind.contracts import load

        erc20 = self.chain.w3.eth.contract(address=token, abi=load("PaymentToken")["abi"])
        self.chain.transact(account, erc20.functions.approve(self.address, amount), GAS["approve"])

    def top_up(self, account: LocalAccount, cid: bytes, amount: int) -> ChannelInfo:
        info = self.channel(cid)
        if info.token != ZERO_ADDRESS:
            self._approve(account, info.token, amount)
        self.chain.transact(account, self.contract.functions.top_up(cid, amount), GAS["top_up"],
                            value=amount if info.token == ZERO_ADDRESS else 0)
        return self.channel(cid)

    def extend(self, account: LocalAccount, cid: bytes, new_expiry: int) -> ChannelInfo:
        self.chain.transact(account, self.contract.functions.extend(cid, new_expiry), GAS["extend"])
        return self.channel(cid)

    def settle(self, account: LocalAccount, voucher: Voucher) -> Receipt:
        """Redeem ``voucher`` as the channel's recipient. Raises ChainError with the contract's reason."""
        self.chain.ensure_funds(account.address)
        return self.chain.transact(
            account, self.contract.functions.settle(voucher.channel_id, voucher.amount, voucher.signature), GAS["settle"]
        )

    def reclaim(self, account: LocalAccount, cid: bytes) -> Receipt:
        return self.chain.transact(account, self.contract.functions.reclaim(cid), GAS["reclaim"])

    def withdraw(self, account: LocalAccount, token: str = ZERO_ADDRESS) -> int:
        """Collect ``account``'s whole withdrawable balance of ``token``; returns the amount (0: nothing to do)."""
        amount = self.withdrawable(account.address, token)
        if amount:
            self.chain.transact(account, self.contract.functions.withdraw(token), GAS["withdraw"])
        return amount


# ---------------------------------------------------------------------- the provider's view
@dataclass(slots=True)
class _Book:
    """A ticket book the provider accepted: its voucher (redeemable), its chain, and whether a receipt that
    records it in full is durable (until then every receipt under it does)."""

    anchor: bytes
    signature: bytes  # the voucher's
    book_signature: bytes
    chain: ChainCheck
    prefix: str  # of its receipts' channel field (see receipts.voucher_field)
    recorded: bool = False

    def spend(self, cid: bytes, amount: int, price: int, index: int, link: bytes) -> Ticket:
        """The accepted request of ticket ``(index, link)``, with its receipt's channel field."""
        if self.recorded:
            return _new_ticket(Ticket, (cid, amount, price, index, link, f"{self.prefix}{index}", self, False))
        fields = book_fields(self.signature, self.anchor, self.book_signature)
        return _new_ticket(Ticket, (cid, amount, price, index, link, f"{self.prefix}{index}{fields}", self, True))


@dataclass(slots=True)
class _State:
    info: ChannelInfo | None = None
    sender: bytes = b""  # info.sender as 20 bytes: compared with the recovered signers of every new book
    read_at: float = float("-inf")  # monotonic time of the last chain read
    served: int = 0
    best: int = 0
    best_signature: bytes = b""
    books: dict[int, _Book] = field(default_factory=dict)  # voucher amount -> its ticket book
    closing: Voucher | None = None  # the payer's voucher for exactly what it sent (see close_out)
    # from ``info``, for ``accept_known``: the channel pays this provider in its token and is open; and the
    # time from which it is too close to expiry
    usable: bool = False
    until: float = float("-inf")


class Ticket(NamedTuple):
    """An accepted request: what its receipt records, and what ``rollback`` needs if that cannot be written."""

    channel_id: bytes
    amount: int  # the voucher's
    price: int
    index: int
    link: bytes
    channel: str  # the payment as the receipt's ``channel`` field records it (see receipts.VoucherRef)
    book: _Book
    full: bool  # ``channel`` records the book in full


_new_ticket = tuple.__new__  # one is built per paid request: without the NamedTuple's generated __new__


@dataclass(frozen=True)
class Settlement:
    channel_id: bytes
    amount: int  # the voucher redeemed (cumulative)
    payout: int  # what this settlement added
    tx_hash: str

    def to_json(self) -> dict[str, Any]:
        return {"channelId": "0x" + self.channel_id.hex(), "amount": str(self.amount), "payout": str(self.payout),
                "txHash": self.tx_hash}


class _Reread(Exception):
    """The cached chain facts may be stale for this decision: read the channel again, then decide."""


def _name(cid: bytes) -> str:
    """How refusals name a channel (built only when refusing)."""
    return f"channel 0x{cid.hex()[:16]}"


class ProviderChannels:
    """The channels that pay ``provider`` through ``contract``, in ``token``.

    ``reader(channel_id) -> ChannelInfo`` reads the chain (default: ``contract.channel``); ``clock`` gives unix
    time (it decides expiry; the default is the wall clock). Safe to use from an event loop and worker threads.
    """

    def __init__(
        self,
        contract: PaymentChannels,
        provider: str,
        *,
        token: str = ZERO_ADDRESS,
        margin: float = 300.0,
        refresh_interval: float = 2.0,
        clock: Callable[[], float] = time.time,
        reader: Callable[[bytes], ChannelInfo] | None = None,
        chain_time: Callable[[], float] | None = None,
        max_unknown: int = 10_000,
    ) -> None:
        """``margin``: seconds before expiry from which vouchers are refused and the channel is settled.

        Expiry is judged on the chain's clock (the sender may reclaim once a block is at or past it): each
        chain read also reads the latest block's time (``chain_time``), and a chain running ahead of ``clock``
        (a dev chain that was moved forward) is followed; one running behind is not (a real chain's head is
        a few seconds old)."""
        self.contract = contract
        self.chain_id = contract.chain_id
        self.address = contract.address
        self.provider = checksum_address(bytes.fromhex(provider.removeprefix("0x")))
        self.token = checksum_address(bytes.fromhex(token.removeprefix("0x")))
        self.margin = margin
        self.refresh_interval = refresh_interval
        self.clock = clock
        self.domain = voucher_domain(self.chain_id, self.address)
        self._read_chain = reader or contract.channel
        self._chain_time = chain_time or contract.now
        self._offset = 0.0  # seconds the chain's clock is ahead of ours (never negative)
        self._lock = threading.Lock()
        self._channels: dict[bytes, _State] = {}
        self._unknown: OrderedDict[bytes, _State] = OrderedDict()  # ids with no channel: bounded, not kept
        self._max_unknown = max_unknown
        self._reading: dict[bytes, asyncio.Future[None]] = {}

    # ------------------------------------------------------------------ state
    def _state(self, cid: bytes) -> _State:
        st = self._channels.get(cid)
        if st is None:
            st = self._unknown.get(cid)
            if st is None:
                st = _State()
                self._unknown[cid] = st
                if len(self._unknown) > self._max_unknown:
                    self._unknown.popitem(last=False)
        return st

    def _install(self, info: ChannelInfo) -> None:
        """Record freshly read chain facts (caller holds the lock)."""
        st = self._state(info.channel_id)
        st.info, st.sender, st.read_at = info, bytes.fromhex(info.sender[2:]), time.monotonic()
        st.usable = (info.exists and info.recipient == self.provider and info.token == self.token
                     and not info.closed)
        st.until = info.expiry - self.margin
        if info.exists and info.channel_id not in self._channels:
            self._channels[info.channel_id] = self._unknown.pop(info.channel_id, st)
        if info.paid:  # books below what is settled can never be spent again: forget them
            st.books = {a: b for a, b in st.books.items() if a >= info.paid}

    def refresh(self, cid: bytes) -> ChannelInfo:
        """Read channel ``cid`` from the chain now (blocking). Raises RequestRefused(503) if the chain fails."""
        try:
            info = self._read_chain(cid)
        except LedgermindError as e:
            raise RequestRefused(503, f"cannot read channel 0x{cid.hex()} from chain {self.chain_id}: {e}") from e
        try:
            ahead = max(0.0, float(self._chain_time()) - time.time())
        except Exception:  # noqa: BLE001 - the block time only refines expiry: keep the last known offset
            ahead = self._offset
        with self._lock:
            self._install(info)
            self._offset = ahead
        return info

    def now(self) -> float:
        """Unix time as the chain sees it, as far as this provider knows (``clock`` plus the chain's lead)."""
        return self.clock() + self._offset

    async def refresh_async(self, cid: bytes) -> None:
        """``refresh`` in a worker thread; concurrent callers for one channel share one read."""
        fut = self._reading.get(cid)
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(self.refresh, cid))
            self._reading[cid] = fut
            fut.add_done_callback(lambda _f: self._reading.pop(cid, None))
        await asyncio.shield(fut)

    def restore(self, records: Iterable[ReceiptRecord]) -> int:
        """Rebuild served amounts, best vouchers, ticket books and spent tickets from this provider's receipts;
        returns how many receipts paid through this contract were applied. Call before serving."""
        refs = []
        for rec in records:
            ref = VoucherRef.parse(rec.channel)
            if ref is not None and ref.chain_id == self.chain_id and ref.contract.lower() == self.address.lower():
                refs.append((ref, rec.price))
        with self._lock:
            for ref, _ in refs:  # the books first: a receipt recording one in full precedes those that refer to it
                if ref.anchor:
                    st = self._channels.get(ref.channel_id)
                    if st is None:
                        st = self._channels[ref.channel_id] = _State()
                    if ref.amount not in st.books:
                        st.books[ref.amount] = _Book(ref.anchor, ref.signature, ref.book_signature,
                                                     ChainCheck(ref.anchor), voucher_field(
                                                         self.chain_id, self.address, ref.channel_id, ref.amount),
                                                     recorded=True)
                    if ref.amount > st.best:
                        st.best, st.best_signature = ref.amount, ref.signature
            for ref, price in refs:
                st = self._channels.get(ref.channel_id)
                if st is None:
                    st = self._channels[ref.channel_id] = _State()
                st.served += price
                book = st.books.get(ref.amount)
                if book is not None and not book.chain.spent(ref.ticket):  # its next tickets are checked from
                    book.chain.spend(ref.ticket)  # the anchor (at most MAX_AHEAD hashes)
        return len(refs)

    # ------------------------------------------------------------------ acceptance
    def recover(self, digest: bytes, signature: bytes, what: str) -> bytes:
        """The 20-byte signer of ``digest`` (``what`` names it in the refusal). Raises PaymentRefused(401)."""
        try:
            return recovery.recover_address(digest, signature)
        except SignatureError as e:
            raise PaymentRefused(401, f"bad {what} signature: {e}") from e

    def _digests(self, book: TicketBook) -> tuple[bytes, bytes]:
        v = book.voucher
        return self.domain.digest(v.channel_id, v.amount), self.domain.book_digest(v.channel_id, v.amount, book.anchor)

    def accept_known(self, header: str, price: int, book: TicketBook | None = None) -> Ticket | None:
        """``accept``'s fast path, without awaiting: a ticket, given as its ``X-Ledgermind-Ticket`` header, if it
        names a book accepted before (``book``, if the request carries it, must be that book), on a channel whose
        cached facts allow it, and passes every rule. None in every other case, malformed headers and refusals
        included: then ``parse_ticket`` and ``accept`` decide, and say why. Raises nothing.

        Most paid requests end here, so it checks what those check in as few steps as it can: no TicketRef, no
        exception, one call into the book's chain check."""
        parts = split_ticket(header)
        if parts is None:
            return None
        cid, amount, index, link = parts
        st = self._channels.get(cid)
        if st is None or not st.usable:
            return None
        known = st.books.get(amount)
        info = st.info
        if (known is None or amount > info.deposit or amount < info.paid  # type: ignore[union-attr]  # usable: set
                or self.clock() + self._offset >= st.until):
            return None
        if book is not None and (book.anchor != known.anchor or book.voucher.channel_id != cid
                                 or book.voucher.amount != amount):
            return None
        with self._lock:
            if max(st.best, amount) < st.served + price or not known.chain.take(index, link):
                return None
            st.served += price
        return known.spend(cid, amount, price, index, link)

    async def accept(self, ticket: TicketRef, book: TicketBook | None, price: int) -> Ticket:
        """Accept ``ticket`` as payment of ``price``, or raise RequestRefused with the HTTP status and reason.
        ``book`` is the ticket book it spends (its channel and amount are the ticket's), or None if the payer
        takes it that this provider knows the book already (409 if it does not: send the book).

        The book's two signatures are recovered the first time it is seen (on the caller's thread: ~120 us once
        per book; later tickets of it cost a hash). Reads the chain (in a worker thread) only for a channel not
        seen before, or when the cached facts may be stale for this decision (see the module docstring)."""
        cid = ticket.channel_id
        if book is None and not self._knows(ticket):
            raise self._unknown_book(ticket)
        st = self._state(cid)
        if st.info is None or (not st.info.exists and self._stale(st)):
            await self.refresh_async(cid)
        signers = self._signers(st, ticket.amount, book)
        try:
            return self._decide(ticket, book, signers, price, may_reread=True)
        except _Reread:
            await self.refresh_async(cid)
            return self._decide(ticket, book, signers, price, may_reread=False)

    def _signers(self, st: _State, amount: int, book: TicketBook | None) -> list[bytes] | None:
        """The recovered signers of ``book``'s voucher and book, or None if there is no book or it is known.
        Raises PaymentRefused(401)."""
        if book is None:
            return None
        known = st.books.get(amount)
        if known is not None and known.anchor == book.anchor:
            return None
        voucher_digest, book_digest = self._digests(book)
        return [self.recover(voucher_digest, book.voucher.signature, "voucher"),
                self.recover(book_digest, book.signature, "ticket book")]

    def accept_sync(self, ticket: TicketRef, book: TicketBook | None, price: int) -> Ticket:
        """``accept`` for callers without an event loop (reads the chain in this thread)."""
        cid = ticket.channel_id
        if book is None and not self._knows(ticket):
            raise self._unknown_book(ticket)
        st = self._state(cid)
        if st.info is None or (not st.info.exists and self._stale(st)):
            self.refresh(cid)
        signers = self._signers(st, ticket.amount, book)
        try:
            return self._decide(ticket, book, signers, price, may_reread=True)
        except _Reread:
            self.refresh(cid)
            return self._decide(ticket, book, signers, price, may_reread=False)

    def _knows(self, ticket: TicketRef) -> bool:
        """Whether the book ``ticket`` names was accepted (without making state for an unknown channel)."""
        st = self._channels.get(ticket.channel_id)
        return st is not None and ticket.amount in st.books

    @staticmethod
    def _unknown_book(ticket: TicketRef) -> PaymentRefused:
        return PaymentRefused(409, f"unknown ticket book: voucher {ticket.amount} on {_name(ticket.channel_id)} is "
                                   f"not known to this provider: send the book with the ticket")

    def _stale(self, st: _State) -> bool:
        return time.monotonic() - st.read_at >= self.refresh_interval

    def _decide(self, ticket: TicketRef, book: TicketBook | None, signers: list[bytes] | None, price: int,
                may_reread: bool) -> Ticket:
        """The rules of the module docstring for ``ticket`` of ``book`` (None: a book accepted before);
        ``signers`` are the recovered 20-byte signers of its voucher and book when the book was not known.

        Raises PaymentRefused, or _Reread (only if ``may_reread``) when stale chain facts might be why it fails."""
        now = self.now()
        cid, amount, index = ticket.channel_id, ticket.amount, ticket.index
        with self._lock:
            st = self._state(cid)
            info = st.info
            assert info is not None
            if not info.exists:
                raise PaymentRefused(402, f"unknown {_name(cid)}: open a channel on PaymentChannels {self.address} "
                                          f"(chain {self.chain_id}) to {self.provider}")
            if info.recipient != self.provider:
                raise PaymentRefused(402, f"{_name(cid)} pays {info.recipient}, not this provider {self.provider}")
            if info.token != self.token:
                raise PaymentRefused(402, f"{_name(cid)} holds token {info.token}; this provider is paid in {self.token}")
            if info.closed:
                raise PaymentRefused(410, f"{_name(cid)} is closed (reclaimed by its sender)")
            if now >= info.expiry - self.margin:
                if may_reread and self._stale(st):
                    raise _Reread
                if now >= info.expiry:
                    raise PaymentRefused(410, f"{_name(cid)} expired at {info.expiry} (now {int(now)})")
                raise PaymentRefused(402, f"{_name(cid)} expires in {int(info.expiry - now)} s, within the provider's "
                                          f"{int(self.margin)} s settlement margin: extend it or open a new one")
            if amount > info.deposit:
                if may_reread and self._stale(st):
                    raise _Reread
                raise PaymentRefused(402, f"voucher {amount} is above the {_name(cid)} deposit {info.deposit}: "
                                          f"top it up")
            known = st.books.get(amount)
            # the book whose voucher was settled keeps its prepaid tickets (rule 5 still bounds them)
            if amount < info.paid or (amount == info.paid and known is None):
                raise PaymentRefused(402, f"voucher not above what is already settled: settled {info.paid}, "
                                          f"voucher {amount}")
            if known is not None and book is not None and known.anchor != book.anchor:
                raise PaymentRefused(409, f"voucher {amount} on {_name(cid)} was already used with another ticket "
                                          f"book: sign a voucher for a new amount")
            if known is None:
                if book is None or signers is None:  # not sent, or known on arrival and forgotten since
                    raise self._unknown_book(ticket)
                for signer, what in zip(signers, ("voucher", "ticket book")):
                    if signer != st.sender:
                        raise PaymentRefused(401, f"{what} signed by {checksum_address(signer)}, not by the "
                                                  f"{_name(cid)} sender {info.sender}")
                target = _Book(book.anchor, book.voucher.signature, book.signature, ChainCheck(book.anchor),
                               voucher_field(self.chain_id, self.address, cid, amount))
            else:
                target = known
            chain = target.chain
            if chain.spent(index):
                raise PaymentRefused(409, f"replayed ticket: ticket {index} of voucher {amount} was already used "
                                          f"on {_name(cid)}")
            if not chain.valid(index, ticket.link):
                raise PaymentRefused(401, f"bad ticket: {index} is not a link of the ticket book's chain within "
                                          f"{MAX_AHEAD} hashes of one already seen")
            if max(st.best, amount) < st.served + price:
                raise PaymentRefused(402, f"voucher does not cover the requests served: served {st.served}, "
                                          f"voucher {amount}, this request {price}")
            if known is None:
                st.books[amount] = target
                if amount > st.best:
                    st.best, st.best_signature = amount, target.signature
            st.served += price
            chain.spend(index)
            return target.spend(cid, amount, price, index, ticket.link)

    def recorded(self, ticket: Ticket) -> None:
        """The receipt of ``ticket`` is durable: if it recorded the book in full, later receipts may refer to it."""
        if ticket.full:
            ticket.book.recorded = True

    def rollback(self, ticket: Ticket) -> None:
        """Undo an accepted request that was not served (its receipt could not be written).

        ``best`` keeps the voucher: it is validly signed, and redeeming it never takes more than was promised."""
        with self._lock:
            st = self._channels.get(ticket.channel_id)
            if st is not None:
                st.served -= ticket.price
                ticket.book.chain.unspend(ticket.index, ticket.link)

    def close_out(self, voucher: Voucher, signer: bytes) -> dict[str, Any]:
        """Take the payer's closing voucher: one for what it sent, below the ticket book it paid ahead with
        (``signer``: the voucher's recovered 20-byte signer). Settlement then redeems it rather than the book's
        voucher while it covers what was served, so the unused tickets are not charged. Kept in memory: a
        restart before settlement falls back to the book's voucher. Raises PaymentRefused."""
        cid = voucher.channel_id
        with self._lock:
            st = self._channels.get(cid)
            if st is None or st.info is None:
                raise PaymentRefused(404, f"{_name(cid)} has paid this provider nothing")
            if signer != st.sender:
                raise PaymentRefused(401, f"voucher signed by {checksum_address(signer)}, not by the {_name(cid)} "
                                          f"sender {st.info.sender}")
            if voucher.amount < st.served:
                raise PaymentRefused(402, f"closing voucher does not cover the requests served: served {st.served}, "
                                          f"voucher {voucher.amount}")
            if voucher.amount > st.best:
                raise PaymentRefused(400, f"a closing voucher is for at most the best voucher {st.best}, not "
                                          f"{voucher.amount}")
            if st.closing is None or voucher.amount < st.closing.amount:
                st.closing = voucher
        return self.status(cid)

    # ------------------------------------------------------------------ settlement
    def status(self, cid: bytes) -> dict[str, Any]:
        """What the provider knows of channel ``cid`` (no chain call)."""
        with self._lock:
            st = self._channels.get(cid) or self._unknown.get(cid) or _State()
            return {"channelId": "0x" + cid.hex(), "served": str(st.served), "best": str(st.best),
                    "closing": str(st.closing.amount) if st.closing else None,
                    "unsettled": str(max(0, self._redeemable(st).amount - (st.info.paid if st.info else 0))),
                    "chain": st.info.to_json() if st.info else None}

    @staticmethod
    def _redeemable(st: _State) -> Voucher:
        """What settling would redeem: the closing voucher while it covers what was served, else the best."""
        if st.closing is not None and st.closing.amount >= st.served:
            return st.closing
        return Voucher(st.closing.channel_id if st.closing else b"", st.best, st.best_signature)

    def channels(self) -> list[bytes]:
        with self._lock:
            return list(self._channels)

    def due(self) -> list[bytes]:
        """Channels to settle now: a voucher above what is paid, and expiry within the margin (or unknown)."""
        now = self.now()
        with self._lock:
            return [cid for cid, st in self._channels.items()
                    if self._redeemable(st).amount > (st.info.paid if st.info else 0)
                    and (st.info is None or now >= st.info.expiry - self.margin) and not (st.info and st.info.closed)]

    def settle(self, cid: bytes, account: LocalAccount) -> Settlement | None:
        """Redeem the best voucher of ``cid`` on chain with the provider's ``account`` (blocking).

        Returns None when there is nothing to redeem (no voucher above what is paid). Raises ChainError if the
        transaction fails for another reason than having been redeemed already (then the state is re-read).
        """
        if account.address != self.provider:
            raise InvalidInputError(f"settle with the provider's account {self.provider}, not {account.address}")
        info = self.refresh(cid)
        with self._lock:
            st = self._channels.get(cid)
            if st is None or info.closed:
                return None
            voucher = self._redeemable(st)
            if voucher.amount <= info.paid:
                return None
            voucher = Voucher(cid, voucher.amount, voucher.signature)
        try:
            receipt = self.contract.settle(account, voucher)
        except ChainError:
            after = self.refresh(cid)
            if after.paid >= voucher.amount:  # redeemed meanwhile (e.g. a retry after a lost receipt)
                return None
            raise
        after = self.refresh(cid)
        return Settlement(cid, voucher.amount, voucher.amount - info.paid, receipt.tx_hash)

    def settle_all(self, account: LocalAccount, only_due: bool = False) -> list[Settlement]:
        """Settle every channel with something to redeem (or only those ``due``). Raises ChainError."""
        out = []
        for cid in self.due() if only_due else self.channels():
            done = self.settle(cid, account)
            if done is not None:
                out.append(done)
        return out

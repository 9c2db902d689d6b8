"""Ticket books: one signed voucher pays for many requests, each request authorised by one link of a hash chain.

Checking a secp256k1 signature costs ~60 us here, a fifth of serving a small model; doing it per request is
what made paid serving slow. A client therefore pays *ahead* for a few requests at a time, as in PayWord
(Rivest and Shamir, 1996):

- it picks a random seed ``s`` and computes the chain ``v[n] = s``, ``v[i-1] = sha256(v[i])``, down to the
  anchor ``v[0]``;
- it signs, once, a cumulative voucher for ``amount`` (what it has committed so far plus ``n`` requests at
  this price: the provider may redeem it as usual) and a ``TicketBook(channelId, amount, anchor)`` binding the
  chain to that voucher (both EIP-712, in the PaymentChannels domain; the contract only ever sees the voucher);
- request ``i`` (1, 2, ..., n) carries the ticket ``(channel, amount, i, v[i])`` and, until the provider has
  answered one request of the book, the book itself. The provider checks the two signatures the first time it
  sees the book and then, per request, that ``sha256`` applied ``i - j`` times to ``v[i]`` gives a link ``v[j]``
  it already knows (usually ``j = i - 1``: one hash) and that ``i`` was not used. Once the book is known a
  ticket is ~140 bytes on the wire instead of ~570 with the book.

Only the client knows the links it has not sent yet, so nobody else can spend its credit, and a ticket seen
on the wire cannot be used again. The client risks at most the unused tickets of its last book (``n`` is
small and grows with use: see ``client.PaidChannel``); the provider is never owed more than the vouchers it
holds cover. Links arriving out of order (concurrent requests) are fine: the walk stops at the nearest known
link below, at most ``MAX_AHEAD`` hashes away, which bounds the work a forged ticket can cause. A book has at
most ``MAX_AHEAD`` tickets: a restarted provider knows the spent indices from its receipts, not their links,
and checks the next tickets from the anchor.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from ledgermind.inference.signing import Signer, VoucherDomain
from ledgermind.market.eip712 import Voucher

MAX_AHEAD = 256  # hashes a ticket may be from the nearest link the provider knows (tickets in flight per book)
MAX_INDEX = 2**32


try:  # CPython's own SHA-256: a provider hashes one link per paid request, and this small implementation costs
    # ~3 us when the request finds it out of the CPU's caches, against ~10 us for OpenSSL's (hashlib's default)
    from _sha256 import sha256 as _sha256  # CPython 3.11
except ImportError:  # pragma: no cover - other versions and interpreters
    try:
        from _sha2 import sha256 as _sha256  # CPython 3.12+
    except ImportError:
        _sha256 = hashlib.sha256


def _h(b: bytes) -> bytes:
    return _sha256(b).digest()


@dataclass(frozen=True)
class TicketBook:
    """A voucher and the anchor of the hash chain whose links spend it, with the payer's signature over both."""

    voucher: Voucher
    anchor: bytes
    signature: bytes  # EIP-712 TicketBook(channelId, amount, anchor), by the channel's sender

    @classmethod
    def sign(cls, signer: Signer, domain: VoucherDomain, channel_id: bytes, amount: int, anchor: bytes) -> TicketBook:
        """The voucher for ``amount`` and the book binding ``anchor`` to it, both signed by ``signer``."""
        return cls(domain.sign(signer, channel_id, amount), anchor,
                   signer.sign_digest(domain.book_digest(channel_id, amount, anchor)))

    def header(self, chain_id: int, contract: str) -> str:
        """The ``X-Ledgermind-Voucher`` header (with the chain and contract it was signed for, so a provider on
        another chain says so instead of failing the signature)."""
        return orjson.dumps({**self.voucher.to_json(), "anchor": "0x" + self.anchor.hex(),
                             "bookSignature": "0x" + self.signature.hex(), "chainId": chain_id,
                             "contract": contract}).decode()


class TicketChain:
    """The payer's side: the links of one chain of ``count`` tickets (``links[0]`` is the anchor)."""

    def __init__(self, count: int, seed: bytes | None = None) -> None:
        """Requires 1 <= count <= MAX_INDEX."""
        if not 1 <= count <= MAX_INDEX:
            raise ValueError(f"a ticket chain has 1..{MAX_INDEX} tickets, not {count}")
        links = [os.urandom(32) if seed is None else seed]
        for _ in range(count):
            links.append(_h(links[-1]))
        links.reverse()
        self.links = links
        self.count = count

    @property
    def anchor(self) -> bytes:
        return self.links[0]


class ChainCheck:
    """The provider's side: the links of one chain it has verified, and which ticket indices were spent.

    It holds what is in flight, not what was spent: every index up to ``floor`` is spent, so only the spent
    indices above it are kept, and only the links from the floor's up (a later ticket is checked against the
    nearest of them). A book of 256 tickets spent in order ends holding one link and no index."""

    __slots__ = ("known", "used", "floor")

    def __init__(self, anchor: bytes) -> None:
        self.known: dict[int, bytes] = {0: anchor}
        self.used: set[int] = set()  # spent indices above ``floor``
        self.floor = 0

    def spent(self, index: int) -> bool:
        return index <= self.floor or index in self.used

    def spend(self, index: int) -> None:
        """Mark ``index`` spent (requires: it was not)."""
        if index != self.floor + 1:
            self.used.add(index)
            return
        used, f = self.used, index
        while f + 1 in used:
            f += 1
            used.remove(f)
        known = self.known
        if f in known:  # links below it are never needed again (a book rebuilt from receipts keeps its anchor)
            for k in range(self.floor, f):
                known.pop(k, None)
        self.floor = f

    def unspend(self, index: int, link: bytes) -> None:
        """Undo ``spend(index)`` (its request was not served); ``link``, the ticket's, checks it again."""
        if index <= self.floor:
            self.used.update(range(index + 1, self.floor + 1))
            self.floor = index - 1
        else:
            self.used.discard(index)
        self.known[index] = link

    def take(self, index: int, link: bytes) -> bool:
        """Spend ticket ``index`` if it was not spent and ``link`` is its link; whether it did."""
        floor = self.floor
        if index == floor + 1 and not self.used:  # the next ticket, none in flight: one hash, in one step
            known = self.known
            if _sha256(link).digest() == known.get(floor):
                del known[floor]
                known[index] = link
                self.floor = index
                return True
        if self.spent(index) or not self.valid(index, link):
            return False
        self.spend(index)
        return True

    def valid(self, index: int, link: bytes) -> bool:
        """Whether ``link`` is link ``index`` of this chain (1 <= index; not whether it was spent). A valid link
        is remembered, so the next index costs one hash."""
        links = self.known
        known = links.get(index)
        if known is not None:
            return known == link
        x, k = link, index
        for _ in range(MAX_AHEAD):
            x, k = _sha256(x).digest(), k - 1
            known = links.get(k)
            if known is not None:
                if known != x:
                    return False
                links[index] = link
                return True
        return False


class TicketRef(NamedTuple):
    """One ticket as a request carries it: which book (channel and voucher amount), which link, the link."""

    channel_id: bytes
    amount: int  # the book's voucher amount (cumulative): names the book within its channel
    index: int
    link: bytes

    def header(self) -> str:
        """The ``X-Ledgermind-Ticket`` header: ``"<channel id hex><link hex>:<amount>:<index>"``."""
        return f"{self.channel_id.hex()}{self.link.hex()}:{self.amount}:{self.index}"


_TICKET_FORM = "ticket must be '<channel id and link, 128 hex digits>:<voucher amount>:<index>'"
_fromhex = bytes.fromhex
_new_ref = tuple.__new__  # TicketRef(...) through its generated __new__ costs a third of the parse


def split_ticket(value: str) -> tuple[bytes, int, int, bytes] | None:
    """The channel id, voucher amount, index and link of an ``X-Ledgermind-Ticket`` header
    ``"<channel id><link>:<voucher amount>:<index>"``, or None if it is not one (``parse_ticket`` says why).

    Every paid request is read here: one ``bytes.fromhex``, no regular expression, no exception raised."""
    try:
        raw = _fromhex(value[:128])
        amount_s, index_s = value[129:].split(":")
    except ValueError:
        return None
    # len(raw) == 64: 128 hex digits (fromhex skips spaces); then value[128] exists, as the split found a ':'
    if (len(raw) != 64 or value[128] != ":" or not value.isascii() or not amount_s.isdigit()
            or not index_s.isdigit() or len(amount_s) > 78 or len(index_s) > 10):
        return None
    amount, index = int(amount_s), int(index_s)
    if amount >= 2**256 or not 1 <= index <= MAX_INDEX:
        return None
    return raw[:32], amount, index, raw[32:]


def parse_ticket(value: str) -> TicketRef:
    """``split_ticket`` as a TicketRef. Raises ValueError with a reason."""
    parts = split_ticket(value)
    if parts is not None:
        return _new_ref(TicketRef, parts)
    amount, sep, index = value[129:].partition(":")
    if len(value) < 132 or value[128] != ":" or not sep or not value.isascii():
        raise ValueError(_TICKET_FORM)
    if not amount.isdigit() or len(amount) > 78 or int(amount) >= 2**256:
        raise ValueError("ticket voucher amount must be a decimal uint256")
    if not index.isdigit() or len(index) > 10 or not 1 <= int(index) <= MAX_INDEX:
        raise ValueError(f"ticket index must be 1..{MAX_INDEX}")
    raise ValueError("ticket channel id and link must be 128 hex digits")

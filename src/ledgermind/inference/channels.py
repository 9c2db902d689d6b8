"""Payment channels: the PaymentChannels contract, and the provider's view of the channels that pay it.

``PaymentChannels`` is a thin binding to the contract (open, top up, extend, settle, reclaim, withdraw, read a
channel). ``ProviderChannels`` decides, per request, whether a voucher pays for it, without a chain call per
request and without ever locking a channel, so any number of concurrent requests on one channel succeed.

The acceptance rule. Per channel the provider keeps ``served`` (the sum of the prices of the requests it
served), ``best`` (the highest voucher amount seen, with its signature) and the set of voucher amounts already
used. A request priced ``price`` with voucher ``v`` is accepted iff, in this order:

1. the voucher's EIP-712 signature recovers the channel's sender (401);
2. the channel pays this provider in the token it charges (402), is not closed (410), has not expired (410),
   and does not expire within ``margin`` seconds, the time the provider keeps to settle (402);
3. ``v.amount`` was not used before (409 "replayed voucher");
4. ``v.amount <= deposit`` (402) and ``v.amount > paid`` on chain (402);
5. ``max(best, v.amount) >= served + price`` (402 "voucher does not cover the requests served").

Then ``served += price`` and ``best = max(best, v.amount)``. So the provider can always redeem
``best >= served``: it is never under-paid, whatever order concurrent vouchers arrive in, and a client that
signs each request's voucher for "everything so far plus this request" is never refused.

Rule 1 is checked for every voucher, by secp256k1 recovery over its EIP-712 digest, before anything else; for
``accept`` on an event loop the recovery runs in a child process, a batch per loop turn (``recovery``), and the
recovered 20-byte address is compared with the sender's.

Chain facts (sender, recipient, token, deposit, paid, expiry, closed) are read once per channel and cached; a
voucher above the cached deposit, or a channel seen expiring, triggers one re-read (a top-up or an extension
may have happened), at most once per ``refresh_interval`` per channel.

Durability is the receipts': the server answers only after the request's receipt (which records the voucher:
see ``receipts.VoucherRef``) is durable in the log, and ``restore`` rebuilds ``served``, ``best`` and the used
amounts from those receipts at start-up. A request whose receipt could not be written is ``rollback``-ed.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ledgermind.chain.connection import Chain, ChainError, Receipt
from ledgermind.errors import InvalidInputError, LedgermindError, SignatureError
from ledgermind.inference import recovery
from ledgermind.inference.errors import PaymentRefused, RequestRefused
from ledgermind.inference.receipts import ReceiptRecord, VoucherRef, voucher_field
from ledgermind.inference.signing import voucher_domain
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
@dataclass
class _State:
    info: ChannelInfo | None = None
    sender: bytes = b""  # info.sender as 20 bytes: compared with every voucher's recovered signer
    read_at: float = float("-inf")  # monotonic time of the last chain read
    served: int = 0
    best: int = 0
    best_signature: bytes = b""
    used: set[int] = field(default_factory=set)


@dataclass(slots=True)  # not frozen: one is built per paid request, and a frozen dataclass takes 4x longer to build
class Ticket:
    """An accepted voucher: what its receipt records, and what ``rollback`` needs if that cannot be written."""

    channel_id: bytes
    amount: int
    price: int
    served: int  # after this request
    channel: str  # the voucher as the receipt's ``channel`` field records it (see receipts.VoucherRef)


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
        if info.exists and info.channel_id not in self._channels:
            self._channels[info.channel_id] = self._unknown.pop(info.channel_id, st)
        if info.paid:  # amounts at or below what is settled can never be accepted again: forget them
            st.used = {a for a in st.used if a > info.paid}

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
        """Rebuild served amounts, best vouchers and used amounts from this provider's receipts; returns how
        many receipts paid through this contract were applied. Call before serving."""
        n = 0
        with self._lock:
            for rec in records:
                ref = VoucherRef.parse(rec.channel)
                if ref is None or ref.chain_id != self.chain_id or ref.contract.lower() != self.address.lower():
                    continue
                st = self._channels.get(ref.channel_id)
                if st is None:
                    st = self._channels[ref.channel_id] = _State()
                st.served += rec.price
                st.used.add(ref.amount)
                if ref.amount > st.best:
                    st.best, st.best_signature = ref.amount, ref.signature
                n += 1
        return n

    # ------------------------------------------------------------------ acceptance
    def signer_of(self, voucher: Voucher) -> str:
        """The voucher's signer (checksummed). Raises PaymentRefused(401) for a signature that recovers nobody."""
        return checksum_address(self._signer_bytes(voucher))

    def _signer_bytes(self, voucher: Voucher) -> bytes:
        """The voucher's signer as 20 bytes, recovered in this thread. Raises PaymentRefused(401)."""
        try:
            return recovery.recover_address(self.domain.digest(voucher.channel_id, voucher.amount), voucher.signature)
        except SignatureError as e:
            raise PaymentRefused(401, f"bad voucher signature: {e}") from e

    async def accept(self, voucher: Voucher, price: int) -> Ticket:
        """Accept ``voucher`` as payment of ``price``, or raise RequestRefused with the HTTP status and reason.

        The signature is recovered first, off the event loop (other requests go on meanwhile). Reads the chain
        (in a worker thread) only for a channel not seen before, or when the cached facts may be stale for this
        decision (see the module docstring)."""
        try:
            signer = await recovery.for_loop().address(self.domain.digest(voucher.channel_id, voucher.amount),
                                                       voucher.signature)
        except SignatureError as e:
            raise PaymentRefused(401, f"bad voucher signature: {e}") from e
        cid = voucher.channel_id
        st = self._state(cid)
        if st.info is None or (not st.info.exists and self._stale(st)):
            await self.refresh_async(cid)
        try:
            return self._decide(cid, voucher, signer, price, may_reread=True)
        except _Reread:
            await self.refresh_async(cid)
            return self._decide(cid, voucher, signer, price, may_reread=False)

    def accept_sync(self, voucher: Voucher, price: int) -> Ticket:
        """``accept`` for callers without an event loop (recovers the signer and reads the chain in this thread)."""
        signer = self._signer_bytes(voucher)
        st = self._state(voucher.channel_id)
        if st.info is None or (not st.info.exists and self._stale(st)):
            self.refresh(voucher.channel_id)
        try:
            return self._decide(voucher.channel_id, voucher, signer, price, may_reread=True)
        except _Reread:
            self.refresh(voucher.channel_id)
            return self._decide(voucher.channel_id, voucher, signer, price, may_reread=False)

    def _stale(self, st: _State) -> bool:
        return time.monotonic() - st.read_at >= self.refresh_interval

    def _decide(self, cid: bytes, v: Voucher, signer: bytes, price: int, may_reread: bool) -> Ticket:
        """Rules 2-5 of the module docstring for voucher ``v``, whose signature recovered the 20-byte ``signer``.

        Raises PaymentRefused, or _Reread (only if ``may_reread``) when stale chain facts might be why it fails."""
        now = self.now()
        with self._lock:
            st = self._state(cid)
            info = st.info
            assert info is not None
            if not info.exists:
                raise PaymentRefused(402, f"unknown {_name(cid)}: open a channel on PaymentChannels {self.address} "
                                          f"(chain {self.chain_id}) to {self.provider}")
            if signer != st.sender:
                raise PaymentRefused(401, f"voucher signed by {checksum_address(signer)}, not by the {_name(cid)} "
                                          f"sender {info.sender}")
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
            if v.amount in st.used:
                raise PaymentRefused(409, f"replayed voucher: amount {v.amount} was already used on {_name(cid)}")
            if v.amount > info.deposit:
                if may_reread and self._stale(st):
                    raise _Reread
                raise PaymentRefused(402, f"voucher {v.amount} is above the {_name(cid)} deposit {info.deposit}: "
                                          f"top it up")
            if v.amount <= info.paid:
                raise PaymentRefused(402, f"voucher not above what is already settled: settled {info.paid}, "
                                          f"voucher {v.amount}")
            if max(st.best, v.amount) < st.served + price:
                raise PaymentRefused(402, f"voucher does not cover the requests served: served {st.served}, "
                                          f"voucher {v.amount}, this request {price}")
            st.served += price
            st.used.add(v.amount)
            if v.amount > st.best:
                st.best, st.best_signature = v.amount, v.signature
            return Ticket(cid, v.amount, price, st.served,
                          voucher_field(self.chain_id, self.address, cid, v.amount, v.signature))

    def rollback(self, ticket: Ticket) -> None:
        """Undo an accepted request that was not served (its receipt could not be written).

        ``best`` keeps the voucher: it is validly signed, and redeeming it never takes more than was promised."""
        with self._lock:
            st = self._channels.get(ticket.channel_id)
            if st is not None:
                st.served -= ticket.price
                st.used.discard(ticket.amount)

    # ------------------------------------------------------------------ settlement
    def status(self, cid: bytes) -> dict[str, Any]:
        """What the provider knows of channel ``cid`` (no chain call)."""
        with self._lock:
            st = self._channels.get(cid) or self._unknown.get(cid) or _State()
            return {"channelId": "0x" + cid.hex(), "served": str(st.served), "best": str(st.best),
                    "unsettled": str(max(0, st.best - (st.info.paid if st.info else 0))),
                    "chain": st.info.to_json() if st.info else None}

    def channels(self) -> list[bytes]:
        with self._lock:
            return list(self._channels)

    def due(self) -> list[bytes]:
        """Channels to settle now: a voucher above what is paid, and expiry within the margin (or unknown)."""
        now = self.now()
        with self._lock:
            return [cid for cid, st in self._channels.items()
                    if st.best > (st.info.paid if st.info else 0)
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
            if st is None or st.best <= info.paid or info.closed:
                return None
            voucher = Voucher(cid, st.best, st.best_signature)
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

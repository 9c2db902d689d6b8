"""PaymentChannels and Marketplace against a Python model, with hypothesis driving random sequences of
channel opens, top-ups, vouchers (fresh, replayed, older, above the deposit, forged), reclaims, purchases of
access and licences, NFT sales and resales, fee changes, withdrawals and the passing of time, by five actors
paying in native coin and in the PaymentToken.

Invariants, after every step:
- money is conserved, per currency: what the actors hold + what both contracts hold == what was minted, and
  each contract holds exactly the withdrawable balances it owes + the deposits still locked in open channels;
- a voucher is never redeemed twice nor above its channel's deposit (`paid` only grows, never past the deposit);
- every call the model rejects reverts with the reason the model predicts and changes nothing.
Withdrawals pay the caller its own balance and nobody else's; reclaims work only for the sender after expiry.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import boa
import pytest
from eth_account import Account
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ledgermind.contracts import SOURCE_DIR
from ledgermind.market.eip712 import Voucher

NATIVE = "0x" + "00" * 20
ONE = 10**18
START = 10**9  # wei of each currency per actor: small, so that running out is one of the paths
MAX_UINT = 2**256 - 1
DATASET, MODEL = 1, 2


@functools.cache
def deployer(name: str):
    return boa.load_partial(str(SOURCE_DIR / f"{name}.vy"))


ACTORS = [Account.from_key(bytes([i + 1]) * 32) for i in range(4)]  # LocalAccounts: they sign vouchers
ADMIN = boa.env.eoa  # deploys everything, owns the marketplace, receives its fee
PEOPLE = [a.address for a in ACTORS] + [ADMIN]

actor = st.integers(0, len(ACTORS) - 1)
person = st.integers(0, len(PEOPLE) - 1)
amounts = st.integers(0, START // 4)


@dataclass
class Channel:
    id: bytes
    sender: int
    recipient: int
    token: str
    deposit: int
    paid: int
    expiry: int
    closed: bool = False


@dataclass
class Asset:
    id: int
    owner: int
    seller: int  # who listed access and licences (listings die when the owner changes)
    token: str  # payment token of its listings
    price: int  # per access token
    licence_price: int
    contributors: list[int]  # actor indexes
    shares: list[int]


def list_access_and_licence(market, asset: Asset) -> None:
    """The asset's current owner lists access tokens and licences, with the asset's split."""
    seller = PEOPLE[asset.owner]
    contributors = [PEOPLE[i] for i in asset.contributors]
    market.list_access(asset.id, asset.price, asset.token, contributors, asset.shares, sender=seller)
    market.list_licence(asset.id, asset.licence_price, 600, asset.token, contributors, asset.shares, sender=seller)
    asset.seller = asset.owner


@dataclass(frozen=True)
class Base:
    registry: object
    factory: object
    market: object
    channels: object
    pay: object
    assets: tuple[tuple[int, str, int], ...]  # (token id, payment token, price per access token)


def model_asset(asset_id: int, token: str, price: int) -> Asset:
    """Owned and listed by actor 0; datasets of actors 1 and 2 share a third and a sixth of the net."""
    return Asset(asset_id, 0, 0, token, price, price // 3 + 1, [1, 2], [3_333, 1_667])


@functools.cache
def base() -> Base:
    """The starting state of every example, built once (each example runs inside a boa anchor on top of it):
    the contracts, each person's START of native coin and PaymentToken (approved to both contracts), two
    datasets (actors 1 and 2) and two models of actor 0 trained on them, with a 5% royalty to actor 0, their
    access tokens (the marketplace as minter), and access and licence listings, one in each currency."""
    registry = deployer("AssetRegistry").deploy(sender=ADMIN)
    blueprint = deployer("AccessToken").deploy_as_blueprint()
    factory = deployer("AccessTokenFactory").deploy(registry.address, blueprint.address, sender=ADMIN)
    market = deployer("Marketplace").deploy(registry.address, factory.address, sender=ADMIN)
    channels = deployer("PaymentChannels").deploy(sender=ADMIN)
    pay = deployer("PaymentToken").deploy(sender=ADMIN)
    for who in PEOPLE:
        pay.mint(who, START, sender=ADMIN)
        for c in (channels, market):
            pay.approve(c.address, MAX_UINT, sender=who)

    def mint(owner: int, name: bytes, kind: int, parents: list[int]) -> int:
        digest = name.ljust(32, b"\x01")
        registry.mint(PEOPLE[owner], digest, kind, "ledgermind://test/" + name.decode(), parents, sender=ADMIN)
        return int.from_bytes(digest, "big")

    d1, d2 = mint(1, b"d1", DATASET, []), mint(2, b"d2", DATASET, [])
    assets = []
    for name, token, price in ((b"m-native", NATIVE, 1_000_003), (b"m-token", pay.address, 777_777)):
        model = mint(0, name, MODEL, sorted([d1, d2]))
        registry.set_royalty(model, PEOPLE[0], 500, sender=PEOPLE[0])
        factory.create_access_token(model, 10, market.address, sender=PEOPLE[0])
        list_access_and_licence(market, model_asset(model, token, price))
        assets.append((model, token, price))
    return Base(registry, factory, market, channels, pay, tuple(assets))


@pytest.fixture(scope="module", autouse=True)
def base_state():
    """Builds the base state once for this module. titanoboa's pytest plugin runs each fixture's setup in a
    boa anchor that ends with the fixture, and each hypothesis example in one of its own: the base state
    lives as long as this module's tests, and each example starts from it."""
    base()
    yield
    base.cache_clear()


class MarketMachine(RuleBasedStateMachine):
    @initialize(ttl=st.integers(1, 3_000))
    def deploy(self, ttl) -> None:
        b = base()
        self.snapshot = boa.env.anchor()  # undone in teardown: each example starts from the base state
        self.snapshot.__enter__()
        self.registry, self.factory, self.market, self.channels, self.pay = (
            b.registry, b.factory, b.market, b.channels, b.pay
        )
        self.contracts = {"channels": self.channels, "market": self.market}
        for who in PEOPLE:
            boa.env.set_balance(who, START)
        self.supply = {NATIVE: START * len(PEOPLE), self.pay.address: START * len(PEOPLE)}
        self.assets = [model_asset(*a) for a in b.assets]

        self.fee_bps = 0
        self.withdrawable = {(c, who, t): 0 for c in self.contracts for who in range(len(PEOPLE)) for t in self.supply}
        self.channel_list: list[Channel] = []
        self.redeemed: set[tuple[bytes, int]] = set()
        self.salt = 0
        self.touched: list[Channel] = []
        # one open channel per currency from the start, so that vouchers and reclaims happen in every example
        self.open_channel(0, 1, True, START // 10, ttl)
        self.open_channel(2, 1, False, START // 10, ttl)

    def teardown(self) -> None:
        if not hasattr(self, "snapshot"):
            return
        try:
            if not hasattr(self, "channel_list"):  # deploy itself failed: that error is the report
                return
            # the full comparison once per example: every balance owed, every channel
            for (c, who, token), amount in self.withdrawable.items():
                assert self.contracts[c].withdrawable(PEOPLE[who], token) == amount
            for ch in self.channel_list:
                self.check_channel(ch)
            for asset in self.assets:
                assert self.registry.ownerOf(asset.id) == PEOPLE[asset.owner]
        finally:
            self.snapshot.__exit__(None, None, None)

    # --------------------------------------------------------------------------------------------- helpers

    def balance(self, who: str, token: str) -> int:
        return boa.env.get_balance(who) if token == NATIVE else self.pay.balanceOf(who)

    def credit(self, contract: str, who: int, token: str, amount: int) -> None:
        self.withdrawable[(contract, who, token)] += amount

    def split(self, asset: Asset, total: int) -> None:
        """The marketplace's rule: fee off the top, shares of the rest, the remainder to the seller."""
        fee = total * self.fee_bps // 10_000
        self.credit("market", len(PEOPLE) - 1, asset.token, fee)
        net = total - fee
        rest = net
        for who, share in zip(asset.contributors, asset.shares, strict=True):
            part = net * share // 10_000
            self.credit("market", who, asset.token, part)
            rest -= part
        self.credit("market", asset.seller, asset.token, rest)

    def pays(self, who: int, token: str, amount: int) -> str | None:
        """None if `who` holds `amount` of the ERC-20 `token` (always approved), else the reason its payment
        reverts with. Native payments are checked by the caller: without the coin the transaction could not
        even be sent, so those steps are skipped."""
        if token == NATIVE or self.pay.balanceOf(PEOPLE[who]) >= amount:
            return None
        return "erc20: transfer amount exceeds balance"

    def cannot_send(self, who: int, value: int) -> bool:
        return boa.env.get_balance(PEOPLE[who]) < value

    def check_channel(self, ch: Channel) -> None:
        on_chain = self.channels.channel(ch.id)
        assert on_chain == (PEOPLE[ch.sender], PEOPLE[ch.recipient], ch.token, ch.deposit, ch.paid, ch.expiry,
                            ch.closed)
        assert on_chain[4] <= on_chain[3]  # never paid above the deposit

    # ---------------------------------------------------------------------------------------------- rules

    @rule(sender=actor, offset=st.sampled_from([1, 2, 3, 0]), native=st.booleans(), amount=amounts,
          ttl=st.integers(1, 3_000))
    def open_channel_rule(self, sender, offset, native, amount, ttl) -> None:
        """A channel to another actor (offset 0: to itself, refused)."""
        self.open_channel(sender, (sender + offset) % len(ACTORS), native, amount, ttl)

    def open_channel(self, sender: int, recipient: int, native: bool, amount: int, ttl: int) -> None:
        token = NATIVE if native else self.pay.address
        self.salt += 1
        salt = self.salt.to_bytes(32, "big")
        expiry = boa.env.evm.patch.timestamp + ttl
        args = (PEOPLE[recipient], token, amount, expiry, salt)
        kwargs = {"sender": PEOPLE[sender], "value": amount if native else 0}
        if self.cannot_send(sender, kwargs["value"]):
            return
        reason = ("recipient is sender" if sender == recipient else "zero amount" if amount == 0
                  else self.pays(sender, token, amount))
        event(f"open_channel: {reason or 'ok'}")  # shown by --hypothesis-show-statistics
        if reason is not None:
            with boa.reverts(reason):
                self.channels.open(*args, **kwargs)
            return
        channel_id = self.channels.open(*args, **kwargs)
        ch = Channel(channel_id, sender, recipient, token, amount, 0, expiry)
        self.channel_list.append(ch)
        self.touched.append(ch)

    @precondition(lambda self: self.channel_list)
    @rule(data=st.data(), amount=amounts)
    def top_up(self, data, amount) -> None:
        ch = data.draw(st.sampled_from(self.channel_list))
        caller = data.draw(st.sampled_from([ch.sender, ch.sender, ch.sender, ch.recipient]))
        native = ch.token == NATIVE
        kwargs = {"sender": PEOPLE[caller], "value": amount if native else 0}
        if self.cannot_send(caller, kwargs["value"]):
            return
        if caller != ch.sender:
            reason = "caller is not the channel sender"
        elif ch.closed:
            reason = "channel closed"
        elif amount == 0:
            reason = "zero amount"
        else:
            reason = self.pays(caller, ch.token, amount)
        self.touched.append(ch)
        event(f"top_up: {reason or 'ok'}")  # shown by --hypothesis-show-statistics
        if reason is not None:
            with boa.reverts(reason):
                self.channels.top_up(ch.id, amount, **kwargs)
            return
        self.channels.top_up(ch.id, amount, **kwargs)
        ch.deposit += amount

    @precondition(lambda self: self.channel_list)
    @rule(data=st.data(), kind=st.sampled_from(["replay", "older", "above", "forged", "not recipient"]))
    def settle_bad_voucher(self, data, kind) -> None:
        self.settle(data, kind)

    @precondition(lambda self: self.channel_list)
    @rule(data=st.data())
    def settle_fresh_voucher(self, data) -> None:
        """The common case, as its own rule so that it runs often: the recipient redeems the newest voucher."""
        self.settle(data, "fresh")

    def settle(self, data, kind: str) -> None:
        ch = data.draw(st.sampled_from(self.channel_list))
        signer, caller = ch.sender, ch.recipient
        amount = ch.paid + data.draw(st.integers(1, max(ch.deposit - ch.paid, 1)))
        if kind == "replay":
            amount = ch.paid
        elif kind == "older":
            amount = data.draw(st.integers(0, ch.paid))
        elif kind == "above":
            amount = ch.deposit + data.draw(st.integers(1, START))
        elif kind == "forged":
            signer = data.draw(actor.filter(lambda a: a != ch.sender))
        elif kind == "not recipient":
            caller = data.draw(person.filter(lambda p: p != ch.recipient))
        signature = Voucher(ch.id, amount).sign(ACTORS[signer], boa.env.evm.patch.chain_id, self.channels.address)

        if caller != ch.recipient:
            reason = "caller is not the channel recipient"
        elif ch.closed:
            reason = "channel closed"
        elif amount > ch.deposit:
            reason = "voucher above deposit"
        elif amount <= ch.paid:
            reason = "voucher already redeemed"
        elif signer != ch.sender:
            reason = "voucher not signed by sender"
        else:
            reason = None
        self.touched.append(ch)
        event(f"settle: {reason or 'ok'}")  # shown by --hypothesis-show-statistics
        if reason is not None:
            with boa.reverts(reason):
                self.channels.settle(ch.id, amount, signature.signature, sender=PEOPLE[caller])
            return
        assert (ch.id, amount) not in self.redeemed
        payout = self.channels.settle(ch.id, amount, signature.signature, sender=PEOPLE[caller])
        assert payout == amount - ch.paid
        self.redeemed.add((ch.id, amount))
        self.credit("channels", ch.recipient, ch.token, payout)
        ch.paid = amount

    @precondition(lambda self: self.channel_list)
    @rule(data=st.data())
    def reclaim(self, data) -> None:
        ch = data.draw(st.sampled_from(self.channel_list))
        caller = data.draw(st.sampled_from([ch.sender, ch.sender, ch.recipient]))
        if caller != ch.sender:
            reason = "caller is not the channel sender"
        elif ch.closed:
            reason = "channel closed"
        elif boa.env.evm.patch.timestamp < ch.expiry:
            reason = "channel not expired"
        else:
            reason = None
        self.touched.append(ch)
        event(f"reclaim: {reason or 'ok'}")  # shown by --hypothesis-show-statistics
        if reason is not None:
            with boa.reverts(reason):
                self.channels.reclaim(ch.id, sender=PEOPLE[caller])
            return
        refund = self.channels.reclaim(ch.id, sender=PEOPLE[caller])
        assert refund == ch.deposit - ch.paid
        self.credit("channels", ch.sender, ch.token, refund)
        ch.closed = True

    @rule(seconds=st.integers(1, 2_000))
    def time_passes(self, seconds) -> None:
        boa.env.time_travel(seconds=seconds)

    @rule(who=person, contract=st.sampled_from(["channels", "market"]), native=st.booleans())
    def withdraw(self, who, contract, native) -> None:
        token = NATIVE if native else self.pay.address
        c = self.contracts[contract]
        owed = self.withdrawable[(contract, who, token)]
        if owed == 0:
            with boa.reverts("nothing to withdraw"):
                c.withdraw(token, sender=PEOPLE[who])
            return
        before = self.balance(PEOPLE[who], token)
        assert c.withdraw(token, sender=PEOPLE[who]) == owed
        assert self.balance(PEOPLE[who], token) == before + owed  # its own balance, to itself
        self.withdrawable[(contract, who, token)] = 0
        assert c.withdrawable(PEOPLE[who], token) == 0

    @rule(buyer=person, which=st.integers(0, 1), n=st.integers(0, 3))
    def buy_access(self, buyer, which, n) -> None:
        asset = self.assets[which]
        total = asset.price * n
        kwargs = {"sender": PEOPLE[buyer], "value": total if asset.token == NATIVE else 0}
        if self.cannot_send(buyer, kwargs["value"]):
            return
        reason = ("zero amount" if n == 0 else "listing void: asset owner changed" if asset.seller != asset.owner
                  else self.pays(buyer, asset.token, total))
        event(f"buy_access: {reason or 'ok'}")  # shown by --hypothesis-show-statistics
        if reason is not None:
            with boa.reverts(reason):
                self.market.buy_access(asset.id, n, **kwargs)
            return
        self.market.buy_access(asset.id, n, **kwargs)
        self.split(asset, total)

    @rule(buyer=person, which=st.integers(0, 1))
    def buy_licence(self, buyer, which) -> None:
        asset = self.assets[which]
        price = asset.licence_price
        kwargs = {"sender": PEOPLE[buyer], "value": price if asset.token == NATIVE else 0}
        if self.cannot_send(buyer, kwargs["value"]):
            return
        reason = ("listing void: asset owner changed" if asset.seller != asset.owner
                  else self.pays(buyer, asset.token, price))
        event(f"buy_licence: {reason or 'ok'}")  # shown by --hypothesis-show-statistics
        if reason is not None:
            with boa.reverts(reason):
                self.market.buy_licence(asset.id, **kwargs)
            return
        self.market.buy_licence(asset.id, **kwargs)
        self.split(asset, price)
        assert self.market.has_access(asset.id, PEOPLE[buyer])

    @rule(which=st.integers(0, 1), buyer=actor, price=st.integers(1, START // 4))
    def sell_asset(self, which, buyer, price) -> None:
        """The owner offers the NFT; `buyer` buys it (royalty to actor 0, fee, the rest to the seller)."""
        asset = self.assets[which]
        seller = PEOPLE[asset.owner]
        self.registry.approve(self.market.address, asset.id, sender=seller)
        self.market.list_asset(asset.id, price, asset.token, sender=seller)
        kwargs = {"sender": PEOPLE[buyer], "value": price if asset.token == NATIVE else 0}
        if self.cannot_send(buyer, kwargs["value"]):
            return
        reason = "buyer is seller" if buyer == asset.owner else self.pays(buyer, asset.token, price)
        event(f"sell_asset: {reason or 'ok'}")  # shown by --hypothesis-show-statistics
        if reason is not None:
            with boa.reverts(reason):
                self.market.buy_asset(asset.id, **kwargs)
            return
        self.market.buy_asset(asset.id, **kwargs)
        royalty, fee = price * 500 // 10_000, price * self.fee_bps // 10_000
        self.credit("market", 0, asset.token, royalty)
        self.credit("market", len(PEOPLE) - 1, asset.token, fee)
        self.credit("market", asset.owner, asset.token, price - royalty - fee)
        asset.owner = buyer

    @rule(which=st.integers(0, 1))
    def relist(self, which) -> None:
        """The current owner authorises the marketplace on the access token and lists again."""
        asset = self.assets[which]
        token = deployer("AccessToken").at(self.factory.access_token(asset.id))
        token.set_minter(self.market.address, True, sender=PEOPLE[asset.owner])
        list_access_and_licence(self.market, asset)

    @rule(bps=st.integers(0, 1_000))
    def set_fee(self, bps) -> None:
        self.market.set_fee(bps, ADMIN, sender=ADMIN)
        self.fee_bps = bps

    # ------------------------------------------------------------------------------------------ invariants

    @invariant()
    def money_is_conserved(self) -> None:
        for token, supply in self.supply.items():
            owed = {c: sum(v for (cc, _, t), v in self.withdrawable.items() if cc == c and t == token)
                    for c in self.contracts}
            locked = sum(ch.deposit - ch.paid for ch in self.channel_list if ch.token == token and not ch.closed)
            held = {c: self.balance(self.contracts[c].address, token) for c in self.contracts}
            assert held["channels"] == owed["channels"] + locked
            assert held["market"] == owed["market"]
            assert sum(self.balance(p, token) for p in PEOPLE) + sum(held.values()) == supply

    @invariant()
    def touched_channels_match_the_model(self) -> None:
        for ch in self.touched:
            self.check_channel(ch)
        self.touched = []


MarketMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestMarketContracts = MarketMachine.TestCase

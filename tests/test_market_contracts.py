"""The market contracts from a caller's side, on titanoboa's in-process EVM with the real contracts (no mocks):
PaymentChannels (vouchers signed by ``ledgermind.market.eip712.Voucher.sign``), ProviderRegistry, PaymentToken,
AccessToken + AccessTokenFactory and Marketplace, every revert reason, exact payment splits, royalties on resale,
the dispenser, licences, contracts that try to re-enter, and one pass of the committed artifacts on eth-tester's
py-evm through web3.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from typing import Any

import boa
import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from ledgermind.contracts import SOURCE_DIR, load
from ledgermind.market.eip712 import CHANNELS_NAME, CHANNELS_VERSION, Voucher, domain_separator

NATIVE = "0x" + "00" * 20
ONE = 10**18
DATASET, MODEL = 1, 2
MARKET_CONTRACTS = (
    "PaymentChannels",
    "ProviderRegistry",
    "PaymentToken",
    "AccessToken",
    "AccessTokenFactory",
    "Marketplace",
)


@functools.cache
def deployer(name: str):
    """Compiled on first use from the source (the committed artifacts are pinned to it below)."""
    return boa.load_partial(str(SOURCE_DIR / f"{name}.vy"))


def event_names(contract) -> list[str]:
    return [type(e).__name__ for e in contract.get_logs()]


def last_event(contract, name: str):
    (event,) = [e for e in contract.get_logs() if type(e).__name__ == name]
    return event


def now() -> int:
    return boa.env.evm.patch.timestamp


def chain_id() -> int:
    return boa.env.evm.patch.chain_id


def digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def tid(name: str) -> int:
    return int.from_bytes(digest(name), "big")


def fund(address: str, wei: int = 1_000 * ONE) -> None:
    boa.env.set_balance(address, boa.env.get_balance(address) + wei)


def new_account() -> Any:
    """An eth_account LocalAccount (it can sign vouchers) with native coin on the boa chain."""
    acct = Account.create()
    fund(acct.address)
    return acct


def new_address(alias: str) -> str:
    address = boa.env.generate_address(alias)
    fund(address)
    return address


# ------------------------------------------------------------------------------------------------ artifacts


@pytest.mark.parametrize("name", MARKET_CONTRACTS)
def test_boa_runs_the_committed_bytecode(name):
    art = load(name)
    data = deployer(name).compiler_data
    assert "0x" + data.bytecode.hex() == art["bytecode"]
    assert "0x" + data.bytecode_runtime.hex() == art["deployedBytecode"]
    assert art["evmVersion"] == "cancun"
    if name == "AccessToken":
        # ERC-5202 preamble (0xFE71, version 0, no data) + the deploy code
        assert art["blueprintBytecode"].removeprefix("0x").endswith("fe7100" + art["bytecode"].removeprefix("0x"))
    else:
        assert "blueprintBytecode" not in art


# ------------------------------------------------------------------------------------------- PaymentChannels


@pytest.fixture()
def channels():
    return deployer("PaymentChannels").deploy()


@pytest.fixture()
def pay():
    """The demo ERC-20; boa's default account deployed it, so it owns it and mints."""
    return deployer("PaymentToken").deploy()


@pytest.fixture()
def payer():
    return new_account()


@pytest.fixture()
def provider():
    return new_address("provider")


def open_native(channels, payer, provider, amount=ONE, ttl=3600, salt=b"\x01" * 32) -> bytes:
    return channels.open(provider, NATIVE, amount, now() + ttl, salt, sender=payer.address, value=amount)


def voucher(channels, payer, channel_id: bytes, amount: int) -> bytes:
    """A voucher signed exactly as the Python side signs it."""
    return Voucher(channel_id, amount).sign(payer, chain_id(), channels.address).signature


def test_channel_id_is_computable_off_chain(channels, payer, provider):
    salt = os.urandom(32)
    expected = keccak(abi_encode(["address", "address", "address", "bytes32"], [payer.address, provider, NATIVE, salt]))
    assert channels.channel_id(payer.address, provider, NATIVE, salt) == expected
    expiry = now() + 3600
    before = boa.env.get_balance(channels.address)
    channel_id = channels.open(provider, NATIVE, 5 * ONE, expiry, salt, sender=payer.address, value=5 * ONE)
    assert channel_id == expected
    event = last_event(channels, "ChannelOpened")
    assert (event.channel_id, event.sender, event.recipient, event.token, event.deposit, event.expiry) == (
        expected, payer.address, provider, NATIVE, 5 * ONE, expiry
    )
    assert channels.channel(expected) == (payer.address, provider, NATIVE, 5 * ONE, 0, expiry, False)
    assert boa.env.get_balance(channels.address) == before + 5 * ONE
    assert channels.channel(b"\x00" * 32) == (NATIVE, NATIVE, NATIVE, 0, 0, 0, False)  # never opened


def test_domain_and_digest_match_the_python_side(channels):
    assert channels.domain_separator() == domain_separator(CHANNELS_NAME, CHANNELS_VERSION, chain_id(), channels.address)
    assert channels.VOUCHER_TYPEHASH() == keccak(b"Voucher(bytes32 channelId,uint256 amount)")
    cid = os.urandom(32)
    assert channels.voucher_digest(cid, 12345) == Voucher(cid, 12345).digest(chain_id(), channels.address)
    fields, name, version, chain, contract, salt, extensions = channels.eip712Domain()
    assert (fields, name, version, chain, contract) == (b"\x0f", CHANNELS_NAME, CHANNELS_VERSION, chain_id(), channels.address)


def test_open_rejects_bad_channels(channels, pay, payer, provider):
    expiry = now() + 3600
    salt = b"\x02" * 32
    cases = [
        ("zero recipient", (NATIVE, NATIVE, ONE, expiry, salt), ONE),
        ("recipient is sender", (payer.address, NATIVE, ONE, expiry, salt), ONE),
        ("zero amount", (provider, NATIVE, 0, expiry, salt), 0),
        ("expiry in the past", (provider, NATIVE, ONE, now(), salt), ONE),
        ("expiry out of range", (provider, NATIVE, ONE, 2**64, salt), ONE),
        ("msg.value does not match amount", (provider, NATIVE, ONE, expiry, salt), ONE - 1),
        ("msg.value with a token payment", (provider, pay.address, ONE, expiry, salt), 1),
        ("token is not a contract", (provider, provider, ONE, expiry, salt), 0),
        ("erc20: insufficient allowance", (provider, pay.address, ONE, expiry, salt), 0),
    ]
    for reason, args, value in cases:
        with boa.reverts(reason):
            channels.open(*args, sender=payer.address, value=value)
    channels.open(provider, NATIVE, ONE, expiry, salt, sender=payer.address, value=ONE)
    with boa.reverts("channel exists"):
        channels.open(provider, NATIVE, ONE, expiry, salt, sender=payer.address, value=ONE)


def test_python_signed_voucher_settles_once(channels, payer, provider):
    cid = open_native(channels, payer, provider, amount=10 * ONE)
    sig = voucher(channels, payer, cid, 3 * ONE)
    assert Voucher(cid, 3 * ONE, sig).signer(chain_id(), channels.address) == payer.address

    assert channels.settle(cid, 3 * ONE, sig, sender=provider) == 3 * ONE
    event = last_event(channels, "ChannelSettled")
    assert (event.channel_id, event.recipient, event.amount, event.payout) == (cid, provider, 3 * ONE, 3 * ONE)
    assert channels.withdrawable(provider, NATIVE) == 3 * ONE
    assert channels.channel(cid)[4] == 3 * ONE

    # the same voucher, and any older one, cannot be redeemed again
    with boa.reverts("voucher already redeemed"):
        channels.settle(cid, 3 * ONE, sig, sender=provider)
    with boa.reverts("voucher already redeemed"):
        channels.settle(cid, 2 * ONE, voucher(channels, payer, cid, 2 * ONE), sender=provider)

    # a newer cumulative voucher pays only the difference; the channel stays open
    assert channels.settle(cid, 7 * ONE + 1, voucher(channels, payer, cid, 7 * ONE + 1), sender=provider) == 4 * ONE + 1
    assert channels.withdrawable(provider, NATIVE) == 7 * ONE + 1
    assert channels.channel(cid)[4:] == (7 * ONE + 1, channels.channel(cid)[5], False)

    # the whole deposit, not a wei more
    with boa.reverts("voucher above deposit"):
        channels.settle(cid, 10 * ONE + 1, voucher(channels, payer, cid, 10 * ONE + 1), sender=provider)
    assert channels.settle(cid, 10 * ONE, voucher(channels, payer, cid, 10 * ONE), sender=provider) == 3 * ONE - 1


def test_settle_rejects_wrong_signers_callers_and_domains(channels, payer, provider):
    cid = open_native(channels, payer, provider, amount=ONE)
    other = Account.create()
    cases = [
        ("voucher not signed by sender", Voucher(cid, 100).sign(other, chain_id(), channels.address).signature),
        # signed for another chain or another contract: recovers to someone else
        ("voucher not signed by sender", Voucher(cid, 100).sign(payer, chain_id() + 1, channels.address).signature),
        ("voucher not signed by sender", Voucher(cid, 100).sign(payer, chain_id(), "0x" + "cc" * 20).signature),
        # for another amount than claimed
        ("voucher not signed by sender", voucher(channels, payer, cid, 99)),
        ("voucher not signed by sender", b""),
        ("ecdsa: invalid signature", b"\x00" * 65),
    ]
    for reason, sig in cases:
        with boa.reverts(reason):
            channels.settle(cid, 100, sig, sender=provider)
    # a high-s twin of a valid signature is refused (snekmate's malleability check)
    sig = voucher(channels, payer, cid, 100)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (n - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with boa.reverts("ecdsa: invalid signature `s` value"):
        channels.settle(cid, 100, twin, sender=provider)

    with boa.reverts("caller is not the channel recipient"):
        channels.settle(cid, 100, sig, sender=payer.address)
    with boa.reverts("unknown channel"):
        channels.settle(b"\x09" * 32, 100, sig, sender=provider)
    assert channels.settle(cid, 100, sig, sender=provider) == 100


def test_top_up_and_extend_by_the_sender_only(channels, payer, provider):
    cid = open_native(channels, payer, provider, amount=ONE, ttl=100)
    expiry = channels.channel(cid)[5]
    with boa.reverts("caller is not the channel sender"):
        channels.top_up(cid, ONE, sender=provider, value=ONE)
    with boa.reverts("unknown channel"):
        channels.top_up(b"\x09" * 32, ONE, sender=payer.address, value=ONE)
    with boa.reverts("zero amount"):
        channels.top_up(cid, 0, sender=payer.address)
    with boa.reverts("msg.value does not match amount"):
        channels.top_up(cid, ONE, sender=payer.address, value=ONE + 1)
    channels.top_up(cid, ONE, sender=payer.address, value=ONE)
    event = last_event(channels, "ChannelToppedUp")
    assert (event.amount, event.deposit) == (ONE, 2 * ONE)
    # the larger deposit covers a larger voucher
    channels.settle(cid, 2 * ONE, voucher(channels, payer, cid, 2 * ONE), sender=provider)

    with boa.reverts("caller is not the channel sender"):
        channels.extend(cid, expiry + 10, sender=provider)
    with boa.reverts("expiry must increase"):
        channels.extend(cid, expiry, sender=payer.address)
    with boa.reverts("expiry out of range"):
        channels.extend(cid, 2**64, sender=payer.address)
    channels.extend(cid, expiry + 10, sender=payer.address)
    assert last_event(channels, "ChannelExtended").expiry == expiry + 10
    assert channels.channel(cid)[5] == expiry + 10
    boa.env.time_travel(seconds=1000)
    with boa.reverts("expiry in the past"):
        channels.extend(cid, expiry + 20, sender=payer.address)


def test_reclaim_only_by_the_sender_after_expiry(channels, payer, provider):
    cid = open_native(channels, payer, provider, amount=10 * ONE, ttl=600)
    channels.settle(cid, 4 * ONE, voucher(channels, payer, cid, 4 * ONE), sender=provider)
    with boa.reverts("channel not expired"):
        channels.reclaim(cid, sender=payer.address)
    boa.env.time_travel(seconds=599)
    with boa.reverts("channel not expired"):
        channels.reclaim(cid, sender=payer.address)
    boa.env.time_travel(seconds=1)  # now == expiry: expired
    # past expiry and before the reclaim, the recipient may still settle
    channels.settle(cid, 5 * ONE, voucher(channels, payer, cid, 5 * ONE), sender=provider)
    with boa.reverts("caller is not the channel sender"):
        channels.reclaim(cid, sender=provider)
    with boa.reverts("unknown channel"):
        channels.reclaim(b"\x09" * 32, sender=payer.address)

    assert channels.reclaim(cid, sender=payer.address) == 5 * ONE
    event = last_event(channels, "ChannelReclaimed")
    assert (event.channel_id, event.sender, event.refund) == (cid, payer.address, 5 * ONE)
    assert channels.withdrawable(payer.address, NATIVE) == 5 * ONE
    assert channels.channel(cid)[6] is True

    # closed for good: no voucher, no second reclaim, no top-up, no extension, no reopening of the id
    with boa.reverts("channel closed"):
        channels.settle(cid, 6 * ONE, voucher(channels, payer, cid, 6 * ONE), sender=provider)
    with boa.reverts("channel closed"):
        channels.reclaim(cid, sender=payer.address)
    with boa.reverts("channel closed"):
        channels.top_up(cid, ONE, sender=payer.address, value=ONE)
    with boa.reverts("channel closed"):
        channels.extend(cid, now() + 100, sender=payer.address)
    with boa.reverts("channel exists"):
        open_native(channels, payer, provider, amount=ONE)


def test_withdraw_pays_only_the_owner_of_a_balance(channels, payer, provider):
    cid = open_native(channels, payer, provider, amount=3 * ONE)
    channels.settle(cid, 2 * ONE, voucher(channels, payer, cid, 2 * ONE), sender=provider)
    stranger = new_address("stranger")
    with boa.reverts("nothing to withdraw"):
        channels.withdraw(NATIVE, sender=stranger)
    with boa.reverts("nothing to withdraw"):
        channels.withdraw(NATIVE, sender=payer.address)  # the sender's deposit is locked, not withdrawable
    before = boa.env.get_balance(provider)
    assert channels.withdraw(NATIVE, sender=provider) == 2 * ONE
    event = last_event(channels, "Withdrawn")
    assert (event.account, event.token, event.amount) == (provider, NATIVE, 2 * ONE)
    assert boa.env.get_balance(provider) == before + 2 * ONE
    assert channels.withdrawable(provider, NATIVE) == 0
    with boa.reverts("nothing to withdraw"):
        channels.withdraw(NATIVE, sender=provider)
    assert boa.env.get_balance(channels.address) == ONE  # the unpaid part of the deposit


def test_erc20_channel_end_to_end(channels, pay, payer, provider):
    pay.mint(payer.address, 100 * ONE)
    pay.approve(channels.address, 60 * ONE, sender=payer.address)
    cid = channels.open(provider, pay.address, 50 * ONE, now() + 60, b"\x03" * 32, sender=payer.address)
    assert pay.balanceOf(channels.address) == 50 * ONE
    channels.top_up(cid, 10 * ONE, sender=payer.address)
    with boa.reverts("msg.value with a token payment"):
        channels.top_up(cid, 10 * ONE, sender=payer.address, value=1)
    with boa.reverts("erc20: insufficient allowance"):
        channels.top_up(cid, 1, sender=payer.address)
    channels.settle(cid, 42 * ONE, voucher(channels, payer, cid, 42 * ONE), sender=provider)
    boa.env.time_travel(seconds=60)
    assert channels.reclaim(cid, sender=payer.address) == 18 * ONE
    assert channels.withdrawable(provider, pay.address) == 42 * ONE
    with boa.reverts("nothing to withdraw"):
        channels.withdraw(NATIVE, sender=provider)  # a balance is per token
    channels.withdraw(pay.address, sender=provider)
    channels.withdraw(pay.address, sender=payer.address)
    assert (pay.balanceOf(provider), pay.balanceOf(payer.address), pay.balanceOf(channels.address)) == (
        42 * ONE, 58 * ONE, 0
    )


def test_many_requests_one_settlement(channels, payer, provider):
    """10,000 requests at 1 gwei each: only the last voucher goes on chain."""
    cid = open_native(channels, payer, provider, amount=ONE)
    price = 10**9
    last = None
    for i in range(1, 10_001):
        last = Voucher(cid, i * price)  # what the client would send with request i
    signed = last.sign(payer, chain_id(), channels.address)
    assert channels.settle(cid, signed.amount, signed.signature, sender=provider) == 10_000 * price


# ------------------------------------------------------------------------------------------ the asset world


@dataclass
class World:
    registry: Any
    factory: Any
    market: Any
    pay: Any
    admin: str
    alice: str  # owns the model
    carol: str  # owns dataset d1
    dave: str  # owns dataset d2
    buyer: str
    model: int
    d1: int
    d2: int


def mint(registry, to: str, name: str, kind: int, parents: list[int] | None = None) -> int:
    registry.mint(to, digest(name), kind, "ledgermind://test/" + name, sorted(parents or []))
    return tid(name)


@pytest.fixture()
def world() -> World:
    admin = boa.env.eoa
    registry = deployer_asset_registry().deploy()
    blueprint = deployer("AccessToken").deploy_as_blueprint()
    factory = deployer("AccessTokenFactory").deploy(registry.address, blueprint.address)
    market = deployer("Marketplace").deploy(registry.address, factory.address)
    pay = deployer("PaymentToken").deploy()
    alice, carol, dave, buyer = (new_address(n) for n in ("alice", "carol", "dave", "buyer"))
    d1 = mint(registry, carol, "dataset one", DATASET)
    d2 = mint(registry, dave, "dataset two", DATASET)
    model = mint(registry, alice, "the model", MODEL, [d1, d2])
    return World(registry, factory, market, pay, admin, alice, carol, dave, buyer, model, d1, d2)


@functools.cache
def deployer_asset_registry():
    return boa.load_partial(str(SOURCE_DIR / "AssetRegistry.vy"))


def access_token(w: World, asset: int | None = None, per_token: int = 100, minter: str | None = None):
    asset = w.model if asset is None else asset
    owner = w.registry.ownerOf(asset)
    address = w.factory.create_access_token(asset, per_token, minter or w.market.address, sender=owner)
    return deployer("AccessToken").at(address)


# ------------------------------------------------------------------------------------------ ProviderRegistry


@pytest.fixture()
def providers(world):
    return deployer("ProviderRegistry").deploy(world.registry.address)


def test_providers_announce_update_and_withdraw(world, providers):
    p1, p2, p3 = (new_address(f"p{i}") for i in range(3))
    providers.announce(world.model, "https://p1.example/infer", 10**9, NATIVE, sender=p1)
    event = last_event(providers, "ProviderAnnounced")
    assert (event.model_id, event.provider, event.endpoint, event.price, event.token) == (
        world.model, p1, "https://p1.example/infer", 10**9, NATIVE
    )
    providers.announce(world.model, "https://p2.example", 5, world.pay.address, sender=p2)
    providers.announce(world.model, "https://p3.example", 7, NATIVE, sender=p3)
    assert providers.provider_count(world.model) == 3
    assert [p[0] for p in providers.providers(world.model)] == [p1, p2, p3]

    # an update replaces the entry in place
    providers.announce(world.model, "https://p1.example/v2", 2 * 10**9, world.pay.address, sender=p1)
    assert providers.provider_count(world.model) == 3
    assert providers.providers(world.model)[0] == (p1, "https://p1.example/v2", 2 * 10**9, world.pay.address)
    assert providers.provider_of(world.model, p1) == (p1, "https://p1.example/v2", 2 * 10**9, world.pay.address)

    # withdrawing moves the last entry into the gap; only the announcer can withdraw its own entry
    with boa.reverts("not announced"):
        providers.withdraw_announcement(world.model, sender=world.alice)
    providers.withdraw_announcement(world.model, sender=p1)
    event = last_event(providers, "ProviderWithdrawn")
    assert (event.model_id, event.provider) == (world.model, p1)
    assert [p[0] for p in providers.providers(world.model)] == [p3, p2]
    assert providers.provider_of(world.model, p1) == (NATIVE, "", 0, NATIVE)
    with boa.reverts("not announced"):
        providers.withdraw_announcement(world.model, sender=p1)
    providers.withdraw_announcement(world.model, sender=p2)  # the last one: nothing moves
    assert providers.providers(world.model) == [(p3, "https://p3.example", 7, NATIVE)]
    providers.announce(world.model, "https://p1.example/v3", 1, NATIVE, sender=p1)  # announcing again
    assert [p[0] for p in providers.providers(world.model)] == [p3, p1]


def test_announce_checks_the_model_and_the_entry(world, providers):
    p = new_address("p")
    with boa.reverts("unknown model"):
        providers.announce(tid("nobody"), "https://p.example", 1, NATIVE, sender=p)
    with boa.reverts("not a model"):
        providers.announce(world.d1, "https://p.example", 1, NATIVE, sender=p)
    with boa.reverts("empty endpoint"):
        providers.announce(world.model, "", 1, NATIVE, sender=p)
    with boa.reverts("token is not a contract"):
        providers.announce(world.model, "https://p.example", 1, p, sender=p)
    with boa.reverts("registry is not a contract"):
        deployer("ProviderRegistry").deploy(p)
    providers.announce(world.model, "https://p.example", 0, NATIVE, sender=p)  # free serving is allowed
    assert providers.providers(world.model, 1) == []


def test_provider_list_is_unbounded_and_paged(world, providers):
    announcers = [boa.env.generate_address(f"p{i}") for i in range(70)]
    for i, p in enumerate(announcers):
        providers.announce(world.model, f"https://p{i}.example", i, NATIVE, sender=p)
    assert providers.PAGE_SIZE() == 32
    pages = [providers.providers(world.model, offset) for offset in (0, 32, 64, 96)]
    assert [len(p) for p in pages] == [32, 32, 6, 0]
    assert [e[0] for page in pages for e in page] == announcers
    assert providers.providers(world.model) == pages[0]


# ----------------------------------------------------------------------------------------------- PaymentToken


def test_payment_token_is_snekmate_erc20_with_owner_mint_and_permit(pay):
    owner = boa.env.eoa
    assert (pay.name(), pay.symbol(), pay.decimals(), pay.totalSupply()) == ("ledgermind payment token", "LMPAY", 18, 0)
    assert pay.owner() == owner and pay.is_minter(owner)
    holder, spender = Account.create(), new_address("spender")
    pay.mint(holder.address, 5 * ONE, sender=owner)
    with boa.reverts("erc20: access is denied"):
        pay.mint(spender, ONE, sender=spender)

    # EIP-2612: an approval signed off chain, submitted by anyone
    deadline = now() + 600
    signed = Account.sign_typed_data(
        holder.key,
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Permit",
            "domain": {"name": "ledgermind PaymentToken", "version": "1", "chainId": chain_id(),
                       "verifyingContract": pay.address},
            "message": {"owner": holder.address, "spender": spender, "value": 2 * ONE, "nonce": 0,
                        "deadline": deadline},
        },
    )
    pay.permit(holder.address, spender, 2 * ONE, deadline, signed.v, signed.r.to_bytes(32, "big"),
               signed.s.to_bytes(32, "big"), sender=spender)
    assert pay.allowance(holder.address, spender) == 2 * ONE
    pay.transferFrom(holder.address, spender, 2 * ONE, sender=spender)
    assert pay.balanceOf(spender) == 2 * ONE


# ------------------------------------------------------------------------------- AccessToken + factory


def test_only_the_asset_owner_creates_its_one_access_token(world):
    w = world
    with boa.reverts("caller is not asset owner"):
        w.factory.create_access_token(w.model, 100, NATIVE, sender=w.carol)
    with boa.reverts("erc721: invalid token ID"):
        w.factory.create_access_token(tid("nobody"), 100, NATIVE, sender=w.alice)
    with boa.reverts("zero inferences per token"):
        w.factory.create_access_token(w.model, 0, NATIVE, sender=w.alice)
    address = w.factory.create_access_token(w.model, 250, w.market.address, sender=w.alice)
    event = last_event(w.factory, "AccessTokenCreated")
    assert (event.asset_id, event.token, event.creator, event.inferences_per_token, event.minter) == (
        w.model, address, w.alice, 250, w.market.address
    )
    assert w.factory.access_token(w.model) == address
    with boa.reverts("access token exists"):
        w.factory.create_access_token(w.model, 100, NATIVE, sender=w.alice)

    token = deployer("AccessToken").at(address)
    assert (token.asset_id(), token.inferences_per_token(), token.factory(), token.asset_registry()) == (
        w.model, 250, w.factory.address, w.registry.address
    )
    assert (token.name(), token.symbol(), token.decimals(), token.totalSupply()) == (
        "ledgermind access token", "LMACC", 18, 0
    )
    assert token.owner() == w.alice
    assert token.is_minter(w.alice) and token.is_minter(w.market.address)
    assert not token.is_minter(w.factory.address)  # snekmate's deployer-minter role is switched off

    # CREATE2 from the blueprint, salt = asset id: the address is known off chain
    initcode = bytes.fromhex(load("AccessToken")["bytecode"][2:]) + abi_encode(
        ["address", "uint256", "uint256", "address", "address"],
        [w.registry.address, w.model, 250, w.alice, w.market.address],
    )
    predicted = keccak(b"\xff" + bytes.fromhex(w.factory.address[2:]) + w.model.to_bytes(32, "big") + keccak(initcode))
    assert address == to_checksum_address(predicted[12:])

    with boa.reverts("registry is not a contract"):
        deployer("AccessTokenFactory").deploy(w.alice, w.factory.address)
    with boa.reverts("blueprint is not a contract"):
        deployer("AccessTokenFactory").deploy(w.registry.address, w.alice)


def test_minting_follows_the_asset_nft(world):
    w = world
    token = access_token(w, minter=NATIVE)
    helper = new_address("helper")
    assert not token.is_minter(w.market.address)
    with boa.reverts("caller is not a minter"):
        token.mint(w.buyer, ONE, sender=helper)
    token.mint(w.buyer, ONE, sender=w.alice)  # the asset owner mints
    with boa.reverts("caller is not asset owner"):
        token.set_minter(helper, True, sender=helper)
    with boa.reverts("zero minter"):
        token.set_minter(NATIVE, True, sender=w.alice)
    token.set_minter(helper, True, sender=w.alice)
    event = last_event(token, "MinterSet")
    assert (event.owner, event.minter, event.status) == (w.alice, helper, True)
    token.mint(w.buyer, 2 * ONE, sender=helper)
    assert token.balanceOf(w.buyer) == 3 * ONE

    # the NFT changes hands: the old owner and everyone it authorised lose the role at once
    w.registry.transferFrom(w.alice, w.carol, w.model, sender=w.alice)
    assert token.owner() == w.carol
    for who in (w.alice, helper):
        assert not token.is_minter(who)
        with boa.reverts("caller is not a minter"):
            token.mint(w.buyer, ONE, sender=who)
    with boa.reverts("caller is not asset owner"):
        token.set_minter(helper, False, sender=w.alice)
    token.mint(w.buyer, ONE, sender=w.carol)
    token.set_minter(helper, True, sender=w.carol)
    token.mint(w.buyer, ONE, sender=helper)
    token.set_minter(helper, False, sender=w.carol)
    with boa.reverts("caller is not a minter"):
        token.mint(w.buyer, ONE, sender=helper)
    assert token.totalSupply() == 5 * ONE

    # plain snekmate ERC-20 otherwise: transfer and burn
    token.transfer(w.dave, ONE, sender=w.buyer)
    token.burn(ONE, sender=w.dave)
    assert (token.balanceOf(w.buyer), token.balanceOf(w.dave), token.totalSupply()) == (4 * ONE, 0, 4 * ONE)


def test_access_token_exports_no_other_way_to_mint():
    names = {item.get("name") for item in load("AccessToken")["abi"]}
    assert {"mint", "set_minter", "is_minter", "owner", "asset_id", "inferences_per_token", "permit"} <= names
    assert not names & {"transfer_ownership", "renounce_ownership"}
    is_minter = [i for i in load("AccessToken")["abi"] if i.get("name") == "is_minter"]
    assert [i["stateMutability"] for i in is_minter] == ["view"]


# ------------------------------------------------------------------------------------------- Marketplace


def test_admin_sets_a_capped_fee(world):
    w = world
    assert (w.market.fee_bps(), w.market.fee_recipient(), w.market.owner()) == (0, w.admin, w.admin)
    with boa.reverts("ownable: caller is not the owner"):
        w.market.set_fee(100, w.alice, sender=w.alice)
    with boa.reverts("fee above cap"):
        w.market.set_fee(1_001, w.admin)
    with boa.reverts("zero fee recipient"):
        w.market.set_fee(100, NATIVE)
    w.market.set_fee(1_000, w.dave)
    event = last_event(w.market, "FeeSet")
    assert (event.fee_bps, event.fee_recipient) == (1_000, w.dave)
    assert (w.market.fee_bps(), w.market.fee_recipient()) == (1_000, w.dave)
    with boa.reverts("registry is not a contract"):
        deployer("Marketplace").deploy(w.alice, w.factory.address)
    with boa.reverts("factory is not a contract"):
        deployer("Marketplace").deploy(w.registry.address, w.alice)


def test_list_access_checks(world):
    w = world
    m = w.market
    with boa.reverts("caller is not asset owner"):
        m.list_access(w.model, ONE, NATIVE, [], [], sender=w.carol)
    cases = [
        ("zero price", (w.model, 0, NATIVE, [], [])),
        ("payment token is not a contract", (w.model, ONE, w.carol, [], [])),
        ("shares length mismatch", (w.model, ONE, NATIVE, [w.carol], [])),
        ("zero contributor", (w.model, ONE, NATIVE, [NATIVE], [100])),
        ("zero share", (w.model, ONE, NATIVE, [w.carol], [0])),
        ("shares above 100%", (w.model, ONE, NATIVE, [w.carol, w.dave], [5_000, 5_001])),
        ("no access token", (w.model, ONE, NATIVE, [w.carol], [10_000])),
    ]
    for reason, args in cases:
        with boa.reverts(reason):
            m.list_access(*args, sender=w.alice)
    access_token(w, minter=NATIVE)
    with boa.reverts("marketplace is not a minter"):
        m.list_access(w.model, ONE, NATIVE, [], [], sender=w.alice)
    with boa.reverts("erc721: invalid token ID"):
        m.list_access(tid("nobody"), ONE, NATIVE, [], [], sender=w.alice)


def split(total: int, fee_bps: int, shares: list[int]) -> tuple[int, list[int], int]:
    """The contract's rule in Python: fee off the top, shares of the rest, the remainder to the owner."""
    fee = total * fee_bps // 10_000
    net = total - fee
    parts = [net * s // 10_000 for s in shares]
    return fee, parts, net - sum(parts)


def test_buy_access_splits_to_the_wei(world):
    w = world
    m = w.market
    token = access_token(w)
    m.set_fee(250, w.admin)
    price = 1_000_003  # odd on purpose: every division rounds
    shares = [3_333, 1_667]
    m.list_access(w.model, price, NATIVE, [w.carol, w.dave], shares, sender=w.alice)
    event = last_event(m, "AccessListed")
    assert (event.asset_id, event.seller, event.price, event.payment_token, list(event.contributors),
            list(event.shares_bps)) == (w.model, w.alice, price, NATIVE, [w.carol, w.dave], shares)
    assert m.access_listing(w.model) == (w.alice, price, NATIVE, [w.carol, w.dave], shares)

    before = boa.env.get_balance(m.address)
    m.buy_access(w.model, 7, sender=w.buyer, value=7 * price)
    total = 7 * price
    fee, (c1, c2), rest = split(total, 250, shares)
    assert fee + c1 + c2 + rest == total and rest > 0
    assert [(e.account, e.amount) for e in m.get_logs() if type(e).__name__ == "Credited"] == [
        (w.admin, fee), (w.carol, c1), (w.dave, c2), (w.alice, rest)
    ]
    bought = last_event(m, "AccessBought")
    assert (bought.asset_id, bought.buyer, bought.tokens, bought.payment_token, bought.total) == (
        w.model, w.buyer, 7, NATIVE, total
    )
    assert (m.withdrawable(w.admin, NATIVE), m.withdrawable(w.carol, NATIVE), m.withdrawable(w.dave, NATIVE),
            m.withdrawable(w.alice, NATIVE)) == (fee, c1, c2, rest)
    assert boa.env.get_balance(m.address) == before + total
    assert token.balanceOf(w.buyer) == 7 * ONE
    assert m.has_access(w.model, w.buyer)

    # each collects its own balance, exactly
    for who, amount in ((w.carol, c1), (w.alice, rest)):
        start = boa.env.get_balance(who)
        assert m.withdraw(NATIVE, sender=who) == amount
        assert boa.env.get_balance(who) == start + amount
    with boa.reverts("nothing to withdraw"):
        m.withdraw(NATIVE, sender=w.carol)
    with boa.reverts("nothing to withdraw"):
        m.withdraw(NATIVE, sender=w.buyer)
    assert boa.env.get_balance(m.address) == before + fee + c2


def test_buy_access_with_an_erc20_and_its_reverts(world):
    w = world
    m = w.market
    token = access_token(w)
    m.list_access(w.model, 3 * ONE, w.pay.address, [w.carol], [2_500], sender=w.alice)
    w.pay.mint(w.buyer, 10 * ONE)
    with boa.reverts("zero amount"):
        m.buy_access(w.model, 0, sender=w.buyer)
    with boa.reverts("msg.value with a token payment"):
        m.buy_access(w.model, 1, sender=w.buyer, value=1)
    with boa.reverts("erc20: insufficient allowance"):
        m.buy_access(w.model, 1, sender=w.buyer)
    w.pay.approve(m.address, 100 * ONE, sender=w.buyer)
    with boa.reverts("erc20: transfer amount exceeds balance"):
        m.buy_access(w.model, 4, sender=w.buyer)
    m.buy_access(w.model, 3, sender=w.buyer)
    assert token.balanceOf(w.buyer) == 3 * ONE
    assert (m.withdrawable(w.carol, w.pay.address), m.withdrawable(w.alice, w.pay.address)) == (
        9 * ONE // 4, 9 * ONE - 9 * ONE // 4
    )
    assert w.pay.balanceOf(m.address) == 9 * ONE
    m.withdraw(w.pay.address, sender=w.alice)
    assert w.pay.balanceOf(w.alice) == 9 * ONE - 9 * ONE // 4

    with boa.reverts("not listed for access"):
        m.buy_access(w.d1, 1, sender=w.buyer)
    # native listing: the exact price only
    m.list_access(w.model, ONE, NATIVE, [], [], sender=w.alice)
    with boa.reverts("msg.value does not match price"):
        m.buy_access(w.model, 2, sender=w.buyer, value=2 * ONE - 1)
    with boa.reverts("msg.value does not match price"):
        m.buy_access(w.model, 2, sender=w.buyer, value=2 * ONE + 1)

    # the owner revokes the marketplace: purchases stop with the token's reason
    token.set_minter(m.address, False, sender=w.alice)
    with boa.reverts("caller is not a minter"):
        m.buy_access(w.model, 1, sender=w.buyer, value=ONE)

    # delisting: by the seller (or the current owner) only
    with boa.reverts("caller is not asset owner"):
        m.delist_access(w.model, sender=w.buyer)
    m.delist_access(w.model, sender=w.alice)
    assert event_names(m) == ["AccessDelisted"]
    with boa.reverts("not listed for access"):
        m.delist_access(w.model, sender=w.alice)
    with boa.reverts("not listed for access"):
        m.buy_access(w.model, 1, sender=w.buyer, value=ONE)


def test_listings_die_with_the_sellers_ownership(world):
    w = world
    m = w.market
    access_token(w)
    m.list_access(w.model, ONE, NATIVE, [], [], sender=w.alice)
    m.list_licence(w.model, ONE, 3600, NATIVE, sender=w.alice)
    m.enable_dispenser(w.model, 2, sender=w.alice)
    w.registry.transferFrom(w.alice, w.carol, w.model, sender=w.alice)
    with boa.reverts("listing void: asset owner changed"):
        m.buy_access(w.model, 1, sender=w.buyer, value=ONE)
    with boa.reverts("listing void: asset owner changed"):
        m.buy_licence(w.model, sender=w.buyer, value=ONE)
    with boa.reverts("dispenser void: asset owner changed"):
        m.dispense(w.model, sender=w.buyer)
    # the new owner may clear them, authorise the market again and list
    m.delist_access(w.model, sender=w.carol)
    m.delist_licence(w.model, sender=w.carol)
    m.disable_dispenser(w.model, sender=w.carol)
    with boa.reverts("marketplace is not a minter"):
        m.list_access(w.model, ONE, NATIVE, [], [], sender=w.carol)
    deployer("AccessToken").at(w.factory.access_token(w.model)).set_minter(m.address, True, sender=w.carol)
    m.list_access(w.model, 2 * ONE, NATIVE, [], [], sender=w.carol)
    m.buy_access(w.model, 1, sender=w.buyer, value=2 * ONE)
    assert m.withdrawable(w.carol, NATIVE) == 2 * ONE and m.withdrawable(w.alice, NATIVE) == 0


def test_list_access_with_lineage(world):
    w = world
    m = w.market
    access_token(w)
    m.set_fee(100, w.admin)
    m.list_access_with_lineage(w.model, 1_000_001, NATIVE, 1_001, sender=w.alice)
    # two parents, owned by carol and dave: 500 bps each, the odd basis point stays with the owner
    assert m.access_listing(w.model) == (w.alice, 1_000_001, NATIVE, [w.carol, w.dave], [500, 500])
    m.buy_access(w.model, 1, sender=w.buyer, value=1_000_001)
    fee, (c1, c2), rest = split(1_000_001, 100, [500, 500])
    assert (m.withdrawable(w.admin, NATIVE), m.withdrawable(w.carol, NATIVE), m.withdrawable(w.dave, NATIVE),
            m.withdrawable(w.alice, NATIVE)) == (fee, c1, c2, rest)

    # the shares follow the parents' owners at listing time
    w.registry.transferFrom(w.dave, w.buyer, w.d2, sender=w.dave)
    m.list_access_with_lineage(w.model, ONE, NATIVE, 2_000, sender=w.alice)
    assert m.access_listing(w.model)[3] == [w.carol, w.buyer]

    with boa.reverts("shares above 100%"):
        m.list_access_with_lineage(w.model, ONE, NATIVE, 10_001, sender=w.alice)
    with boa.reverts("zero share"):
        m.list_access_with_lineage(w.model, ONE, NATIVE, 1, sender=w.alice)
    with boa.reverts("caller is not asset owner"):
        m.list_access_with_lineage(w.model, ONE, NATIVE, 1_000, sender=w.carol)
    with boa.reverts("asset has no parents"):
        m.list_access_with_lineage(w.d1, ONE, NATIVE, 1_000, sender=w.carol)
    many = [mint(w.registry, w.carol, f"part {i}", DATASET) for i in range(17)]
    big = mint(w.registry, w.alice, "big model", MODEL, many)
    with boa.reverts("too many contributors"):
        m.list_access_with_lineage(big, ONE, NATIVE, 1_000, sender=w.alice)


def test_dispenser_caps_each_address(world):
    w = world
    m = w.market
    with boa.reverts("caller is not asset owner"):
        m.enable_dispenser(w.model, 2, sender=w.carol)
    with boa.reverts("zero cap"):
        m.enable_dispenser(w.model, 0, sender=w.alice)
    with boa.reverts("no access token"):
        m.enable_dispenser(w.model, 2, sender=w.alice)
    token = access_token(w, minter=NATIVE)
    with boa.reverts("marketplace is not a minter"):
        m.enable_dispenser(w.model, 2, sender=w.alice)
    token.set_minter(m.address, True, sender=w.alice)
    with boa.reverts("dispenser not enabled"):
        m.dispense(w.model, sender=w.buyer)
    m.enable_dispenser(w.model, 2, sender=w.alice)
    event = last_event(m, "DispenserEnabled")
    assert (event.asset_id, event.owner, event.max_per_address) == (w.model, w.alice, 2)
    assert m.dispenser(w.model) == (w.alice, 2)

    m.dispense(w.model, sender=w.buyer)
    assert (last_event(m, "Dispensed").to, last_event(m, "Dispensed").total_dispensed) == (w.buyer, 1)
    m.dispense(w.model, sender=w.buyer)
    with boa.reverts("dispenser cap reached"):
        m.dispense(w.model, sender=w.buyer)
    # giving the tokens away does not earn more: the cap counts what was dispensed
    token.transfer(w.dave, 2 * ONE, sender=w.buyer)
    with boa.reverts("dispenser cap reached"):
        m.dispense(w.model, sender=w.buyer)
    m.dispense(w.model, sender=w.carol)  # per address
    assert (token.balanceOf(w.buyer), token.balanceOf(w.carol), token.totalSupply()) == (0, ONE, 3 * ONE)
    assert m.dispensed(w.model, w.buyer) == 2

    m.enable_dispenser(w.model, 3, sender=w.alice)  # a higher cap
    m.dispense(w.model, sender=w.buyer)
    with boa.reverts("caller is not asset owner"):
        m.disable_dispenser(w.model, sender=w.buyer)
    m.disable_dispenser(w.model, sender=w.alice)
    assert event_names(m) == ["DispenserDisabled"]
    with boa.reverts("dispenser not enabled"):
        m.dispense(w.model, sender=w.dave)
    with boa.reverts("dispenser not enabled"):
        m.disable_dispenser(w.model, sender=w.alice)


def test_licences_extend_and_expire(world):
    w = world
    m = w.market
    with boa.reverts("caller is not asset owner"):
        m.list_licence(w.d1, ONE, 3600, NATIVE, sender=w.alice)
    for reason, args in [
        ("zero price", (w.d1, 0, 3600, NATIVE)),
        ("zero duration", (w.d1, ONE, 0, NATIVE)),
        ("payment token is not a contract", (w.d1, ONE, 3600, w.dave)),
    ]:
        with boa.reverts(reason):
            m.list_licence(*args, sender=w.carol)
    with boa.reverts("shares length mismatch"):
        m.list_licence(w.d1, ONE, 3600, NATIVE, [w.dave], [], sender=w.carol)
    with boa.reverts("not listed for licence"):
        m.buy_licence(w.d1, sender=w.buyer, value=ONE)

    # a dataset needs no access token for licences; shares work as for access
    m.list_licence(w.d1, 999, 3600, NATIVE, [w.dave], [1_000], sender=w.carol)
    event = last_event(m, "LicenceListed")
    assert (event.price, event.duration, list(event.contributors), list(event.shares_bps)) == (999, 3600, [w.dave],
                                                                                                [1_000])
    assert not m.has_access(w.d1, w.buyer)
    with boa.reverts("msg.value does not match price"):
        m.buy_licence(w.d1, sender=w.buyer, value=1_000)
    start = now()
    assert m.buy_licence(w.d1, sender=w.buyer, value=999) == start + 3600
    bought = last_event(m, "LicenceBought")
    assert (bought.asset_id, bought.holder, bought.price, bought.expiry) == (w.d1, w.buyer, 999, start + 3600)
    assert (m.withdrawable(w.dave, NATIVE), m.withdrawable(w.carol, NATIVE)) == (99, 900)
    assert m.licence_expiry(w.d1, w.buyer) == start + 3600
    assert m.has_access(w.d1, w.buyer) and not m.has_access(w.d1, w.carol) and not m.has_access(w.d2, w.buyer)

    # buying while valid extends from the current end
    boa.env.time_travel(seconds=1000)
    assert m.buy_licence(w.d1, sender=w.buyer, value=999) == start + 7200
    boa.env.time_travel(seconds=6199)
    assert m.has_access(w.d1, w.buyer)
    boa.env.time_travel(seconds=1)  # the end is exclusive
    assert not m.has_access(w.d1, w.buyer)
    # after it ended, a new period starts now
    assert m.buy_licence(w.d1, sender=w.buyer, value=999) == now() + 3600

    # delisting stops sales; licences sold stay valid
    with boa.reverts("caller is not asset owner"):
        m.delist_licence(w.d1, sender=w.buyer)
    m.delist_licence(w.d1, sender=w.carol)
    assert event_names(m) == ["LicenceDelisted"]
    with boa.reverts("not listed for licence"):
        m.delist_licence(w.d1, sender=w.carol)
    assert m.has_access(w.d1, w.buyer)


def test_has_access_with_access_tokens(world):
    w = world
    m = w.market
    assert not m.has_access(w.model, w.buyer)  # no token at all yet
    token = access_token(w)
    token.mint(w.buyer, ONE - 1, sender=w.alice)
    assert not m.has_access(w.model, w.buyer)  # less than one whole token
    token.mint(w.buyer, 1, sender=w.alice)
    assert m.has_access(w.model, w.buyer)
    token.transfer(w.carol, ONE, sender=w.buyer)  # access moves with the token
    assert not m.has_access(w.model, w.buyer) and m.has_access(w.model, w.carol)


def test_asset_sale_pays_royalty_on_every_resale(world):
    w = world
    m, r = w.market, w.registry
    r.set_royalty(w.model, w.alice, 700, sender=w.alice)  # 7% to the creator, forever
    m.set_fee(150, w.admin)
    with boa.reverts("caller is not asset owner"):
        m.list_asset(w.model, ONE, NATIVE, sender=w.carol)
    with boa.reverts("zero price"):
        m.list_asset(w.model, 0, NATIVE, sender=w.alice)
    with boa.reverts("payment token is not a contract"):
        m.list_asset(w.model, ONE, w.carol, sender=w.alice)
    with boa.reverts("marketplace not approved"):
        m.list_asset(w.model, ONE, NATIVE, sender=w.alice)
    r.approve(m.address, w.model, sender=w.alice)
    price = 10 * ONE + 7
    m.list_asset(w.model, price, NATIVE, sender=w.alice)
    event = last_event(m, "AssetListed")
    assert (event.asset_id, event.seller, event.price, event.payment_token) == (w.model, w.alice, price, NATIVE)
    assert m.asset_listing(w.model) == (w.alice, price, NATIVE)

    with boa.reverts("buyer is seller"):
        m.buy_asset(w.model, sender=w.alice, value=price)
    with boa.reverts("msg.value does not match price"):
        m.buy_asset(w.model, sender=w.buyer, value=price - 1)
    m.buy_asset(w.model, sender=w.buyer, value=price)
    assert r.ownerOf(w.model) == w.buyer
    royalty, fee = price * 700 // 10_000, price * 150 // 10_000
    sold = last_event(m, "AssetSold")
    assert (sold.seller, sold.buyer, sold.price, sold.royalty_receiver, sold.royalty, sold.fee) == (
        w.alice, w.buyer, price, w.alice, royalty, fee
    )
    assert (m.withdrawable(w.alice, NATIVE), m.withdrawable(w.admin, NATIVE)) == (price - fee, fee)  # seller + royalty
    assert m.asset_listing(w.model) == (NATIVE, 0, NATIVE)
    with boa.reverts("asset not listed"):
        m.buy_asset(w.model, sender=w.carol, value=price)

    # resale in an ERC-20, buyer -> carol: the creator's royalty is honoured again
    r.setApprovalForAll(m.address, True, sender=w.buyer)
    m.list_asset(w.model, 4 * ONE, w.pay.address, sender=w.buyer)
    w.pay.mint(w.carol, 4 * ONE)
    w.pay.approve(m.address, 4 * ONE, sender=w.carol)
    m.buy_asset(w.model, sender=w.carol)
    assert r.ownerOf(w.model) == w.carol
    royalty2, fee2 = 4 * ONE * 700 // 10_000, 4 * ONE * 150 // 10_000
    assert (m.withdrawable(w.alice, w.pay.address), m.withdrawable(w.admin, w.pay.address),
            m.withdrawable(w.buyer, w.pay.address)) == (royalty2, fee2, 4 * ONE - royalty2 - fee2)
    assert w.pay.balanceOf(m.address) == 4 * ONE


def test_asset_listing_void_delist_and_revoked_approval(world):
    w = world
    m, r = w.market, w.registry
    r.approve(m.address, w.d1, sender=w.carol)
    m.list_asset(w.d1, ONE, NATIVE, sender=w.carol)  # no royalty set: everything to the seller
    r.transferFrom(w.carol, w.dave, w.d1, sender=w.carol)
    with boa.reverts("listing void: seller no longer owns the asset"):
        m.buy_asset(w.d1, sender=w.buyer, value=ONE)
    with boa.reverts("caller is not asset owner"):
        m.delist(w.d1, sender=w.buyer)
    m.delist(w.d1, sender=w.dave)  # the new owner may clear the stale offer
    assert event_names(m) == ["AssetDelisted"]
    with boa.reverts("asset not listed"):
        m.delist(w.d1, sender=w.dave)

    r.approve(m.address, w.d2, sender=w.dave)
    m.list_asset(w.d2, ONE, NATIVE, sender=w.dave)
    r.approve(NATIVE, w.d2, sender=w.dave)  # approval withdrawn after listing
    with boa.reverts("erc721: caller is not token owner or approved"):
        m.buy_asset(w.d2, sender=w.buyer, value=ONE)
    r.approve(m.address, w.d2, sender=w.dave)
    m.buy_asset(w.d2, sender=w.buyer, value=ONE)
    assert m.withdrawable(w.dave, NATIVE) == ONE and r.ownerOf(w.d2) == w.buyer


# ------------------------------------------------------------------------------------------------ reentrancy


ATTACKER = """
# pragma version 0.4.3
# pragma evm-version cancun

# Receives native coin from a market or channel contract and tries to re-enter it from its fallback:
# `withdraw` again (to be paid twice), `buy_access`, and `settle`. `strict` makes it revert when a re-entry
# fails, so that the outer transfer fails too; otherwise it swallows the failure and keeps the money.

target: public(address)
strict: public(bool)
attempts: public(uint256)
reentered: public(uint256)
asset_id: public(uint256)
channel_id: public(bytes32)
amount: public(uint256)
signature: public(Bytes[65])


@deploy
def __init__(target: address):
    self.target = target


@external
def set_strict(strict: bool):
    self.strict = strict


@external
def set_voucher(channel_id: bytes32, amount: uint256, signature: Bytes[65]):
    self.channel_id = channel_id
    self.amount = amount
    self.signature = signature


@external
def withdraw() -> uint256:
    return convert(
        raw_call(self.target, abi_encode(empty(address), method_id=method_id("withdraw(address)")), max_outsize=32),
        uint256,
    )


@external
def settle():
    raw_call(
        self.target,
        abi_encode(self.channel_id, self.amount, self.signature, method_id=method_id("settle(bytes32,uint256,bytes)")),
    )


@external
@payable
def buy(asset_id: uint256, n: uint256):
    self.asset_id = asset_id
    raw_call(
        self.target,
        abi_encode(asset_id, n, method_id=method_id("buy_access(uint256,uint256)")),
        value=msg.value,
    )


@external
@payable
def __default__():
    if self.attempts != 0:
        return
    calls: DynArray[Bytes[300], 3] = [
        abi_encode(empty(address), method_id=method_id("withdraw(address)")),
        abi_encode(self.asset_id, convert(1, uint256), method_id=method_id("buy_access(uint256,uint256)")),
        abi_encode(self.channel_id, self.amount + 1, self.signature, method_id=method_id("settle(bytes32,uint256,bytes)")),
    ]
    for data: Bytes[300] in calls:
        self.attempts += 1
        ok: bool = raw_call(self.target, data, value=min(msg.value, self.balance), revert_on_failure=False)
        if ok:
            self.reentered += 1
        else:
            assert not self.strict, "re-entry refused"
"""


def test_reentrant_receiver_cannot_drain_the_market(world):
    w = world
    m = w.market
    attacker = boa.loads(ATTACKER, m.address)
    access_token(w)
    # the attacker is a contributor with a rightful balance of 1/4 of each sale; honest parties have theirs
    m.list_access(w.model, 4 * ONE, NATIVE, [attacker.address], [2_500], sender=w.alice)
    for _ in range(3):
        m.buy_access(w.model, 1, sender=w.buyer, value=4 * ONE)
    assert m.withdrawable(attacker.address, NATIVE) == 3 * ONE
    assert boa.env.get_balance(m.address) == 12 * ONE

    # strict: the re-entry fails, so its fallback fails, so the withdrawal reverts and nothing moves
    attacker.set_strict(True)
    with boa.reverts("native transfer failed"):
        attacker.withdraw()
    assert m.withdrawable(attacker.address, NATIVE) == 3 * ONE and boa.env.get_balance(m.address) == 12 * ONE

    # lenient: it is paid its own balance once; every re-entry (withdraw, buy_access, settle) was refused
    attacker.set_strict(False)
    assert attacker.withdraw() == 3 * ONE
    assert (attacker.attempts(), attacker.reentered()) == (3, 0)
    assert boa.env.get_balance(attacker.address) == 3 * ONE
    assert m.withdrawable(attacker.address, NATIVE) == 0
    assert boa.env.get_balance(m.address) == 9 * ONE == m.withdrawable(w.alice, NATIVE)
    with boa.reverts("nothing to withdraw"):
        attacker.withdraw()

    # a contract buyer works too (no re-entry involved): tokens land on the contract
    attacker.buy(w.model, 1, value=4 * ONE, sender=w.buyer)
    assert deployer("AccessToken").at(w.factory.access_token(w.model)).balanceOf(attacker.address) == ONE


def test_reentrant_recipient_cannot_drain_the_channels(channels, payer):
    attacker = boa.loads(ATTACKER, channels.address)
    other = new_address("honest provider")
    cid = channels.open(attacker.address, NATIVE, 5 * ONE, now() + 3600, b"\x05" * 32, sender=payer.address, value=5 * ONE)
    honest = channels.open(other, NATIVE, 2 * ONE, now() + 3600, b"\x06" * 32, sender=payer.address, value=2 * ONE)
    channels.settle(honest, 2 * ONE, voucher(channels, payer, honest, 2 * ONE), sender=other)
    attacker.set_voucher(cid, ONE, voucher(channels, payer, cid, ONE))
    attacker.settle()
    assert channels.withdrawable(attacker.address, NATIVE) == ONE

    attacker.set_strict(True)
    with boa.reverts("native transfer failed"):
        attacker.withdraw()
    attacker.set_strict(False)
    assert attacker.withdraw() == ONE
    assert (attacker.attempts(), attacker.reentered()) == (3, 0)
    assert boa.env.get_balance(attacker.address) == ONE
    # everything else is where it was: 4 locked in the attacker's channel, the honest provider's 2
    assert channels.channel(cid)[4] == ONE
    assert boa.env.get_balance(channels.address) == 6 * ONE
    assert channels.withdrawable(other, NATIVE) == 2 * ONE


def test_a_recipient_that_refuses_native_coin_keeps_its_balance(channels, payer):
    """A contract without a payable fallback cannot receive: withdraw reverts and the balance stays."""
    registry = deployer_asset_registry().deploy()
    # AssetRegistry has no payable fallback; it cannot call settle either, so credit it through the market
    w_factory = deployer("AccessTokenFactory").deploy(registry.address, deployer("AccessToken").deploy_as_blueprint().address)
    market = deployer("Marketplace").deploy(registry.address, w_factory.address)
    market.set_fee(1_000, registry.address)
    alice = new_address("alice")
    registry.mint(alice, digest("refuser"), DATASET, "ledgermind://test/refuser", [])
    registry.approve(market.address, tid("refuser"), sender=alice)
    market.list_asset(tid("refuser"), ONE, NATIVE, sender=alice)
    buyer = new_address("buyer")
    market.buy_asset(tid("refuser"), sender=buyer, value=ONE)
    assert market.withdrawable(registry.address, NATIVE) == ONE // 10
    # nobody else can take it; the registry itself cannot receive it (no payable fallback)
    with boa.reverts("nothing to withdraw"):
        market.withdraw(NATIVE, sender=buyer)
    with boa.env.prank(registry.address):
        with boa.reverts("native transfer failed"):
            market.withdraw(NATIVE)
    assert market.withdrawable(registry.address, NATIVE) == ONE // 10


# ------------------------------------------------------------------------------------- eth-tester through web3


def test_artifacts_run_on_eth_tester_py_evm():
    """The committed artifacts on eth-tester's py-evm through web3: a channel settled with a Python-signed
    voucher, and an access token created from the blueprint and bought on the marketplace."""
    from web3 import EthereumTesterProvider, Web3

    w3 = Web3(EthereumTesterProvider())
    admin, alice, buyer, provider = w3.eth.accounts[:4]
    payer = Account.create()
    w3.eth.send_transaction({"from": admin, "to": payer.address, "value": 10 * ONE, "gas": 21_000})

    def send(fn, sender, gas=3_000_000, value=0):
        receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "gas": gas, "value": value}))
        assert receipt.status == 1
        return receipt

    def deploy(name, *args):
        art = load(name)
        receipt = send(w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args), admin, gas=8_000_000)
        return w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])

    channels = deploy("PaymentChannels")
    # the payer signs its own transaction (a LocalAccount, like a real client)
    fn = channels.functions.open(provider, NATIVE, ONE, 2**40, b"\x07" * 32)
    tx = fn.build_transaction({"from": payer.address, "value": ONE, "gas": 300_000,
                               "nonce": w3.eth.get_transaction_count(payer.address),
                               "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9})
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(payer.sign_transaction(tx).raw_transaction))
    assert receipt.status == 1
    (opened,) = channels.events.ChannelOpened().process_receipt(receipt)
    cid = opened.args.channel_id
    signed = Voucher(cid, ONE // 3).sign(payer, w3.eth.chain_id, channels.address)
    send(channels.functions.settle(cid, signed.amount, signed.signature), provider)
    assert channels.functions.withdrawable(provider, NATIVE).call() == ONE // 3

    registry = deploy("AssetRegistry")
    send(registry.functions.mint(alice, digest("m"), DATASET, "ledgermind://test/m", []), admin)
    # an ERC-5202 blueprint: deployed from its own deploy code, with no constructor call
    tx = w3.eth.send_transaction({"from": admin, "data": load("AccessToken")["blueprintBytecode"], "gas": 3_000_000})
    blueprint = w3.eth.wait_for_transaction_receipt(tx).contractAddress
    assert w3.eth.get_code(blueprint)[:3] == b"\xfe\x71\x00"
    factory = deploy("AccessTokenFactory", registry.address, blueprint)
    market = deploy("Marketplace", registry.address, factory.address)
    send(factory.functions.create_access_token(tid("m"), 10, market.address), alice)
    send(market.functions.list_access(tid("m"), 1000, NATIVE, [], []), alice)
    send(market.functions.buy_access(tid("m"), 2), buyer, value=2000)
    token = w3.eth.contract(address=factory.functions.access_token(tid("m")).call(), abi=load("AccessToken")["abi"])
    assert token.functions.balanceOf(buyer).call() == 2 * ONE
    assert market.functions.has_access(tid("m"), buyer).call()
    assert market.functions.withdrawable(alice, NATIVE).call() == 2000

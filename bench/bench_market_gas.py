"""Gas of paying for 10,000 inference requests through one payment channel, beside 10,000 on-chain payments, and
the gas of every market operation.

    python bench/bench_market_gas.py [--requests 10000] [--anvil PATH | --no-anvil]

Deploys the committed artifacts (``ledgermind.contracts.load``) and reads ``gasUsed`` from the receipts of real
transactions on two chains (the same helpers as ``bench_gas.py``):

1. py-evm: eth-tester's default VM (Prague) through ``Web3(EthereumTesterProvider())``, the embedded chain;
2. anvil 1.7.1 over HTTP: ``node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`` if the repository's
   ``npm install`` put it there, else ``npm install @foundry-rs/anvil@1.7.1`` into a temp folder; ``--anvil``
   names a binary, ``--no-anvil`` skips it.

Paid requests: a client (an eth_account LocalAccount, as in ``ledgermind.inference``) opens a channel to a
provider holding 10,000 x the price of a request; vouchers are cumulative (request i is paid by a voucher for
i x price), so the provider redeems only the last one, signed with ``ledgermind.market.eip712.Voucher.sign``:
ONE ``settle`` transaction for all 10,000 requests, then ``withdraw`` (the earlier vouchers never reach the
chain, so only the last is signed here). Beside it, what paying each request on chain costs:
10,000 native-coin transfers and 10,000 PaymentToken (ERC-20) transfers from the client to the provider, every
one sent and its receipt read. The channel's whole life (open + settle + withdraw) is compared with them per
request. A settle costs the same for 1 request or 10,000 (calldata differs by a few zero bytes): both are
measured, each on a fresh channel to a provider with no balance yet.

Market: deployment of each contract; the access-token flow (create from the blueprint, list with the lineage's
two dataset owners as contributors and a 1% platform fee, buy with native coin and with the ERC-20, first and
repeat purchases: a first purchase writes fresh balance slots), the dispenser, a licence, an NFT sale with an
ERC-2981 royalty, withdrawals, a provider announcement.

Gas does not depend on the machine; the script checks that both chains agree. Target: the channel's whole life
for 10,000 requests costs <= 1% of 10,000 native transfers. Writes ``bench/results/market_gas.json``; exits 1
if the target is missed or the chains disagree.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

from eth_account import Account
from web3.logs import DISCARD

from bench_gas import anvil_chain, install_anvil, py_evm_chain  # the same chains as the anchoring benchmark
from ledgermind.contracts import EVM_VERSION, load
from ledgermind.market.eip712 import Voucher

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "market_gas.json"
LOCAL_ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
NATIVE = "0x" + "00" * 20
ONE = 10**18
PRICE = 10**12  # wei (or PaymentToken units) per request
TARGET_RATIO = 0.01  # channel life for N requests / N native transfers
GAS = 3_000_000  # explicit limit on every transaction: estimation is not what is measured
DEPLOY_GAS = 8_000_000
TRANSFER_CHUNK = 1_000  # anvil: on-chain payments sent, then mined, per chunk (see Bench.transfers)
CONTRACTS = ("PaymentChannels", "ProviderRegistry", "PaymentToken", "AccessToken", "AccessTokenFactory", "Marketplace")


class Bench:
    """One chain: dev accounts that send with ``eth_sendTransaction``, a LocalAccount client that signs its own
    transactions and vouchers, and the receipts' gas."""

    def __init__(self, chain: Any) -> None:
        self.name, self.w3, self.poll = chain.name, chain.w3, chain.poll
        self.admin, self.provider, self.alice, self.carol, self.dave, self.buyer = chain.accounts[:6]
        self.client = Account.from_key(b"\x5e" * 32)
        self.chain_id = self.w3.eth.chain_id

    def wait(self, tx: bytes) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx, timeout=120, poll_latency=self.poll)
        if receipt.status != 1:
            raise RuntimeError(f"{self.name}: transaction {tx.hex()} reverted")
        return receipt

    def send(self, fn: Any, sender: str, value: int = 0, gas: int = GAS) -> int:
        """Send a contract call from a dev account; return its gasUsed."""
        return self.wait(fn.transact({"from": sender, "value": value, "gas": gas})).gasUsed

    def send_signed(self, fn: Any, value: int = 0, gas: int = GAS) -> Any:
        """Send a contract call signed locally by the client; return its receipt."""
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas", 10**9)
        tx = fn.build_transaction({
            "from": self.client.address, "value": value, "gas": gas, "chainId": self.chain_id,
            "nonce": self.w3.eth.get_transaction_count(self.client.address),
            "maxFeePerGas": 2 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9,
        })
        return self.wait(self.w3.eth.send_raw_transaction(self.client.sign_transaction(tx).raw_transaction))

    def deploy(self, name: str, *args: Any) -> tuple[Any, int]:
        art = load(name)
        receipt = self.wait(self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args).transact(
            {"from": self.admin, "gas": DEPLOY_GAS}))
        return self.w3.eth.contract(address=receipt.contractAddress, abi=art["abi"]), receipt.gasUsed

    def deploy_blueprint(self, name: str) -> tuple[str, int]:
        tx = self.w3.eth.send_transaction({"from": self.admin, "data": load(name)["blueprintBytecode"], "gas": DEPLOY_GAS})
        receipt = self.wait(tx)
        return receipt.contractAddress, receipt.gasUsed

    def advance(self, seconds: int) -> None:
        """Move the chain's clock forward (to reach a channel's expiry)."""
        if self.name == "py-evm":
            tester = self.w3.provider.ethereum_tester
            tester.time_travel(self.w3.eth.get_block("latest")["timestamp"] + seconds)
            tester.mine_blocks(1)
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])
            self.w3.provider.make_request("evm_mine", [])

    def transfers(self, n: int, make_tx: Any) -> list[int]:
        """Send ``n`` transactions (``make_tx(i)`` -> a dict for eth_sendTransaction) and read every receipt.

        py-evm: each receipt is read right after its transaction. eth-tester finds a receipt by scanning blocks
        backwards from the head (one block per transaction here), so reading 10,000 receipts after sending them
        all is quadratic (a run at 10,000 did not get through them in 9 minutes).

        anvil: automine falls behind and then stalls under thousands of back-to-back sends (the pool keeps
        thousands of valid pending transactions and no block comes until ``evm_mine``), so automine is turned
        off and each chunk of ``TRANSFER_CHUNK`` transactions is sent (raw ``eth_sendTransaction`` with the nonce
        and fees set: web3's fill-in round trips made sending 5x slower) and then mined with ``evm_mine`` until
        the pool is empty. How transactions are packed into blocks does not change their gas (warm accounts and
        slots, and the original values SSTORE is priced against, are per transaction)."""
        if self.name == "py-evm":
            return [self.wait(self.w3.eth.send_transaction(make_tx(i))).gasUsed for i in range(n)]
        rpc = self.w3.provider.make_request
        gas: list[int] = []
        rpc("evm_setAutomine", [False])
        try:
            for start in range(0, n, TRANSFER_CHUNK):
                stop = min(n, start + TRANSFER_CHUNK)
                base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 10**9))
                nonce = self.w3.eth.get_transaction_count(make_tx(start)["from"], "pending")
                hashes = []
                for i in range(start, stop):
                    tx = {**make_tx(i), "nonce": nonce + i - start, "maxFeePerGas": 4 * base_fee + 10**9,
                          "maxPriorityFeePerGas": 10**9}
                    answer = rpc("eth_sendTransaction", [{k: hex(v) if isinstance(v, int) else v for k, v in tx.items()}])
                    if "error" in answer:
                        raise RuntimeError(f"{self.name}: transaction {i} refused: {answer['error']}")
                    hashes.append(answer["result"])
                while int(rpc("txpool_status", [])["result"]["pending"], 16):
                    rpc("evm_mine", [])
                gas += [self.wait(h).gasUsed for h in hashes]
        finally:
            rpc("evm_setAutomine", [True])
        return gas


def measure(chain: Any, requests: int) -> dict[str, Any]:
    b = Bench(chain)
    w3 = b.w3
    deploy: dict[str, int] = {}
    channels, deploy["PaymentChannels"] = b.deploy("PaymentChannels")
    pay, deploy["PaymentToken"] = b.deploy("PaymentToken")
    deposit = requests * PRICE
    b.wait(w3.eth.send_transaction({"from": b.admin, "to": b.client.address, "value": 10 * deposit + 10 * ONE,
                                    "gas": 21_000}))
    b.send(pay.functions.mint(b.client.address, 10 * deposit), b.admin)

    # ---------------------------------------------------------------- paid requests through one channel
    salt = iter(range(1, 1_000)).__next__

    def open_native(amount: int) -> tuple[bytes, int]:
        receipt = b.send_signed(channels.functions.open(b.provider, NATIVE, amount, 2**40, salt().to_bytes(32, "big")),
                                value=amount)
        (event,) = channels.events.ChannelOpened().process_receipt(receipt, errors=DISCARD)
        return event.args.channel_id, receipt.gasUsed

    def settle(cid: bytes, amount: int) -> int:
        voucher = None
        for i in range(1, amount // PRICE + 1):  # one cumulative voucher per request; only the last is redeemed
            voucher = Voucher(cid, i * PRICE)
        assert voucher is not None and voucher.amount == amount
        signed = voucher.sign(b.client, b.chain_id, channels.address)
        return b.send(channels.functions.settle(cid, amount, signed.signature), b.provider)

    ch: dict[str, int] = {}
    one, ch["open (native)"] = open_native(PRICE)
    ch["settle: 1 request (provider balance fresh)"] = settle(one, PRICE)
    ch["withdraw (native, provider)"] = b.send(channels.functions.withdraw(NATIVE), b.provider)
    many, ch["open (native) for N requests"] = open_native(deposit)
    ch["settle: N requests, one voucher (provider balance fresh)"] = settle(many, deposit)
    ch["withdraw (native) after N requests"] = b.send(channels.functions.withdraw(NATIVE), b.provider)
    assert w3.eth.get_balance(channels.address) == 0  # both channels fully paid out

    top, _ = open_native(deposit)
    ch["top_up (native)"] = b.send_signed(channels.functions.top_up(top, PRICE), value=PRICE).gasUsed
    ch["extend"] = b.send_signed(channels.functions.extend(top, 2**40 + 1)).gasUsed
    ch["settle: N/2 requests (provider balance fresh)"] = settle(top, deposit // 2)
    ch["settle: next N/2 requests, same channel (provider balance > 0)"] = settle(top, deposit)
    short_expiry = w3.eth.get_block("latest")["timestamp"] + 60
    receipt = b.send_signed(channels.functions.open(b.provider, NATIVE, PRICE, short_expiry, salt().to_bytes(32, "big")),
                            value=PRICE)
    (event,) = channels.events.ChannelOpened().process_receipt(receipt, errors=DISCARD)
    b.advance(120)
    ch["reclaim after expiry"] = b.send_signed(channels.functions.reclaim(event.args.channel_id)).gasUsed
    ch["withdraw (native, client refund)"] = b.send_signed(channels.functions.withdraw(NATIVE)).gasUsed

    ch["approve (ERC-20, for open)"] = b.send_signed(pay.functions.approve(channels.address, deposit)).gasUsed
    receipt = b.send_signed(channels.functions.open(b.provider, pay.address, deposit, 2**40, salt().to_bytes(32, "big")))
    ch["open (ERC-20)"] = receipt.gasUsed
    (event,) = channels.events.ChannelOpened().process_receipt(receipt, errors=DISCARD)
    ch["settle: N requests, ERC-20 (provider balance fresh)"] = settle(event.args.channel_id, deposit)
    ch["withdraw (ERC-20)"] = b.send(channels.functions.withdraw(pay.address), b.provider)

    # ---------------------------------------------------------------- the same requests paid one by one on chain
    native = b.transfers(requests, lambda i: {"from": b.buyer, "to": b.provider, "value": PRICE, "gas": 21_000})
    b.send(pay.functions.mint(b.buyer, deposit), b.admin)
    data = [pay.encode_abi("transfer", args=[b.provider, PRICE])]
    erc20 = b.transfers(requests, lambda i: {"from": b.buyer, "to": pay.address, "data": data[0], "gas": 100_000})
    assert pay.functions.balanceOf(b.provider).call() == 2 * deposit  # the ERC-20 channel's payout + N transfers

    # ---------------------------------------------------------------- market
    m: dict[str, int] = {}
    registry, deploy["AssetRegistry (reference)"] = b.deploy("AssetRegistry")
    blueprint, deploy["AccessToken (blueprint)"] = b.deploy_blueprint("AccessToken")
    factory, deploy["AccessTokenFactory"] = b.deploy("AccessTokenFactory", registry.address, blueprint)
    market, deploy["Marketplace"] = b.deploy("Marketplace", registry.address, factory.address)
    providers, deploy["ProviderRegistry"] = b.deploy("ProviderRegistry", registry.address)
    uri = "ledgermind://ledgermind.example.org/log/entries/1234567"

    def mint(owner: str, name: bytes, kind: int, parents: list[int]) -> int:
        digest = name.ljust(32, b"\x01")
        b.send(registry.functions.mint(owner, digest, kind, uri, parents), b.admin)
        return int.from_bytes(digest, "big")

    d1, d2 = mint(b.carol, b"d1", 1, []), mint(b.dave, b"d2", 1, [])
    model = mint(b.alice, b"model", 2, sorted([d1, d2]))
    b.send(market.functions.set_fee(100, b.admin), b.admin)
    m["create_access_token (blueprint, marketplace as minter)"] = b.send(
        factory.functions.create_access_token(model, 100, market.address), b.alice)
    m["list_access_with_lineage (2 contributors)"] = b.send(
        market.functions.list_access_with_lineage(model, ONE // 100, NATIVE, 2_000), b.alice)
    m["buy_access (native): first sale, fresh balances"] = b.send(market.functions.buy_access(model, 1), b.buyer,
                                                                  value=ONE // 100)
    m["buy_access (native): repeat"] = b.send(market.functions.buy_access(model, 3), b.buyer, value=3 * ONE // 100)
    b.send(market.functions.list_access_with_lineage(model, ONE // 100, pay.address, 2_000), b.alice)
    b.send(pay.functions.mint(b.buyer, ONE), b.admin)
    b.send(pay.functions.approve(market.address, 2**256 - 1), b.buyer)
    m["buy_access (ERC-20): first sale, fresh balances"] = b.send(market.functions.buy_access(model, 1), b.buyer)
    m["buy_access (ERC-20): repeat"] = b.send(market.functions.buy_access(model, 1), b.buyer)
    m["list_licence"] = b.send(market.functions.list_licence(model, ONE // 10, 30 * 86_400, NATIVE), b.alice)
    m["buy_licence (native): first"] = b.send(market.functions.buy_licence(model), b.carol, value=ONE // 10)
    m["buy_licence (native): renewal"] = b.send(market.functions.buy_licence(model), b.carol, value=ONE // 10)
    m["enable_dispenser"] = b.send(market.functions.enable_dispenser(model, 2), b.alice)
    m["dispense"] = b.send(market.functions.dispense(model), b.dave)
    b.send(registry.functions.set_royalty(model, b.alice, 500), b.alice)
    b.send(registry.functions.approve(market.address, model), b.alice)
    m["list_asset"] = b.send(market.functions.list_asset(model, ONE, NATIVE), b.alice)
    m["buy_asset (native, 5% royalty, 1% fee)"] = b.send(market.functions.buy_asset(model), b.buyer, value=ONE)
    b.send(registry.functions.setApprovalForAll(market.address, True), b.buyer)
    b.send(market.functions.list_asset(model, ONE, NATIVE), b.buyer)
    m["buy_asset: resale, royalty to the creator"] = b.send(market.functions.buy_asset(model), b.carol, value=ONE)
    m["withdraw (native)"] = b.send(market.functions.withdraw(NATIVE), b.alice)
    m["withdraw (ERC-20)"] = b.send(market.functions.withdraw(pay.address), b.alice)
    m["announce provider (40-byte endpoint)"] = b.send(
        providers.functions.announce(model, "https://provider.example.org/v1/infer", PRICE, NATIVE), b.provider)
    assert market.functions.has_access(model, b.buyer).call()

    return {"deploy": deploy, "channel": ch, "market": m,
            "payments": {"native_transfers": sum(native), "native_transfer_each": sorted(set(native)),
                         "erc20_transfers": sum(erc20), "erc20_transfer_each": sorted(set(erc20))}}


def agrees(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same gas on both chains, except a settle's calldata: its voucher signature depends on the chain id, and a
    zero byte of calldata costs 12 gas less than a non-zero one (65 signature bytes: at most 780 gas apart)."""
    for section in ("deploy", "market", "payments"):
        if a[section] != b[section]:
            return False
    return a["channel"].keys() == b["channel"].keys() and all(
        abs(a["channel"][k] - b["channel"][k]) <= (65 * 12 if k.startswith("settle") else 0) for k in a["channel"])


def summary(r: dict[str, Any], n: int) -> dict[str, Any]:
    ch = r["channel"]
    life = ch["open (native) for N requests"] + ch["settle: N requests, one voucher (provider balance fresh)"] \
        + ch["withdraw (native) after N requests"]
    life_erc20 = ch["approve (ERC-20, for open)"] + ch["open (ERC-20)"] \
        + ch["settle: N requests, ERC-20 (provider balance fresh)"] + ch["withdraw (ERC-20)"]
    native, erc20 = r["payments"]["native_transfers"], r["payments"]["erc20_transfers"]
    return {
        "requests": n,
        "settle_gas_for_n_requests": ch["settle: N requests, one voucher (provider balance fresh)"],
        "settle_gas_for_1_request": ch["settle: 1 request (provider balance fresh)"],
        "channel_life_native_gas": life,
        "channel_life_erc20_gas": life_erc20,
        "n_native_transfers_gas": native,
        "n_erc20_transfers_gas": erc20,
        "per_request": {"channel_native": life / n, "channel_erc20": life_erc20 / n,
                        "native_transfer": native / n, "erc20_transfer": erc20 / n},
        "ratio_channel_to_native_transfers": life / native,
        "ratio_channel_to_erc20_transfers": life_erc20 / erc20,
    }


def table(results: dict[str, dict[str, Any]], n: int) -> list[str]:
    names = list(results)
    head = f"{'operation':<64}" + "".join(f"{c + ' gas':>16}" for c in names)
    lines = [head, "-" * len(head)]

    def section(title: str) -> None:
        lines.append(f"-- {title}")

    def row(label: str, values: list[float]) -> None:
        lines.append(f"{label:<64}" + "".join(f"{v:>16,.0f}" if v >= 100 else f"{v:>16,.5f}" for v in values))

    section(f"{n:,} paid requests")
    s = {c: summary(results[c], n) for c in names}
    row(f"settle: {n:,} requests, one voucher", [s[c]["settle_gas_for_n_requests"] for c in names])
    row("settle: 1 request, one voucher", [s[c]["settle_gas_for_1_request"] for c in names])
    row("channel life (open + settle + withdraw), native", [s[c]["channel_life_native_gas"] for c in names])
    row("channel life (approve + open + settle + withdraw), ERC-20", [s[c]["channel_life_erc20_gas"] for c in names])
    row(f"{n:,} native transfers", [s[c]["n_native_transfers_gas"] for c in names])
    row(f"{n:,} ERC-20 transfers (PaymentToken)", [s[c]["n_erc20_transfers_gas"] for c in names])
    for key, label in (("channel_native", "per request: channel, native"),
                       ("native_transfer", "per request: native transfer"),
                       ("channel_erc20", "per request: channel, ERC-20"),
                       ("erc20_transfer", "per request: ERC-20 transfer")):
        row(label, [s[c]["per_request"][key] for c in names])
    row("channel life / native transfers", [s[c]["ratio_channel_to_native_transfers"] for c in names])
    row("channel life / ERC-20 transfers", [s[c]["ratio_channel_to_erc20_transfers"] for c in names])
    for key, title in (("channel", "PaymentChannels (N = %d)" % n), ("market", "market"), ("deploy", "deployment")):
        section(title)
        for label in results[names[0]][key]:
            row(label, [results[c][key][label] for c in names])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="paid requests, and on-chain payments (10,000)")
    parser.add_argument("--anvil", help=f"an anvil binary (default: {LOCAL_ANVIL} or npm install into a temp folder)")
    parser.add_argument("--no-anvil", action="store_true", help="measure on py-evm only")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.requests < 2:
        parser.error("--requests must be >= 2")

    results: dict[str, dict[str, Any]] = {}
    chains: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="ledgermind-bench-market-gas-") as work:
        factories = [("py-evm", py_evm_chain)]
        if not args.no_anvil:
            binary = args.anvil or (str(LOCAL_ANVIL) if LOCAL_ANVIL.exists() else install_anvil(Path(work)))
            factories.append(("anvil", lambda: anvil_chain(binary)))
        for name, factory in factories:
            with factory() as (chain, info):
                print(f"measuring on {name} ({info['client']}, {info['hardfork']})...", file=sys.stderr)
                results[name] = measure(chain, args.requests)
                chains[name] = info

    reference = results["py-evm"]
    agree = all(agrees(r, reference) for r in results.values())
    s = summary(reference, args.requests)
    met = s["ratio_channel_to_native_transfers"] <= TARGET_RATIO

    print(f"EVM version of the contracts: {EVM_VERSION}; chains: "
          + "; ".join(f"{n}: {c['client']} ({c['hardfork']})" for n, c in chains.items()))
    print("\n".join(table(results, args.requests)))
    print(f"\nchains agree on every figure (settles: up to their signatures' calldata): {agree}")
    print(f"channel life / {args.requests:,} native transfers: {s['ratio_channel_to_native_transfers']:.5f} vs limit "
          f"{TARGET_RATIO} -> {'met' if met else 'MISSED'}")

    doc = {
        "benchmark": "market_gas",
        "date": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "params": {"requests": args.requests, "price_per_request": PRICE, "tx_gas_limit": GAS,
                   "platform_fee_bps": 100, "lineage_bps": 2_000, "royalty_bps": 500},
        "contracts": {n: {"evmVersion": load(n)["evmVersion"], "compiler": load(n)["compiler"]["version"],
                          "integrity": load(n)["integrity"]} for n in CONTRACTS},
        "chains": chains,
        "versions": {"web3": version("web3"), "eth-account": version("eth-account"), "python": platform.python_version()}
        | ({"anvil": "1.7.1"} if "anvil" in results else {}),
        "gas": results,
        "summary": s,
        "chains_agree": agree,
        "target": {"ratio_channel_to_native_transfers": s["ratio_channel_to_native_transfers"], "limit": TARGET_RATIO,
                   "met": met},
        "target_met": met and agree,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"\nwrote {args.out}")
    return 0 if doc["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Gas of the AI oracle's steps and of the insurance consumer's, beside a plain ERC-20 transfer and an anchor.

    python bench/bench_oracle_gas.py [--repeats 3]

Runs the real flow through a temporary home on the embedded chain (py-evm): the contracts deployed with the other
ones, the bundled claims model registered, one oracle with a bond, and ``--repeats`` times: a direct request, an
honest decision, a faulty decision disputed and overturned by the resolver, an honest one disputed and upheld,
a decision finalized after its window; then an insured claim (fund, product, buy, claim, decision, settle with
payout). ``gasUsed`` is read from each transaction's receipt. The first of each step writes fresh storage slots
(an oracle's first answer, a counter's first increment), so the table shows the first and the steady state.

Peers, same run: one PaymentToken ``transfer`` (the cheapest way to move value) and one AnchorRegistry anchor
(committing a log's checkpoint). What the commitment saves is the output itself: a decision posts 32 bytes of
output digest whatever the output's size. No target: a figure for the README. Writes
``bench/results/oracle_gas.json``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

TOKEN = 10**18
RESULTS = Path(__file__).resolve().parent / "results" / "oracle_gas.json"


def measure(repeats: int) -> dict[str, list[int]]:
    from ledgermind.client import Client
    from ledgermind.oracle import insurance, service

    gas: dict[str, list[int]] = {}

    def note(step: str, used: int) -> None:
        gas.setdefault(step, []).append(int(used))

    with tempfile.TemporaryDirectory() as tmp:
        boss = Client(Path(tmp) / "home")
        boss.account()
        actors = {}
        for name in ("node", "requester", "challenger"):
            address = boss.new_account()
            boss.faucet(address, 10_000 * TOKEN)
            actors[name] = boss.acting_as(address)
        boss.faucet(amount=100_000 * TOKEN)
        node, requester, challenger = actors["node"], actors["requester"], actors["challenger"]
        model = insurance.claims_model(boss)["id"]
        oracle = service.contract_of(boss)
        note("register (one model)", oracle.register(node.account(), [model], 1_000 * TOKEN).gas_used)
        labels = insurance.claims_data().cases_y
        sick, healthy = int(labels.argmax()), int(labels.argmin())
        address = node.account().address

        def ask(case: int) -> int:
            return service.request(requester, model, insurance.claim_case(case), address, fee=TOKEN,
                                   stake=20 * TOKEN)["request_id"]

        for _ in range(repeats):
            service.set_windows(boss, 3_600, 3_600, 3_600)
            rid, receipt = oracle.request(requester.account(), address, model,
                                          hashlib.sha256(os.urandom(8)).digest(), fee=TOKEN, stake=20 * TOKEN)
            note("request", receipt.gas_used)
            note("decision (fulfill)", service.decide(node, ask(sick))["gasUsed"])
            wrong = ask(healthy)
            service.decide(node, wrong, attack="flip")
            note("dispute", service.dispute(challenger, wrong)["gasUsed"])
            note("ruling, overturned (slash)", service.resolve(boss, wrong)["gasUsed"])
            right = ask(healthy)
            service.decide(node, right)
            oracle.dispute(challenger.account(), right, hashlib.sha256(b"made up").digest(), 1)
            note("ruling, upheld", service.resolve(boss, right)["gasUsed"])
            service.set_windows(boss, 3_600, 1, 3_600)
            final = ask(sick)
            service.decide(node, final)
            boss.faucet(amount=1)  # a block: the one-second window is over
            note("finalize", service.finalize(boss, final)["gasUsed"])
        insurance.fund(boss, 10_000 * TOKEN)
        product = insurance.create_product(boss, assessor=address, premium=5 * TOKEN, coverage=50 * TOKEN,
                                           duration=30 * 86_400, fee=TOKEN)
        for _ in range(repeats):
            policy = insurance.buy(requester, product["product_id"])["policy_id"]
            claimed = insurance.claim(requester, policy, insurance.claim_case(sick))
            note("insurance claim (request included)", claimed["gasUsed"])
            service.decide(node, claimed["request"]["request_id"])
            boss.faucet(amount=1)
            note("insurance settle (payout)", insurance.settle(requester, policy)["gasUsed"])

        market = boss.market()
        token = boss.chain().w3.eth.contract(address=market.payment_token, abi=_abi("PaymentToken"))
        note("peer: PaymentToken transfer", boss.chain().transact(
            requester.account(), token.functions.transfer(challenger.account().address, 1), 100_000).gas_used)
        anchored = boss.anchor()["anchored"]
        receipt = boss.chain().w3.eth.get_transaction_receipt(anchored["txHash"])
        note("peer: first anchor of a log", receipt["gasUsed"])
        for c in actors.values():
            c.close()
        boss.close()
    return gas


def _abi(name: str) -> list[Any]:
    from ledgermind.contracts import load

    return load(name)["abi"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["LEDGERMIND_AUTO_ANCHOR"] = "0"
    gas = measure(args.repeats)
    print(f"{'step':40} {'first':>10} {'steady (last)':>14}")
    for step, values in gas.items():
        print(f"{step:40} {values[0]:>10,} {values[-1]:>14,}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "oracle_gas", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "chain": "embedded (py-evm)", "repeats": args.repeats, "gas": gas,
        "versions": {"python": platform.python_version(), "py-evm": version("py-evm"), "web3": version("web3")},
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

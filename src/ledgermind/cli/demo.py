"""``ledgermind demo``: the whole system in one narrated run on the embedded chain.

Five hospitals register their share of scikit-learn's breast-cancer data (quality-checked at registration), the
consortium's governance approves the datasets, a federated training runs with one poisoner that is flagged and
slashed, the hospitals collect their rewards, the model is registered with its lineage, minted and listed with
the hospitals sharing each sale, a buyer pays per request through a payment channel and gets signed receipts,
and everything is verified against the log and the chain at the end (a tampered copy fails; an exported bundle
verifies offline). The home is left as it is, to browse.

Every actor has its own account in the home's keystore and signs its own statements and transactions.
"""

from __future__ import annotations

import csv
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ledgermind.cli.output import lineage_tree, out, print_report
from ledgermind.client import Client

TOKEN = 10**18
HOSPITALS = 5
ROUNDS = 3
PAID_REQUESTS = 10
PRICE_PER_ROW = 10**15  # 0.001 LMPAY


@dataclass
class Outcome:
    """What the summary table shows: one row per step, and whether it came out as it should."""

    rows: list[tuple[str, str, bool]] = field(default_factory=list)

    def add(self, step: str, result: str, ok: bool = True) -> None:
        self.rows.append((step, result, ok))

    @property
    def ok(self) -> bool:
        return all(ok for _, _, ok in self.rows)


def _step(n: int, text: str, started: float) -> None:
    out.print(f"\n[bold cyan]{n}.[/] [bold]{text}[/] [dim]({time.perf_counter() - started:.1f} s)[/]")


def _short(address: str) -> str:
    return f"{address[:8]}…{address[-4:]}"


def _tokens(wei: int | str) -> str:
    return f"{int(wei) / TOKEN:,.3f} LMPAY"


def _rows(path: str, n: int) -> list[list[float]]:
    """The first ``n`` feature rows of a party data file (its last column is the label)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1 : n + 1]
    return [[float(v) for v in r[:-1]] for r in rows]


def _health_lines(health: dict[str, Any]) -> list[str]:
    """Three lines of the health report: the profile learned so far and the recommended parameters."""
    p, r = health["profile"], health["recommendations"]
    bi, gb = p["blockInterval"], p["gasPerBlock"]
    lines = [f"  profile: {p['blocks']} blocks, {p['transactions']} transactions; failed {p['failedRate']:.1%}"
             + (f"; block interval median {bi['median']:g} s; gas per block median {gb['median']:,.0f}"
                if bi["median"] is not None else "")]
    g, an = r["gasPrice"], r["anchoring"]
    lines.append(f"  recommends: maxFeePerGas {g['maxFeePerGas']:,} wei; anchoring every {an['everySeconds']:g} s "
                 f"or {an['everyEntries']} statements")
    return lines


def run_demo(client: Client, workdir: Path | None = None) -> bool:
    """Run the narrated demo in ``client``'s home; return True if every step came out as it should.

    Raises LedgermindError if a step fails outright (the CLI prints its one-line reason)."""
    started = time.perf_counter()
    home = client.settings.home
    work = (workdir or home / "demo").expanduser()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    result = Outcome()
    out.print(Panel.fit(
        "ledgermind demo: five hospitals train a model together, sell it, serve it for micropayments,\n"
        f"and anyone verifies it back to their data\nledger home: {escape(str(home))}",
        border_style="cyan",
    ))

    def as_(address: str) -> Client:
        return client.acting_as(address)

    # ------------------------------------------------------------------ 1. accounts
    _step(1, "The consortium: a coordinator, five hospitals and a buyer, each with its own key", started)
    coordinator = client.account().address
    client.deploy()  # idempotent: the embedded chain is ours to deploy on
    hospitals = [client.new_account() for _ in range(HOSPITALS)]
    buyer = client.new_account()
    client.faucet(amount=1_000 * TOKEN)
    for who in (*hospitals, buyer):
        client.faucet(who, amount=50 * TOKEN)
    client.deploy(grant=hospitals)  # hospitals may mint their own datasets
    out.print(f"coordinator {_short(coordinator)}; hospitals {', '.join(_short(h) for h in hospitals)}; "
              f"buyer {_short(buyer)}; 50 LMPAY each from the demo token's faucet")

    # ------------------------------------------------------------------ 2. data
    _step(2, "The coordinator opens a federated task; each hospital registers its share of the data", started)
    created = client.fed_create(dataset="breast_cancer", parties=HOSPITALS, rounds=ROUNDS, reward_pool=300 * TOKEN,
                                min_stake=10 * TOKEN, commit_window=600, reveal_window=600)
    task_id = created["taskId"]
    datasets: list[dict[str, Any]] = []
    table = Table(box=None)
    for col in ("hospital", "dataset", "rows", "missing", "duplicates", "label balance", "PII found"):
        table.add_column(col)
    for who, path in zip(hospitals, created["partyFiles"]):
        with as_(who) as h:
            joined = h.fed_join(task_id, path)
            h.mint(joined["dataset"])  # on chain as its hospital's ERC-721, so governance can rule on it
            quality = h.show(joined["dataset"])["statement"]["predicate"].get("quality") or {}
        t = (quality.get("tables") or [{}])[0]
        datasets.append({"account": who, "id": joined["dataset"], "path": path})
        pii = sorted({k for kinds in t.get("pii", {}).values() for k in kinds})
        classes = (t.get("label") or {}).get("classes") or {}
        table.add_row(_short(who), joined["dataset"][:12], str(t.get("rows", "?")),
                      str(sum(c["missing"] for c in t.get("columns", []))), str(t.get("duplicates", "?")),
                      " / ".join(f"{k}:{v}" for k, v in classes.items()) or "-", ", ".join(pii) or "none")
    out.print(table)
    out.print(f"task {task_id}: {ROUNDS} rounds, reward pool 300 LMPAY, stake 10 LMPAY per hospital")
    result.add("hospitals registered quality-checked data", f"{len(datasets)} datasets")

    # ------------------------------------------------------------------ 3. governance
    _step(3, "Governance approves the five datasets; from now on the market refuses models built on anything else",
          started)
    client.gov_gate(True)
    for d in datasets:
        decided = client.gov_decide("approve-dataset", d["id"])
        out.print(f"proposal {decided['proposal_id']}: approve dataset {d['id'][:12]} -> {decided['status']}")
    approved = all(client.gov_status(d["id"])["dataset"] for d in datasets)
    result.add("governance approved the datasets", "5 of 5 executed" if approved else "not all", approved)

    # ------------------------------------------------------------------ 4. training
    poisoner = hospitals[1]
    _step(4, f"Federated training, {ROUNDS} rounds; hospital {_short(poisoner)} poisons its updates (x10 scaling)",
          started)

    def on_round(r: dict[str, Any]) -> None:
        flags = ", ".join(f"{_short(a)} ({escape(why.split(':')[0])})" for a, why in r["flags"].items()) or "none"
        out.print(f"round {r['round']}: validation accuracy {r['validationAccuracy']:.3f}; flagged: {flags}")

    trained = client.fed_run(task_id, attacks={poisoner: "scale"}, on_round=on_round)
    status = client.fed_status(task_id)
    states = {p["account"]: p["state"] for p in status["participants"]}
    owed = {p["account"]: int(p["withdrawable"]) for p in status["participants"]}
    slashed = states.get(poisoner) == "slashed" and owed.get(poisoner, 1) == 0
    accuracy = trained["rounds"][-1]["validationAccuracy"]
    result.add("poisoner detected and slashed", f"{_short(poisoner)}: {states.get(poisoner)}", slashed)
    result.add("federated model accuracy", f"{accuracy:.3f} on the validation set", accuracy > 0.9)

    # ------------------------------------------------------------------ 5. rewards
    _step(5, "Hospitals claim their rewards (pull payments): stake back plus a share by contribution", started)
    paid_total = 0
    for who in hospitals:
        with as_(who) as h:
            claim = h.fed_claim(task_id)
        paid_total += int(claim["paid"])
        out.print(f"{_short(who)} collected {_tokens(claim['paid'])}")
    result.add("rewards paid by contribution", f"{_tokens(paid_total)} to 5 hospitals, slashed stake kept")

    # ------------------------------------------------------------------ 6. model on the market
    model = trained["model"]
    _step(6, "The model is registered with its lineage, minted, and listed; every sale pays the hospitals too", started)
    out.print(lineage_tree(client.lineage(model["id"])))
    client.mint(model["id"])
    listed = client.sell(model["id"], price=5 * TOKEN, token="demo", lineage_bps=5_000)
    contributors = listed[-1].get("contributors", [])
    out.print(f"access tokens at 5 LMPAY each; 50% of every sale split among {len(contributors)} data owners")
    with as_(buyer) as b:
        b.buy(model["id"], quantity=1)
    result.add("model minted and sold with lineage shares", f"{len(contributors)} contributors paid per sale",
               len(contributors) == HOSPITALS)

    # ------------------------------------------------------------------ 7. paid inference
    _step(7, "The coordinator serves the model; the buyer pays per request through a payment channel", started)
    from ledgermind.inference.server import ServerThread

    provider = client.provider([(model["id"], model["path"])], price=PRICE_PER_ROW, token="demo", datasets=False)
    receipts: list[int] = []
    try:
        assert provider.inference is not None
        with ServerThread(provider.inference) as server, as_(buyer) as b:
            for row in _rows(datasets[0]["path"], PAID_REQUESTS):
                answer = b.infer(model["id"], [row], providers=[server.url], deposit=TOKEN)
                receipts.append(answer["receipt"]["logIndex"])
            channels = b.channels()
    finally:
        provider.close()
    check = client.verify_receipt(receipts[-1], model=model["id"])
    settled = client.settle()
    out.print(f"{len(receipts)} paid requests, receipts at log indices {receipts[0]}..{receipts[-1]}; "
              f"last receipt {'verified' if check.ok else 'FAILED'}; channel {channels[0]['channelId'][:12]} "
              f"settled on chain in {len(settled)} transaction(s)")
    result.add("paid inferences with signed receipts", f"{len(receipts)} requests, receipt verified", check.ok)

    # ------------------------------------------------------------------ 8. oracle and insurance
    _step(8, "An insurer's policy pays out when the AI oracle's model approves a claim (disputable for a window)", started)
    from ledgermind.oracle import insurance
    from ledgermind.oracle import service as oracle

    node = client.new_account()
    client.faucet(node, amount=200 * TOKEN)
    claims = insurance.claims_model(client)
    with as_(node) as n:
        oracle.register(n, [claims["id"]], 100 * TOKEN)
    oracle.set_windows(client, 600, 1, 600)  # a claim's decision is final one block after it is posted
    insurance.fund(client, 500 * TOKEN)
    product = insurance.create_product(client, assessor=node, premium=2 * TOKEN, coverage=40 * TOKEN,
                                       duration=30 * 86_400, fee=TOKEN)
    sick = int(insurance.claims_data().cases_y.argmax())
    with as_(buyer) as patient:
        policy = insurance.buy(patient, product["product_id"])["policy_id"]
        claimed = insurance.claim(patient, policy, insurance.claim_case(sick))
    done: list[dict[str, Any]] = []
    with as_(node) as n:
        skip: set[int] = set()
        for _ in range(3):  # answer; then, once final, finalize and settle the claim
            done += oracle.serve_once(n, skip)
            if any(d["action"] == "settle" for d in done):
                break
    with as_(buyer) as patient:
        paid = insurance.status(patient, policy)
        payout = insurance.withdraw(patient) if paid["status"] == "paid" else {"amount": "0"}
    decision = next((d for d in done if d["action"] == "decision"), {})
    out.print(f"claims model {claims['id'][:12]} (held-out accuracy {claims['heldOutAccuracy']:.3f}) registered; "
              f"oracle {_short(node)} bonded 100 LMPAY")
    out.print(f"policy {policy}: claim request {claimed['request']['request_id']} -> decision "
              f"{decision.get('decision')} posted with its commitment (receipt at log #{decision.get('logIndex')}); "
              f"final after the dispute window; claim {paid['status']}, {_tokens(payout['amount'])} withdrawn")
    result.add("oracle-assessed insurance claim", f"{paid['status']}, {_tokens(payout['amount'])}",
               paid["status"] == "paid" and int(payout["amount"]) == 40 * TOKEN)

    # ------------------------------------------------------------------ 9. guard
    _step(9, "The guard indexes the chain, runs its detectors and records what it finds as signed alerts", started)
    from ledgermind.guard import service as guard

    ring, asset = (hospitals[2], hospitals[3]), datasets[2]["id"]
    for k in range(4):  # two hospitals pass a dataset NFT back and forth, at rising prices, to fake demand
        seller, buyer_ = ring[k % 2], ring[(k + 1) % 2]
        with as_(seller) as a, as_(buyer_) as b:
            a.sell(asset, kind="asset", price=(k + 1) * TOKEN, token="demo")
            b.buy(asset, kind="asset")
    out.print(f"meanwhile {_short(ring[0])} and {_short(ring[1])} sold dataset {asset[:12]} back and forth 4 times")
    scanned = guard.scan(client)
    health = guard.health(client)
    kinds: dict[str, int] = {}
    for a in scanned["alerts"]:
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    out.print(f"indexed {scanned['sync'].get('blocks', '?')} blocks up to {scanned['head']}; watched contracts: "
              f"{len(scanned['watched'])}; alerts: {', '.join(f'{k} {v}' for k, v in kinds.items()) or 'none'}")
    for note in scanned["notes"]:
        out.print(f"[dim]{escape(note)}[/]")
    for line in _health_lines(health):
        out.print(line)
    wash = next((a for a in scanned["alerts"] if a["kind"] == "wash-trading"), None)
    rechecked = guard.show(client, wash["id"]) if wash else {"ok": False}
    if wash:
        out.print(f"wash-trading alert at log #{wash['logIndex']}: {escape(wash['summary'])}; re-derived from the "
                  f"chain: {'same features and score' if rechecked['ok'] else 'MISMATCH'}")
    result.add("guard caught the wash trading", f"alert re-checked, {len(scanned['alerts'])} alerts in all",
               bool(wash) and set(wash["subjects"]) == {r.lower() for r in ring} and rechecked["ok"])

    # ------------------------------------------------------------------ 10. verification
    _step(10, "Anyone verifies the model against the log and the chain; a tampered copy fails; a bundle verifies "
             "offline", started)
    anchored = client.anchor()["anchored"]
    model_path = Path(model["path"])
    good = client.verify(model_path)
    print_report(good.to_json())
    copy = work / "tampered" / model_path.name
    copy.parent.mkdir()
    data = bytearray(model_path.read_bytes())
    data[-10] ^= 1
    copy.write_bytes(bytes(data))
    bad = client.verify(copy, expect=model["id"])
    out.print(f"tampered copy: [bold red]{'FAILED' if not bad.ok else 'passed?!'}[/] ("
              f"{escape(next((c.detail for c in bad.checks if c.status == 'FAIL'), ''))})")
    bundle = client.export_bundle(model["id"], work / "federated-model.bundle.json")
    offline = Client.verify_bundle(bundle, model_path, log_key=client.log_info()["publicKey"])
    fsck = client.fsck()
    result.add("model verified against log and chain", f"tree size {anchored['treeSize']} anchored", good.ok)
    result.add("tampered copy rejected", "FAIL (as expected)" if not bad.ok else "PASS (unexpected)", not bad.ok)
    result.add("offline bundle verify", "PASS" if offline.ok else "FAIL", offline.ok)
    result.add("log fsck", f"ok, {fsck.size} entries" if fsck.ok else "FAIL", fsck.ok)

    table = Table(title="summary", box=None)
    table.add_column("step")
    table.add_column("result")
    for step, text, ok in result.rows:
        table.add_row(step, text if ok else f"[red]{escape(text)}[/]")
    table.add_row("time", f"{time.perf_counter() - started:.1f} s")
    out.print()
    out.print(table)
    out.print(f"browse it: [bold]ledgermind --home {escape(str(home))} up[/]")
    return result.ok

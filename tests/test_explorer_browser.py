"""The web explorer in a real browser: Debian's chromium driven by playwright-core (npm) against `ledgermind up`.

A home is populated through the real CLI (a federated task with a poisoner slashed, an oracle decision, a
fine-tuned model with lineage back to every party's data, mints, a listing and a sale, a paid inference through
`ledgermind serve`, guard alerts, a governance proposal, an anchor and one entry after it), then `ledgermind up`
serves it and tests/browser/explorer.mjs visits every page. The script reports what each page showed as JSON;
this test checks the key facts against what the CLI says, that an inclusion proof verified in the page against
the anchored root (and the log's consistency with it; a tampered proof failed), and that the two actions signed
in the page with a deterministic dev key (an event statement, a governance vote) landed in the log.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import joblib
import pytest
from eth_account import Account
from sklearn.linear_model import LogisticRegression

from ledgermind import Client
from ledgermind.accounts import DEV_PASSWORD
from ledgermind.statements import ALERT, EVENT, GOVERNANCE, make_statement, sign_envelope, utc_now

from .conftest import InProcessCLI as CLI
from .test_cli_serving import start_serving

pytestmark = pytest.mark.slow  # not `chain`: this home anchors once, when populate says so

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "browser" / "explorer.mjs"
# a deterministic test key, public by construction: it signs in the page as a wallet would
DEV_KEY = "0x" + "5e" * 32
DEV = Account.from_key(DEV_KEY)


def chromium_path() -> str | None:
    """Debian's chromium (installed by .ci/run), or LEDGERMIND_CHROMIUM."""
    return os.environ.get("LEDGERMIND_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _add_dev_key(home: Path) -> None:
    """Put the dev key in the home's keystore, as `geth account import` would: the node votes for accounts it holds."""
    blob = Account.encrypt(DEV.key, DEV_PASSWORD, kdf="scrypt", iterations=2)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    (home / "keystore" / f"UTC--{stamp}--{DEV.address[2:].lower()}").write_text(json.dumps(blob))


def _alerts(home: Path, owner: str) -> None:
    """Two guard alerts (alert/v1), signed by the owner and submitted through the Client."""
    with Client(home=home) as lm:
        account = lm.keystore.unlock(owner, DEV_PASSWORD)
        for n, (score, case) in enumerate([(0.91, "wash trading around the model's listing"),
                                           (0.35, "burst of small purchases")]):
            predicate = {"kind": "wash-trading" if n == 0 else "sybil-buyers", "case": case, "chainId": 1337,
                         "head": 40, "subjects": [owner], "score": score, "threshold": 0.8, "summary": case,
                         "features": {"cycle": score}, "evidence": ["0x" + f"{n + 1:064x}"],
                         "detector": {"name": "graph-cycles", "version": "1", "digest": "ab" * 32},
                         "raisedAt": utc_now()}
            statement = make_statement([(f"alert-{n}", f"{n + 7:064x}")], ALERT, predicate)
            lm.submit(sign_envelope(statement.to_bytes(), account).to_bytes())


def populate(root: Path) -> dict:
    """A home with something on every page; returns what the pages must show."""
    cli = CLI(root / "home")
    owner = cli("account", "new", "--default").stdout.strip()
    cli("market", "faucet", "--amount", "1000token")
    created = cli.json("fed", "create", "--parties", "3", "--rounds", "2", "--pool", "90token", "--stake", "10token",
                       "--commit-window", "600", "--reveal-window", "600", "--seed", "3")
    task = str(created["taskId"])
    parties = []
    for path in created["partyFiles"]:
        who = cli("account", "new").stdout.strip()
        cli("market", "faucet", who, "--amount", "20token")
        joined = cli.json("--account", who, "fed", "join", task, "--data", path)
        parties.append({"account": who, "dataset": joined["dataset"]})
    poisoner = parties[2]["account"]
    fed = cli.json("fed", "run", task, "--attack", f"{poisoner}=scale")
    claims = {p["account"]: int(cli.json("--account", p["account"], "fed", "claim", task)["paid"]) for p in parties[:2]}

    # the AI oracle answers one request with the insurance claims model (registered with its data)
    claims_model = cli.json("insurance", "model")["id"]
    cli("oracle", "register", "--model", claims_model, "--bond", "100token")
    request = cli.json("oracle", "request", claims_model, "--oracle", owner, "--case", "0", "--fee", "1token",
                       "--stake", "20token")["request_id"]
    decision = cli.json("oracle", "decide", str(request))

    # a model fine-tuned from the federated one on more data: lineage three layers deep
    (root / "extra.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,1\n")
    joblib.dump(LogisticRegression().fit([[1, 2], [3, 4], [5, 6]], [0, 1, 1]), root / "tuned.joblib")
    extra = cli.json("register", "dataset", str(root / "extra.csv"))
    tuned = cli.json("register", "model", str(root / "tuned.joblib"), "--trained-on", extra["id"],
                     "--parent", fed["model"]["id"])
    cli("deploy", *[arg for p in parties for arg in ("--grant", p["account"])])
    for p in parties:
        cli("--account", p["account"], "mint", p["dataset"])
    for ref in (extra["id"], fed["model"]["id"], tuned["id"]):
        cli("mint", ref)
    cli("market", "sell", tuned["id"], "--price", "0.01ether", "--lineage-share", "2000")
    buyer = cli("account", "new").stdout.strip()
    cli("--account", buyer, "market", "buy", tuned["id"], "-n", "2")
    # one paid answer of the model: `ledgermind serve` announces it, the buyer pays through a channel
    served = start_serving(cli, tuned["id"], "--path", str(root / "tuned.joblib"), "--price", "1gwei", "--announce")
    provider = served.info["provider"]
    try:
        cli("--account", buyer, "infer", tuned["id"], "-i", "[[2, 3]]", "--deposit", "0.001ether")
    finally:
        served.stop()

    _alerts(root / "home", owner)
    _add_dev_key(root / "home")
    cli("gov", "member", DEV.address)
    proposal = cli.json("gov", "propose", "approve-dataset", extra["id"])
    cli("anchor")
    # appended after the anchor: the page checks that the latest checkpoint extends the anchored one
    cli("event", "supply-chain", "shipped", "--related", tuned["id"], "--data", '{"carrier": "ACME"}')
    info = cli.json("log", "info")
    return {"owner": owner, "parties": parties, "poisoner": poisoner, "task": task, "fed": fed, "claims": claims,
            "extra": extra, "tuned": tuned, "buyer": buyer, "provider": provider, "proposal": proposal,
            "oracle": {"model": claims_model, "request": request, "decision": decision["decision"]},
            "log_size": info["size"], "root": info["root"]}


def _playwright() -> None:
    """Make sure of node_modules/playwright-core: `npm install` from the repository's package.json if missing."""
    found = ROOT / "node_modules" / "playwright-core"
    if found.is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise AssertionError("the browser test needs npm to install playwright-core (package.json)")
    with open(ROOT / ".npm-install.lock", "w") as lock:  # xdist workers: one installs, the others wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not found.is_dir():
            subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=ROOT, check=True)
    if not found.is_dir():
        raise AssertionError("npm install did not provide node_modules/playwright-core (see package.json)")


class Up:
    """`ledgermind up` in its own process on free ports, as a user runs it."""

    def __init__(self, home: Path) -> None:
        env = {**os.environ, "LEDGERMIND_HOME": str(home), "LEDGERMIND_AUTO_ANCHOR": "0"}
        self.proc = subprocess.Popen([sys.executable, "-m", "ledgermind.cli.app", "up", "--api-port", "0",
                                      "--rpc-port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.explorer = ""
        for line in self.proc.stdout:  # the lines come once both ports listen
            if line.startswith("explorer"):
                self.explorer = line.split()[1]
                break
        if not self.explorer:
            raise AssertionError(f"ledgermind up did not start: {self.stop()}")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.communicate(timeout=60)[1]


@pytest.fixture()
def explored(tmp_path: Path):
    """The populated home, and the browser script's report of its visit to the explorer."""
    chromium = chromium_path()
    node = shutil.which("node")
    if chromium is None or node is None:
        reason = (f"{'chromium' if chromium is None else 'node'} is not installed: .ci/run installs Debian's chromium "
                  "and playwright-core from npm; locally `apt-get install -y chromium && npm install`")
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs both: a skip there would hide that the explorer went untested
        pytest.skip(reason)
    _playwright()
    facts = populate(tmp_path)  # no automatic anchoring (conftest): the one anchor is populate's
    cli = CLI(tmp_path / "home")
    lineage = cli.json("lineage", facts["tuned"]["id"])
    (anchor,) = [a for a in cli.json("anchors") if a["status"] == "anchored"]
    up = Up(tmp_path / "home")
    try:
        opts = {"url": up.explorer, "chromium": chromium, "devKey": DEV_KEY, "asset": facts["tuned"]["id"],
                "parentAsset": facts["fed"]["model"]["id"], "entry": facts["fed"]["model"]["logIndex"],
                "task": int(facts["task"]), "proposal": facts["proposal"]["proposal_id"],
                "screenshots": os.environ.get("LEDGERMIND_EXPLORER_SCREENSHOTS")}
        proc = subprocess.run([node, str(DRIVER), json.dumps(opts)], capture_output=True, text=True, timeout=180,
                              cwd=ROOT)
    finally:
        stderr = up.stop()
    assert proc.returncode == 0, f"browser script failed:\n{proc.stderr[-3000:]}\nnode log:\n{stderr[-2000:]}"
    return cli, facts, lineage, anchor, json.loads(proc.stdout)


def test_the_explorer_in_chromium(explored):
    """One test, so that parallel workers do not each populate a home: three checks on the browser's report."""
    cli, facts, lineage, anchor, report = explored
    every_page_renders_its_key_facts(facts, lineage, anchor, report)
    inclusion_is_verified_in_the_page(facts, anchor, report)
    actions_signed_in_the_page_land_in_the_log(cli, facts, report)


def every_page_renders_its_key_facts(facts: dict, lineage: dict, anchor: dict, report: dict) -> None:
    pages = report["pages"]
    assert report["pageErrors"] == [] and report["failedRequests"] == []
    # the one error the browser logs is the 404 of the entry past the end, asked for on purpose
    assert report["consoleErrors"] == ["Failed to load resource: the server responded with a status of 404 (Not Found)"]
    missing = pages.pop("missingEntry")
    assert missing["heading"] == "Could not load this page" and "999999" in missing["error"]
    assert all(p.get("error") is None for p in pages.values()), {k: p.get("error") for k, p in pages.items()}

    assert pages["overview"]["stats"] == {"entries": facts["log_size"], "assets": 9, "anchors": 1, "listings": 1,
                                          "sales": 1, "federations": 1, "proposals": 1, "receipts": 1, "alerts": 2,
                                          "decisions": 1}
    assert facts["root"] in pages["overview"]["checkpoint"] and anchor["rootHash"] in pages["overview"]["anchor"]

    names = [row.split("\t")[0] for row in pages["assets"]["rows"]]
    assert len(names) == 9 and {"extra.csv", "tuned.joblib", facts["fed"]["model"]["name"]} <= set(names)

    # the lineage graph has the CLI's lineage: the tuned model, the federated model, every party's data
    def ids(node):
        return {node["id"]} | {i for p in node["parents"] for i in ids(p)}

    asset = pages["asset"]
    assert asset["name"] == "tuned.joblib" and set(asset["graphNodes"]) == ids(lineage) and len(ids(lineage)) == 6
    assert asset["graphEdges"] == 5  # tuned <- extra, tuned <- federated, federated <- 3 parties' data
    clicked = asset["afterClick"]
    fed_model = facts["fed"]["model"]
    assert (clicked["hash"], clicked["name"]) == (f"#/assets/{fed_model['id']}", fed_model["name"])
    # the federated model's graph: the parties' data behind it, the tuned model made from it
    assert set(clicked["graphNodes"]) == {fed_model["id"], facts["tuned"]["id"]} | {p["dataset"] for p in facts["parties"]}

    assert len(pages["log"]["rows"]) == facts["log_size"]
    assert pages["log"]["rows"][0].startswith(f"#{facts['log_size'] - 1}\t")
    market_rows = pages["log"]["marketRows"]  # filtered to market/v1: the listing's steps and the sale
    assert len(market_rows) >= 2 and all(row.split("\t")[1] == "market/v1" for row in market_rows)
    assert market_rows[0].split("\t")[0] == pages["market"]["sales"][0].split("\t")[0]  # the sale is the newest
    (anchored,) = pages["anchors"]["rows"]
    assert anchored.startswith(f"{anchor['treeSize']}\t{anchor['rootHash'][:16]}…\tanchored\t1337\t{anchor['txHash'][:14]}…")
    assert anchor["txHash"] in pages["tx"]["text"] and "Anchors the log" in pages["tx"]["text"]
    # the anchoring transaction as the chain has it: mined in the anchor's block, sent to the anchor contract
    chain_tx = pages["tx"]["chain"]
    assert "status\nsucceeded" in chain_tx and f"block\n{anchor['blockNumber']} (" in chain_tx
    assert f"to\n{anchor['contract']}" in chain_tx

    (listing,) = pages["market"]["listings"]
    assert listing.startswith("tuned.joblib\tmodel") and "0.01 ETH each" in listing
    (sale,) = pages["market"]["sales"]
    assert "buy-access" in sale and "0.02 ETH" in sale and facts["buyer"][:12] in sale

    assert pages["federations"]["rows"][0].startswith(f"task {facts['task']}\tfinished\t2 of 2")
    fed = pages["federation"]
    assert (len(fed["parties"]), len(fed["rounds"]), fed["accuracyPoints"], fed["rewardBars"]) == (3, 2, 2, 3)
    (slashed,) = [row for row in fed["parties"] if "slashed" in row]
    assert facts["poisoner"] in slashed
    # rewards plotted per party are what each claimed on chain, less its stake back; the poisoner got nothing
    stake = 10 * 10**18
    expected = sorted(f"{(paid - stake) / 10**18:.2f}" for paid in facts["claims"].values()) + ["0.00 slashed"]
    assert sorted(fed["rewardLabels"][2::2]) == sorted(expected)

    (receipt,) = pages["receipts"]["rows"]
    assert receipt.split("\t")[1:5] == ["tuned.joblib", facts["provider"][:12] + "…", "1 gwei", "channel voucher"]
    assert len(pages["alerts"]["rows"]) == 2 and pages["alerts"]["scorePoints"] == 2
    assert pages["alerts"]["threshold"] == ["threshold 0.8"]
    (decision,) = pages["oracle"]["rows"]
    oracle = facts["oracle"]
    assert decision.split("\t")[1:5] == [str(oracle["request"]), "decision", "critical-illness claims model",
                                         str(oracle["decision"])]
    (proposal,) = pages["governance"]["rows"]
    assert proposal.startswith("1\tapprove-dataset\t") and "open" in proposal


def inclusion_is_verified_in_the_page(facts: dict, anchor: dict, report: dict) -> None:
    entry = report["pages"]["entry"]
    assert entry["predicate"] == "model/v1" and entry["signature"] == "signature verified in the browser"
    assert entry["verified"] == "true"
    assert entry["verifySteps"][-2] == f"recomputed root equals the anchored root {anchor['rootHash']}"
    # one entry was appended after the anchor: the page also checked that the log still extends the anchored tree
    assert anchor["treeSize"] == facts["log_size"] - 1
    assert re.fullmatch(rf"the latest signed checkpoint \(size {facts['log_size']}, root [0-9a-f]{{64}}\) extends the "
                        r"anchored tree: consistency proof of \d+ hashes verified", entry["verifySteps"][-1])
    assert "(the node's agrees)" in entry["verifySteps"][2]
    assert entry["tamperedVerified"] == "false"
    assert entry["tamperedMessage"].startswith(f"✗ Not verified: root mismatch: expected {anchor['rootHash']}")


def actions_signed_in_the_page_land_in_the_log(cli: CLI, facts: dict, report: dict) -> None:
    submit = report["pages"]["submit"]
    assert submit["signer"] == DEV.address and submit["status"] == "200"
    entry = cli.json("log", "entry", submit["logIndex"])
    assert entry["signer"] == DEV.address and entry["statement"]["predicateType"] == EVENT
    assert entry["statement"]["predicate"]["type"] == "inspected-in-browser"
    assert entry["statement"]["predicate"]["data"] == {"site": "Rotterdam", "ok": True}

    assert report["pages"]["vote"]["status"] == "200"
    vote = cli.json("log", "entry", str(int(submit["logIndex"]) + 1))
    assert vote["signer"] == DEV.address and vote["statement"]["predicateType"] == GOVERNANCE
    assert vote["statement"]["predicate"]["action"] == "vote" and vote["statement"]["predicate"]["support"] is True
    (proposal,) = cli.json("gov", "status")["proposals"]
    assert proposal["yes"] == 1
    # the proposal's page, visited after the vote, lists both acts
    acts = [row.split("\t") for row in report["pages"]["proposal"]["rows"]]
    assert [(a[1], a[2], a[3]) for a in acts] == [("propose", facts["owner"], ""), ("vote", DEV.address, "yes")]

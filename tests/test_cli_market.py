"""The market from the command line, on the real embedded chain: a model trained on someone else's dataset is
sold, every sale pays the dataset's owner its share, payments are pulled, and every market transaction is a
signed statement in the log. Bad input: one line, exit 1, and nothing changes on chain or in the log."""

from __future__ import annotations

import shutil

import pytest

from ledgermind.cli.units import format_amount, parse_amount, parse_duration
from ledgermind.errors import InvalidInputError
from ledgermind.statements import MARKET

from .conftest import InProcessCLI as CLI
from .test_cli import log_size, one_line_error

pytestmark = pytest.mark.chain

MILLI = 10**15  # 0.001 ether


@pytest.fixture(scope="module")
def minted(tmp_path_factory):
    """A home where account ``data`` registered and minted a dataset, and account ``seller`` a model trained on it."""
    root = tmp_path_factory.mktemp("market")
    cli = CLI(root / "home")
    (root / "data.csv").write_text("age,bp,label\n51,130.5,1\n38,118.0,0\n")
    (root / "model.bin").write_bytes(b"weights" * 100)
    seller = cli("account", "new", "--default").stdout.strip()
    data_owner = cli("account", "new").stdout.strip()
    buyer = cli("account", "new").stdout.strip()
    cli("deploy", "--grant", data_owner)  # minting is by permission: the deployer lets the data owner mint
    data = cli.json("--account", data_owner, "register", "dataset", str(root / "data.csv"))
    cli("--account", data_owner, "mint", data["id"])
    model = cli.json("register", "model", str(root / "model.bin"), "--trained-on", data["id"], "--mint")
    return root, {"seller": seller, "data": data_owner, "buyer": buyer, "dataId": data["id"], "modelId": model["id"]}


@pytest.fixture()
def market(minted, tmp_path):
    root, who = minted
    shutil.copytree(root / "home", tmp_path / "home")
    return CLI(tmp_path / "home"), who


def test_sales_split_with_the_lineage_and_are_pulled(market):
    cli, who = market
    model = who["modelId"]
    listed = cli.json("market", "sell", model[:10], "--price", "0.001ether", "--lineage-share", "2000")
    assert [r["action"] for r in listed] == ["create-access-token", "list-access"]
    assert listed[1]["contributors"] == [{"account": who["data"], "bps": 2000}]
    cli("market", "sell", model, "--licence", "30d", "--price", "2token", "--token", "demo")
    (row,) = cli.json("market", "list")
    assert row["id"] == model and row["name"] == "model.bin"
    assert row["access"]["price"] == str(MILLI) and row["licence"]["duration"] == 30 * 86400

    buyer = ["--account", who["buyer"]]
    cli(*buyer, "market", "faucet")
    bought = cli.json(*buyer, "market", "buy", model, "-n", "3")
    assert bought[0]["price"] == str(3 * MILLI) and bought[0]["quantity"] == "3"
    licence = cli.json(*buyer, "market", "buy", model, "--licence")[0]
    holder = cli.json(*buyer, "balance")
    assert holder["access"] == [{"id": model, "accessTokens": str(3 * 10**18), "licenceExpiry": licence["expiry"],
                                 "hasAccess": True}]
    assert holder["demoToken"]["balance"] == str(998 * 10**18)

    # 3 tokens at 0.001: 20% to the dataset's owner, the rest to the seller; the licence (no split) to the seller
    owed = cli.json("balance")["withdrawable"]["marketplace"]
    assert owed == {"native": str(3 * MILLI * 8 // 10), "demoToken": str(2 * 10**18)}
    assert cli.json("--account", who["data"], "balance")["withdrawable"]["marketplace"]["native"] == str(3 * MILLI * 2 // 10)
    paid = cli.json("market", "withdraw")
    assert sorted(r["amount"] for r in paid) == sorted([str(3 * MILLI * 8 // 10), str(2 * 10**18)])
    assert cli.json("balance")["withdrawable"]["marketplace"] == {"native": "0", "demoToken": "0"}
    assert cli("market", "withdraw").stdout.strip() == "nothing to withdraw"

    # every market transaction is a statement signed by the account that sent it
    shown = cli.json("show", model)
    market_statements = [(s["logIndex"], s["signer"]) for s in shown["statements"] if s["predicateType"] == MARKET]
    assert [signer for _, signer in market_statements] == [who["seller"]] * 3 + [who["buyer"]] * 2
    entry = cli.json("log", "entry", str(market_statements[3][0]))
    assert entry["statement"]["predicate"]["action"] == "buy-access"
    assert entry["statement"]["predicate"]["txHash"] == bought[0]["txHash"]


def test_nft_sale_moves_the_token(market):
    cli, who = market
    model = who["modelId"]
    cli("market", "sell", model, "--price", "1gwei")  # creates the access token, the Marketplace minting for us
    cli("market", "sell", model, "--nft", "--price", "1ether")
    cli("--account", who["buyer"], "market", "buy", model, "--nft")
    assert [a["id"] for a in cli.json("--account", who["buyer"], "assets")] == [model]
    assert cli.json("balance")["withdrawable"]["marketplace"]["native"] == str(10**18)
    # the old owner's listings are void now, and the new owner can sell
    one_line_error(cli("market", "sell", model, "--price", "1", ok=False), "owned by", who["buyer"])
    one_line_error(cli("market", "buy", model, ok=False), "void")
    # access to the same token: the new owner authorises the Marketplace to mint it first, and sales work again
    listed = cli.json("--account", who["buyer"], "market", "sell", model, "--price", "2gwei")
    assert [t["action"] for t in listed] == ["authorise-minter", "list-access"]
    cli("market", "buy", model)
    assert cli.json("balance")["access"][0]["accessTokens"] == str(10**18)
    assert [t["action"] for t in cli.json("--account", who["buyer"], "market", "sell", model, "--price", "3gwei")] \
        == ["list-access"]  # authorised once per owner


def test_free_dispenser(market):
    cli, who = market
    cli("market", "sell", who["modelId"], "--free", "1")
    cli("--account", who["buyer"], "market", "buy", who["modelId"], "--free")
    assert cli.json("--account", who["buyer"], "balance")["access"][0]["accessTokens"] == str(10**18)
    one_line_error(cli("--account", who["buyer"], "market", "buy", who["modelId"], "--free", ok=False),
                   "already took 1 of the 1")


def test_bad_input_changes_nothing(market):
    cli, who = market
    model = who["modelId"]
    cli("market", "sell", model, "--licence", "1d", "--price", "5token", "--token", "demo")
    before_log = log_size(cli)
    before = cli.json("market", "list")
    buyer = ["--account", who["buyer"]]
    cases = [
        (("market", "sell", model, "--price", "0"), "price must be a positive"),
        (("market", "sell", model, "--price", "1.5wei"), "fraction of the smallest unit"),
        (("market", "sell", model, "--price", "ten"), "is not a number"),
        (("market", "sell", "nope", "--price", "1"), "no asset 'nope'"),
        (("market", "sell", model), "--price is required"),
        (("market", "sell", model, "--price", "1", "--nft", "--licence", "1d"), "choose one of"),
        (("market", "sell", model, "--price", "1", "--contributor", "0xabc"), "ADDRESS=BASIS_POINTS"),
        (("market", "sell", model, "--price", "1", "--contributor", f"{who['data']}=20000"), "1 to 10000 basis points"),
        (("market", "sell", model, "--price", "1", "--token", "0x" + "12" * 20), "no ERC-20 contract"),
        (("market", "sell", model, "--licence", "0d", "--price", "1"), "duration"),
        (("--account", who["data"], "market", "sell", model, "--price", "1"), "owned by"),
        (("--account", who["data"], "market", "sell", who["dataId"], "--price", "1", "--lineage-share", "100"),
         "has no parents"),
        ((*buyer, "market", "buy", model), "not listed for access tokens"),
        ((*buyer, "market", "buy", model, "--licence"), "has 0 units of token"),
        ((*buyer, "market", "buy", model, "-n", "0"), "at least one"),
        ((*buyer, "market", "delist", model), "no access listing"),
        ((*buyer, "market", "delist", model, "--kind", "licence"), "caller is not asset owner"),
        ((*buyer, "market", "faucet", "--amount", "1token"), None),  # allowed: minted by the deployer
    ]
    for args, words in cases:
        if words is None:
            cli(*args)
            continue
        one_line_error(cli(*args, ok=False), words)
    after = cli.json("market", "list")
    assert after == before
    assert log_size(cli) == before_log


def test_amounts_and_durations_parse_exactly():
    assert parse_amount("1") == 1
    assert parse_amount("0.001ether") == 10**15
    assert parse_amount("5 gwei") == 5 * 10**9
    assert parse_amount("1e3") == 1000
    assert parse_amount("2.5token") == 25 * 10**17
    assert parse_amount("1_000") == 1000
    for bad in ("", "-1", "1.5", "1 parsec", "0x10", "1e-3ether"):
        with pytest.raises(InvalidInputError):
            parse_amount(bad)
    with pytest.raises(InvalidInputError):
        parse_amount(str(2**256))
    assert parse_duration("3600") == 3600 and parse_duration("30d") == 30 * 86400 and parse_duration("2w") == 14 * 86400
    for bad in ("0", "1y", "-5", "h"):
        with pytest.raises(InvalidInputError):
            parse_duration(bad)
    assert format_amount(15 * 10**17) == "1.5 ETH"
    assert format_amount(2 * 10**18, "0x" + "ab" * 20, "0x" + "AB" * 20) == "2 LMPAY"


def test_platform_fee_comes_off_the_top(market):
    cli, who = market
    model = who["modelId"]
    cli("market", "fee", "250", "--recipient", who["data"])
    assert cli.json("market", "fee") == {"feeBps": 250, "feeRecipient": who["data"]}
    one_line_error(cli("--account", who["buyer"], "market", "fee", "10", ok=False), "only the Marketplace owner")
    cli("market", "sell", model, "--price", "1000wei", "--contributor", f"{who['buyer']}=1000")
    cli("--account", who["buyer"], "market", "buy", model)
    owed = {name: int(cli.json("--account", who[name], "balance")["withdrawable"]["marketplace"]["native"])
            for name in ("seller", "data", "buyer")}
    # 1000 wei: 25 fee (to the data account here), 10% of the remaining 975 to the contributor, the rest to the owner
    assert owed == {"seller": 1000 - 25 - 97, "data": 25, "buyer": 97}

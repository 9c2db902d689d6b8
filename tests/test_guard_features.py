"""Account features from plain transaction tables: a hand-made table against hand-computed values, the Kaggle
file read into the same columns, and a real embedded chain indexed by ChainIndex."""

from __future__ import annotations

import pytest
from eth_account import Account

from ledgermind.chain.connection import Chain
from ledgermind.chain.indexer import ChainIndex
from ledgermind.contracts import load
from ledgermind.errors import InvalidInputError
from ledgermind.guard.data import load_kaggle
from ledgermind.guard.features import FEATURES, TxTable, account_features

ETH = 10**18
A, B, C, T = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20, "0x" + "70" * 20

# A sends 1 and 3 ether to B and 2 to C, B sends 0.5 to C, A creates a contract; A sends B 40 tokens of T
# (6 decimals), B sends C 10.
TXS = [
    {"from": A, "to": B, "value": 1 * ETH, "timestamp": 0},
    {"from": A, "to": C, "value": 2 * ETH, "timestamp": 600},
    {"from": A, "to": B, "value": 3 * ETH, "timestamp": 1800},
    {"sender": B, "recipient": C, "value": ETH // 2, "timestamp": 3600},  # the indexer's column names
    {"from": A, "to": None, "value": 0, "timestamp": 7200, "created": "0x" + "dd" * 20},
]
TRANSFERS = [
    {"from": A, "to": B, "value": 40 * 10**6, "timestamp": 600, "token": T, "decimals": 6},
    {"from": B, "to": C, "value": 10 * 10**6, "timestamp": 900, "token": T, "decimals": 6},
    {"from": A, "to": B, "value": 7, "timestamp": 900, "token": T, "nft": True},  # ERC-721: not counted
]


def test_hand_made_table_matches_hand_computed_values():
    fm = account_features(TXS, [A, B, C, "0x" + "ee" * 20], transfers=TRANSFERS)
    assert fm.names == list(FEATURES) and fm.values.shape == (4, len(FEATURES))
    a, b, c = fm.row(A), fm.row(B), fm.row(C)
    assert a["sent_tnx"] == 3 and a["received_tnx"] == 0 and a["created_contracts"] == 1
    assert a["total_transactions"] == 4 and a["unique_sent_to"] == 2
    assert (a["min_value_sent"], a["max_value_sent"], a["avg_value_sent"]) == (1.0, 3.0, 2.0)
    assert a["total_ether_sent"] == 6.0 and a["total_ether_balance"] == -6.0
    assert a["avg_min_between_sent"] == 15.0  # sends at 0, 10 and 30 minutes
    assert a["time_diff_first_last_min"] == 120.0  # its first send to its contract creation
    assert a["sent_share"] == 0.75 and a["min_per_transaction"] == 30.0
    assert a["erc20_total_tnxs"] == 1 and a["erc20_total_sent"] == 40.0 and a["erc20_uniq_sent_token"] == 1
    assert b["received_tnx"] == 2 and b["sent_tnx"] == 1 and b["unique_received_from"] == 1
    assert (b["min_value_received"], b["max_value_received"], b["avg_value_received"]) == (1.0, 3.0, 2.0)
    assert b["avg_min_between_received"] == 30.0 and b["time_diff_first_last_min"] == 60.0
    assert b["total_ether_balance"] == 3.5 and b["received_per_sender"] == 2.0 and b["max_received_share"] == 0.75
    assert b["erc20_total_tnxs"] == 2 and b["erc20_total_received"] == 40.0 and b["erc20_total_sent"] == 10.0
    assert b["erc20_uniq_rec_addr"] == 1 and b["erc20_uniq_sent_addr"] == 1 and b["erc20_share"] == 0.4
    assert c["received_tnx"] == 2 and c["unique_received_from"] == 2 and c["avg_value_received"] == 1.25
    assert c["erc20_avg_val_rec"] == 10.0 and c["erc20_uniq_rec_token"] == 1
    assert c["avg_min_between_sent"] == 0.0 and c["balance_share"] == 1.0
    assert not fm.values[3].any()  # an account the table never mentions: all zeros


def test_tx_table_defaults_to_every_account_and_refuses_bad_rows():
    fm = account_features(TxTable.from_rows(TXS, TRANSFERS))
    assert fm.addresses == sorted({A, B, C, "0x" + "dd" * 20})
    with pytest.raises(InvalidInputError, match="row 0 has no 'timestamp'"):
        account_features([{"from": A, "to": B, "value": 1}])
    with pytest.raises(InvalidInputError, match="'value' must be an integer"):
        account_features([{"from": A, "to": B, "value": "lots", "timestamp": 1}])
    with pytest.raises(InvalidInputError, match="no feature 'nope'"):
        fm.column("nope")


def test_kaggle_file_reads_into_the_same_columns():
    everything = load_kaggle(keep_empty=True)
    assert everything.X.shape == (9816, len(FEATURES))  # 9,841 rows, 25 repeated addresses kept once
    assert int(everything.y.sum()) == 2179 and int(everything.erc20_missing.sum()) == 829
    assert all(everything.y[everything.erc20_missing] == 1)  # the artefact: blank ERC-20 columns only on fraud rows
    data = load_kaggle()  # without the 274 accounts that have nothing recorded (all fraudulent)
    assert data.empty_dropped == 274 and data.X.shape == (9542, len(FEATURES)) and int(data.y.sum()) == 1905
    assert data.X.any(axis=1).all()
    first = dict(zip(FEATURES, data.X[data.addresses.index("0x00009277775ac7d0d59eaad8fee3d10ac6c805e8")]))
    assert first["sent_tnx"] == 721 and first["received_tnx"] == 89 and first["total_transactions"] == 810
    assert first["erc20_total_tnxs"] == 265 and first["sent_share"] == pytest.approx(721 / 810)


@pytest.mark.chain
def test_features_from_an_indexed_embedded_chain(tmp_path):
    chain = Chain.connect(tmp_path / "chain")
    try:
        alice, bob, carol = Account.create(), Account.create(), Account.create()
        chain.ensure_funds(alice.address)
        chain.ensure_funds(bob.address)
        chain.send(alice, {"to": bob.address, "value": ETH}, 21_000)
        chain.send(alice, {"to": carol.address, "value": 2 * ETH}, 21_000)
        chain.send(bob, {"to": carol.address, "value": ETH // 2}, 21_000)
        art = load("PaymentToken")
        token = chain.deploy(alice, art["bytecode"], art["abi"]).contract_address
        erc20 = chain.w3.eth.contract(address=token, abi=art["abi"])
        chain.transact(alice, erc20.functions.mint(alice.address, 100 * ETH), 200_000)
        chain.transact(alice, erc20.functions.transfer(bob.address, 40 * ETH), 200_000)
        with ChainIndex(tmp_path / "index.sqlite") as index:
            index.sync(chain)
            txs, transfers = index.transactions(), index.transfers()
    finally:
        chain.close()
    fm = account_features(TxTable.from_rows(txs, transfers), [alice.address, bob.address, carol.address])
    a, b, c = fm.row(alice.address), fm.row(bob.address), fm.row(carol.address)
    # alice: funded by the faucet; two payments and two token calls (value 0) sent; one contract created
    assert (a["received_tnx"], a["sent_tnx"], a["created_contracts"], a["total_transactions"]) == (1, 4, 1, 6)
    assert a["total_ether_received"] == 100.0 and a["total_ether_sent"] == 3.0 and a["max_value_sent"] == 2.0
    assert a["unique_sent_to"] == 3  # bob, carol, the token
    assert (a["erc20_total_tnxs"], a["erc20_total_received"], a["erc20_total_sent"]) == (2, 100.0, 40.0)
    assert a["erc20_uniq_rec_addr"] == 1  # the zero address minted to her
    alice_times = [t["timestamp"] for t in txs if alice.address.lower() in (t["sender"], t["recipient"])]
    assert a["time_diff_first_last_min"] == (max(alice_times) - min(alice_times)) / 60
    assert (b["received_tnx"], b["sent_tnx"], b["unique_received_from"]) == (2, 1, 2)
    assert b["erc20_total_received"] == 40.0 and b["erc20_uniq_rec_token"] == 1
    assert (c["received_tnx"], c["total_ether_received"], c["min_value_received"]) == (2, 2.5, 0.5)
    assert c["total_ether_balance"] == 2.5 and c["erc20_total_tnxs"] == 0

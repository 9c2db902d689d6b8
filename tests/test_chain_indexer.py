"""The chain indexer on real chains: the embedded one after market activity (transactions, token transfers,
contract creations), resumed after a restart; and anvil reverted to a snapshot and mined on another branch, which
the index must notice and follow."""

from __future__ import annotations

import sqlite3

import pytest
from eth_account import Account

from ledgermind import Client
from ledgermind.chain.connection import Chain, ChainError
from ledgermind.chain.indexer import ChainIndex

from .anvil import rpc, running_anvil

pytestmark = pytest.mark.chain


def test_indexes_activity_incrementally_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERMIND_AUTO_ANCHOR", "0")
    (tmp_path / "d.csv").write_text("a,label\n1,0\n2,1\n")
    with Client(tmp_path / "home") as lm:
        d = lm.register_dataset(tmp_path / "d.csv")
        lm.mint(d.digest)  # deploys the contracts first, then an ERC-721 mint: a Transfer from the zero address
        lm.faucet(amount=10**18)  # an ERC-20 mint
        chain = lm.chain()
        with ChainIndex(tmp_path / "index.sqlite") as index:
            first = index.sync(chain, max_blocks=5)
            assert (first.blocks, first.head) == (5, 4)
            rest = index.sync(chain)
            assert rest.head == chain.w3.eth.block_number and rest.reorg == 0
            assert index.sync(chain).blocks == 0  # nothing new
            txs = index.transactions()
            assert len(txs) == first.transactions + rest.transactions
            assert sum(1 for t in txs if t["created"]) >= 10  # the deployments
            transfers = index.transfers()
            nft = [t for t in transfers if t["nft"]]
            assert [(t["sender"], t["recipient"], t["value"]) for t in nft] == [
                ("0x" + "00" * 20, lm.account().address.lower(), int(d.digest, 16))]
            assert any(not t["nft"] and t["value"] == 10**18 for t in transfers)
        lm.chain().ensure_funds(Account.create().address)  # one more block while the index is closed
        with ChainIndex(tmp_path / "index.sqlite") as index:
            again = index.sync(chain)
            assert again.blocks >= 1 and again.head == chain.w3.eth.block_number
            db = sqlite3.connect(tmp_path / "index.sqlite")
            assert db.execute("SELECT count(*) FROM blocks").fetchone()[0] == chain.w3.eth.block_number + 1
            db.close()


def test_follows_a_reorganisation_on_anvil(tmp_path):
    with running_anvil() as url:
        chain = Chain.connect(tmp_path / "chain", url)
        alice, bob = Account.create(), Account.create()
        chain.ensure_funds(alice.address)
        with ChainIndex(tmp_path / "index.sqlite") as index:
            index.sync(chain)
            snapshot = rpc(url, "evm_snapshot")
            for _ in range(3):
                chain.send(alice, {"to": bob.address, "value": 1}, 21_000)
            assert index.sync(chain).transactions == 3
            assert rpc(url, "evm_revert", [snapshot]) is True
            chain.send(alice, {"to": alice.address, "value": 7}, 21_000)  # another branch, one block
            done = index.sync(chain)
            assert done.reorg == 3 and done.head == chain.w3.eth.block_number
            values = [t["value"] for t in index.transactions() if t["sender"] == alice.address.lower()]
            assert values == [7]  # the three transfers of the abandoned branch are gone
    embedded = Chain.connect(tmp_path / "embedded")  # chain 1337, with the index of anvil's 31337
    try:
        with ChainIndex(tmp_path / "index.sqlite") as index, pytest.raises(ChainError, match="indexes chain 31337"):
            index.sync(embedded)
    finally:
        embedded.close()

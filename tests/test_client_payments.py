"""Payments between two accounts through the Python API on the real embedded chain: a channel opened by one,
cumulative vouchers signed off chain, redeemed by the other in one transaction and withdrawn. Bad vouchers and
bad amounts are refused with one line and move nothing. And a client that wrote from one thread keeps working
(and anchoring) when it writes from another, as a provider serving from a thread pool does."""

from __future__ import annotations

import threading

import pytest

from ledgermind.statements import EVENT, make_statement, sign_envelope, utc_now

from ledgermind import Client
from ledgermind.chain.connection import ChainError
from ledgermind.config import load_settings
from ledgermind.errors import InvalidInputError, NotFoundError

pytestmark = pytest.mark.chain
GWEI = 10**9


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("payments") / "home"
    with Client(home) as seller:
        seller.account()  # the default account sells
        buyers = [seller.new_account(), seller.new_account()]  # one per test: each opens its own channel
        other = seller.new_account()
    return home, seller_address(home), buyers, other


def seller_address(home) -> str:
    with Client(home) as lm:
        return lm.account().address


def test_vouchers_are_cumulative_and_one_redeem_pays_them_all(home):
    home, seller, (buyer, _), _ = home
    with Client(home, account=buyer) as lb:
        channel = lb.open_channel(seller, 10 * GWEI)
        vouchers = [lb.pay(seller, amount) for amount in (2 * GWEI, 3 * GWEI, GWEI)]
        (booked,) = [c for c in lb.channels() if c["channelId"] == channel["channelId"]]
    assert [v["amount"] for v in vouchers] == [str(2 * GWEI), str(5 * GWEI), str(6 * GWEI)]
    assert {v["channelId"] for v in vouchers} == {channel["channelId"]} and booked["issued"] == str(6 * GWEI)
    assert channel["recipient"] == seller and channel["deposit"] == str(10 * GWEI)

    with Client(home) as ls:
        before = int(ls.balance()["withdrawable"]["channels"]["native"])
        redeemed = ls.redeem(vouchers[1])
        assert redeemed["amount"] == str(5 * GWEI)
        assert ls.redeem(vouchers[2])["amount"] == str(GWEI)  # only what the newer voucher adds
        with pytest.raises(ChainError, match="voucher already redeemed"):
            ls.redeem(vouchers[0])  # an older voucher after a newer one
        assert int(ls.balance()["withdrawable"]["channels"]["native"]) == before + 6 * GWEI
        paid = [w for w in ls.withdraw() if w["contract"] != ls.market().address]
        assert sum(int(w["amount"]) for w in paid) == before + 6 * GWEI


def test_bad_payments_and_vouchers_are_refused(home):
    home, seller, (_, buyer), other = home
    with Client(home, account=buyer) as lb:
        lb.open_channel(seller, 2 * GWEI)
        voucher = lb.pay(seller, GWEI)
        for amount, error, words in [(0, InvalidInputError, "must be positive"),
                                     (100 * GWEI, InvalidInputError, "top it up")]:
            with pytest.raises(error, match=words) as info:
                lb.pay(seller, amount)
            assert "\n" not in str(info.value)
        with pytest.raises(NotFoundError, match="open_channel first"):
            lb.pay(other, GWEI)
    with Client(home, account=other) as lo, pytest.raises(ChainError, match="not the channel recipient"):
        lo.redeem(voucher)
    with Client(home) as ls:
        for bad, error, words in [
            ({**voucher, "amount": str(GWEI + 1)}, ChainError, "not signed by sender"),
            ({**voucher, "chainId": 1}, InvalidInputError, "not .* on chain 1337"),
            ({**voucher, "contract": "0x" + "11" * 20}, InvalidInputError, "is for contract"),
            ({**voucher, "signature": "0x00"}, InvalidInputError, "malformed voucher"),
        ]:
            with pytest.raises(error, match=words):
                ls.redeem(bad)
        assert ls.redeem(voucher)["amount"] == str(GWEI)  # nothing above moved anything


def test_a_client_writes_and_anchors_from_another_thread(tmp_path):
    (tmp_path / "data.csv").write_text("a,label\n1,0\n2,1\n")
    with Client(settings=load_settings(tmp_path / "home", anchor_every_entries=1)) as lm:
        data = lm.register_dataset(tmp_path / "data.csv")  # opens the anchor queue in this thread
        predicate = {"domain": "test", "type": "from-a-worker", "time": utc_now(), "data": {}, "related": []}
        envelope = sign_envelope(make_statement([(data.name, data.digest)], EVENT, predicate).to_bytes(), lm.account())
        done: list[object] = []

        def write() -> None:  # what the access provider does for each decision, from uvicorn's thread pool
            try:
                done.append(lm.submit(envelope.to_bytes()))
            except Exception as e:  # the assertion below shows it
                done.append(e)

        worker = threading.Thread(target=write)
        worker.start()
        worker.join()
        (event,) = done
        assert not isinstance(event, Exception), event
        assert lm.last_anchor is not None and lm.last_anchor["anchored"]["treeSize"] == event["logIndex"] + 1

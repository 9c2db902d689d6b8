"""Paid inference against a real anvil node (npm @foundry-rs/anvil): the provider's Client reaches anvil through its
``rpc_url`` setting, serves a registered scikit-learn model over HTTP on a loopback port, and is paid through a
PaymentChannels contract deployed on anvil.

One scenario from the client's side: a funded payer opens a channel, pays several requests with cumulative
vouchers, and every answer's receipt verifies against the provider's log; a replayed voucher is refused with 409
and moves no money; the provider settles on chain for exactly what it served, and withdraws it.
``tests/test_inference.py`` covers the rest on the embedded chain.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from eth_account import Account
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ledgermind import Client
from ledgermind.inference.adapters import load_registered
from ledgermind.inference.channels import PaymentChannels
from ledgermind.inference.client import InferenceClient, Payer
from ledgermind.inference.receipts import verify_receipt
from ledgermind.inference.server import ServerThread
from ledgermind.inference.service import InferenceService, Offer

from .anvil import running_anvil

pytestmark = pytest.mark.chain

X, Y = load_breast_cancer(return_X_y=True)
PRICE = 10**9  # wei per row
DEPOSIT = 10**15


@pytest.fixture(scope="module")
def anvil_url():
    with running_anvil() as url:
        yield url


def registered_model(lm: Client, tmp: Path):
    """A logistic regression on breast_cancer, saved with joblib and registered with the dataset it was trained on."""
    path = tmp / "cancer.joblib"
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, Y), path)
    data = tmp / "cancer.csv"
    np.savetxt(data, np.c_[X, Y][:50], delimiter=",", header=",".join(f"f{i}" for i in range(31)), comments="")
    dataset = lm.register_dataset(data, licence="CC-BY-4.0")
    registered = lm.register_model(path, trained_on=[dataset.digest], metrics={"accuracy": 0.98})
    return load_registered(lm, registered.digest, path)


def test_paid_inference_over_http_settled_on_anvil(anvil_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERMIND_RPC_URL", anvil_url)
    monkeypatch.setenv("LEDGERMIND_AUTO_ANCHOR", "0")
    with Client(tmp_path / "provider") as lm:
        model = registered_model(lm, tmp_path)
        chain = lm.chain()
        assert chain.kind == "rpc" and chain.url == anvil_url and chain.chain_id == 31337  # anvil, not embedded
        provider = lm.account()
        channels = PaymentChannels.deploy(chain, provider)  # funds the provider from anvil first
        payer_account = Account.create()
        chain.ensure_funds(payer_account.address)  # anvil_setBalance
        assert chain.balance(payer_account.address) >= 10**17

        service = InferenceService.from_client(lm, [Offer(model, PRICE)], channels_address=channels.address)
        assert service.provider == provider.address
        with ServerThread(service, settle_interval=0) as server:
            assert server.url.startswith("http://127.0.0.1:")
            served = 0
            with InferenceClient([server.url], payer=Payer(payer_account, channels), deposit=DEPOSIT) as client:
                requests = [X[i].tolist() for i in range(3)] + [X[10:14].tolist()]
                results = [client.infer(model.digest, rows) for rows in requests]
                channel = client.channels[provider.address.lower()]  # opened on anvil by the first request
            assert [r.outputs for r in results[:3]] == [[int(Y[i])] for i in range(3)]
            assert results[3].outputs == [int(y) for y in Y[10:14]]
            assert [r.price for r in results] == [PRICE, PRICE, PRICE, 4 * PRICE]
            for rows, r in zip(requests, results):
                assert r.provider == provider.address and r.endpoint == server.url
                report = verify_receipt(r.log_index, lm, model=model.digest, provider=provider.address, inputs=rows,
                                        outputs=r.outputs)
                assert report.ok, report.to_json()
                assert {c.name for c in report.checks} >= {"signature", "inclusion", "checkpoint", "model", "input", "output"}
                served += r.price
            info = channels.channel(channel.channel_id)
            assert (info.sender, info.recipient, info.deposit, info.paid) == (payer_account.address, provider.address,
                                                                              DEPOSIT, 0)

            # one more request straight over HTTP with the payment headers; then the same ticket again
            url = f"{server.url}/v1/models/{model.digest}/infer"
            header = channel.pay(PRICE).headers
            ok = httpx.post(url, json={"inputs": [X[20].tolist()]}, headers=header)
            assert ok.status_code == 200, ok.text
            answer = ok.json()
            assert answer["outputs"] == [int(Y[20])] and int(answer["price"]) == PRICE
            assert verify_receipt(answer["receipt"]["logIndex"], lm, model=model.digest, inputs=[X[20].tolist()],
                                  outputs=answer["outputs"]).ok
            served += PRICE

            size, status = lm.log_info()["size"], service.channels.status(channel.channel_id)
            balances = chain.balance(payer_account.address), chain.balance(channels.address)
            replay = httpx.post(url, json={"inputs": [X[20].tolist()]}, headers=header)
            assert replay.status_code == 409 and "replayed ticket" in replay.json()["error"], replay.text
            assert lm.log_info()["size"] == size  # no receipt for the refused request
            assert service.channels.status(channel.channel_id) == status
            assert (chain.balance(payer_account.address), chain.balance(channels.address)) == balances
            assert channels.channel(channel.channel_id).paid == 0

            # the provider redeems its best voucher on anvil: the last the client signed, which covers what it
            # served and the unused tickets of that book
            (settled,) = service.settle(channel.channel_id)
            assert int(settled["amount"]) == int(settled["payout"]) == channel.issued
            assert served == channel.committed <= channel.issued <= served + PRICE * channel.max_tickets
            assert chain.w3.eth.get_transaction_receipt(settled["txHash"])["status"] == 1
        assert channels.channel(channel.channel_id).paid == channel.issued
        assert channels.withdrawable(provider.address) == channel.issued

        before, redeemed = chain.balance(provider.address), channel.issued
        assert channels.withdraw(provider) == redeemed
        assert channels.withdrawable(provider.address) == 0
        assert chain.balance(channels.address) == DEPOSIT - redeemed  # the rest stays the payer's until expiry
        gas_paid = before + redeemed - chain.balance(provider.address)
        assert 0 < gas_paid < 10**16  # the withdrawal's gas, nothing else left the provider's account

"""Failover between two providers of one model, one of them killed mid-run.

Provider A is a separate process (``python -m ledgermind.inference.server``) reaching the embedded chain through
a JSON-RPC node; provider B serves from this process. Clients in 16 threads send requests; A is killed while
they run. Every request must be answered, every answer must carry a receipt from the provider that answered,
and each provider can redeem what its own log says it was paid: a voucher sent to A is never shown to B, so the
client pays once per answer, except for the few requests in flight at A when it died.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import pytest
from eth_account import Account
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ledgermind import Client
from ledgermind.chain.connection import Chain
from ledgermind.chain.rpc_server import NodeServer
from ledgermind.inference.adapters import load_registered
from ledgermind.inference.channels import PaymentChannels, ProviderChannels
from ledgermind.inference.client import InferenceClient, Payer
from ledgermind.inference.discovery import ProviderInfo
from ledgermind.inference.receipts import VoucherRef, provider_receipts, verify_receipt
from ledgermind.inference.server import ServerThread
from ledgermind.inference.service import InferenceService, Offer

X, Y = load_breast_cancer(return_X_y=True)
PRICE = 7
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def node(tmp_path):
    chain = Chain.connect(tmp_path / "chain")
    with NodeServer(chain.embedded, port=0) as server:
        yield chain, server.url
    chain.close()


def provider_home(home: Path, model_file: Path, rpc_url: str) -> tuple[str, str]:
    """Register the model in a provider's own home (its log); returns (model digest, provider address)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEDGERMIND_RPC_URL", rpc_url)
        with Client(home) as lm:
            return lm.register_model(model_file, trained_on=[]).digest, lm.account().address


def spawn_provider(home: Path, model: str, path: Path, channels: str, rpc_url: str) -> tuple[subprocess.Popen, dict]:
    env = {**os.environ, "LEDGERMIND_RPC_URL": rpc_url, "LEDGERMIND_AUTO_ANCHOR": "0",
           "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledgermind.inference.server", model, "--home", str(home), "--path", str(path),
         "--price", str(PRICE), "--channels", channels, "--port", "0", "--settle-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"provider did not start: {proc.stderr.read()}")
    return proc, json.loads(line)


def test_failover_when_a_provider_is_killed(node, tmp_path, monkeypatch):
    chain, rpc_url = node
    monkeypatch.setenv("LEDGERMIND_AUTO_ANCHOR", "0")
    model_file = tmp_path / "cancer.joblib"
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, Y), model_file)
    owner = Account.create()
    chain.ensure_funds(owner.address)
    contract = PaymentChannels.deploy(chain, owner)

    digest, address_a = provider_home(tmp_path / "a", model_file, rpc_url)
    proc, info_a = spawn_provider(tmp_path / "a", digest, model_file, contract.address, rpc_url)
    assert info_a["provider"] == address_a and info_a["model"] == digest

    monkeypatch.setenv("LEDGERMIND_RPC_URL", rpc_url)
    lm_b = Client(tmp_path / "b")
    lm_b.register_model(model_file, trained_on=[])
    service_b = InferenceService.from_client(lm_b, [Offer(load_registered(lm_b, digest, model_file), PRICE)],
                                             channels_address=contract.address)
    server_b = ServerThread(service_b, settle_interval=0).start()
    chain.ensure_funds(service_b.provider)  # B reaches the chain as any RPC client: fund it from the faucet here

    providers = [ProviderInfo(address_a, info_a["url"], PRICE, contract.address),
                 ProviderInfo(service_b.provider, server_b.url, PRICE, contract.address)]
    payer = Payer(Account.create(), contract)
    answered: list = []
    lock = threading.Lock()
    killed = threading.Event()
    total = 16 * 12
    try:
        with InferenceClient(providers, payer=payer, deposit=10**6, down_for=600) as client:
            def run(i: int) -> None:
                for j in range(12):
                    k = (i * 12 + j) % len(X)
                    result = client.infer(digest, X[k].tolist())
                    assert result.outputs == [int(Y[k])] or result.outputs == [1 - int(Y[k])]
                    with lock:
                        answered.append(result)
                        if len(answered) == total // 3 and not killed.is_set():
                            proc.send_signal(signal.SIGKILL)  # mid-run, with requests in flight
                            killed.set()

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(run, range(16)))
            channel_a = client.channels[address_a.lower()]
            channel_b = client.channels[service_b.provider.lower()]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        server_b.stop()

    assert killed.is_set() and len(answered) == total  # every request answered
    by = {address_a: [r for r in answered if r.provider == address_a],
          service_b.provider: [r for r in answered if r.provider == service_b.provider]}
    assert by[address_a] and by[service_b.provider]
    assert any(r.attempts == 2 for r in by[service_b.provider])  # some failed over from A to B

    # each answer is in the log of the provider that answered, naming the model and the input sent
    with Client(tmp_path / "a") as lm_a:
        for r in by[address_a]:
            assert verify_receipt(r.log_index, lm_a, model=digest, outputs=r.outputs).ok
        receipts_a = list(provider_receipts(lm_a.ledger.store, address_a))
        # A is gone; what it may redeem comes from its log alone (as after a restart) and is what it served
        book_a = ProviderChannels(contract, address_a)
        assert book_a.restore(receipts_a) == len(receipts_a)
        settled_a = book_a.settle(channel_a.channel_id, lm_a.account())
    for r in by[service_b.provider]:
        assert verify_receipt(r.log_index, lm_b, model=digest, outputs=r.outputs).ok
    receipts_b = list(provider_receipts(lm_b.ledger.store, service_b.provider))
    assert len(receipts_b) == len(by[service_b.provider])
    service_b.settle(channel_b.channel_id)
    lm_b.close()

    paid_a = contract.channel(channel_a.channel_id).paid
    paid_b = contract.channel(channel_b.channel_id).paid
    # B, never interrupted: paid exactly once per answer (the client closed with a voucher for what it sent, so
    # the unused tickets of its last book on B's channel are not charged)
    assert paid_b == PRICE * len(receipts_b) == PRICE * len(by[service_b.provider]) == channel_b.committed
    assert channel_b.issued >= paid_b  # the last book may have paid ahead
    # A redeems the best voucher its log recorded: at least every request it answered, never more than the client
    # issued to A (a voucher sent to A was never shown to B). What it got beyond its answers pays for requests in
    # flight when it was killed (their tickets were accepted, their answers never sent), at most one per thread,
    # and for the unused tickets of the last book the client signed on A's channel.
    best_a = max(VoucherRef.parse(r.channel).amount for r in receipts_a)
    assert settled_a is not None and paid_a == best_a >= PRICE * len(receipts_a) >= PRICE * len(by[address_a])
    assert paid_a <= channel_a.issued
    assert 0 <= paid_a - PRICE * len(by[address_a]) <= PRICE * (16 + channel_a.max_tickets)

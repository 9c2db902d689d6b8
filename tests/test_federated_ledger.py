"""The coordinator's side of a round on the real embedded chain, fed bad updates on purpose: not published,
tampered in storage, NaN, wrong shapes, committed but never revealed, a party that never shows up. Each is
rejected with its reason in the round's statement, never scored or paid, and the round goes on with the rest."""

from __future__ import annotations


import pytest
from eth_account import Account

from ledgermind import Client
from ledgermind.chain.connection import ChainError
from ledgermind.federated import attacks, make_federated_data
from ledgermind.federated.coordinator import Coordinator, Participant, TaskTerms, chain_time, wait_commit_phase
from ledgermind.federated.local import make_trainer
from ledgermind.federated.server import RoundServer
from ledgermind.federated.service import _recorder, contract_of

pytestmark = pytest.mark.chain
TOKEN = 10**18
SPEC = {"name": "logistic", "params": {}}
FIT = {"epochs": 1, "lr": 0.1, "batch_size": 32}


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERMIND_AUTO_ANCHOR", "0")
    lm = Client(tmp_path / "home")
    market = lm.market()
    fed = contract_of(lm)
    data = make_federated_data("breast_cancer", 5, seed=1)
    trainer = make_trainer(SPEC)
    lm.faucet(amount=1000 * TOKEN)
    parties = []
    for k in range(5):
        account = Account.create()
        lm.faucet(account.address, 20 * TOKEN)
        parties.append(Participant(account, data.parties[k], f"{k + 1:064x}", trainer, data.n_classes))
    server = RoundServer(trainer, data.validation, quorum=2, fit=FIT)
    coordinator = Coordinator(lm.account(), fed, server, _recorder(lm), lm.blobs)

    def create(commit_window: int = 600, reveal_window: int = 600):
        ctx = coordinator.create(
            TaskTerms(market.payment_token, 2, 100 * TOKEN, 10 * TOKEN, 2, commit_window, reveal_window, 8),
            {"trainer": SPEC, "features": data.n_features, "classes": data.n_classes},
            trainer.init_params(data.n_features, data.n_classes, 0), "ab" * 32,
        )
        for p in parties:
            p.join(ctx, 10 * TOKEN)
        return ctx

    yield lm, fed, coordinator, parties, trainer, data, create
    lm.close()


def statement(lm: Client, index: int) -> dict:
    return lm.ledger.read(index).statement.predicate


def test_bad_updates_are_rejected_with_reasons_and_never_paid(setup):
    lm, fed, coordinator, parties, trainer, data, create = setup
    ctx = create()
    params = ctx.fetch(fed.task(ctx.task_id).initial_weights.hex())
    r = coordinator.start_round(params)
    honest, unpublished, tampered, nan, wrong = parties
    honest.submit(ctx, r, honest.train(params, FIT, 1))
    nan.submit(ctx, r, attacks.nan_update(nan.train(params, FIT, 4)))
    wrong.submit(ctx, r, attacks.wrong_shape_update(wrong.train(params, FIT, 5)))
    # a digest committed and revealed whose bytes never reach the coordinator's store
    ghost = unpublished.train(params, FIT, 2)
    ghost[0] = ghost[0] + 1.0
    from ledgermind.federated.updates import digest

    salt = b"\x07" * 32
    fed.commit(unpublished.account, ctx.task_id, r, digest(ghost), salt)
    # bytes published, then changed in storage after the commitment
    good = tampered.train(params, FIT, 3)
    tampered_digest = tampered.submit(ctx, r, good)
    blob = lm.blobs.path(tampered_digest)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-8] + b"\x00" * 8)

    wait_commit_phase(ctx, r)
    for p in (honest, nan, wrong, tampered):
        p.reveal(ctx, r)
    fed.reveal(unpublished.account, ctx.task_id, r, digest(ghost), salt)
    coordinator.wait_for_reveals(r)
    before = lm.ledger.store.size()
    done = coordinator.close_round(r, params, {p.address: len(p.data) for p in parties})

    assert done.skipped == "1 valid updates < quorum 2"  # only the honest update survives
    assert set(done.rejected) == {unpublished.address, tampered.address, nan.address, wrong.address}
    assert "never published" in done.rejected[unpublished.address]
    assert "hash to something else" in done.rejected[tampered.address]
    assert "NaN" in done.rejected[nan.address] or "non-finite" in done.rejected[nan.address].lower()
    assert "arrays, expected 2" in done.rejected[wrong.address]
    verdict = statement(lm, before)
    assert verdict["action"] == "round" and verdict["rejected"] == {a: why for a, why in done.rejected.items()}
    assert verdict["skipped"] and not verdict.get("scoresBps")
    # nobody was paid or slashed for the round; rejected updates are not flags
    assert all(fed.withdrawable(p.address, fed.task(ctx.task_id).token) == 0 for p in parties)
    assert all(fed.participant(ctx.task_id, p.address).state == "active" for p in parties)
    assert fed.round_info(ctx.task_id, r).status == "finalized"


@pytest.mark.slow  # waits out real commit and reveal windows (~1 min)
def test_missing_and_silent_parties_the_round_goes_on_with_the_quorum(setup):
    lm, fed, coordinator, parties, trainer, data, create = setup
    # windows long enough for the round's transactions (each block is a second later than its parent)
    ctx = create(commit_window=10, reveal_window=10)
    params = ctx.fetch(fed.task(ctx.task_id).initial_weights.hex())
    r = coordinator.start_round(params)
    a, b, silent, _absent, _absent2 = parties
    for p in (a, b, silent):
        p.submit(ctx, r, p.train(params, FIT, 7))
    wait_commit_phase(ctx, r)  # two parties never commit: the commit window runs out
    with pytest.raises(ChainError, match="commit window closed"):
        _absent.submit(ctx, r, _absent.train(params, FIT, 8))
    a.reveal(ctx, r)
    b.reveal(ctx, r)  # `silent` committed but never reveals
    coordinator.wait_for_reveals(r, timeout=120)
    # it waited for the reveal deadline (one reveal is missing), not for its own timeout
    assert chain_time(fed) >= fed.round_info(ctx.task_id, r).reveal_deadline
    done = coordinator.close_round(r, params, {p.address: len(p.data) for p in parties})
    assert done.skipped is None and set(done.weights) == {a.address, b.address}
    assert done.rejected == {silent.address: "committed but did not reveal before the reveal deadline"}
    owed = {p.address: fed.withdrawable(p.address, fed.task(ctx.task_id).token) for p in parties}
    assert owed[a.address] > 0 and owed[b.address] > 0 and sum(owed.values()) <= 50 * TOKEN
    assert owed[silent.address] == 0


def test_an_outsider_cannot_take_part(setup):
    lm, fed, coordinator, parties, trainer, data, create = setup
    ctx = create()
    params = ctx.fetch(fed.task(ctx.task_id).initial_weights.hex())
    r = coordinator.start_round(params)
    outsider = Participant(Account.create(), data.parties[0], "cd" * 32, trainer, data.n_classes)
    lm.chain().ensure_funds(outsider.address)
    with pytest.raises(ChainError, match="not a participant|not joined|caller is not"):
        outsider.submit(ctx, r, outsider.train(params, FIT, 9))

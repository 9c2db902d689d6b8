"""The Federation binding (``ledgermind.federated.onchain``) on the real embedded chain: the committed artifact
deployed with ``chain.deploy``, signed transactions with explicit gas limits, the PaymentToken approved before
every pull. One short scenario: a task, three participants, one round committed, revealed (as soon as all three
committed, long before the commit deadline) and finalized with a slash, and every balance checked after the
withdrawals; plus the contract's reasons coming back as ChainError.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from eth_account import Account

from ledgermind.chain.connection import Chain, ChainError
from ledgermind.contracts import load
from ledgermind.errors import InvalidInputError
from ledgermind.federated.onchain import FederationContract, commitment

START = 1_000_000
POOL = 30_000  # one round: all of it is this round's reward
STAKE = 500
DAY = 86_400  # the commit window: the round never gets near its commit deadline


def digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


@pytest.fixture()
def chain(tmp_path):
    chain = Chain.connect(tmp_path / "chain")  # no node running for this home: the embedded chain, in-process
    yield chain
    chain.close()


def test_a_round_with_a_slash_on_the_embedded_chain(chain):
    coordinator, alice, bob, carol = (Account.create() for _ in range(4))
    chain.ensure_funds(coordinator.address)
    art = load("PaymentToken")
    token = chain.w3.eth.contract(address=chain.deploy(coordinator, art["bytecode"], art["abi"]).contract_address,
                                  abi=art["abi"])
    for who in (coordinator, alice, bob, carol):
        chain.transact(coordinator, token.functions.mint(who.address, START), 200_000)

    def balance(who) -> int:
        return int(token.functions.balanceOf(who.address if hasattr(who, "address") else who).call())

    fed = FederationContract.deploy(chain, coordinator)
    assert chain.code_at(fed.address).hex() == load("Federation")["deployedBytecode"].removeprefix("0x")

    task = fed.create_task(coordinator, token.address, model_digest=digest("arch"), initial_weights=digest("w0"),
                           dataset_digest=digest("validation"), rounds=1, reward_pool=POOL, min_stake=STAKE,
                           commit_window=DAY, reveal_window=300, max_participants=3, quorum=2)
    assert (task.task_id, task.status, task.pool, task.round_reward, task.coordinator) == (
        1, "open", POOL, POOL, coordinator.address)
    for who in (alice, bob, carol):
        assert fed.join(who, task.task_id, STAKE).state == "active"
    assert fed.participants(task.task_id) == [alice.address, bob.address, carol.address]
    assert balance(fed.address) == POOL + 3 * STAKE

    r = fed.start_round(coordinator, task.task_id, digest("w0"))
    info = fed.round_info(task.task_id, r)
    assert (r, info.status, info.global_digest) == (1, "open", digest("w0"))
    updates = {who.address: (digest(f"update {who.address}"), digest(f"salt {who.address}")) for who in (alice, bob, carol)}
    for who in (alice, bob, carol):
        if who is carol:  # carol has not committed yet: revealing would let her copy alice's update
            with pytest.raises(ChainError, match="commit window still open"):
                fed.reveal(alice, task.task_id, r, *updates[alice.address])
        c = fed.commit(who, task.task_id, r, *updates[who.address])
        # the binding's commitment is the contract's, byte for byte
        assert c == commitment(task.task_id, r, who.address, *updates[who.address])
        assert c == bytes(fed.contract.functions.commitment(task.task_id, r, who.address,
                                                            *updates[who.address]).call())
        assert fed.submission(task.task_id, r, who.address).state == "committed"

    # every participant committed: nobody can commit any more, so the commit phase is over before its deadline
    assert fed.round_info(task.task_id, r).commits == 3 and fed.now() < info.commit_deadline
    with pytest.raises(ChainError, match="reveal does not match commitment"):
        fed.reveal(alice, task.task_id, r, updates[alice.address][0], digest("wrong salt"))
    for who in (alice, bob, carol):
        fed.reveal(who, task.task_id, r, *updates[who.address])
    with pytest.raises(ChainError, match="already revealed"):
        fed.reveal(alice, task.task_id, r, *updates[alice.address])

    # everyone revealed: the coordinator closes the round at once; carol's update was poisoned
    reason = digest("statement: carol's update flips labels")
    with pytest.raises(ChainError, match="caller is not the coordinator"):
        fed.finalize_round(alice, task.task_id, r, digest("aggregate"), scores={alice.address: 10_000})
    closed = fed.finalize_round(coordinator, task.task_id, r, digest("aggregate"),
                                scores={alice.address: 6_000, bob.address: 3_999}, flagged={carol.address: reason})
    assert (closed.status, closed.aggregated_digest, closed.reveals) == ("finalized", digest("aggregate"), 3)
    paid = {alice.address: POOL * 6_000 // 10_000, bob.address: POOL * 3_999 // 10_000}
    assert closed.rewarded == sum(paid.values()) and closed.slashed == STAKE
    carol_sub = fed.submission(task.task_id, r, carol.address)
    assert (carol_sub.state, carol_sub.flag_reason) == ("flagged", reason)
    assert fed.submission(task.task_id, r, alice.address).score_bps == 6_000
    assert fed.participant(task.task_id, carol.address).state == "slashed"

    done = fed.task(task.task_id)
    assert (done.status, done.pool, done.staked) == ("finished", POOL - sum(paid.values()) + STAKE, 2 * STAKE)
    as_json = json.loads(json.dumps(done.to_json()))
    assert (as_json["pool"], as_json["model_digest"], as_json["status"]) == (
        str(done.pool), "0x" + digest("arch").hex(), "finished")
    assert json.loads(json.dumps(closed.to_json()))["aggregated_digest"] == "0x" + digest("aggregate").hex()
    with pytest.raises(ChainError, match="stake slashed"):
        fed.reclaim_stake(carol, task.task_id)
    for who in (alice, bob):
        assert fed.reclaim_stake(who, task.task_id) == STAKE
    assert fed.reclaim_pool(coordinator, task.task_id) == POOL - sum(paid.values()) + STAKE

    for who in (alice, bob, carol, coordinator):
        fed.withdraw(who, token.address)
        assert fed.withdrawable(who.address, token.address) == 0
    assert fed.withdraw(carol, token.address) == 0  # nothing to collect: no transaction
    assert balance(alice) == START + paid[alice.address]
    assert balance(bob) == START + paid[bob.address]
    assert balance(carol) == START - STAKE
    assert balance(coordinator) == START - sum(paid.values()) + STAKE  # the slashed stake and the dust
    assert balance(fed.address) == 0


def test_bad_input_is_refused_before_any_transaction(chain):
    fed_address = "0x" + "11" * 20
    fed = FederationContract(chain, fed_address)
    someone = Account.create()
    with pytest.raises(InvalidInputError, match="update_digest must be 32 bytes"):
        fed.commit(someone, 1, 1, b"short", digest("salt"))
    with pytest.raises(InvalidInputError, match="participant: '0x1234' is not an Ethereum address"):
        commitment(1, 1, "0x1234", digest("u"), digest("s"))
    with pytest.raises(InvalidInputError, match="round must be an unsigned 256-bit integer"):
        commitment(1, -1, someone.address, digest("u"), digest("s"))
    # hex strings work as well as bytes
    assert commitment(1, 2, someone.address, digest("u").hex(), "0x" + digest("s").hex()) == commitment(
        1, 2, someone.address, digest("u"), digest("s"))

"""Governance and the Marketplace's gate, on titanoboa with the real contracts: proposals, votes, quorum and
timelock, roles, the lineage check through parent models, and model sales refused on chain while any dataset in
their lineage is unapproved."""

from __future__ import annotations

import boa
import pytest

from ledgermind.contracts import load

from .test_market_contracts import DATASET, MODEL, access_token, deployer, mint, new_address, world  # noqa: F401

APPROVE_DATASET, REVOKE_DATASET, APPROVE_MODEL, REVOKE_MODEL = 1, 2, 3, 4
DAY = 86_400


def test_boa_runs_the_committed_bytecode():
    data = deployer("Governance").compiler_data
    assert "0x" + data.bytecode.hex() == load("Governance")["bytecode"]
    assert "0x" + deployer("Marketplace").compiler_data.bytecode.hex() == load("Marketplace")["bytecode"]


@pytest.fixture()
def gov(world):  # noqa: F811
    g = deployer("Governance").deploy(world.registry.address, 2, DAY, 7 * DAY)
    for member in (world.carol, world.dave):
        g.grantRole(g.MEMBER_ROLE(), member)
    return g


def approve(gov, target: int, action: int = APPROVE_DATASET, voters=()) -> int:
    pid = gov.propose(action, target)
    for v in voters:
        gov.vote(pid, True, sender=v)
    boa.env.time_travel(seconds=DAY)
    gov.execute(pid)
    return pid


def test_a_proposal_needs_the_quorum_and_the_timelock(world, gov):  # noqa: F811
    w = world
    pid = gov.propose(APPROVE_DATASET, w.d1)
    assert pid == 1 and gov.proposals(pid).proposer == boa.env.eoa
    gov.vote(pid, True)
    with boa.reverts("not passed"):
        gov.execute(pid)
    with boa.reverts("already voted"):
        gov.vote(pid, False)
    gov.vote(pid, False, sender=w.dave)  # a vote against does not stop the others
    gov.vote(pid, True, sender=w.carol)  # the quorum of 2 votes for is reached here
    with boa.reverts("timelock not over"):
        gov.execute(pid)
    boa.env.time_travel(seconds=DAY)
    gov.execute(pid, sender=w.buyer)  # anyone executes
    assert gov.approved_dataset(w.d1) and not gov.approved_dataset(w.d2)
    with boa.reverts("already executed"):
        gov.execute(pid)
    with boa.reverts("already executed"):
        gov.vote(pid, True, sender=w.carol)


def test_votes_close_and_roles_are_checked(world, gov):  # noqa: F811
    w = world
    with boa.reverts("access_control: account is missing role"):
        gov.propose(APPROVE_DATASET, w.d1, sender=w.buyer)
    pid = gov.propose(APPROVE_DATASET, w.d1)
    with boa.reverts("access_control: account is missing role"):
        gov.vote(pid, True, sender=w.buyer)
    with boa.reverts("unknown proposal"):
        gov.vote(99, True)
    with boa.reverts("unknown action"):
        gov.propose(9, w.d1)
    with boa.reverts("unknown asset"):
        gov.propose(APPROVE_DATASET, 12345)
    with boa.reverts("not a dataset"):
        gov.propose(APPROVE_DATASET, w.model)
    with boa.reverts("not a model"):
        gov.propose(APPROVE_MODEL, w.d1)
    boa.env.time_travel(seconds=7 * DAY)
    with boa.reverts("voting closed"):
        gov.vote(pid, True)
    with boa.reverts("access_control: account is missing role"):
        gov.set_parameters(1, 0, DAY, sender=w.carol)
    with boa.reverts("zero quorum"):
        gov.set_parameters(0, 0, DAY)
    gov.set_parameters(1, 0, DAY)
    assert (gov.quorum(), gov.timelock(), gov.voting_period()) == (1, 0, DAY)


def test_lineage_is_approved_only_when_every_dataset_is(world, gov):  # noqa: F811
    w = world
    assert not gov.lineage_approved(w.model)
    approve(gov, w.d1, voters=[boa.env.eoa, w.carol])
    assert not gov.lineage_approved(w.model)  # d2 still unapproved
    approve(gov, w.d2, voters=[boa.env.eoa, w.dave])
    assert gov.lineage_approved(w.model) and gov.lineage_approved(w.d1)
    # a fine-tuned model inherits its parent's lineage, plus its own new data
    d3 = mint(w.registry, w.carol, "dataset three", DATASET)
    tuned = mint(w.registry, w.alice, "fine-tuned", MODEL, [w.model, d3])
    assert not gov.lineage_approved(tuned)
    approve(gov, d3, voters=[w.carol, w.dave])
    assert gov.lineage_approved(tuned)
    approve(gov, w.d2, REVOKE_DATASET, voters=[w.carol, w.dave])  # revoking one dataset taints both models
    assert not gov.lineage_approved(tuned) and not gov.lineage_approved(w.model)
    assert not gov.lineage_approved(424242)  # not minted


def test_the_marketplace_refuses_models_with_unapproved_lineage(world, gov):  # noqa: F811
    w = world
    access_token(w)
    with boa.reverts("ownable: caller is not the owner"):
        w.market.set_governance(gov.address, sender=w.alice)
    with boa.reverts("governance is not a contract"):
        w.market.set_governance(w.alice)
    w.market.list_licence(w.model, 10, DAY, "0x" + "00" * 20, [], [], sender=w.alice)  # before the gate
    w.market.set_governance(gov.address)
    with boa.reverts("lineage not approved by governance"):
        w.market.list_access(w.model, 100, "0x" + "00" * 20, [], [], sender=w.alice)
    with boa.reverts("lineage not approved by governance"):
        w.market.buy_licence(w.model, value=10, sender=w.buyer)  # an old listing cannot be bought either
    # datasets trade freely: governance decides what trains deployable models
    access_token(w, w.d1)
    w.market.list_access(w.d1, 100, "0x" + "00" * 20, [], [], sender=w.carol)
    approve(gov, w.d1, voters=[w.carol, w.dave])
    approve(gov, w.d2, voters=[w.carol, w.dave])
    w.market.list_access(w.model, 100, "0x" + "00" * 20, [], [], sender=w.alice)
    w.market.buy_access(w.model, 1, value=100, sender=w.buyer)
    w.market.buy_licence(w.model, value=10, sender=w.buyer)
    approve(gov, w.d2, REVOKE_DATASET, voters=[w.carol, w.dave])
    with boa.reverts("lineage not approved by governance"):
        w.market.buy_access(w.model, 1, value=100, sender=w.buyer)
    w.market.set_governance("0x" + "00" * 20)  # the owner can lift the gate
    w.market.buy_access(w.model, 1, value=100, sender=w.buyer)

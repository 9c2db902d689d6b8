"""The contracts from a caller's side: transactions and calls on titanoboa's in-process EVM, and one pass of
the committed artifacts on eth-tester's py-evm through web3 (the chain users embed).

The boa fixtures compile the ``.vy`` sources; ``test_boa_runs_the_committed_bytecode`` pins that this is
byte for byte the code in the committed artifacts, so every test here is a test of what ships.
"""

from __future__ import annotations

import hashlib

import boa
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ledgermind.contracts import EVM_VERSION, SOURCE_DIR, load

ZERO_ADDRESS = "0x" + "00" * 20
ZERO32 = b"\x00" * 32
MISSING_ROLE = "access_control: account is missing role"
DATASET, MODEL = 1, 2


def digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def token_id(name: str) -> int:
    """The token id of an asset, known before it is minted: its SHA-256 digest as a big-endian integer."""
    return int.from_bytes(digest(name), "big")


def uri(name: str) -> str:
    return "ledgermind:statement/sha256:" + hashlib.sha256(b"statement of " + name.encode()).hexdigest()


def event_names(contract) -> list[str]:
    """Names of the events of the contract's last call (any later call, even a view, replaces them)."""
    return [type(e).__name__ for e in contract.get_logs()]


@pytest.fixture(scope="module")
def deployers():
    return {name: boa.load_partial(str(SOURCE_DIR / f"{name}.vy")) for name in ("AnchorRegistry", "AssetRegistry")}


@pytest.fixture()
def admin():
    return boa.env.eoa  # boa's default sender deploys every contract below


@pytest.fixture()
def alice():
    return boa.env.generate_address("alice")


@pytest.fixture()
def bob():
    return boa.env.generate_address("bob")


@pytest.fixture()
def carol():
    return boa.env.generate_address("carol")


def test_boa_runs_the_committed_bytecode(deployers):
    for name, deployer in deployers.items():
        art = load(name)
        assert "0x" + deployer.compiler_data.bytecode.hex() == art["bytecode"], name
        assert "0x" + deployer.compiler_data.bytecode_runtime.hex() == art["deployedBytecode"], name
        assert art["evmVersion"] == EVM_VERSION == "cancun"


# --------------------------------------------------------------------------------------------- AnchorRegistry


LOG_A = keccak(b"ledgermind.local/log-a")
LOG_B = keccak(b"ledgermind.local/log-b")


def root(n: int, log: bytes = LOG_A) -> bytes:
    return keccak(b"root %d " % n + log)


def ckpt(n: int, log: bytes = LOG_A) -> bytes:
    return keccak(b"checkpoint %d " % n + log)


@pytest.fixture()
def anchors(deployers):
    return deployers["AnchorRegistry"].deploy()


@pytest.fixture()
def operator(anchors, admin):
    op = boa.env.generate_address("operator")
    anchors.grantRole(anchors.OPERATOR_ROLE(), op, sender=admin)
    return op


def test_deployer_is_admin_but_not_operator(anchors, admin):
    assert anchors.OPERATOR_ROLE() == keccak(b"OPERATOR_ROLE")
    assert anchors.hasRole(anchors.DEFAULT_ADMIN_ROLE(), admin)
    assert not anchors.hasRole(anchors.OPERATOR_ROLE(), admin)
    with boa.reverts(MISSING_ROLE):
        anchors.anchor(LOG_A, 1, root(1), ckpt(1), sender=admin)


def test_admin_grants_and_revokes_operators(anchors, admin, alice):
    role = anchors.OPERATOR_ROLE()
    anchors.grantRole(role, alice, sender=admin)
    assert event_names(anchors) == ["RoleGranted"]
    assert anchors.hasRole(role, alice)
    anchors.anchor(LOG_A, 1, root(1), ckpt(1), sender=alice)

    anchors.revokeRole(role, alice, sender=admin)
    assert not anchors.hasRole(role, alice)
    with boa.reverts(MISSING_ROLE):
        anchors.anchor(LOG_A, 2, root(2), ckpt(2), sender=alice)
    assert anchors.latest(LOG_A)[0] == 1


def test_only_the_admin_grants_or_revokes(anchors, operator, alice):
    role = anchors.OPERATOR_ROLE()
    with boa.reverts(MISSING_ROLE):
        anchors.grantRole(role, alice, sender=operator)  # an operator is not an admin
    with boa.reverts(MISSING_ROLE):
        anchors.grantRole(anchors.DEFAULT_ADMIN_ROLE(), alice, sender=alice)
    with boa.reverts(MISSING_ROLE):
        anchors.revokeRole(role, operator, sender=alice)
    assert not anchors.hasRole(role, alice)
    assert anchors.hasRole(role, operator)


def test_an_operator_can_renounce_its_role(anchors, operator):
    anchors.renounceRole(anchors.OPERATOR_ROLE(), operator, sender=operator)
    with boa.reverts(MISSING_ROLE):
        anchors.anchor(LOG_A, 1, root(1), ckpt(1), sender=operator)


def test_anchor_then_read_back(anchors, operator):
    assert anchors.latest(LOG_A) == (0, ZERO32, ZERO32, 0)  # never anchored: all zero
    assert anchors.anchor_count(LOG_A) == 0

    first_block = boa.env.evm.patch.block_number
    anchors.anchor(LOG_A, 5, root(5), ckpt(5), sender=operator)
    boa.env.time_travel(blocks=7)
    anchors.anchor(LOG_A, 12, root(12), ckpt(12), sender=operator)

    assert anchors.latest(LOG_A) == (12, root(12), ckpt(12), first_block + 7)
    assert anchors.root_at(LOG_A, 5) == root(5)
    assert anchors.root_at(LOG_A, 12) == root(12)
    assert anchors.root_at(LOG_A, 6) == ZERO32  # never anchored at that size
    assert anchors.anchor_count(LOG_A) == 2


def test_anchored_event_carries_what_indexers_need(anchors, operator):
    anchors.anchor(LOG_A, 3, root(3), ckpt(3), sender=operator)
    (event,) = anchors.get_logs()
    assert type(event).__name__ == "Anchored"
    assert (event.log_id, event.tree_size, event.root, event.checkpoint_hash) == (LOG_A, 3, root(3), ckpt(3))
    assert event.operator == operator


@pytest.mark.parametrize("size", [10, 9, 1])
def test_tree_size_must_strictly_increase(anchors, operator, size):
    anchors.anchor(LOG_A, 10, root(10), ckpt(10), sender=operator)
    with boa.reverts("tree size must increase"):
        anchors.anchor(LOG_A, size, root(99), ckpt(99), sender=operator)
    assert anchors.latest(LOG_A)[:3] == (10, root(10), ckpt(10))
    assert anchors.anchor_count(LOG_A) == 1
    assert anchors.root_at(LOG_A, 10) == root(10)  # a second root for the same size is refused


def test_zero_size_and_zero_root_are_rejected(anchors, operator):
    with boa.reverts("zero tree size"):
        anchors.anchor(LOG_A, 0, root(0), ckpt(0), sender=operator)
    with boa.reverts("zero root"):
        anchors.anchor(LOG_A, 1, ZERO32, ckpt(1), sender=operator)
    anchors.anchor(LOG_A, 4, root(4), ckpt(4), sender=operator)
    with boa.reverts("zero tree size"):  # also after the first anchor, where 0 is "smaller" as well
        anchors.anchor(LOG_A, 0, root(0), ckpt(0), sender=operator)


def test_logs_are_independent(anchors, operator):
    anchors.anchor(LOG_A, 100, root(100), ckpt(100), sender=operator)
    anchors.anchor(LOG_B, 3, root(3, LOG_B), ckpt(3, LOG_B), sender=operator)  # smaller than log A: fine
    anchors.anchor(LOG_B, 50, root(50, LOG_B), ckpt(50, LOG_B), sender=operator)
    assert anchors.latest(LOG_A)[:3] == (100, root(100), ckpt(100))
    assert anchors.latest(LOG_B)[:3] == (50, root(50, LOG_B), ckpt(50, LOG_B))
    assert anchors.root_at(LOG_A, 3) == ZERO32
    assert (anchors.anchor_count(LOG_A), anchors.anchor_count(LOG_B)) == (1, 2)


def test_largest_tree_size_does_not_spill_into_packed_fields(anchors, operator):
    top = 2**64 - 1
    anchors.anchor(LOG_A, top - 1, root(1), ckpt(1), sender=operator)
    anchors.anchor(LOG_A, top, root(2), ckpt(2), sender=operator)
    size, r, c, block = anchors.latest(LOG_A)
    assert (size, r, c, block) == (top, root(2), ckpt(2), boa.env.evm.patch.block_number)
    assert anchors.anchor_count(LOG_A) == 2
    # 2**64 would alias size 0 in the packed head: the contract's uint64 calldata check refuses it
    # (sent raw, since an ABI encoder will not even encode it)
    selector = keccak(b"anchor(bytes32,uint64,bytes32,bytes32)")[:4]
    data = selector + abi_encode(["bytes32", "uint256", "bytes32", "bytes32"], [LOG_A, 2**64, root(3), ckpt(3)])
    computation = boa.env.execute_code(anchors.address, sender=operator, data=data)
    assert computation.is_error
    assert anchors.latest(LOG_A)[0] == top


def test_anchor_registry_supports_erc165_and_access_control(anchors):
    assert anchors.supportsInterface(bytes.fromhex("01ffc9a7"))
    assert anchors.supportsInterface(bytes.fromhex("7965db0b"))
    assert not anchors.supportsInterface(bytes.fromhex("ffffffff"))


# ---------------------------------------------------------------------------------------------- AssetRegistry


@pytest.fixture()
def assets(deployers):
    return deployers["AssetRegistry"].deploy()


@pytest.fixture()
def minted(assets, admin, alice):
    """Two datasets and a model trained on both, all owned by alice."""
    for name in ("patients", "controls"):
        assets.mint(alice, digest(name), DATASET, uri(name), [], sender=admin)
    parents = sorted([token_id("patients"), token_id("controls")])
    assets.mint(alice, digest("model"), MODEL, uri("model"), parents, sender=admin)
    return assets


def test_mint_a_dataset(assets, admin, alice):
    tid = token_id("patients")
    assert not assets.exists(tid)
    assert assets.mint(alice, digest("patients"), DATASET, uri("patients"), [], sender=admin) == tid

    transfer, minted_event = assets.get_logs()
    assert type(transfer).__name__ == "Transfer" and transfer.token_id == tid
    assert type(minted_event).__name__ == "Minted"
    assert (minted_event.digest, minted_event.owner, minted_event.kind) == (digest("patients"), alice, DATASET)
    assert (list(minted_event.parents), minted_event.metadata_uri) == ([], uri("patients"))

    assert assets.exists(tid)
    assert assets.kind_of(tid) == DATASET
    assert assets.ownerOf(tid) == alice
    assert assets.balanceOf(alice) == 1
    assert assets.tokenURI(tid) == uri("patients")
    assert assets.asset(tid) == (digest("patients"), DATASET, [])
    assert assets.parents_of(tid) == []
    assert assets.totalSupply() == 1
    assert assets.tokenOfOwnerByIndex(alice, 0) == tid


def test_mint_a_model_with_lineage(minted, admin, bob):
    parents = sorted([token_id("patients"), token_id("controls")])
    assert minted.asset(token_id("model")) == (digest("model"), MODEL, parents)
    assert minted.kind_of(token_id("model")) == MODEL
    assert minted.parents_of(token_id("model")) == parents

    # a model can derive from a model and a dataset
    fine_tuned = sorted([token_id("model"), token_id("patients")])
    minted.mint(bob, digest("fine-tuned"), MODEL, uri("fine-tuned"), fine_tuned, sender=admin)
    assert list(minted.get_logs()[-1].parents) == fine_tuned
    assert minted.parents_of(token_id("fine-tuned")) == fine_tuned
    assert minted.ownerOf(token_id("fine-tuned")) == bob

    # a model without registered parents (e.g. a base model) is allowed
    minted.mint(bob, digest("base"), MODEL, uri("base"), [], sender=admin)
    assert minted.asset(token_id("base")) == (digest("base"), MODEL, [])


def test_thirty_two_parents_fit(minted, admin, alice):
    names = [f"shard-{i}" for i in range(32)]
    for name in names:
        minted.mint(alice, digest(name), DATASET, uri(name), [], sender=admin)
    parents = sorted(token_id(n) for n in names)
    minted.mint(alice, digest("big"), MODEL, uri("big"), parents, sender=admin)
    assert minted.parents_of(token_id("big")) == parents
    assert minted.MAX_PARENTS() == 32


def test_only_minters_mint(assets, admin, alice, bob):
    with boa.reverts("caller is not a minter"):
        assets.mint(alice, digest("x"), DATASET, uri("x"), [], sender=alice)
    with boa.reverts("ownable: caller is not the owner"):
        assets.set_minter(alice, True, sender=alice)

    assert assets.owner() == admin and assets.is_minter(admin)
    assets.set_minter(bob, True, sender=admin)
    assets.mint(alice, digest("x"), DATASET, uri("x"), [], sender=bob)
    assets.set_minter(bob, False, sender=admin)
    with boa.reverts("caller is not a minter"):
        assets.mint(alice, digest("y"), DATASET, uri("y"), [], sender=bob)


def test_a_token_is_minted_once(minted, admin, bob):
    with boa.reverts("already minted"):
        minted.mint(bob, digest("patients"), DATASET, uri("other"), [], sender=admin)
    with boa.reverts("already minted"):  # not even as another kind
        minted.mint(bob, digest("patients"), MODEL, uri("other"), [], sender=admin)


@pytest.mark.parametrize(
    ("kind", "dgst", "meta", "parents", "reason"),
    [
        (0, digest("x"), uri("x"), [], "unknown kind"),
        (3, digest("x"), uri("x"), [], "unknown kind"),
        (DATASET, ZERO32, uri("x"), [], "zero digest"),
        (DATASET, digest("x"), "", [], "empty metadata uri"),
        (DATASET, digest("x"), uri("x"), [token_id("patients")], "dataset has parents"),
        (MODEL, digest("x"), uri("x"), [token_id("nobody")], "unknown parent"),
        (MODEL, digest("x"), uri("x"), [token_id("x")], "unknown parent"),  # itself
        (MODEL, digest("x"), uri("x"), [token_id("patients")] * 2, "parents not strictly ascending"),
        (
            MODEL,
            digest("x"),
            uri("x"),
            sorted([token_id("patients"), token_id("controls")])[::-1],
            "parents not strictly ascending",
        ),
    ],
)
def test_mint_rules(minted, admin, bob, kind, dgst, meta, parents, reason):
    supply = minted.totalSupply()
    with boa.reverts(reason):
        minted.mint(bob, dgst, kind, meta, parents, sender=admin)
    assert minted.totalSupply() == supply
    assert not minted.exists(int.from_bytes(dgst, "big"))


def test_mint_to_the_zero_address_or_a_non_receiver_fails(assets, anchors, admin):
    with boa.reverts("erc721: mint to the zero address"):
        assets.mint(ZERO_ADDRESS, digest("x"), DATASET, uri("x"), [], sender=admin)
    with boa.reverts():  # a contract without onERC721Received
        assets.mint(anchors.address, digest("x"), DATASET, uri("x"), [], sender=admin)
    assert not assets.exists(token_id("x"))


RECEIVER = """
# pragma version 0.4.3
@external
def onERC721Received(operator: address, owner: address, token_id: uint256, data: Bytes[1024]) -> bytes4:
    return method_id("onERC721Received(address,address,uint256,bytes)", output_type=bytes4)
"""


def test_transfers_with_approvals(minted, alice, bob, carol):
    tid = token_id("patients")
    with boa.reverts("erc721: caller is not token owner or approved"):
        minted.transferFrom(alice, bob, tid, sender=bob)

    # a single-token approval is cleared by the transfer
    minted.approve(bob, tid, sender=alice)
    assert minted.getApproved(tid) == bob
    minted.transferFrom(alice, carol, tid, sender=bob)
    assert minted.ownerOf(tid) == carol
    assert minted.getApproved(tid) == ZERO_ADDRESS
    assert (minted.balanceOf(alice), minted.balanceOf(carol)) == (2, 1)
    with boa.reverts("erc721: caller is not token owner or approved"):
        minted.transferFrom(carol, bob, tid, sender=bob)

    # an operator approved for all moves any of the owner's tokens, until revoked
    minted.setApprovalForAll(bob, True, sender=alice)
    assert minted.isApprovedForAll(alice, bob)
    minted.safeTransferFrom(alice, carol, token_id("controls"), sender=bob)
    minted.setApprovalForAll(bob, False, sender=alice)
    with boa.reverts("erc721: caller is not token owner or approved"):
        minted.safeTransferFrom(alice, carol, token_id("model"), sender=bob)

    with boa.reverts("erc721: transfer from incorrect owner"):
        minted.transferFrom(bob, carol, token_id("model"), sender=alice)
    with boa.reverts("erc721: transfer to the zero address"):
        minted.transferFrom(alice, ZERO_ADDRESS, token_id("model"), sender=alice)


def test_safe_transfer_checks_contract_receivers(minted, anchors, alice):
    tid = token_id("model")
    with boa.reverts():
        minted.safeTransferFrom(alice, anchors.address, tid, sender=alice)
    receiver = boa.loads(RECEIVER)
    minted.safeTransferFrom(alice, receiver.address, tid, b"order 42", sender=alice)
    assert minted.ownerOf(tid) == receiver.address


def test_token_uri_and_views_of_unminted_tokens(minted):
    with boa.reverts("erc721: invalid token ID"):
        minted.tokenURI(token_id("nobody"))
    with boa.reverts("erc721: invalid token ID"):
        minted.ownerOf(token_id("nobody"))
    with boa.reverts("unknown asset"):
        minted.asset(token_id("nobody"))
    with boa.reverts("unknown asset"):
        minted.parents_of(token_id("nobody"))
    assert not minted.exists(token_id("nobody"))
    assert minted.kind_of(token_id("nobody")) == 0
    assert minted.name() == "ledgermind assets" and minted.symbol() == "LMA"


@pytest.mark.parametrize(
    ("interface_id", "supported"),
    [
        ("01ffc9a7", True),  # ERC-165
        ("80ac58cd", True),  # ERC-721
        ("5b5e139f", True),  # ERC-721 metadata
        ("780e9d63", True),  # ERC-721 enumerable
        ("589c5ce2", True),  # ERC-4494 permit
        ("2a55205a", True),  # ERC-2981
        ("49064906", False),  # ERC-4906: metadata never changes
        ("ffffffff", False),
    ],
)
def test_supports_interface(assets, interface_id, supported):
    assert assets.supportsInterface(bytes.fromhex(interface_id)) is supported


def test_unsafe_entry_points_are_not_exported():
    names = {item.get("name") for item in load("AssetRegistry")["abi"]}
    assert {"mint", "royaltyInfo", "set_royalty", "asset", "parents_of", "exists", "kind_of"} <= names
    # no burning (lineage would dangle), no sequential minting, no contract-owner royalty control
    assert not names & {"burn", "safe_mint", "set_default_royalty", "set_token_royalty", "reset_token_royalty"}


def test_token_owner_sets_royalty(minted, admin, alice, bob, carol):
    tid = token_id("model")
    assert minted.royaltyInfo(tid, 10_000) == (ZERO_ADDRESS, 0)  # none until set

    minted.set_royalty(tid, carol, 500, sender=alice)
    (event,) = minted.get_logs()
    assert (type(event).__name__, event.token_id, event.receiver, event.bps) == ("RoyaltySet", tid, carol, 500)
    assert minted.royaltyInfo(tid, 10_000) == (carol, 500)
    assert minted.royaltyInfo(tid, 1_999) == (carol, 99)  # rounds down
    assert minted.royaltyInfo(token_id("patients"), 10_000) == (ZERO_ADDRESS, 0)  # per token

    minted.set_royalty(tid, carol, minted.MAX_ROYALTY_BPS(), sender=alice)
    with boa.reverts("royalty above cap"):
        minted.set_royalty(tid, carol, 1_001, sender=alice)
    with boa.reverts("erc2981: invalid receiver"):
        minted.set_royalty(tid, ZERO_ADDRESS, 100, sender=alice)

    # not the contract owner, not an approved operator: only the token's owner
    minted.setApprovalForAll(bob, True, sender=alice)
    for who in (admin, bob):
        with boa.reverts("caller is not token owner"):
            minted.set_royalty(tid, who, 100, sender=who)
    with boa.reverts("erc721: invalid token ID"):
        minted.set_royalty(token_id("nobody"), carol, 100, sender=alice)

    # the royalty follows the token; its new owner controls it
    minted.transferFrom(alice, bob, tid, sender=alice)
    assert minted.royaltyInfo(tid, 10_000) == (carol, 1_000)
    minted.set_royalty(tid, bob, 0, sender=bob)
    assert minted.royaltyInfo(tid, 10_000) == (bob, 0)
    with boa.reverts("caller is not token owner"):
        minted.set_royalty(tid, alice, 100, sender=alice)


# ------------------------------------------------------------------------------------- eth-tester through web3


def test_artifacts_run_on_eth_tester_py_evm():
    """Deploy both committed artifacts on eth-tester's default py-evm VM through web3: an anchor and a mint."""
    from eth_tester.exceptions import TransactionFailed
    from web3 import EthereumTesterProvider, Web3
    from web3.exceptions import ContractLogicError
    from web3.logs import DISCARD

    # a reverted eth_call surfaces as eth-tester's own exception through this provider, not web3's
    reverted = (ContractLogicError, TransactionFailed)

    w3 = Web3(EthereumTesterProvider())
    assert w3.provider.ethereum_tester.backend.chain.get_vm().fork == "prague"  # newer than what we compile for
    admin, operator, owner = w3.eth.accounts[:3]

    def send(fn, sender, gas=500_000):
        # explicit gas: estimation is the slow path on eth-tester and is not what is under test
        receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "gas": gas}))
        assert receipt.status == 1
        return receipt

    def deploy(name):
        art = load(name)
        receipt = send(w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(), admin, gas=6_000_000)
        # runtime code as deployed = the artifact's runtime code + the immutables the constructor appended
        assert w3.eth.get_code(receipt.contractAddress).hex().startswith(art["deployedBytecode"].removeprefix("0x"))
        return w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])

    anchors, assets = deploy("AnchorRegistry"), deploy("AssetRegistry")

    send(anchors.functions.grantRole(anchors.functions.OPERATOR_ROLE().call(), operator), admin)
    receipt = send(anchors.functions.anchor(LOG_A, 7, root(7), ckpt(7)), operator)
    (event,) = anchors.events.Anchored().process_receipt(receipt)
    assert event.args.tree_size == 7 and event.args.operator == operator
    assert anchors.functions.latest(LOG_A).call() == [7, root(7), ckpt(7), receipt.blockNumber]
    with pytest.raises(reverted, match="tree size must increase"):
        anchors.functions.anchor(LOG_A, 7, root(8), ckpt(8)).call({"from": operator})

    tid = token_id("patients")
    receipt = send(assets.functions.mint(owner, digest("patients"), DATASET, uri("patients"), []), admin)
    (event,) = assets.events.Minted().process_receipt(receipt, errors=DISCARD)  # skip Transfer
    assert event.args.digest == digest("patients") and event.args.owner == owner
    assert assets.functions.ownerOf(tid).call() == owner
    assert assets.functions.tokenURI(tid).call() == uri("patients")
    with pytest.raises(reverted, match="already minted"):
        assets.functions.mint(owner, digest("patients"), DATASET, uri("patients"), []).call({"from": admin})

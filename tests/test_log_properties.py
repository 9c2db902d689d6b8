"""Properties of the log's proofs, checked with hypothesis against the reference tree definition.

One store holds N random leaves (appended in random batches, so partial tiles and bundles get rewritten
many times); every example queries a smaller tree of it and checks the proofs against
``root_from_leaf_hashes`` of the same leaves. Any single-bit change to what a verifier is given must be
rejected with a ProofError.

A note on sizes: an inclusion proof binds the tree size only through the root. Verifying a proof
against the *same* root under another size succeeds exactly when both sizes give the verifier the same
chain of hash operations (e.g. leaf 0 in sizes 3 and 4); that is RFC 9162 as specified and as the
reference verifier behaves, and harmless because a signed checkpoint ties each root to one size.
The size-change properties below therefore either use the correct root of the changed size, or pick
changed sizes whose chain differs; ``test_same_chain_sizes_are_indistinguishable`` pins the rest down.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledgermind.log import (
    NoteSigner,
    ProofError,
    RootMismatchError,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from ledgermind.log.proofs import consistency_plan, inclusion_plan, range_nodes, root_plan
from ledgermind.log.store import LogStore
from ledgermind.log.verify import decompose

N = 300
PROPS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])

_rng = random.Random(20240611)
# Distinct entries, so that every mutation below states something false. (With repeated entries some
# "changes" are true statements: leaf 86 at index 87 when both are empty, or the proof [l2] of sizes
# 2 -> 3 being also the proof of 4 -> 5 when leaves 2 and 4 are equal.) Repeats are covered by
# test_any_leaves_in_any_batches.
ENTRIES = [b"%d:" % i + _rng.randbytes(_rng.choice([0, 1, 7, 32, 100])) for i in range(N)]
LEAF_HASHES = [leaf_hash(e) for e in ENTRIES]
ROOTS = [root_from_leaf_hashes(LEAF_HASHES[:n]) for n in range(N + 1)]  # ROOTS[n]: tree of the first n leaves


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One log with the N leaves, appended in random batches (single appends and runs of up to 40)."""
    rng = random.Random(7)
    s = LogStore(tmp_path_factory.mktemp("props") / "log.db", NoteSigner.generate("example.com/props"))
    i = 0
    while i < N:
        k = min(N - i, rng.choice([1, 1, 2, 3, 16, 17, 40]))
        if k == 1:
            assert s.append(ENTRIES[i]) == i
        else:
            assert s.append_many(ENTRIES[i : i + k]) == range(i, i + k)
        i += k
    yield s
    s.close()


def flip_bit(data: bytes, bit: int) -> bytes:
    """``data`` with bit ``bit`` (counted over the whole byte string) inverted."""
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def inclusion_chain(index: int, size: int) -> tuple[int, ...]:
    """What a verifier does with each proof hash: 0 = hash on the right, 1 = on the left."""
    inner, border = decompose(index, size)
    return tuple((index >> k) & 1 for k in range(inner)) + (1,) * border


def consistency_chain(size1: int, size2: int) -> tuple | None:
    """The verifier's operations for a consistency proof (None where it never chains: size1 == size2 etc.)."""
    if not 0 < size1 < size2:
        return None
    inner, border = decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    mask = (size1 - 1) >> shift
    return (size1 == 1 << shift, tuple((mask >> k) & 1 for k in range(inner - shift)), border)


def test_store_roots_match_the_reference(store: LogStore) -> None:
    assert store.size() == N
    assert [store.root(n) for n in range(N + 1)] == ROOTS
    assert [e for _, e in store.entries()] == ENTRIES


# ----------------------------------------------------------------------------- inclusion


@st.composite
def tree_and_index(draw):
    size = draw(st.integers(1, N))
    return size, draw(st.integers(0, size - 1))


@PROPS
@given(tree_and_index())
def test_inclusion_proofs_verify(store: LogStore, case: tuple[int, int]) -> None:
    size, index = case
    proof = store.inclusion_proof(index, size)
    assert len(proof) == sum(decompose(index, size))
    assert verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size]) is True
    if size == N:
        assert store.inclusion_proof(index) == proof  # default size: the whole log


@PROPS
@given(tree_and_index(), st.data())
def test_flipped_bit_in_proof_root_or_leaf_is_rejected(store: LogStore, case: tuple[int, int], data) -> None:
    size, index = case
    proof = store.inclusion_proof(index, size)
    leaf, root = LEAF_HASHES[index], ROOTS[size]
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1), label="element")
        bad = list(proof)
        bad[j] = flip_bit(bad[j], data.draw(st.integers(0, 255), label="bit"))
        with pytest.raises(RootMismatchError):
            verify_inclusion(leaf, index, size, bad, root)
    with pytest.raises(RootMismatchError):
        verify_inclusion(leaf, index, size, proof, flip_bit(root, data.draw(st.integers(0, 255), label="root bit")))
    with pytest.raises(RootMismatchError):
        verify_inclusion(flip_bit(leaf, data.draw(st.integers(0, 255), label="leaf bit")), index, size, proof, root)


@PROPS
@given(tree_and_index(), st.data())
def test_changed_index_is_rejected(store: LogStore, case: tuple[int, int], data) -> None:
    """With the size and root fixed, no other index (in or outside the tree) accepts the proof."""
    size, index = case
    proof = store.inclusion_proof(index, size)
    leaf = LEAF_HASHES[index]
    other = data.draw(st.integers(-2, 2 * size + 2).filter(lambda i: i != index), label="index")
    with pytest.raises(ProofError):
        verify_inclusion(leaf, other, size, proof, ROOTS[size])
    other = index ^ (1 << data.draw(st.integers(0, 9), label="index bit"))
    with pytest.raises(ProofError):
        verify_inclusion(leaf, other, size, proof, ROOTS[size])


@PROPS
@given(tree_and_index(), st.data())
def test_changed_size_is_rejected(store: LogStore, case: tuple[int, int], data) -> None:
    size, index = case
    proof = store.inclusion_proof(index, size)
    leaf = LEAF_HASHES[index]
    # the true root of another size never accepts this proof
    with_roots = [s for s in range(index + 1, N + 1) if s != size]
    if with_roots:
        other = data.draw(st.sampled_from(with_roots), label="size with its root")
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, other, proof, ROOTS[other])
    # nor does any size outside the tree, or (with this root) one whose proof is shaped differently
    chain = inclusion_chain(index, size)
    candidates = [s for s in range(0, 2 * N) if s != size and (s <= index or inclusion_chain(index, s) != chain)]
    other = data.draw(st.sampled_from(candidates), label="size")
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, other, proof, ROOTS[size])
    for other in (size + 1, size - 1, size * 2, size // 2, size ^ 1):  # the usual suspects
        if other != size and (other <= index or inclusion_chain(index, other) != chain):
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, other, proof, ROOTS[size])


# ----------------------------------------------------------------------------- consistency


@st.composite
def two_sizes(draw):
    size2 = draw(st.integers(1, N))
    return draw(st.integers(1, size2)), size2


@PROPS
@given(two_sizes())
def test_consistency_proofs_verify(store: LogStore, sizes: tuple[int, int]) -> None:
    size1, size2 = sizes
    proof = store.consistency_proof(size1, size2)
    assert (proof == []) == (size1 == size2)
    assert verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2]) is True
    if size2 == N:
        assert store.consistency_proof(size1) == proof


@PROPS
@given(two_sizes(), st.data())
def test_flipped_bit_in_consistency_proof_or_roots_is_rejected(store: LogStore, sizes: tuple[int, int], data) -> None:
    size1, size2 = sizes
    proof = store.consistency_proof(size1, size2)
    root1, root2 = ROOTS[size1], ROOTS[size2]
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1), label="element")
        bad = list(proof)
        bad[j] = flip_bit(bad[j], data.draw(st.integers(0, 255), label="bit"))
        with pytest.raises(RootMismatchError):
            verify_consistency(size1, size2, bad, root1, root2)
    with pytest.raises(RootMismatchError):
        verify_consistency(size1, size2, proof, flip_bit(root1, data.draw(st.integers(0, 255), label="root1 bit")), root2)
    with pytest.raises(RootMismatchError):
        verify_consistency(size1, size2, proof, root1, flip_bit(root2, data.draw(st.integers(0, 255), label="root2 bit")))


@PROPS
@given(two_sizes(), st.data())
def test_changed_sizes_are_rejected(store: LogStore, sizes: tuple[int, int], data) -> None:
    size1, size2 = sizes
    proof = store.consistency_proof(size1, size2)
    root1, root2 = ROOTS[size1], ROOTS[size2]

    # another pair of sizes with its own true roots: only an equal-size pair with this empty proof is a true statement
    a = data.draw(st.integers(0, N), label="size1'")
    b = data.draw(st.integers(0, N), label="size2'")
    assume((a, b) != (size1, size2) and not (a == b and not proof))
    with pytest.raises(ProofError):
        verify_consistency(a, b, proof, ROOTS[a], ROOTS[b])

    # with these roots: any other pair the verifier chains differently (or cannot chain at all)
    def differs(s1: int, s2: int) -> bool:
        if (s1, s2) == (size1, size2):
            return False
        if s1 == s2:  # equal sizes only compare the two roots given, so only a non-empty proof fails
            return bool(proof)
        if s1 > s2 or s1 <= 0:  # time travel, or from the empty tree: never consistent
            return True
        return consistency_chain(s1, s2) != consistency_chain(size1, size2)

    for s1, s2 in [(size1 - 1, size2), (size1 + 1, size2), (size1 ^ 2, size2), (size1, size2 * 2), (size1, size2 // 2),
                   (size1, size2 + 1), (size1, size2 - 1), (0, size2), (size2, size1)]:
        if differs(s1, s2):
            with pytest.raises(ProofError):
                verify_consistency(s1, s2, proof, root1, root2)
    s1 = data.draw(st.integers(0, 2 * N), label="changed size1")
    s2 = data.draw(st.integers(0, 2 * N), label="changed size2")
    assume(differs(s1, s2))
    with pytest.raises(ProofError):
        verify_consistency(s1, s2, proof, root1, root2)


def test_same_chain_sizes_are_indistinguishable(store: LogStore) -> None:
    """RFC 9162 proofs do not carry the size: the same chain under another size with the *old* root verifies.

    Leaf 0 of 3 and of 4 both chain two right siblings; the root of size 3 is never the root of a size-4
    tree, so a verifier holding a signed (size, root) pair is not fooled. Pinned so a change shows.
    """
    proof = store.inclusion_proof(0, 3)
    assert inclusion_chain(0, 3) == inclusion_chain(0, 4)
    assert verify_inclusion(LEAF_HASHES[0], 0, 4, proof, ROOTS[3]) is True
    with pytest.raises(RootMismatchError):
        verify_inclusion(LEAF_HASHES[0], 0, 4, proof, ROOTS[4])


# ----------------------------------------------------------------------------- proof plans


@settings(deadline=None, max_examples=400)
@given(st.integers(0, 1 << 40), st.integers(0, 1 << 20))
def test_range_nodes_cover_the_range_with_perfect_aligned_subtrees(begin: int, length: int) -> None:
    end = begin + length
    nodes = range_nodes(begin, end)
    pos = begin
    for level, index in nodes:
        assert level >= 0 and index >= 0
        assert index << level == pos, "nodes must be contiguous, left to right, and aligned"
        pos += 1 << level
    assert pos == end, "nodes must cover [begin, end) exactly"
    # fewest nodes: levels rise strictly then fall strictly (two equal levels at most, at the peak),
    # and no two neighbours are siblings that one parent node would replace
    levels = [lv for lv, _ in nodes]
    peak = levels.index(max(levels)) if levels else 0
    assert all(a < b for a, b in zip(levels[:peak], levels[1 : peak + 1]))
    tail = levels[peak:]
    if len(tail) > 1 and tail[0] == tail[1]:
        tail = tail[1:]
    assert all(a > b for a, b in zip(tail, tail[1:]))
    for (l1, i1), (l2, i2) in zip(nodes, nodes[1:]):
        assert not (l1 == l2 and i1 % 2 == 0 and i2 == i1 + 1)
    assert len(nodes) <= 2 * max(1, length.bit_length())


@settings(deadline=None, max_examples=300)
@given(st.integers(1, 1 << 30), st.data())
def test_plans_only_use_complete_nodes(size: int, data) -> None:
    """Every node a proof or root needs is a complete subtree of the tree, so a log has stored it."""
    index = data.draw(st.integers(0, size - 1))
    size1 = data.draw(st.integers(1, size))

    def complete(node: tuple[int, int]) -> bool:
        level, i = node
        return (i + 1) << level <= size

    assert all(complete(n) for n in root_plan(size))
    assert root_plan(size) == range_nodes(0, size)
    assert len(inclusion_plan(index, size)) == sum(decompose(index, size))
    assert all(complete(n) for item in inclusion_plan(index, size) for n in item)
    assert all(complete(n) for item in consistency_plan(size1, size) for n in item)


# ----------------------------------------------------------------------------- fresh stores


@settings(deadline=None, max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.binary(max_size=64), min_size=1, max_size=80),
    st.lists(st.integers(1, 30), min_size=1, max_size=80),
)
def test_any_leaves_in_any_batches(tmp_path_factory: pytest.TempPathFactory, entries: list[bytes], cuts: list[int]) -> None:
    """A fresh log of arbitrary entries, appended in arbitrary batches, has the reference root at every size."""
    path: Path = tmp_path_factory.mktemp("fresh") / "log.db"
    hashes = [leaf_hash(e) for e in entries]
    with LogStore(path, NoteSigner.generate("example.com/fresh")) as s:
        i = 0
        for k in cuts:
            if i >= len(entries):
                break
            assert s.append_many(entries[i : i + k]) == range(i, min(i + k, len(entries)))
            i += k
        if i < len(entries):
            s.append_many(entries[i:])
        n = len(entries)
        assert s.size() == n
        for size in range(1, n + 1):
            assert s.root(size) == root_from_leaf_hashes(hashes[:size])
        for cp in s.checkpoints():
            assert cp.root == root_from_leaf_hashes(hashes[: cp.size])
        for index in range(n):
            verify_inclusion(hashes[index], index, n, s.inclusion_proof(index), s.root())
        assert [e for _, e in s.entries()] == entries

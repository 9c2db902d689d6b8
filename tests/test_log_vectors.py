"""RFC 6962 / RFC 9162 reference vectors: the public test data of transparency-dev/merkle.

The leaves, roots and proofs below are the published reference data (0-based leaf indices). Each known
proof must verify, the log store must produce exactly these proofs and roots, and every corruption
probe of the reference verifier's own tests must be rejected with a ProofError (never a False).
The reference JSON vectors are run too: a small set generated from the same data lives in
tests/data/merkle-vectors; the full set runs when LEDGERMIND_MERKLE_TESTDATA names its directory.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ledgermind.log import (
    EMPTY_ROOT,
    HashLengthError,
    LeafIndexError,
    NoteSigner,
    ProofError,
    ProofLengthError,
    RootMismatchError,
    SizeError,
    leaf_hash,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from ledgermind.log.store import LogStore

LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
ROOTS = [  # ROOTS[n - 1] is the root of the tree of the first n leaves
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


def _hashes(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_D37E = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
H_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
H_B086 = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"

INCLUSION = [  # (0-based leaf index, tree size, proof)
    (0, 8, _hashes(H_96A2, H_5F08, H_6B47)),
    (5, 8, _hashes(H_BC1A, H_CA85, H_D37E)),
    (2, 3, _hashes("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (1, 5, _hashes("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", H_5F08, H_BC1A)),
    (0, 1, []),
]
CONSISTENCY = [  # (size1, size2, proof)
    (1, 1, []),
    (1, 8, _hashes(H_96A2, H_5F08, H_6B47)),
    (6, 8, _hashes(H_0EBC, H_CA85, H_D37E)),
    (2, 5, _hashes(H_5F08, H_BC1A)),
    (6, 7, _hashes(H_0EBC, H_B086, H_D37E)),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_TREE_HASH = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def flip(h: bytes, mask: int) -> bytes:
    return bytes([h[0] ^ mask]) + h[1:]


def inclusion_probes(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """The corruptions the reference verifier's tests try: each must be rejected."""
    probes = [
        ("index - 1", index - 1, size, root, leaf, proof),
        ("index + 1", index + 1, size, root, leaf, proof),
        ("index ^ 2", index ^ 2, size, root, leaf, proof),
        ("size * 2", index, size * 2, root, leaf, proof),
        ("size // 2", index, size // 2, root, leaf, proof),
        ("wrong leaf", index, size, root, b"WrongLeaf", proof),
        ("empty root", index, size, EMPTY_TREE_HASH, leaf, proof),
        ("random root", index, size, SOME_HASH, leaf, proof),
        ("trailing garbage", index, size, root, leaf, [*proof, b""]),
        ("trailing root", index, size, root, leaf, [*proof, root]),
        ("preceding garbage", index, size, root, leaf, [b"", *proof]),
        ("preceding root", index, size, root, leaf, [root, *proof]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = flip(wrong[i], 8)
        probes.append((f"modified proof[{i}] bit 3", index, size, root, leaf, wrong))
    if proof:
        probes.append(("removed component", index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append(("inserted component", index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


def consistency_probes(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes):
    probes = [
        ("size1 - 1", size1 - 1, size2, root1, root2, proof),
        ("size1 + 1", size1 + 1, size2, root1, root2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, proof),
        ("size2 * 2", size1, size2 * 2, root1, root2, proof),
        ("size2 // 2", size1, size2 // 2, root1, root2, proof),
        ("wrong root1", size1, size2, b"WrongRoot", root2, proof),
        ("wrong root2", size1, size2, root1, b"WrongRoot", proof),
        ("swapped roots", size1, size2, root2, root1, proof),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, [*proof, b""]),
        ("trailing root1", size1, size2, root1, root2, [*proof, root1]),
        ("trailing root2", size1, size2, root1, root2, [*proof, root2]),
        ("preceding garbage", size1, size2, root1, root2, [b"", *proof]),
        ("preceding root1", size1, size2, root1, root2, [root1, *proof]),
        ("preceding root2", size1, size2, root1, root2, [root2, *proof]),
        ("preceding proof[0]", size1, size2, root1, root2, [proof[0], *proof]),
        ("truncated proof", size1, size2, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = flip(wrong[i], 16)
        probes.append((f"modified proof[{i}] bit 4", size1, size2, root1, root2, wrong))
    return probes


# ----------------------------------------------------------------------------- roots and known proofs


def test_roots_from_leaves() -> None:
    hashes = [leaf_hash(d) for d in LEAVES]
    assert hashes[0] == ROOTS[0]  # a one-leaf tree's root is its leaf hash
    for n in range(1, 9):
        assert root_from_leaf_hashes(hashes[:n]) == ROOTS[n - 1], n
    assert root_from_leaf_hashes([]) == EMPTY_ROOT == EMPTY_TREE_HASH


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION, ids=[f"leaf{i}-of-{n}" for i, n, _ in INCLUSION])
def test_known_inclusion_proofs_verify(index: int, size: int, proof: list[bytes]) -> None:
    leaf = leaf_hash(LEAVES[index])
    assert verify_inclusion(leaf, index, size, proof, ROOTS[size - 1]) is True
    assert root_from_inclusion_proof(leaf, index, size, proof) == ROOTS[size - 1]
    if not proof:
        assert verify_inclusion(leaf, index, size, None, ROOTS[size - 1]) is True


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY, ids=[f"{a}-to-{b}" for a, b, _ in CONSISTENCY])
def test_known_consistency_proofs_verify(size1: int, size2: int, proof: list[bytes]) -> None:
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    assert verify_consistency(size1, size2, proof, root1, root2) is True
    assert root_from_consistency_proof(size1, size2, proof, root1) == root2
    if not proof:
        assert verify_consistency(size1, size2, None, root1, root2) is True


def test_store_produces_the_reference_proofs_and_roots(tmp_path: Path) -> None:
    with LogStore(tmp_path / "log.db", NoteSigner.generate("example.com/vectors")) as store:
        assert [store.append(d) for d in LEAVES] == list(range(8))
        assert store.size() == 8
        assert [store.root(n) for n in range(1, 9)] == ROOTS
        assert store.root(0) == EMPTY_ROOT
        for index, size, proof in INCLUSION:
            assert store.inclusion_proof(index, size) == proof, (index, size)
        for size1, size2, proof in CONSISTENCY:
            assert store.consistency_proof(size1, size2) == proof, (size1, size2)
        # every checkpoint signed along the way carries the reference root
        assert [(cp.size, cp.root) for cp in store.checkpoints()] == list(zip(range(1, 9), ROOTS))


# ----------------------------------------------------------------------------- corruption probes


def _inclusion_probe_cases():
    for index, size, proof in INCLUSION:
        for probe in inclusion_probes(index, size, proof, ROOTS[size - 1], leaf_hash(LEAVES[index])):
            yield pytest.param(*probe[1:], id=f"{index}-{size}-{probe[0]}")


def _consistency_probe_cases():
    for size1, size2, proof in CONSISTENCY:
        if not proof:  # like the reference: only non-trivial proofs are corrupted
            continue
        for probe in consistency_probes(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1]):
            yield pytest.param(*probe[1:], id=f"{size1}-{size2}-{probe[0]}")


@pytest.mark.parametrize(("index", "size", "root", "leaf", "proof"), list(_inclusion_probe_cases()))
def test_inclusion_probe_is_rejected(index: int, size: int, root: bytes, leaf: bytes, proof: list[bytes]) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, root)


@pytest.mark.parametrize(("size1", "size2", "root1", "root2", "proof"), list(_consistency_probe_cases()))
def test_consistency_probe_is_rejected(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> None:
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, root2)


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (8, 8), (9, 8), (-1, 8), (0, -1)])
def test_index_outside_the_tree_is_a_leaf_index_error(index: int, size: int) -> None:
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_TREE_HASH), (SOME_HASH, EMPTY_TREE_HASH), (ROOTS[0], ROOTS[0])]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, [], root)
    with pytest.raises(LeafIndexError, match="expected|non-negative"):
        verify_inclusion(SOME_HASH, index, size, [], EMPTY_TREE_HASH)


def test_index_beyond_size_message_names_both() -> None:
    with pytest.raises(LeafIndexError) as e:
        root_from_inclusion_proof(SOME_HASH, 8, 8, [])
    assert "8" in str(e.value) and "expected" in str(e.value)


def test_single_entry_tree() -> None:
    """The reference's single-entry cases: the root is the leaf hash, the proof is empty."""
    h = leaf_hash(b"data")
    assert verify_inclusion(h, 0, 1, [], h) is True
    assert verify_inclusion(h, 0, 1, None, h) is True
    for leaf, root in [(h, b""), (b"", h), (b"", b"")]:
        with pytest.raises(HashLengthError):
            verify_inclusion(leaf, 0, 1, [], root)


def test_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    # like the reference, equal sizes compare the roots as given, whatever their length
    assert verify_consistency(1, 1, [], b"don't care 1", b"don't care 1") is True
    assert verify_consistency(0, 0, None, b"don't care 1", b"don't care 1") is True
    assert verify_consistency(8, 8, None, ROOTS[7], ROOTS[7]) is True
    with pytest.raises(RootMismatchError):
        verify_consistency(1, 1, [], b"don't care 1", b"don't care 2")
    with pytest.raises(RootMismatchError):
        verify_consistency(0, 0, [], EMPTY_TREE_HASH, b"don't care 2")
    for size in (0, 1, 8):
        with pytest.raises(ProofLengthError, match="expected 0"):
            verify_consistency(size, size, [EMPTY_TREE_HASH], EMPTY_TREE_HASH, EMPTY_TREE_HASH)


def test_consistency_from_the_empty_tree_is_rejected() -> None:
    for proof in ([], None, [EMPTY_TREE_HASH]):
        with pytest.raises(SizeError, match="expected size1 > 0"):
            verify_consistency(0, 1, proof, EMPTY_TREE_HASH, ROOTS[0])
        with pytest.raises(SizeError):
            verify_consistency(0, 8, proof, EMPTY_ROOT, ROOTS[7])


def test_time_travel_is_rejected() -> None:
    with pytest.raises(SizeError) as e:
        verify_consistency(2, 1, [], ROOTS[1], ROOTS[0])
    assert "expected size1 <= size2" in str(e.value)
    with pytest.raises(SizeError):
        verify_consistency(1, 0, [], ROOTS[0], EMPTY_ROOT)
    with pytest.raises(SizeError):
        verify_consistency(-1, 3, [], ROOTS[0], ROOTS[2])


def test_missing_proof_for_different_sizes_is_rejected() -> None:
    for proof in ([], None):
        with pytest.raises(ProofLengthError, match="expected"):
            verify_consistency(1, 2, proof, ROOTS[0], ROOTS[1])


@pytest.mark.parametrize("length", [0, 31, 33])
def test_wrong_hash_lengths_are_rejected(length: int) -> None:
    bad = bytes(range(length))
    index, size, proof = INCLUSION[1]
    leaf, root = leaf_hash(LEAVES[index]), ROOTS[size - 1]
    with pytest.raises(HashLengthError, match=f"has {length} bytes, expected 32"):
        verify_inclusion(bad, index, size, proof, root)
    with pytest.raises(HashLengthError, match=f"has {length} bytes, expected 32"):
        verify_inclusion(leaf, index, size, proof, bad)
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bad
        with pytest.raises(HashLengthError, match=rf"proof\[{i}\] has {length} bytes, expected 32"):
            verify_inclusion(leaf, index, size, wrong, root)

    size1, size2, proof = CONSISTENCY[2]
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    with pytest.raises(HashLengthError, match="expected 32"):
        verify_consistency(size1, size2, proof, bad, root2)
    with pytest.raises(HashLengthError, match="expected 32"):
        verify_consistency(size1, size2, proof, root1, bad)
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bad
        with pytest.raises(HashLengthError, match=rf"proof\[{i}\] has {length} bytes, expected 32"):
            verify_consistency(size1, size2, wrong, root1, root2)


def test_error_messages_state_expected_and_found() -> None:
    index, size, proof = INCLUSION[0]
    leaf, root = leaf_hash(LEAVES[index]), ROOTS[size - 1]

    with pytest.raises(ProofLengthError) as e:
        verify_inclusion(leaf, index, size, [*proof, SOME_HASH], root)
    assert "has 4 hashes, expected 3" in str(e.value)

    with pytest.raises(RootMismatchError) as e:
        verify_inclusion(leaf, index, size, proof, SOME_HASH)
    assert e.value.expected_root == SOME_HASH and e.value.calculated_root == root
    assert f"expected {SOME_HASH.hex()}" in str(e.value) and f"calculated {root.hex()}" in str(e.value)

    size1, size2, proof = CONSISTENCY[2]
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    with pytest.raises(RootMismatchError) as e:
        verify_consistency(size1, size2, proof, SOME_HASH, root2)
    assert e.value.expected_root == SOME_HASH and e.value.calculated_root == root1
    assert "root1" in str(e.value) and "expected" in str(e.value)
    with pytest.raises(RootMismatchError) as e:
        verify_consistency(size1, size2, proof, root1, SOME_HASH)
    assert e.value.expected_root == SOME_HASH and e.value.calculated_root == root2
    assert "root2" in str(e.value)
    with pytest.raises(ProofLengthError) as e:
        verify_consistency(size1, size2, proof[:-1], root1, root2)
    assert "has 2 hashes, expected 3" in str(e.value)


def test_every_failure_is_a_value_error_subclass() -> None:
    """ProofError is a ValueError, so callers catching ValueError still see every failed proof."""
    for cls in (LeafIndexError, SizeError, HashLengthError, ProofLengthError, RootMismatchError):
        assert issubclass(cls, ProofError) and issubclass(cls, ValueError)


# ----------------------------------------------------------------------------- JSON vectors on disk

DATA_DIR = Path(__file__).parent / "data" / "merkle-vectors"


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _run_inclusion(v: dict) -> None:
    proof = None if v["proof"] is None else [_b64(p) for p in v["proof"]]
    verify_inclusion(_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b64(v["root"]))


def _run_consistency(v: dict) -> None:
    proof = None if v["proof"] is None else [_b64(p) for p in v["proof"]]
    verify_consistency(v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))


RUNNERS: dict[str, Callable[[dict], None]] = {"inclusion": _run_inclusion, "consistency": _run_consistency}


def run_vector_dir(root: Path) -> tuple[int, list[str]]:
    """Run every ``<kind>/<n>/<desc>.json`` under ``root``; return (files run, descriptions of mismatches).

    A vector with wantErr must raise a ProofError; one without must return True. Any other
    exception is a mismatch too.
    """
    ran, wrong = 0, []
    for kind, runner in RUNNERS.items():
        for path in sorted((root / kind).glob("*/*.json")):
            v = json.loads(path.read_text())
            ran += 1
            name = f"{path.relative_to(root)} (wantErr={v['wantErr']})"
            try:
                runner(v)
            except ProofError as e:
                if not v["wantErr"]:
                    wrong.append(f"{name}: raised {type(e).__name__}: {e}")
            except Exception as e:  # noqa: BLE001 - any other failure is a bug in the verifier
                wrong.append(f"{name}: raised unexpected {type(e).__name__}: {e}")
            else:
                if v["wantErr"]:
                    wrong.append(f"{name}: verified")
    return ran, wrong


def test_bundled_json_vectors() -> None:
    """The loader itself, on vectors generated from the reference data above (happy and tampered)."""
    ran, wrong = run_vector_dir(DATA_DIR)
    assert wrong == []
    files = list(DATA_DIR.rglob("*.json"))
    assert ran == len(files) >= 10
    wants = {json.loads(p.read_text())["wantErr"] for p in files}
    assert wants == {True, False}


def test_loader_reports_a_wrong_expectation(tmp_path: Path) -> None:
    """A vector whose wantErr is wrong is reported, so a silent loader cannot pass the suite."""
    for kind in ("inclusion", "consistency"):
        for src in sorted((DATA_DIR / kind).glob("*/happy-path.json"))[:1]:
            v = json.loads(src.read_text())
            v["wantErr"] = True
            dst = tmp_path / kind / "0" / "flipped.json"
            dst.parent.mkdir(parents=True)
            dst.write_text(json.dumps(v))
    ran, wrong = run_vector_dir(tmp_path)
    assert ran == 2 and len(wrong) == 2 and all("verified" in w for w in wrong)


def test_transparency_dev_json_vectors() -> None:
    """The full testdata/ of github.com/transparency-dev/merkle when LEDGERMIND_MERKLE_TESTDATA points to it
    (a checkout of that repository or its testdata/ folder); otherwise the bundled vectors in its format."""
    root = Path(os.environ.get("LEDGERMIND_MERKLE_TESTDATA") or DATA_DIR)
    if not (root / "inclusion").is_dir() and (root / "testdata" / "inclusion").is_dir():
        root = root / "testdata"  # the repository checkout itself
    ran, wrong = run_vector_dir(root)
    assert ran > 0, f"no inclusion/*/*.json or consistency/*/*.json under {root}"
    assert wrong == []

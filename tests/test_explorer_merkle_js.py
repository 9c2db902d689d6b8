"""The explorer's in-browser RFC 9162 proof verifiers (static/js/merkle.js) agree with ledgermind.log.

The JS runs under Node.js (same WebCrypto SHA-256 as the browser) over cases made by the Python side: the
published reference proofs (inclusion and consistency) and every corruption probe of the reference verifier,
proofs the real LogStore produces for every leaf of several tree sizes (from the raw entry bytes, so the leaf
hash is the JS's own) and between every pair of those sizes, and a leaf index past 2^32. Each case's verdict
must be the Python verifier's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ledgermind.log import (
    NoteSigner,
    ProofError,
    leaf_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from ledgermind.log.store import LogStore

from .test_log_vectors import CONSISTENCY, INCLUSION, LEAVES, ROOTS, consistency_probes, flip, inclusion_probes

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "tests" / "browser" / "merkle_check.mjs"


def _case(case_id: str, index: int, size: int, proof: list[bytes], root: bytes, *, leaf: bytes | None = None,
          entry: bytes | None = None) -> dict:
    """One case for the JS, with the Python verifier's verdict attached as ``expect``."""
    try:
        verify_inclusion(leaf if leaf is not None else leaf_hash(entry), index, size, proof, root)
        expect = True
    except ProofError:
        expect = False
    out = {"id": case_id, "index": index, "size": size, "proof": [h.hex() for h in proof], "root": root.hex(),
           "expect": expect}
    if entry is not None:
        out["entry"] = entry.hex()
    else:
        out["leaf"] = leaf.hex()
    return out


def _consistency(case_id: str, size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> dict:
    try:
        expect = verify_consistency(size1, size2, proof, root1, root2)
    except ProofError:
        expect = False
    return {"id": case_id, "kind": "consistency", "size1": size1, "size2": size2, "proof": [h.hex() for h in proof],
            "root1": root1.hex(), "root2": root2.hex(), "expect": expect}


def _cases(tmp_path: Path) -> list[dict]:
    cases = []
    for index, size, proof in INCLUSION:
        root, leaf = ROOTS[size - 1], leaf_hash(LEAVES[index])
        cases.append(_case(f"ref {index}/{size}", index, size, proof, root, entry=LEAVES[index]))
        for name, i, n, r, lf, p in inclusion_probes(index, size, proof, root, leaf):
            cases.append(_case(f"ref {index}/{size} {name}", i, n, p, r, leaf=lf))
    for size1, size2, proof in CONSISTENCY:
        root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
        cases.append(_consistency(f"ref {size1}->{size2}", size1, size2, proof, root1, root2))
        if proof:  # like the reference: only non-trivial proofs are corrupted
            for name, a, b, r1, r2, p in consistency_probes(size1, size2, proof, root1, root2):
                cases.append(_consistency(f"ref {size1}->{size2} {name}", a, b, p, r1, r2))
    with LogStore(tmp_path / "log.db", NoteSigner.generate("example.com/js")) as store:
        entries = [f'{{"entry": {i}}}'.encode() for i in range(37)]
        store.append_many(entries)
        for size in (1, 2, 5, 16, 17, 37):
            root = store.root(size)
            for index in range(size):
                proof = store.inclusion_proof(index, size)
                cases.append(_case(f"store {index}/{size}", index, size, proof, root, entry=entries[index]))
                if proof:  # the tampered proof the explorer shows failing: one flipped bit
                    cases.append(_case(f"store {index}/{size} tampered", index, size, [flip(proof[0], 1), *proof[1:]],
                                       root, entry=entries[index]))
        sizes = (1, 2, 5, 16, 17, 37)
        for size1 in sizes:
            for size2 in (s for s in sizes if s >= size1):
                proof = store.consistency_proof(size1, size2)
                root1, root2 = store.root(size1), store.root(size2)
                cases.append(_consistency(f"store {size1}->{size2}", size1, size2, proof, root1, root2))
                if proof:
                    cases.append(_consistency(f"store {size1}->{size2} tampered", size1, size2,
                                              [*proof[:-1], flip(proof[-1], 1)], root1, root2))
    # past 32-bit indices: JS bit operators would silently truncate these
    big_index, big_size = 2**33 + 5, 2**34 + 3
    proof = [bytes([k]) * 32 for k in range(35)]
    leaf = leaf_hash(b"far away")
    root = root_from_inclusion_proof(leaf, big_index, big_size, proof)
    cases.append(_case("index past 2^32", big_index, big_size, proof, root, leaf=leaf))
    cases.append(_case("index past 2^32, off by 2^32", big_index - 2**32, big_size, proof, root, leaf=leaf))
    return cases


def test_js_verifier_agrees_with_python_on_every_case(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the explorer's JS verifier runs under node here")
    cases = _cases(tmp_path)
    assert sum(c["expect"] for c in cases) > 100 and sum(not c["expect"] for c in cases) > 150
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    proc = subprocess.run([node, str(CHECK), str(path)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NODE_NO_WARNINGS": "1"})
    assert proc.returncode == 0, proc.stderr
    verdicts = {v["id"]: v for v in json.loads(proc.stdout)}
    assert len(verdicts) == len(cases)
    disagree = [(c["id"], c["expect"], verdicts[c["id"]]) for c in cases if verdicts[c["id"]]["ok"] != c["expect"]]
    assert disagree == []
    # a rejection says what was expected and what was found, as the Python verifier does
    tampered = verdicts["store 3/5 tampered"]["error"]
    assert tampered.startswith("root mismatch: expected ") and "calculated" in tampered
    assert verdicts["store 5->17 tampered"]["error"].startswith("root2 mismatch: expected ")

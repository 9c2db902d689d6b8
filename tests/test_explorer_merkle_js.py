"""The explorer's in-browser RFC 9162 inclusion verifier (static/js/merkle.js) agrees with ledgermind.log.

The JS runs under Node.js (same WebCrypto SHA-256 as the browser) over cases made by the Python side: the
published reference proofs and every corruption probe of the reference verifier, proofs the real LogStore
produces for every leaf of several tree sizes (from the raw entry bytes, so the leaf hash is the JS's own),
and a leaf index past 2^32. Each case's verdict must be the Python verifier's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ledgermind.log import NoteSigner, ProofError, leaf_hash, root_from_inclusion_proof, verify_inclusion
from ledgermind.log.store import LogStore

from .test_log_vectors import INCLUSION, LEAVES, ROOTS, flip, inclusion_probes

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


def _cases(tmp_path: Path) -> list[dict]:
    cases = []
    for index, size, proof in INCLUSION:
        root, leaf = ROOTS[size - 1], leaf_hash(LEAVES[index])
        cases.append(_case(f"ref {index}/{size}", index, size, proof, root, entry=LEAVES[index]))
        for name, i, n, r, lf, p in inclusion_probes(index, size, proof, root, leaf):
            cases.append(_case(f"ref {index}/{size} {name}", i, n, p, r, leaf=lf))
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
    assert sum(c["expect"] for c in cases) > 80 and sum(not c["expect"] for c in cases) > 80
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

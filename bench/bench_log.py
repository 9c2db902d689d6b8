"""Durable appends, inclusion proofs and proof verification of ledgermind's log against pymerkle and hashlib.

    python bench/bench_log.py [--n 1000000] [--batch 50000] [--rounds 5] [--latency-passes 7] [--n-large 10000000]

Everything is measured in one run on the same pre-generated entries (default: canonical-JSON, DSSE-envelope-like
blobs of 204 bytes, each distinct), in interleaved rounds so that noise from neighbours hits every candidate alike:

1. Durable append of ``--n`` entries (best of ``--rounds``; every round's rates and ratios are kept in the JSON):
   - ours:        ``LogStore.submit`` of ``--batch``-entry batches back to back, then every future awaited
                  (durable = committed with SQLite WAL, synchronous=FULL, checkpoint signed in the same transaction);
   - ours, sync:  ``LogStore.append_many`` of 10,000-entry batches, each awaited before the next (latency-bound);
   - peer:        pymerkle ``SqliteTree.append_entries(batch, chunksize=batch)``: one transaction per call, committed
                  by ``with con:`` in SQLite's default rollback-journal mode with synchronous=FULL, so it is durable
                  too. It stores only (entry, leaf hash) rows: no interior nodes, no signed checkpoint. The same
                  tree with WAL switched on is measured as well; the faster of the two is the peer;
   - limit:       ``hashlib.sha256(entry).digest()`` over the same entries.
   Our root (stored tiles, and the signed checkpoint) and pymerkle's root are checked against an RFC 9162 root
   computed here from scratch (and against ``ledgermind.log.root_from_leaf_hashes``).
2. Inclusion-proof latency from disk at ``--n`` entries, ``--proofs`` random indices, on the log reopened read-only:
   - cold:       a new ``LogStore`` every ``--group`` proofs (empty tile cache, fresh SQLite connection);
                 the OS page cache is warm;
   - cold-disk:  as cold, and the file's pages are also dropped from the OS page cache (posix_fadvise DONTNEED)
                 before each new store; the hypervisor may still cache them;
   - warm:       one store, a second pass over the same indices (its LRU tile cache holds 512 tiles; at 1M
                 entries there are ~3,900 bottom tiles, so the bottom tile mostly comes from SQLite's page cache);
   - peer:       pymerkle ``prove_inclusion`` on a freshly opened tree (``--peer-proofs`` samples; the first call,
                 which hashes the whole tree into its subroot cache, is reported on its own).
3. Verification latency of ``ledgermind.log.verify_inclusion`` for the same proofs, against pymerkle's
   ``InclusionProof.verify`` (peer) and a bare chain of the same number of SHA-256 node hashes (limit).

Latencies are timed one call at a time (perf_counter_ns) in ``--latency-passes`` interleaved passes; each mode keeps
the pass with the lowest p50 and records every pass's p50 (this host's speed swings by up to 2x for seconds at a
time). The entries are moved out of the garbage collector's reach (gc.freeze) while candidates run.

Prints a table and writes ``bench/results/log.json``. Targets: ours >= 250,000 entries/s durable and >= 2x pymerkle;
inclusion proof p50 <= 100 us; verification p50 <= 20 us. Results of other sizes already in the JSON (e.g. an
earlier ``--n-large`` run) are kept, each with its own date.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import gc
import hashlib
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from pymerkle import SqliteTree

from ledgermind.log import NoteSigner, leaf_hash, root_from_leaf_hashes, verify_inclusion
from ledgermind.log.store import LogStore

RESULTS = Path(__file__).resolve().parent / "results" / "log.json"
TARGET_APPEND = 250_000
TARGET_PEER_RATIO = 2.0
TARGET_PROOF_P50_US = 100.0
TARGET_VERIFY_P50_US = 20.0
SYNC_BATCH = 10_000
BYTES_PER_ENTRY_ON_DISK = 1_000  # ours ~275 + pymerkle ~250 per entry, plus the WAL and headroom
KEYIDS = [b"1f2e3d4c", b"5b6a7988", b"a0b1c2d3", b"e4f5a6b7"]


# --------------------------------------------------------------------------------------------- entries
def make_entries(n: int, kind: str, seed: int) -> list[bytes]:
    """Distinct entries, pre-generated.

    ``dsse``: canonical JSON (sorted keys, no spaces) shaped like a DSSE envelope, 204 bytes each: a 9-byte payload
    (6-byte counter + 3 random bytes) in base64, a fixed payload type, one of 4 key IDs and a random 64-byte
    signature in base64. ``raw``: an 8-byte counter followed by 192 fixed random bytes (200 bytes).
    """
    rng = random.Random(seed)
    if kind == "raw":
        fixed = rng.randbytes(192)
        return [i.to_bytes(8, "big") + fixed for i in range(n)]
    template = b'{"payload":"%s","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"%s","sig":"%s"}]}'
    b64 = base64.b64encode
    out: list[bytes] = []
    chunk = 100_000
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        noise = rng.randbytes(67 * count)
        for j in range(count):
            r = noise[67 * j : 67 * j + 67]
            payload = b64((start + j).to_bytes(6, "big") + r[:3])
            out.append(template % (payload, KEYIDS[r[3] & 3], b64(r[3:])))
    return out


def rfc9162_root(leaf_hashes: list[bytes]) -> bytes:
    """MTH of RFC 9162, written here independently: pair each level left to right, an odd last node moves up as is.

    This equals the RFC's recursive split at the largest power of two below n.
    """
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    level = leaf_hashes
    sha = hashlib.sha256
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


# --------------------------------------------------------------------------------------------- helpers
def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def drop_page_cache(folder: Path) -> None:
    """Ask the kernel to forget the cached pages of every file in ``folder`` (best effort, no root needed)."""
    for f in folder.iterdir():
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def cpu_steal_seconds() -> float | None:
    """Time the hypervisor gave our virtual CPUs to someone else, summed over CPUs (Linux), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def stats_us(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))] / 1000

    return {
        "n": len(s),
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "min": s[0] / 1000,
        "max": s[-1] / 1000,
        "mean": sum(s) / len(s) / 1000,
    }


def best_pass(passes: list[list[int]]) -> dict:
    """Percentiles of the pass with the lowest p50, and every pass's p50 to show the spread."""
    all_stats = [stats_us(p) for p in passes]
    best = min(all_stats, key=lambda st: st["p50"])
    return {**best, "p50_of_each_pass": [st["p50"] for st in all_stats]}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------- appends
def append_ours_pipelined(folder: Path, entries: list[bytes], batch: int, signer: NoteSigner) -> dict:
    folder.mkdir(parents=True)
    store = LogStore(folder / "log.db", signer)
    start = time.perf_counter()
    futures = [store.submit(entries[i : i + batch]) for i in range(0, len(entries), batch)]
    queued = time.perf_counter() - start
    for f in futures:
        f.result()
    seconds = time.perf_counter() - start
    close = timed(store.close)
    return {
        "seconds": seconds,
        "submit_return_seconds": queued,
        "close_seconds": close,
        "bytes_on_disk": dir_bytes(folder),
    }


def append_ours_sync(folder: Path, entries: list[bytes], batch: int, signer: NoteSigner) -> dict:
    folder.mkdir(parents=True)
    store = LogStore(folder / "log.db", signer)
    start = time.perf_counter()
    for i in range(0, len(entries), batch):
        store.append_many(entries[i : i + batch])
    seconds = time.perf_counter() - start
    close = timed(store.close)
    return {"seconds": seconds, "close_seconds": close}


def append_pymerkle(folder: Path, entries: list[bytes], batch: int, wal: bool) -> dict:
    folder.mkdir(parents=True)
    tree = SqliteTree(str(folder / "pymerkle.db"), algorithm="sha256")
    if wal:
        tree.con.execute("PRAGMA journal_mode=WAL")
        tree.con.execute("PRAGMA synchronous=FULL")
    journal = tree.con.execute("PRAGMA journal_mode").fetchone()
    synchronous = tree.con.execute("PRAGMA synchronous").fetchone()
    start = time.perf_counter()
    for i in range(0, len(entries), batch):
        tree.append_entries(entries[i : i + batch], chunksize=batch)
    seconds = time.perf_counter() - start
    size = tree.get_size()
    close = timed(tree.close)
    if size != len(entries):
        raise RuntimeError(f"pymerkle holds {size} leaves, expected {len(entries)}")
    return {
        "seconds": seconds,
        "close_seconds": close,
        "journal_mode": journal,
        "synchronous": synchronous,
        "bytes_on_disk": dir_bytes(folder),
    }


def hash_limit(entries: list[bytes]) -> None:
    sha = hashlib.sha256
    [sha(x).digest() for x in entries]


# --------------------------------------------------------------------------------------------- proofs
def proofs_cold(db: Path, size: int, indices: list[int], group: int, drop: bool) -> tuple[list[int], list[list[bytes]]]:
    samples: list[int] = []
    proofs: list[list[bytes]] = []
    clock = time.perf_counter_ns
    store: LogStore | None = None
    for k, index in enumerate(indices):
        if k % group == 0:
            if store is not None:
                store.close()
            if drop:
                drop_page_cache(db.parent)
            store = LogStore(db)
        t0 = clock()
        proof = store.inclusion_proof(index, size)
        samples.append(clock() - t0)
        proofs.append(proof)
    if store is not None:
        store.close()
    return samples, proofs


def proofs_warm(db: Path, size: int, indices: list[int]) -> list[int]:
    """One store: a first pass over ``indices`` to warm it (not timed), then a timed second pass."""
    clock = time.perf_counter_ns
    samples = []
    with LogStore(db) as store:
        for index in indices:
            store.inclusion_proof(index, size)
        for index in indices:
            t0 = clock()
            store.inclusion_proof(index, size)
            samples.append(clock() - t0)
    return samples


def verify_passes(
    leaves: list[bytes], indices: list[int], size: int, proofs: list[list[bytes]], root: bytes, passes: int
) -> tuple[list[list[int]], list[list[int]]]:
    clock = time.perf_counter_ns
    ours, limit = [], []
    sha = hashlib.sha256
    for _ in range(passes):
        samples = []
        for lh, index, proof in zip(leaves, indices, proofs):
            t0 = clock()
            verify_inclusion(lh, index, size, proof, root)
            samples.append(clock() - t0)
        ours.append(samples)
        samples = []
        for lh, proof in zip(leaves, proofs):
            t0 = clock()
            h = lh
            for x in proof:
                h = sha(b"\x01" + h + x).digest()
            samples.append(clock() - t0)
        limit.append(samples)
    return ours, limit


# --------------------------------------------------------------------------------------------- one size
def run_size(n: int, args: argparse.Namespace, rounds: int, tmp: Path) -> dict:
    print(f"\n=== N = {n:,} entries ({args.entries}), batch {args.batch:,}, {rounds} round(s) ===")
    load_before = os.getloadavg()
    steal_before = cpu_steal_seconds()
    t = time.perf_counter()
    entries = make_entries(n, args.entries, args.seed)
    sizes = [len(e) for e in entries]
    if len(set(entries[: min(n, 100_000)])) != min(n, 100_000):
        raise RuntimeError("entries are not distinct")
    if args.entries == "dsse":
        sample = entries[n // 2]
        if json.dumps(json.loads(sample), sort_keys=True, separators=(",", ":")).encode() != sample:
            raise RuntimeError("entries are not canonical JSON")
    print(f"generated {n:,} entries of {min(sizes)}..{max(sizes)} bytes in {time.perf_counter() - t:.1f} s")
    gc.collect()
    gc.freeze()  # the entries are long-lived: keep them out of every candidate's garbage collections
    signer = NoteSigner.generate("bench.example/log")

    runs: dict[str, list[dict]] = {"ours": [], "ours_sync": [], "pymerkle": [], "pymerkle_wal": [], "limit": []}
    keep: dict[str, Path] = {}
    for r in range(rounds):
        last = r == rounds - 1
        gc.collect()
        runs["limit"].append({"seconds": timed(lambda: hash_limit(entries))})
        for name, fn in (
            ("ours", lambda d: append_ours_pipelined(d, entries, args.batch, signer)),
            ("ours_sync", lambda d: append_ours_sync(d, entries, SYNC_BATCH, signer)),
            ("pymerkle", lambda d: append_pymerkle(d, entries, args.batch, wal=False)),
            ("pymerkle_wal", lambda d: append_pymerkle(d, entries, args.batch, wal=True)),
        ):
            folder = tmp / f"{name}-{n}-{r}"
            gc.collect()
            res = fn(folder)
            runs[name].append(res)
            if last and name in ("ours", "pymerkle"):
                keep[name] = folder
            else:
                shutil.rmtree(folder)
        print(
            f"round {r + 1}: "
            + ", ".join(f"{name} {n / rs[-1]['seconds']:,.0f}/s" for name, rs in runs.items())
        )

    best = {name: min(x["seconds"] for x in rs) for name, rs in runs.items()}
    rate = {name: n / s for name, s in best.items()}
    peer_name = max(("pymerkle", "pymerkle_wal"), key=lambda k: rate[k])

    # ---- correctness: roots against an independent RFC 9162 computation
    t = time.perf_counter()
    leaves = [leaf_hash(e) for e in entries]
    rfc_root = rfc9162_root(leaves)
    reference_root = root_from_leaf_hashes(leaves)
    ours_db = keep["ours"] / "log.db"
    with LogStore(ours_db) as ro:
        ours_size = ro.size()
        ours_root = ro.root()
        cp = ro.latest_checkpoint()
        signed = ro.verifier.open_checkpoint(cp.note) if cp else None
        entries_ok = all(ro.entry(i) == entries[i] for i in (0, n // 3, n - 1))
    checks = {
        "rfc9162_root": rfc_root.hex(),
        "ledgermind_root_from_leaf_hashes_equals_rfc9162": reference_root == rfc_root,
        "ours_size": ours_size,
        "ours_root_equals_rfc9162": ours_root == rfc_root,
        "ours_signed_checkpoint_verifies_and_equals_rfc9162": bool(
            signed and signed.size == n and signed.root == rfc_root
        ),
        "ours_entries_read_back": entries_ok,
    }
    print(f"roots computed in {time.perf_counter() - t:.1f} s")

    # ---- inclusion proofs, ours
    rng = random.Random(args.seed + 1)
    indices = [rng.randrange(n) for _ in range(args.proofs)]
    cold_passes, cold_disk_passes, warm_passes, proofs = [], [], [], []
    for _ in range(args.latency_passes):  # interleaved, so that a burst of noise does not hit one mode only
        samples, proofs = proofs_cold(ours_db, n, indices, args.group, drop=False)
        cold_passes.append(samples)
        samples, _ = proofs_cold(ours_db, n, indices, args.group, drop=True)
        cold_disk_passes.append(samples)
        warm_passes.append(proofs_warm(ours_db, n, indices))
    proof_leaves = [leaves[i] for i in indices]
    for lh, index, proof in zip(proof_leaves, indices, proofs):
        verify_inclusion(lh, index, n, proof, rfc_root)  # raises if any proof is wrong
    checks["ours_proofs_verify_against_rfc9162_root"] = True
    proof_lengths = [len(p) for p in proofs]

    # ---- verification
    verify_ours, verify_limit = verify_passes(proof_leaves, indices, n, proofs, rfc_root, args.latency_passes)

    # ---- pymerkle: proofs, verification, root
    pm_db = keep["pymerkle"] / "pymerkle.db"
    tree = SqliteTree(str(pm_db), algorithm="sha256")
    peer_indices = indices[: args.peer_proofs]
    clock = time.perf_counter_ns
    t0 = clock()
    tree.prove_inclusion(peer_indices[0] + 1)  # pymerkle counts leaves from one
    pm_first_us = (clock() - t0) / 1000
    pm_samples, pm_proofs = [], []
    for index in peer_indices:
        t0 = clock()
        p = tree.prove_inclusion(index + 1)
        pm_samples.append(clock() - t0)
        pm_proofs.append(p)
    pm_verify = []
    for index, p in zip(peer_indices, pm_proofs):
        t0 = clock()
        p.verify(leaves[index], rfc_root)  # raises InvalidProof if it does not verify
        pm_verify.append(clock() - t0)
    t0 = clock()
    pm_root = tree.get_root()
    pm_root_s = (clock() - t0) / 1e9
    checks["pymerkle_root_equals_rfc9162"] = pm_root == rfc_root
    checks["pymerkle_leaf_hash_equals_rfc9162"] = tree.get_leaf(1) == leaves[0]
    checks["pymerkle_proofs_equal_ours"] = all(p.path[1:] == proofs[k] for k, p in enumerate(pm_proofs))
    tree.close()
    for folder in keep.values():
        shutil.rmtree(folder)
    del entries, leaves
    gc.unfreeze()
    gc.collect()

    result = {
        "n": n,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rounds": rounds,
        "loadavg_1_5_15min": {"before": load_before, "after": os.getloadavg()},  # the machine is shared
        "cpu_steal_seconds": None if steal_before is None else cpu_steal_seconds() - steal_before,
        "entry_bytes": {"min": min(sizes), "max": max(sizes), "mean": sum(sizes) / n},
        "append": {
            "entries_per_s": rate,
            "best_seconds": best,
            "entries_per_s_each_round": {name: [n / x["seconds"] for x in rs] for name, rs in runs.items()},
            "runs": runs,
            "peer": peer_name,
            "ratio_ours_to_peer": rate["ours"] / rate[peer_name],
            "ratio_ours_to_faster_pymerkle_each_round": [
                ours["seconds"] ** -1 / max(a["seconds"] ** -1, b["seconds"] ** -1)
                for ours, a, b in zip(runs["ours"], runs["pymerkle"], runs["pymerkle_wal"])
            ],
            "ratio_ours_to_pymerkle_default": rate["ours"] / rate["pymerkle"],
            "ratio_ours_to_limit": rate["ours"] / rate["limit"],
            "ratio_ours_sync_to_ours": rate["ours_sync"] / rate["ours"],
        },
        "inclusion_proof_us": {
            "samples": args.proofs,
            "group_per_store_cold": args.group,
            "proof_hashes": {"min": min(proof_lengths), "max": max(proof_lengths)},
            "cold": best_pass(cold_passes),
            "cold_disk": best_pass(cold_disk_passes),
            "warm": best_pass(warm_passes),
            "pymerkle": {**stats_us(pm_samples), "first_call_on_fresh_tree_us": pm_first_us},
            "pymerkle_get_root_after_proofs_s": pm_root_s,
        },
        "verify_us": {
            "ours": best_pass(verify_ours),
            "limit_bare_sha256_chain": best_pass(verify_limit),
            "pymerkle": stats_us(pm_verify),
        },
        "checks": checks,
    }
    return result


# --------------------------------------------------------------------------------------------- report
def verdicts(res: dict) -> dict[str, bool]:
    a, p, v = res["append"], res["inclusion_proof_us"], res["verify_us"]
    return {
        "append_entries_per_s": a["entries_per_s"]["ours"] >= TARGET_APPEND,
        "append_ratio_to_peer": a["ratio_ours_to_peer"] >= TARGET_PEER_RATIO,
        "proof_p50_cold": p["cold"]["p50"] <= TARGET_PROOF_P50_US,
        "proof_p50_cold_disk": p["cold_disk"]["p50"] <= TARGET_PROOF_P50_US,
        "proof_p50_warm": p["warm"]["p50"] <= TARGET_PROOF_P50_US,
        "verify_p50": v["ours"]["p50"] <= TARGET_VERIFY_P50_US,
        "roots_and_proofs_match_rfc9162": all(
            res["checks"][k]
            for k in (
                "ledgermind_root_from_leaf_hashes_equals_rfc9162",
                "ours_root_equals_rfc9162",
                "ours_signed_checkpoint_verifies_and_equals_rfc9162",
                "ours_entries_read_back",
                "ours_proofs_verify_against_rfc9162_root",
            )
        ),
    }


def print_table(res: dict) -> None:
    a, p, v, ok = res["append"], res["inclusion_proof_us"], res["verify_us"], verdicts(res)
    rate, peer, pm = a["entries_per_s"], a["peer"], p["pymerkle"]
    proof_target, verify_target = f"<= {TARGET_PROOF_P50_US:g}", f"<= {TARGET_VERIFY_P50_US:g}"
    append_target = f">= {TARGET_APPEND:,} & >= {TARGET_PEER_RATIO:g}x"
    append_ok = ok["append_entries_per_s"] and ok["append_ratio_to_peer"]
    # metric, ours, other's name, other, target, verdict; ratio = ours / other for rates, other / ours for latencies
    rows = [
        ("append durable, submit pipelined (entries/s)", rate["ours"], peer, rate[peer], append_target, append_ok),
        ("  same, vs pymerkle as shipped (entries/s)", rate["ours"], "pymerkle", rate["pymerkle"], "", None),
        ("  same, vs hashlib.sha256 per entry (entries/s)", rate["ours"], "limit", rate["limit"], "", None),
        (f"append_many of {SYNC_BATCH:,}, awaited (entries/s)", rate["ours_sync"], "ours pipelined", rate["ours"], "", None),
        ("inclusion proof p50, cold (us)", p["cold"]["p50"], "pymerkle", pm["p50"], proof_target, ok["proof_p50_cold"]),
        ("inclusion proof p50, cold-disk (us)", p["cold_disk"]["p50"], "pymerkle", pm["p50"], proof_target,
         ok["proof_p50_cold_disk"]),
        ("inclusion proof p50, warm (us)", p["warm"]["p50"], "pymerkle", pm["p50"], proof_target, ok["proof_p50_warm"]),
        ("inclusion proof p99, cold (us)", p["cold"]["p99"], "pymerkle", pm["p99"], "", None),
        ("verify_inclusion p50 (us)", v["ours"]["p50"], "pymerkle", v["pymerkle"]["p50"], verify_target, ok["verify_p50"]),
        ("  same, vs a bare SHA-256 chain (us)", v["ours"]["p50"], "limit", v["limit_bare_sha256_chain"]["p50"], "", None),
    ]
    print(f"\nN = {res['n']:,}   (best of {res['rounds']}; ratio > 1: ours is better)")
    print(f"{'metric':<50} {'ours':>10} {'vs':<14} {'other':>10} {'ratio':>7}  {'target':<20} result")
    for metric, ours, other_name, other, target, passed in rows:
        is_rate = metric.endswith("(entries/s)")
        ratio = ours / other if is_rate else other / ours
        result = "" if passed is None else ("pass" if passed else "FAIL")
        cell = (lambda x: f"{x:,.0f}") if is_rate else (lambda x: f"{x:,.1f}")
        print(f"{metric:<50} {cell(ours):>10} {other_name:<14} {cell(other):>10} {ratio:>7.2f}  {target:<20} {result}")
    c = res["checks"]
    print(
        f"roots: ours == RFC 9162: {c['ours_root_equals_rfc9162']}, "
        f"signed checkpoint: {c['ours_signed_checkpoint_verifies_and_equals_rfc9162']}, "
        f"root_from_leaf_hashes: {c['ledgermind_root_from_leaf_hashes_equals_rfc9162']}; "
        f"pymerkle root == RFC 9162: {c['pymerkle_root_equals_rfc9162']}, "
        f"its proofs == ours: {c['pymerkle_proofs_equal_ours']}"
    )
    pct = " / ".join(
        f"{mode} {p[mode]['p50']:.0f}/{p[mode]['p90']:.0f}/{p[mode]['p99']:.0f}" for mode in ("cold", "cold_disk", "warm")
    )
    first_ms = pm["first_call_on_fresh_tree_us"] / 1e3
    print(f"our proofs p50/p90/p99 us: {pct}; pymerkle's first proof on a fresh tree: {first_ms:,.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="entries (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=50_000, help="entries per submit()/append_entries (default 50,000)")
    parser.add_argument("--rounds", type=int, default=5, help="append rounds; the best of each is kept (default 5)")
    parser.add_argument("--entries", choices=("dsse", "raw"), default="dsse", help="entry shape (default dsse, 204 bytes)")
    parser.add_argument("--proofs", type=int, default=5_000, help="inclusion proofs per pass (default 5,000)")
    parser.add_argument("--group", type=int, default=500, help="proofs per fresh store in the cold modes (default 500)")
    parser.add_argument("--peer-proofs", type=int, default=200, help="pymerkle proofs (default 200)")
    parser.add_argument(
        "--latency-passes", type=int, default=7, help="interleaved latency passes; the lowest p50 is kept (default 7)"
    )
    parser.add_argument("--n-large", type=int, default=0, help="also run this size (e.g. 10000000); default off")
    parser.add_argument("--rounds-large", type=int, default=1, help="rounds at --n-large (default 1)")
    parser.add_argument("--seed", type=int, default=9162, help="seed of the entries and indices (default 9162)")
    parser.add_argument("--dir", default=None, help="where to create the logs (default: system temp)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.n < 2 or args.batch < 1 or args.proofs < 1 or args.group < 1 or args.peer_proofs < 1:
        parser.error("--n must be >= 2 and --batch, --proofs, --group, --peer-proofs >= 1")

    tmp = Path(tempfile.mkdtemp(prefix="ledgermind-bench-log-", dir=args.dir))
    sizes = [(args.n, args.rounds)]
    skipped = None
    if args.n_large:
        need = args.n_large * BYTES_PER_ENTRY_ON_DISK
        free = shutil.disk_usage(tmp).free
        if free < need:
            skipped = f"--n-large {args.n_large} skipped: {free / 1e9:.1f} GB free in {tmp}, {need / 1e9:.1f} GB needed"
            print(skipped)
        else:
            sizes.append((args.n_large, args.rounds_large))
    results = {}
    try:
        for n, rounds in sizes:
            res = run_size(n, args, rounds, tmp)
            print_table(res)
            results[str(n)] = res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    previous = {}
    if args.out.exists():
        try:
            previous = json.loads(args.out.read_text()).get("sizes", {})
        except (ValueError, AttributeError):
            previous = {}
    merged = {k: v for k, v in previous.items() if k not in results}  # keep e.g. an earlier 10M run
    merged.update(results)
    main_res = results[str(args.n)]
    ok = verdicts(main_res)
    report = {
        "benchmark": "log",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "pymerkle": version("pymerkle"),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "parameters": {
            "n": args.n,
            "batch": args.batch,
            "sync_batch": SYNC_BATCH,
            "rounds": args.rounds,
            "latency_passes": args.latency_passes,
            "entries": args.entries,
            "proofs": args.proofs,
            "group": args.group,
            "peer_proofs": args.peer_proofs,
            "n_large": args.n_large,
            "seed": args.seed,
            "logstore": {
                "max_batch": 50_000,
                "max_latency": 0.001,
                "tile_cache": 512,
                "synchronous": "FULL",
                "journal_mode": "WAL",
            },
        },
        "peer_notes": (
            "pymerkle SqliteTree.append_entries(batch, chunksize=batch): one transaction per call, committed by "
            "'with con:' (durable: rollback journal, synchronous=FULL as shipped; the 'pymerkle_wal' variant switches "
            "the same connection to WAL, synchronous=FULL). It stores (entry, leaf hash) rows only: no interior "
            "nodes, no signed checkpoint; proofs hash subtrees on demand (subroots of >= 128 leaves are LRU-cached "
            "in memory, so the first proof on a fresh tree hashes the whole tree). Indices count from one. "
            "The append peer is the faster of the two variants."
        ),
        "targets": {
            "append_entries_per_s": TARGET_APPEND,
            "append_ratio_to_peer": TARGET_PEER_RATIO,
            "proof_p50_us": TARGET_PROOF_P50_US,
            "verify_p50_us": TARGET_VERIFY_P50_US,
        },
        "meets_targets": ok,
        "meets_targets_at": {k: verdicts(v) for k, v in merged.items()},
        "n_large_skipped": skipped,
        "sizes": merged,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    missed = [k for k, v in ok.items() if not v]
    print("all targets met" if not missed else f"targets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

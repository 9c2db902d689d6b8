"""Throughput of ledgermind's parallel sharded file digest against the multi-process hashlib limit.

    python bench/bench_fingerprint.py [--size-mib 2048] [--rounds 3]

Writes a file of pseudo-random bytes to a temporary folder, reads it once so it sits in the page cache, then
measures, in interleaved rounds (best of ``--rounds`` each, so noise from neighbours hits all three alike):

- ours:   ``ledgermind.fingerprint.file_digest`` (threads, 8 MiB shards, default workers);
- limit:  N forked processes (N = ``--procs``, default the CPU count), each hashing 1/N of the file with hashlib in
          1 MiB reads: no GIL, no coordination, so threads cannot beat it;
- single: one process, hashlib in 1 MiB reads, for reference.

Prints a table and writes ``bench/results/fingerprint.json``. The target is ours >= 0.8 x limit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ledgermind.fingerprint import SHARD_SIZE, file_digest

MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK = 64 * MIB
TARGET = 0.8
RESULTS = Path(__file__).resolve().parent / "results" / "fingerprint.json"


def write_payload(path: Path, size: int) -> None:
    """Write ``size`` bytes fast: one random 64 MiB block, repeated, with a distinct 8-byte counter in every MiB.

    The counters make every shard different, so no digest can be reused by accident.
    """
    block = bytearray(os.urandom(BLOCK))
    counter = 0
    with path.open("wb") as out:
        for start in range(0, size, BLOCK):
            length = min(BLOCK, size - start)
            for mib in range(0, length, MIB):
                block[mib : mib + 8] = counter.to_bytes(8, "little")
                counter += 1
            out.write(memoryview(block)[:length])


def warm(path: Path) -> None:
    buf = bytearray(MIB)
    with path.open("rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def hash_range(path: str, offset: int, length: int) -> str:
    """hashlib.sha256 of a byte range in 1 MiB reads into a reused buffer: the fastest plain-Python loop."""
    h = hashlib.sha256()
    buf = memoryview(bytearray(MIB))
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        remaining = length
        while remaining:
            n = f.readinto(buf[: min(MIB, remaining)])
            if not n:
                raise RuntimeError(f"{path} is shorter than expected")
            h.update(buf[:n])
            remaining -= n
    return h.hexdigest()


def _hash_range_in_child(path: str, offset: int, length: int) -> None:
    hash_range(path, offset, length)


def multi_process(path: str, size: int, procs: int) -> None:
    ctx = multiprocessing.get_context("fork")
    part = -(-size // procs // MIB) * MIB  # ceil to whole MiB so every process reads aligned 1 MiB pieces
    children = [
        ctx.Process(target=_hash_range_in_child, args=(path, start, min(part, size - start)))
        for start in range(0, size, part)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"hashing process exited with {child.exitcode}")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048, help="file size in MiB (default 2048)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best of each is kept (default 3)")
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 2, help="processes of the limit (default: CPUs)")
    parser.add_argument("--workers", type=int, default=None, help="threads for ours (default: CPUs)")
    parser.add_argument("--dir", default=None, help="where to create the temporary file (default: system temp)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    size = args.size_mib * MIB

    tmpdir = Path(tempfile.mkdtemp(prefix="ledgermind-bench-", dir=args.dir))
    path = tmpdir / "payload.bin"
    try:
        started = time.perf_counter()
        write_payload(path, size)
        warm(path)
        print(f"wrote and warmed {args.size_mib} MiB in {time.perf_counter() - started:.1f} s ({path})")

        candidates: dict[str, Callable[[], object]] = {
            "ours": lambda: file_digest(path, workers=args.workers),
            "limit": lambda: multi_process(str(path), size, args.procs),
            "single": lambda: hash_range(str(path), 0, size),
        }
        runs: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.rounds):
            for name, fn in candidates.items():
                runs[name].append(timed(fn))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

    best = {name: min(times) for name, times in runs.items()}
    rate = {name: size / GIB / seconds for name, seconds in best.items()}
    ratio = rate["ours"] / rate["limit"]
    labels = {
        "ours": f"ledgermind file_digest ({args.workers or os.cpu_count()} threads)",
        "limit": f"hashlib, {args.procs} processes (limit)",
        "single": "hashlib, 1 process",
    }
    print(f"\n{'method':<40} {'best s':>8} {'GiB/s':>7} {'x limit':>8}")
    for name in candidates:
        print(f"{labels[name]:<40} {best[name]:>8.3f} {rate[name]:>7.2f} {rate[name] / rate['limit']:>8.2f}")
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"\nours / limit = {ratio:.2f} ({verdict} the >= {TARGET}x target)")

    report = {
        "benchmark": "fingerprint",
        "size_bytes": size,
        "shard_size": SHARD_SIZE,
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "workers": args.workers or os.cpu_count(),
        "limit_processes": args.procs,
        "python": sys.version.split()[0],
        "openssl": ssl.OPENSSL_VERSION,
        "machine": platform.machine(),
        "seconds": runs,
        "best_seconds": best,
        "gib_per_s": rate,
        "ratio_ours_to_limit": ratio,
        "target_ratio": TARGET,
        "meets_target": ratio >= TARGET,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

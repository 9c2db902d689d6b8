"""Crash safety: a writer process killed with SIGKILL at random moments never loses or rewrites an acknowledged entry.

A child process appends from several threads (single appends and small submitted batches) and prints
``ACK <index> <sha256 hex>`` after each acknowledged append and ``CP <size> <root hex>`` for the latest
checkpoint now and then. The parent kills it at a random moment, reopens the file read-only, and
checks: every ACK (of this and all earlier runs) is there with the same bytes, the indices are
contiguous, fsck is clean, and the tree is consistent with every checkpoint the child ever reported.
"""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledgermind.log import NoteSigner, verify_consistency
from ledgermind.log.fsck import fsck
from ledgermind.log.store import LogStore

ORIGIN = "example.com/ledgermind/crash"
RUNS = 22

CHILD = r"""
import hashlib, itertools, random, sys, threading, time
from ledgermind.log import NoteSigner
from ledgermind.log.store import LogStore

path, key_file, origin, run, nthreads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
store = LogStore(path, NoteSigner.from_pem(origin, open(key_file, "rb").read()), max_latency=0.01)
out = threading.Lock()
names = itertools.count(run * 1_000_000)


def say(lines):
    with out:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()


def worker(seed):
    rng = random.Random(seed)
    while True:
        if rng.random() < 0.5:
            entry = b"entry-%d" % next(names)
            acked = [(store.append(entry), entry)]
        else:
            batch = [b"entry-%d" % next(names) for _ in range(rng.randint(2, 6))]
            first = store.submit(batch).result()
            acked = list(zip(range(first, first + len(batch)), batch))
        say([f"ACK {i} {hashlib.sha256(e).hexdigest()}" for i, e in acked])


say([f"READY {store.size()}"])
for t in range(nthreads):
    threading.Thread(target=worker, args=(run * 100 + t,), daemon=True).start()
while True:
    cp = store.latest_checkpoint()
    if cp is not None:
        say([f"CP {cp.size} {cp.root.hex()}"])
    time.sleep(0.01)
"""


def complete_lines(data: bytes) -> list[str]:
    """The lines of a killed child's output, without a last line cut short by the kill."""
    lines = data.split(b"\n")
    return [line.decode() for line in lines[:-1]]  # the last piece is b"" or an unfinished line


def run_child_until_killed(path: Path, key_file: Path, run: int, delay: float, tmp: Path) -> list[str]:
    with open(tmp / f"child-{run}.err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(key_file), ORIGIN, str(run), str(2 + run % 3)],
            stdout=subprocess.PIPE,
            stderr=err,
        )
        watchdog = threading.Timer(60, proc.kill)  # only so a wedged child cannot hang the suite
        watchdog.start()
        try:
            ready = proc.stdout.readline()
            assert ready.startswith(b"READY "), f"child did not start: {(tmp / f'child-{run}.err').read_text()}"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            rest = proc.stdout.read()
            code = proc.wait()
            assert code == -signal.SIGKILL, f"the child ended by itself ({code}): {(tmp / f'child-{run}.err').read_text()}"
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    return complete_lines(ready + rest)


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_entry(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    key_file = tmp_path / "log.key"
    signer = NoteSigner.generate(ORIGIN)
    key_file.write_bytes(signer.private_pem())
    rng = random.Random(1234)

    acked: dict[int, str] = {}  # index -> sha256 hex, over every run
    reported: list[tuple[int, bytes]] = []  # every CP any child printed, in order
    total_acks = 0
    for run in range(RUNS):
        delay = rng.uniform(0.05, 0.6)
        lines = run_child_until_killed(path, key_file, run, delay, tmp_path)
        last_cp = None
        for line in lines:
            kind, *fields = line.split(" ")
            if kind == "ACK":
                index, digest = int(fields[0]), fields[1]
                assert acked.setdefault(index, digest) == digest, f"run {run}: index {index} acknowledged twice"
                total_acks += 1
            elif kind == "CP":
                last_cp = (int(fields[0]), bytes.fromhex(fields[1]))
                reported.append(last_cp)
            else:
                assert kind == "READY", line

        with LogStore(path) as store:
            size = store.size()
            where = f"run {run} (killed after {delay:.3f} s, size {size})"
            assert max(acked, default=-1) < size, f"{where}: an acknowledged entry is missing"
            entries = list(store.entries())
            assert [i for i, _ in entries] == list(range(size)), f"{where}: indices are not 0..size-1"
            for i, digest in acked.items():
                assert hashlib.sha256(entries[i][1]).hexdigest() == digest, f"{where}: entry {i} changed"
            report = fsck(store)
            assert report.ok, f"{where}: {report.problems}"
            assert report.entries_checked == size

            latest = store.latest_checkpoint()
            assert latest is not None and latest.size == size
            store.verifier.open_checkpoint(latest.note)
            if last_cp is not None:
                cp_size, cp_root = last_cp
                assert store.checkpoint_at(cp_size).root == cp_root, f"{where}: reported checkpoint {cp_size} differs"
                verify_consistency(cp_size, size, store.consistency_proof(cp_size, size), cp_root, latest.root)
            # and every checkpoint any earlier child reported is still part of this tree
            for cp_size, cp_root in reported[:: max(1, len(reported) // 20)]:
                verify_consistency(cp_size, size, store.consistency_proof(cp_size, size), cp_root, latest.root)

    assert total_acks > RUNS, "the children hardly appended anything: the kills tested nothing"
    assert len(reported) > RUNS // 2

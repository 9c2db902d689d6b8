"""The durable log on real SQLite files: appends, concurrent writers, checkpoints, tampering, fsck, errors.

Expected roots come from an independent RFC 9162 implementation written here with hashlib, and
tampering goes through sqlite3 directly, as an attacker with the file would.
"""

from __future__ import annotations

import base64
import hashlib
import random
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from ledgermind.errors import InvalidInputError, NotFoundError, StorageError
from ledgermind.log import (
    EMPTY_ROOT,
    Checkpoint,
    CheckpointError,
    NoteSigner,
    NoteVerifier,
    verify_consistency,
    verify_inclusion,
)
from ledgermind.log.fsck import fsck
from ledgermind.log.store import MAX_ENTRY_BYTES, LogStore
from ledgermind.log.tiles import ENTRY_BUNDLE, decode_bundle, encode_bundle, tile_id

ORIGIN = "example.com/ledgermind/test"


def lh(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def roots_at(entries: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """Independent RFC 9162 roots of the first n entries, for every n in ``sizes``, in one pass."""
    want = sorted(set(sizes))
    out: dict[int, bytes] = {}
    stack: list[tuple[int, bytes]] = []  # (height, hash) of perfect subtrees, left to right
    if want and want[0] == 0:
        out[0] = hashlib.sha256(b"").digest()
    for n, e in enumerate(entries, start=1):
        stack.append((0, lh(e)))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (h, right), (_, left) = stack.pop(), stack.pop()
            stack.append((h + 1, hashlib.sha256(b"\x01" + left + right).digest()))
        if n in want:
            acc = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                acc = hashlib.sha256(b"\x01" + left + acc).digest()
            out[n] = acc
    return out


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "log.db"


def fill(path: Path, signer: NoteSigner, n: int, step: int = 10) -> list[bytes]:
    """A log of ``n`` entries ``e0``, ``e1``..., committed ``step`` at a time (one checkpoint per step)."""
    entries = [b"e%d" % i for i in range(n)]
    with LogStore(path, signer) as store:
        for i in range(0, n, step):
            store.append_many(entries[i : i + step])
    return entries


def check_checkpoints(store: LogStore) -> list[int]:
    """Every checkpoint verifies with the log's key and each is consistent with the one before it."""
    cps = list(store.checkpoints())
    for cp in cps:
        assert store.verifier.open_checkpoint(cp.note) == cp.checkpoint
        assert cp.root == store.root(cp.size)
    for a, b in zip(cps, cps[1:]):
        assert a.size < b.size
        verify_consistency(a.size, b.size, store.consistency_proof(a.size, b.size), a.root, b.root)
    return [cp.size for cp in cps]


# ----------------------------------------------------------------------------- appends


def test_appends_get_contiguous_indices_from_zero(path: Path, signer: NoteSigner) -> None:
    with LogStore(path, signer) as store:
        assert store.size() == 0 and store.root() == EMPTY_ROOT and store.latest_checkpoint() is None
        assert [store.append(b"a%d" % i) for i in range(5)] == [0, 1, 2, 3, 4]
        assert store.append_many([b"b0", b"b1", b"b2"]) == range(5, 8)
        assert store.submit([b"c0", b"c1"]).result() == 8
        assert store.append_many([]) == range(10, 10)
        assert store.append(bytearray(b"d")) == 10
        assert store.size() == 11
        entries = [b"a0", b"a1", b"a2", b"a3", b"a4", b"b0", b"b1", b"b2", b"c0", b"c1", b"d"]
        assert [store.entry(i) for i in range(11)] == entries
        assert list(store.entries()) == list(enumerate(entries))
        assert list(store.entries(3, 6)) == [(3, b"a3"), (4, b"a4"), (5, b"b0")]
        assert store.root() == roots_at(entries, [11])[11]
        assert check_checkpoints(store) == [1, 2, 3, 4, 5, 8, 10, 11]


@pytest.mark.parametrize("max_batch", [50_000, 7], ids=["default-batch", "append_many-split-in-chunks-of-7"])
def test_eight_threads_appending_concurrently(path: Path, signer: NoteSigner, max_batch: int) -> None:
    rng = random.Random(5)
    plans = [[rng.choice([1, 2, 5, 16, 33, 100]) for _ in range(12)] for _ in range(8)]
    got: dict[int, list[tuple[range, list[bytes]]]] = {t: [] for t in range(8)}
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    with LogStore(path, signer, max_batch=max_batch) as store:

        def worker(t: int) -> None:
            try:
                barrier.wait()
                for call, k in enumerate(plans[t]):
                    batch = [b"t%d-c%d-%d" % (t, call, j) for j in range(k)]
                    if k == 1 and call % 2:
                        i = store.append(batch[0])
                        r = range(i, i + 1)
                    else:
                        r = store.append_many(batch)
                    got[t].append((r, batch))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []

        total = sum(map(sum, plans))
        assert store.size() == total
        seen: dict[int, bytes] = {}
        for runs in got.values():
            for r, batch in runs:
                assert len(r) == len(batch) and r.step == 1
                for i, e in zip(r, batch):
                    assert i not in seen, f"index {i} handed out twice"
                    seen[i] = e
        assert sorted(seen) == list(range(total)), "no index lost"
        stored = dict(store.entries())
        assert stored == seen
        assert all(store.entry(i) == e for i, e in seen.items())
        assert store.root() == roots_at([seen[i] for i in range(total)], [total])[total]
        check_checkpoints(store)
        assert fsck(store).ok


def test_read_only_reopen_gives_the_same_roots_and_proofs(path: Path, signer: NoteSigner) -> None:
    entries = fill(path, signer, 300, step=37)
    with LogStore(path, signer) as writer:
        proofs = {(i, n): writer.inclusion_proof(i, n) for n in (1, 37, 256, 257, 300) for i in (0, n // 2, n - 1)}
        cons = {(a, b): writer.consistency_proof(a, b) for a, b in [(1, 300), (37, 74), (255, 256), (256, 300)]}
        root = writer.root()
    with LogStore(path) as ro:
        assert ro.size() == 300 and ro.root() == root == roots_at(entries, [300])[300]
        assert {k: ro.inclusion_proof(*k) for k in proofs} == proofs
        assert {k: ro.consistency_proof(*k) for k in cons} == cons
        assert ro.latest_checkpoint().size == 300
        assert ro.verifier.vkey() == signer.vkey()
        with pytest.raises(StorageError, match="read-only"):
            ro.append(b"nope")
        assert fsck(ro).ok
    with pytest.raises(NotFoundError):
        LogStore(path.parent / "missing.db")


def test_second_writer_on_the_same_file(path: Path, signer: NoteSigner) -> None:
    """Two stores on one file (as two processes would): each notices the other's appends."""
    a = LogStore(path, signer)
    b = LogStore(path, NoteSigner.from_pem(ORIGIN, signer.private_pem()))
    try:
        assert a.append_many([b"a0", b"a1", b"a2"]) == range(0, 3)
        assert b.append_many([b"b0", b"b1"]) == range(3, 5)
        assert a.append(b"a3") == 5  # a's in-memory tree was stale: it must re-read, not overwrite 3..4
        assert b.append(b"b2") == 6
        assert a.size() == b.size() == 7

        # then both at once, from threads
        def run(store: LogStore, tag: bytes) -> list[tuple[int, bytes]]:
            out = []
            for i in range(25):
                e = tag + b"%d" % i
                out.append((store.append(e), e))
            return out

        results: dict[bytes, list] = {}
        threads = [threading.Thread(target=lambda s=s, t=t: results.__setitem__(t, run(s, t))) for s, t in ((a, b"A"), (b, b"B"))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(results) == 2
        expect = {0: b"a0", 1: b"a1", 2: b"a2", 3: b"b0", 4: b"b1", 5: b"a3", 6: b"b2"}
        for pairs in results.values():
            for i, e in pairs:
                assert i not in expect
                expect[i] = e
        assert sorted(expect) == list(range(57))
        for store in (a, b):
            assert dict(store.entries()) == expect
            assert store.root() == roots_at([expect[i] for i in range(57)], [57])[57]
    finally:
        a.close()
        b.close()
    with LogStore(path) as ro:
        check_checkpoints(ro)
        report = fsck(ro)
        assert report.ok, report.problems
        assert report.size == report.entries_checked == 57


def test_large_log_across_tile_levels_and_reopens(path: Path, signer: NoteSigner) -> None:
    """Cross 2**16 leaves (a third tile level) with partial tiles on every level, reopening in between."""
    # each cut is followed by one single append; the stores reopen at sizes 1, 256, 65536, 66322 and 66324
    cuts = [0, 254, 65536 - 257, 3 * 256 + 17, 1, 22]
    entries = [b"%d" % i for i in range(sum(cuts) + len(cuts))]
    sizes, pos = [], 0  # sizes: one per commit, so one per checkpoint
    for cut in cuts:
        with LogStore(path, signer) as store:  # a fresh store loads the tree edge from the file
            if cut:
                assert store.append_many(entries[pos : pos + cut]) == range(pos, pos + cut)
                pos += cut
                sizes.append(pos)
            assert store.append(entries[pos]) == pos
            pos += 1
            sizes.append(pos)
    assert pos == len(entries)
    rng = random.Random(9)
    probe_sizes = sorted({*sizes, 256, 257, 65536, 65537, *(rng.randint(1, pos) for _ in range(10))})
    want = roots_at(entries, probe_sizes)
    with LogStore(path) as store:
        for n in probe_sizes:
            assert store.root(n) == want[n], n
            for i in {0, n - 1, rng.randrange(n)}:
                verify_inclusion(lh(entries[i]), i, n, store.inclusion_proof(i, n), want[n])
        for a, b in zip(probe_sizes, probe_sizes[1:]):
            verify_consistency(a, b, store.consistency_proof(a, b), want[a], want[b])
        # one checkpoint per commit (append_many also commits every max_batch entries)
        signed = [cp.size for cp in store.checkpoints()]
        assert set(sizes) <= set(signed) and signed == sorted(signed) and signed[-1] == pos
        report = fsck(store)
        assert report.ok, report.problems
        assert report.root == want[pos]


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoint_note_is_c2sp(path: Path, signer: NoteSigner) -> None:
    entries = fill(path, signer, 20, step=7)
    with LogStore(path) as store:
        cp = store.latest_checkpoint()
        assert cp is not None and cp.size == 20
        text = cp.note.decode()
        lines = text.split("\n")
        assert lines[0] == ORIGIN
        assert lines[1] == "20"
        assert base64.b64decode(lines[2], validate=True) == roots_at(entries, [20])[20] == cp.root
        assert lines[3] == ""
        assert lines[4].startswith("\u2014 " + ORIGIN + " ")
        assert lines[5:] == [""] and text.endswith("\n")
        sig = base64.b64decode(lines[4].split(" ")[2], validate=True)
        assert sig[:4] == signer.key_id and len(sig) == 4 + 64
        assert store.verifier.open_checkpoint(cp.note) == Checkpoint(ORIGIN, 20, cp.root)
        assert store.checkpoint_at(14).size == 14
        with pytest.raises(NotFoundError):
            store.checkpoint_at(15)
        assert check_checkpoints(store) == [7, 14, 20]


def test_another_key_rejects_the_note(path: Path, signer: NoteSigner) -> None:
    fill(path, signer, 3, step=3)
    with LogStore(path) as store:
        note = store.latest_checkpoint().note
    for other in (NoteSigner.generate(ORIGIN), NoteSigner.generate("example.com/other")):
        with pytest.raises(CheckpointError, match="expected key"):
            other.verifier().open_checkpoint(note)
    # a note signed by another key for the same origin is rejected by the log's verifier
    forged = NoteSigner.generate(ORIGIN).sign(Checkpoint(ORIGIN, 3, b"\x00" * 32).body())
    with pytest.raises(CheckpointError):
        signer.verifier().open_checkpoint(forged)


def test_vkey_round_trips(signer: NoteSigner) -> None:
    vkey = signer.vkey()
    name, key_id, key = vkey.split("+", 2)
    assert name == ORIGIN and bytes.fromhex(key_id) == signer.key_id
    assert base64.b64decode(key) == b"\x01" + signer.public_key
    v = NoteVerifier.from_vkey(vkey)
    assert (v.name, v.public_key, v.key_id, v.vkey()) == (ORIGIN, signer.public_key, signer.key_id, vkey)
    body = Checkpoint(ORIGIN, 5, bytes(32)).body()
    assert v.open(signer.sign(body)) == body
    with pytest.raises(CheckpointError, match="does not match"):
        NoteVerifier.from_vkey(f"{name}+00000000+{key}")


ROOT_B64 = base64.b64encode(bytes(32))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"origin\n010\n" + ROOT_B64 + b"\n", "without leading zeros", id="leading-zero"),
        pytest.param(b"origin\n00\n" + ROOT_B64 + b"\n", "without leading zeros", id="double-zero"),
        pytest.param(b"origin\n-1\n" + ROOT_B64 + b"\n", "not a decimal", id="negative-size"),
        pytest.param(b"origin\n+1\n" + ROOT_B64 + b"\n", "not a decimal", id="signed-size"),
        pytest.param(b"origin\n10\nnot*base64!\n", "is not base64", id="non-base64-root"),
        pytest.param(b"origin\n10\n" + base64.b64encode(bytes(31)) + b"\n", "has 31 bytes, expected 32", id="31-byte-root"),
        pytest.param(b"origin\n10\n" + base64.b64encode(bytes(33)) + b"\n", "has 33 bytes, expected 32", id="33-byte-root"),
        pytest.param(b"origin\n10\n", "at least 3", id="two-lines"),
        pytest.param(b"origin\n", "at least 3", id="one-line"),
        pytest.param(b"origin\n\n" + ROOT_B64 + b"\n", "at least 3 non-empty", id="empty-size-line"),
        pytest.param(b"origin\n10\n" + ROOT_B64, "end with a newline", id="no-final-newline"),
        pytest.param(b"origin\n10\n" + ROOT_B64 + b"\n\xff\n", "UTF-8", id="not-utf8"),
    ],
)
def test_parse_body_rejects(body: bytes, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.parse_body(body)


def test_parse_body_accepts_zero_and_extensions() -> None:
    root = bytes(range(32))
    assert Checkpoint.parse_body(b"o\n0\n" + base64.b64encode(root) + b"\n") == Checkpoint("o", 0, root)
    body = Checkpoint("o", 12, root, ("ext one",)).body()
    assert Checkpoint.parse_body(body) == Checkpoint("o", 12, root, ("ext one",))


def test_another_signer_cannot_open_the_log(path: Path, signer: NoteSigner) -> None:
    fill(path, signer, 2, step=2)
    for other in (NoteSigner.generate(ORIGIN), NoteSigner.generate("example.com/other")):
        with pytest.raises(StorageError, match="another key"):
            LogStore(path, other)
    with LogStore(path) as ro:
        assert ro.size() == 2


# ----------------------------------------------------------------------------- tampering and fsck


def _db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_fsck_clean_log(path: Path, signer: NoteSigner) -> None:
    fill(path, signer, 100)
    with LogStore(path) as store:
        report = fsck(store)
    assert report.ok and report.problems == [] and report.tampered_indices == []
    assert (report.size, report.entries_checked, report.checkpoints_checked) == (100, 100, 10)


@pytest.mark.parametrize("index", [0, 37, 99])
def test_fsck_names_the_edited_entry(path: Path, signer: NoteSigner, index: int) -> None:
    fill(path, signer, 100)
    with _db(path) as db:
        (blob,) = db.execute("SELECT data FROM bundles WHERE id = ?", (index // ENTRY_BUNDLE,)).fetchone()
        entries = decode_bundle(bytes(blob))
        entries[index % ENTRY_BUNDLE] = b"forged"
        db.execute("UPDATE bundles SET data = ? WHERE id = ?", (encode_bundle(entries), index // ENTRY_BUNDLE))
    with LogStore(path) as store:
        assert store.entry(index) == b"forged"
        report = fsck(store)
    assert not report.ok
    assert report.tampered_indices == [index]
    assert any(f"entry {index}" in p for p in report.problems)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda note: note.replace(b"\n50\n", b"\n51\n", 1), id="size-line"),
        pytest.param(lambda note: note.replace(b"\n50\n", b"\n60\n", 1), id="size-line-to-another-checkpoint"),
        pytest.param(lambda note: note.replace(b"\n50\n", b"\n050\n", 1), id="size-line-unparseable"),
        pytest.param(lambda note: note.replace(note.split(b"\n")[2], base64.b64encode(bytes(32)), 1), id="root-line"),
        pytest.param(lambda note: note.replace(ORIGIN.encode(), b"example.com/forged", 1), id="origin-line"),
        pytest.param(lambda note: note[:-10] + (b"A" if note[-10:-9] != b"A" else b"B") + note[-9:], id="signature"),
    ],
)
def test_fsck_names_the_edited_checkpoint(path: Path, signer: NoteSigner, edit) -> None:
    """Edit the note of the checkpoint stored at size 50: fsck must name that checkpoint, not another."""
    fill(path, signer, 100)
    with _db(path) as db:
        (note,) = db.execute("SELECT note FROM checkpoints WHERE size = 50").fetchone()
        forged = edit(bytes(note))
        assert forged != note
        db.execute("UPDATE checkpoints SET note = ? WHERE size = 50", (forged,))
    with LogStore(path) as store:
        report = fsck(store)
    assert not report.ok
    assert any("checkpoint at size 50" in p for p in report.problems), report.problems
    assert not any("checkpoint at size 60" in p for p in report.problems), "an honest checkpoint was blamed"
    assert report.tampered_indices == [], "no entry was edited"


def test_fsck_checks_the_checkpoint_columns_against_the_signed_note(path: Path, signer: NoteSigner) -> None:
    """The size and root columns are what appends and size() trust; they must agree with the signed note."""
    fill(path, signer, 100)
    with _db(path) as db:
        db.execute("UPDATE checkpoints SET root = ? WHERE size = 100", (bytes(32),))
    with LogStore(path) as store:
        report = fsck(store)
        assert not report.ok, "a root column that disagrees with the signed note went unnoticed"
        assert any("checkpoint at size 100" in p for p in report.problems), report.problems
        # appends refuse to extend it, and say to run fsck
        with LogStore(path, signer) as writer, pytest.raises(StorageError, match="fsck"):
            writer.append(b"more")


def test_fsck_detects_an_edited_tile_hash(path: Path, signer: NoteSigner) -> None:
    fill(path, signer, 300)  # tile (0, 0) is full (256 leaves), tile (0, 1) partial, tile (1, 0) holds level 8
    for tid, offset in [(tile_id(0, 0), 5 * 32), (tile_id(0, 0), (256 + 3) * 32), (tile_id(0, 1), 0), (tile_id(1, 0), 0)]:
        with _db(path) as db:
            (blob,) = db.execute("SELECT hashes FROM tiles WHERE id = ?", (tid,)).fetchone()
            blob = bytes(blob)
            bad = blob[:offset] + bytes([blob[offset] ^ 1]) + blob[offset + 1 :]
            db.execute("UPDATE tiles SET hashes = ? WHERE id = ?", (bad, tid))
        with LogStore(path) as store:
            report = fsck(store)
        assert not report.ok, (tid, offset)
        with _db(path) as db:
            db.execute("UPDATE tiles SET hashes = ? WHERE id = ?", (blob, tid))
        with LogStore(path) as store:
            assert fsck(store).ok


def test_fsck_while_another_writer_appends(path: Path, signer: NoteSigner) -> None:
    """fsck of a live log (another store appending meanwhile) must not report corruption that is not there."""
    fill(path, signer, 1000, step=500)
    stop, running = threading.Event(), threading.Event()
    appended: list[int] = []

    def writer() -> None:
        with LogStore(path, signer) as w:
            while not stop.is_set():
                appended.append(w.append(b"live-%d" % len(appended)))
                running.set()

    th = threading.Thread(target=writer)
    th.start()
    reports = []
    try:
        assert running.wait(30), "the writer never appended"
        with LogStore(path) as store:
            for _ in range(15):
                reports.append(fsck(store))
    finally:
        stop.set()
        th.join()
    bad = [r.problems for r in reports if not r.ok]
    assert bad == [], f"{len(bad)} of {len(reports)} fsck runs reported problems: {bad[0]}"


# ----------------------------------------------------------------------------- errors


def test_locked_database_fails_the_append_and_appends_nothing(path: Path, signer: NoteSigner) -> None:
    with LogStore(path, signer, busy_timeout=0.2) as store:
        assert store.append(b"first") == 0
        blocker = _db(path)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with LogStore(path, busy_timeout=0.2) as reader:  # WAL: readers are not blocked
                assert reader.size() == 1 and reader.entry(0) == b"first"
            with pytest.raises(StorageError, match="locked"):
                store.append(b"second")
            with pytest.raises(StorageError, match="locked"):
                store.append_many([b"x", b"y"])
            assert store.size() == 1
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert store.size() == 1
        assert store.append(b"third") == 1  # the store recovers once the lock is gone
        assert list(store.entries()) == [(0, b"first"), (1, b"third")]
    with LogStore(path) as ro:
        assert ro.size() == 2
        assert fsck(ro).ok


def test_bad_entries_are_rejected_and_nothing_is_appended(path: Path, signer: NoteSigner) -> None:
    with LogStore(path, signer) as store:
        store.append(b"ok")
        too_big = b"x" * (MAX_ENTRY_BYTES + 1)
        with pytest.raises(InvalidInputError, match="exceeds"):
            store.append(too_big)
        with pytest.raises(InvalidInputError):
            store.append_many([b"fine", too_big])
        with pytest.raises(InvalidInputError):
            store.submit([b"fine", too_big])
        for bad in ("text", 5, None, [b"nested"]):
            with pytest.raises(InvalidInputError, match="bytes"):
                store.append(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            store.append_many([b"fine", "text"])  # type: ignore[list-item]
        assert store.size() == 1
        assert store.append(b"x" * MAX_ENTRY_BYTES) == 1  # exactly the limit is fine
        assert store.entry(1) == b"x" * MAX_ENTRY_BYTES


def test_reads_outside_the_log(path: Path, signer: NoteSigner) -> None:
    fill(path, signer, 5, step=5)
    with LogStore(path) as store:
        for i in (-1, 5, 100):
            with pytest.raises(NotFoundError):
                store.entry(i)
        with pytest.raises(NotFoundError):
            store.root(6)
        with pytest.raises(NotFoundError):
            store.inclusion_proof(5, 5)
        with pytest.raises(NotFoundError):
            store.inclusion_proof(0, 6)
        with pytest.raises(InvalidInputError):
            store.consistency_proof(0, 5)
        with pytest.raises(InvalidInputError):
            store.consistency_proof(5, 4)
        assert store.consistency_proof(5, 5) == []
        assert list(store.entries(5)) == []


def test_files_that_are_not_logs(tmp_path: Path, signer: NoteSigner) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 1000)
    for who in (None, signer):
        with pytest.raises(StorageError, match="not a database"):
            LogStore(garbage, who)
    other = tmp_path / "other.db"
    with _db(other) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('format', 'someone-else-v9')")
    with pytest.raises(StorageError, match="expected 'ledgermind-log-v1'"):
        LogStore(other)
    empty = tmp_path / "empty.db"
    _db(empty).close()
    with pytest.raises(StorageError, match="never been initialised"):
        LogStore(empty)


def test_closed_store_refuses_appends(path: Path, signer: NoteSigner) -> None:
    store = LogStore(path, signer)
    store.append(b"a")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        store.append(b"b")
    with LogStore(path) as ro:
        assert ro.size() == 1

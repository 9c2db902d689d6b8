"""Fingerprints of real files and folders in tmp_path; expectations computed independently with hashlib."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import rfc8785

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.fingerprint import (
    SHARD_SIZE,
    FileDigest,
    FingerprintCache,
    diff_manifests,
    file_digest,
    fingerprint,
)

# Files older than the cache's racy window, so the cache may keep them (see cache.RACY_WINDOW_NS).
OLD_NS = 1_600_000_000 * 10**9


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def write(path: Path, data: bytes, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def sharded_sha256(data: bytes, shard: int) -> str:
    """The scheme, restated: sha256 of the concatenated sha256 of each `shard`-byte slice."""
    digests = [hashlib.sha256(data[i : i + shard]).digest() for i in range(0, len(data), shard)]
    return hashlib.sha256(b"".join(digests)).hexdigest()


def make_tree(root: Path, count: int = 20, mtime_ns: int | None = OLD_NS) -> list[Path]:
    files = []
    for i in range(count):
        sub = ("zeta", "alpha/beta", "", ".hidden")[i % 4]
        files.append(write(root / sub / f"f{count - i:02d}.bin", payload(1000 + i, seed=i), mtime_ns))
    return files


# -- file digest -------------------------------------------------------------------------------------------------


def test_small_file_digest_is_plain_sha256(tmp_path: Path) -> None:
    data = payload(100_000)
    path = write(tmp_path / "small.bin", data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
    fp = fingerprint(path)
    assert fp.files == [FileDigest("small.bin", len(data), hashlib.sha256(data).hexdigest())]


def test_empty_file_digest(tmp_path: Path) -> None:
    path = write(tmp_path / "empty", b"")
    assert file_digest(path) == hashlib.sha256(b"").hexdigest()


def test_large_file_digest_hashes_the_concatenated_shard_digests(tmp_path: Path) -> None:
    data = payload(2 * SHARD_SIZE + 123)
    path = write(tmp_path / "large.bin", data)
    expected = sharded_sha256(data, 8 * 1024 * 1024)
    assert expected != hashlib.sha256(data).hexdigest()
    assert file_digest(path) == expected
    assert fingerprint(path).files[0].sha256 == expected


def test_shard_boundary(tmp_path: Path) -> None:
    exact = payload(SHARD_SIZE, seed=1)
    one_more = exact + b"x"
    assert file_digest(write(tmp_path / "exact", exact)) == hashlib.sha256(exact).hexdigest()
    assert file_digest(write(tmp_path / "more", one_more)) == sharded_sha256(one_more, SHARD_SIZE)


def test_worker_count_does_not_change_digests(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree")
    write(tmp_path / "tree" / "big.bin", payload(3 * SHARD_SIZE + 5, seed=7))
    one, four = fingerprint(tmp_path / "tree", workers=1), fingerprint(tmp_path / "tree", workers=4)
    assert one.manifest == four.manifest
    assert one.digest == four.digest
    big = tmp_path / "tree" / "big.bin"
    assert file_digest(big, workers=1) == file_digest(big, workers=4)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_count_is_rejected(tmp_path: Path, workers: object) -> None:
    with pytest.raises(InvalidInputError, match="workers"):
        fingerprint(write(tmp_path / "a", b"a"), workers=workers)  # type: ignore[arg-type]


# -- manifest and asset digest -----------------------------------------------------------------------------------


def test_single_file_manifest_and_asset_digest(tmp_path: Path) -> None:
    path = write(tmp_path / "model.bin", b"weights")
    fp = fingerprint(path)
    assert fp.kind == "file"
    assert fp.size == 7
    assert fp.manifest == {
        "type": "ledgermind/manifest/v1",
        "shardSize": 8388608,
        "files": [{"path": "model.bin", "size": 7, "sha256": hashlib.sha256(b"weights").hexdigest()}],
    }
    assert fp.digest == hashlib.sha256(rfc8785.dumps(fp.manifest)).hexdigest()
    assert (fp.hashed_files, fp.cached_files) == (1, 0)


def test_folder_manifest_is_sorted_and_stable(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "tree")
    first = fingerprint(tmp_path / "tree")
    second = fingerprint(tmp_path / "tree")
    assert first.kind == "folder"
    assert first.manifest == second.manifest and first.digest == second.digest

    paths = [f.path for f in first.files]
    assert paths == sorted(paths)
    assert set(paths) == {p.relative_to(tmp_path / "tree").as_posix() for p in files}
    assert ".hidden/f17.bin" in paths  # nothing is ignored, hidden files included
    assert first.size == sum(p.stat().st_size for p in files)
    assert first.cid is None
    for entry in first.files:
        assert entry.sha256 == hashlib.sha256((tmp_path / "tree" / entry.path).read_bytes()).hexdigest()


def test_one_changed_byte_changes_the_digest_and_diff_names_the_file(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree")
    before = fingerprint(tmp_path / "tree")
    target = tmp_path / "tree" / "alpha" / "beta" / "f19.bin"
    data = bytearray(target.read_bytes())
    data[500] ^= 1
    target.write_bytes(bytes(data))
    after = fingerprint(tmp_path / "tree")
    assert after.digest != before.digest
    assert diff_manifests(before.manifest, after.manifest) == ["changed: alpha/beta/f19.bin"]
    assert diff_manifests(after.manifest, after.manifest) == []


def test_diff_reports_added_and_removed(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", count=4)
    before = fingerprint(tmp_path / "tree")
    (tmp_path / "tree" / "zeta" / "f04.bin").unlink()
    write(tmp_path / "tree" / "new.txt", b"new")
    after = fingerprint(tmp_path / "tree")
    assert diff_manifests(before.manifest, after.manifest) == ["added: new.txt", "removed: zeta/f04.bin"]


def test_diff_rejects_a_malformed_manifest(tmp_path: Path) -> None:
    good = fingerprint(write(tmp_path / "a", b"a")).manifest
    bad = {**good, "files": [{"path": "../a", "size": 1, "sha256": "0" * 64}]}
    with pytest.raises(InvalidInputError, match="unsafe"):
        diff_manifests(good, bad)


# -- CID ---------------------------------------------------------------------------------------------------------


def test_cid_of_hello_world(tmp_path: Path) -> None:
    fp = fingerprint(write(tmp_path / "hello.txt", b"hello world"))
    assert fp.cid == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def test_cid_only_for_single_block_files(tmp_path: Path) -> None:
    assert fingerprint(write(tmp_path / "block", payload(262144))).cid is not None
    assert fingerprint(write(tmp_path / "over", payload(262145))).cid is None


# -- errors ------------------------------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(NotFoundError, match=f"^no such file or folder: {missing}$"):
        fingerprint(missing)
    with pytest.raises(NotFoundError, match="no such file or folder"):
        file_digest(missing)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty" / "only" / "subfolders").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match=f"^folder {tmp_path / 'empty'} contains no files$"):
        fingerprint(tmp_path / "empty")


def test_file_digest_of_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is a folder"):
        file_digest(tmp_path)


def test_symlink_outside_the_folder_is_rejected(tmp_path: Path) -> None:
    write(tmp_path / "secret", b"secret")
    write(tmp_path / "tree" / "a", b"a")
    (tmp_path / "tree" / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidInputError, match="outside the folder"):
        fingerprint(tmp_path / "tree")


def test_symlink_inside_the_folder_is_followed(tmp_path: Path) -> None:
    write(tmp_path / "tree" / "data" / "a", b"content")
    (tmp_path / "tree" / "alias").symlink_to("data/a")
    (tmp_path / "tree" / "dir-alias").symlink_to("data")
    fp = fingerprint(tmp_path / "tree")
    digest = hashlib.sha256(b"content").hexdigest()
    assert [(f.path, f.sha256) for f in fp.files] == [
        ("alias", digest),
        ("data/a", digest),
        ("dir-alias/a", digest),
    ]


def test_symlink_loop_and_broken_symlink_are_rejected(tmp_path: Path) -> None:
    write(tmp_path / "loop" / "sub" / "a", b"a")
    (tmp_path / "loop" / "sub" / "up").symlink_to("..")
    with pytest.raises(InvalidInputError, match="loop"):
        fingerprint(tmp_path / "loop")
    write(tmp_path / "broken" / "a", b"a")
    (tmp_path / "broken" / "dangling").symlink_to("missing")
    with pytest.raises(InvalidInputError, match="broken symlink"):
        fingerprint(tmp_path / "broken")


def test_special_file_is_rejected(tmp_path: Path) -> None:
    write(tmp_path / "tree" / "a", b"a")
    os.mkfifo(tmp_path / "tree" / "pipe")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        fingerprint(tmp_path / "tree")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        fingerprint(tmp_path / "tree" / "pipe")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "locked", b"x")
    path.chmod(0)
    with pytest.raises(InvalidInputError, match="cannot read"):
        fingerprint(path)


# -- progress ----------------------------------------------------------------------------------------------------


def test_progress_reaches_total(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree")
    write(tmp_path / "tree" / "big.bin", payload(2 * SHARD_SIZE + 1, seed=3))
    calls: list[tuple[int, int]] = []
    fp = fingerprint(tmp_path / "tree", workers=4, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, fp.size)
    assert calls[-1] == (fp.size, fp.size)
    assert all(total == fp.size for _, total in calls)
    dones = [done for done, _ in calls]
    assert dones == sorted(dones)
    assert len(calls) == 1 + 20 + 3  # the start, then one per shard


# -- cache -------------------------------------------------------------------------------------------------------


def test_cache_rehashes_only_changed_files(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "tree")
    with FingerprintCache(tmp_path / "fingerprints.sqlite") as cache:
        first = fingerprint(tmp_path / "tree", cache=cache)
        assert (first.hashed_files, first.cached_files) == (20, 0)
        again = fingerprint(tmp_path / "tree", cache=cache)
        assert (again.hashed_files, again.cached_files) == (0, 20)
        assert again.manifest == first.manifest

        write(files[3], b"changed" + files[3].read_bytes()[7:])  # same size, new content, mtime now
        changed = fingerprint(tmp_path / "tree", cache=cache)
        assert (changed.hashed_files, changed.cached_files) == (1, 19)
        rel = files[3].relative_to(tmp_path / "tree").as_posix()
        assert diff_manifests(first.manifest, changed.manifest) == [f"changed: {rel}"]


def test_cache_rehashes_a_replaced_file_with_same_size_and_mtime(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "tree")
    victim = files[5]
    with FingerprintCache(tmp_path / "fingerprints.sqlite") as cache:
        before = fingerprint(tmp_path / "tree", cache=cache)
        old = victim.stat()
        # Written while the original still exists, so the new inode number cannot be the old one.
        replacement = write(tmp_path / "replacement", bytes(b ^ 0xFF for b in victim.read_bytes()), old.st_mtime_ns)
        os.replace(replacement, victim)
        new = victim.stat()
        assert (new.st_size, new.st_mtime_ns) == (old.st_size, old.st_mtime_ns)
        assert new.st_ino != old.st_ino

        after = fingerprint(tmp_path / "tree", cache=cache)
        assert (after.hashed_files, after.cached_files) == (1, 19)
        rel = victim.relative_to(tmp_path / "tree").as_posix()
        assert diff_manifests(before.manifest, after.manifest) == [f"changed: {rel}"]


def test_cache_never_keeps_a_file_modified_around_hashing_time(tmp_path: Path) -> None:
    # An mtime in the future stands for "modified as we hashed it": a rewrite could keep that mtime and size.
    future_ns = (1 << 62) // 2
    path = write(tmp_path / "fresh.bin", b"fresh", future_ns)
    with FingerprintCache(tmp_path / "fingerprints.sqlite") as cache:
        assert fingerprint(path, cache=cache).hashed_files == 1
        assert fingerprint(path, cache=cache).hashed_files == 1


def test_cache_persists_and_is_shared_between_processes(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree")
    db = tmp_path / "fingerprints.sqlite"
    held = FingerprintCache(db)  # stays open while another process writes
    try:
        script = textwrap.dedent(
            """
            import json, sys
            from ledgermind.fingerprint import FingerprintCache, fingerprint
            with FingerprintCache(sys.argv[1]) as cache:
                fp = fingerprint(sys.argv[2], cache=cache)
            print(json.dumps([fp.digest, fp.hashed_files, fp.cached_files]))
            """
        )
        run = [sys.executable, "-c", script, str(db), str(tmp_path / "tree")]
        first = subprocess.run(run, check=True, capture_output=True, text=True).stdout
        digest, hashed, cached = __import__("json").loads(first)
        assert (hashed, cached) == (20, 0)

        here = fingerprint(tmp_path / "tree", cache=held)
        assert (here.digest, here.hashed_files, here.cached_files) == (digest, 0, 20)
    finally:
        held.close()
    with FingerprintCache(db) as reopened:
        assert fingerprint(tmp_path / "tree", cache=reopened).cached_files == 20

"""The local blob store, on real files in tmp_path."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest
import rfc8785

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.fingerprint import SHARD_SIZE, file_digest, fingerprint
from ledgermind.store import BlobStore


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def regular_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def test_put_bytes_round_trip_and_layout(store: BlobStore) -> None:
    digest = store.put_bytes(b"hello world")
    assert digest == hashlib.sha256(b"hello world").hexdigest()
    assert store.has(digest)
    assert store.path(digest) == store.root / digest[:2] / digest[2:]
    with store.open(digest) as f:
        assert f.read() == b"hello world"
    assert store.put_bytes(b"hello world") == digest  # idempotent
    assert regular_files(store.root) == [store.path(digest)]


def test_put_bytes_uses_the_sharded_digest(store: BlobStore, tmp_path: Path) -> None:
    data = payload(SHARD_SIZE + 10)
    digest = store.put_bytes(data)
    assert digest == file_digest(write(tmp_path / "same", data))
    assert digest != hashlib.sha256(data).hexdigest()


def test_put_file_returns_the_file_digest(store: BlobStore, tmp_path: Path) -> None:
    source = write(tmp_path / "big.bin", payload(2 * SHARD_SIZE + 1))
    digest = store.put_file(source)
    assert digest == file_digest(source)
    assert store.path(digest).read_bytes() == source.read_bytes()
    assert store.put_file(source, digest) == digest  # already stored, still verified
    assert regular_files(store.root) == [store.path(digest)]


def test_put_file_with_a_wrong_digest_leaves_nothing_behind(store: BlobStore, tmp_path: Path) -> None:
    source = write(tmp_path / "a.bin", b"actual content")
    wrong = hashlib.sha256(b"other content").hexdigest()
    with pytest.raises(InvalidInputError, match="expected"):
        store.put_file(source, wrong)
    assert regular_files(store.root) == []
    assert not store.has(wrong)


def test_put_file_with_the_digest_of_another_stored_blob_is_rejected(store: BlobStore, tmp_path: Path) -> None:
    other = store.put_bytes(b"other content")
    with pytest.raises(InvalidInputError, match="expected"):
        store.put_file(write(tmp_path / "a.bin", b"actual content"), other)


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "A" * 64, "0" * 63, "0" * 65, "g" * 64, "", "ab/" + "0" * 61, "0" * 64 + "\n"],
)
def test_malformed_digests_are_rejected(store: BlobStore, tmp_path: Path, bad: str) -> None:
    source = write(tmp_path / "a", b"a")
    for call in (
        lambda: store.has(bad),
        lambda: store.path(bad),
        lambda: store.open(bad),
        lambda: store.manifest(bad),
        lambda: store.materialize(bad, tmp_path / "out"),
        lambda: store.put_file(source, bad),
    ):
        with pytest.raises(InvalidInputError, match="64 lowercase hex"):
            call()
    assert regular_files(store.root) == []


def test_absent_blob(store: BlobStore, tmp_path: Path) -> None:
    digest = "0" * 64
    assert not store.has(digest)
    with pytest.raises(NotFoundError):
        store.path(digest)
    assert store.manifest(digest) is None
    with pytest.raises(NotFoundError):
        store.materialize(digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_folder_round_trip(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "model"
    write(src / "config.json", b'{"layers": 2}')
    write(src / "weights" / "part-1.bin", payload(SHARD_SIZE + 77, seed=1))
    write(src / "weights" / "part-2.bin", payload(5000, seed=2))
    write(src / "weights" / "copy.bin", payload(5000, seed=2))  # duplicate content: stored once
    write(src / ".meta" / "empty", b"")
    fp = fingerprint(src)

    store.put_asset(src, fp)
    assert store.manifest(fp.digest) == fp.manifest
    assert store.path(fp.digest).read_bytes() == rfc8785.dumps(fp.manifest)

    out = store.materialize(fp.digest, tmp_path / "restored")
    assert out == tmp_path / "restored"
    rebuilt = fingerprint(out)
    assert (rebuilt.digest, rebuilt.manifest) == (fp.digest, fp.manifest)
    for entry in fp.files:
        assert (out / entry.path).read_bytes() == (src / entry.path).read_bytes()

    store.put_asset(src, fp)  # idempotent
    assert len(regular_files(store.root)) == 4 + 1  # four distinct contents and the manifest


def test_single_file_round_trip(store: BlobStore, tmp_path: Path) -> None:
    source = write(tmp_path / "model.safetensors", payload(4096))
    fp = fingerprint(source)
    store.put_asset(source, fp)
    out = store.materialize(fp.digest, tmp_path / "restored")
    assert (out / "model.safetensors").read_bytes() == source.read_bytes()
    assert fingerprint(out / "model.safetensors").digest == fp.digest
    assert fingerprint(out).digest == fp.digest  # a manifest does not tell a file from a folder of one file


def test_materialize_refuses_a_non_empty_destination(store: BlobStore, tmp_path: Path) -> None:
    source = write(tmp_path / "a.txt", b"a")
    fp = fingerprint(source)
    store.put_asset(source, fp)
    write(tmp_path / "busy" / "keep.txt", b"keep")
    with pytest.raises(InvalidInputError, match="not an empty folder"):
        store.materialize(fp.digest, tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]
    (tmp_path / "vacant").mkdir()
    assert (store.materialize(fp.digest, tmp_path / "vacant") / "a.txt").read_bytes() == b"a"


def test_materialize_with_a_missing_blob_creates_nothing(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "model"
    write(src / "a", b"a")
    write(src / "b", b"b")
    fp = fingerprint(src)
    store.put_asset(src, fp)
    blob = store.path(hashlib.sha256(b"b").hexdigest())
    blob.chmod(0o644)
    blob.unlink()
    with pytest.raises(NotFoundError, match="of b is missing"):
        store.materialize(fp.digest, tmp_path / "restored")
    assert sorted(os.listdir(tmp_path)) == ["blobs", "model"]


def test_materialize_rejects_a_manifest_with_path_traversal(store: BlobStore, tmp_path: Path) -> None:
    blob = store.put_bytes(b"evil")
    evil = {
        "type": "ledgermind/manifest/v1",
        "shardSize": SHARD_SIZE,
        "files": [{"path": "../escaped", "size": 4, "sha256": blob}],
    }
    digest = store.put_bytes(rfc8785.dumps(evil))  # a small manifest blob is named by its asset digest
    with pytest.raises(InvalidInputError, match="unsafe"):
        store.materialize(digest, tmp_path / "out" / "restored")
    assert not (tmp_path / "out" / "escaped").exists()


def test_put_asset_rejects_a_file_that_changed_since_fingerprinting(store: BlobStore, tmp_path: Path) -> None:
    source = write(tmp_path / "a.bin", b"version 1")
    fp = fingerprint(source)
    source.write_bytes(b"version 2")
    with pytest.raises(InvalidInputError, match="expected"):
        store.put_asset(source, fp)
    assert store.manifest(fp.digest) is None
    assert regular_files(store.root) == []

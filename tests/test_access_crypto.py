"""Private datasets at rest: AES-256-GCM chunked encryption into the real blob store, decryption, and what a
tampered ciphertext does (a one-line IntegrityError, nothing written)."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from ledgermind.access.crypto import (
    CHUNK_SIZE,
    TAG_BYTES,
    EncryptedAsset,
    ciphertext_size,
    decrypt_stream,
    decrypt_to,
    encrypt_asset,
    key_path,
    load_key,
)
from ledgermind.access.digest import StreamingDigest
from ledgermind.access.errors import IntegrityError
from ledgermind.errors import InvalidInputError, NotFoundError, StorageError
from ledgermind.fingerprint import SHARD_SIZE, file_digest, fingerprint
from ledgermind.store import BlobStore

BIG = 3 * CHUNK_SIZE + 12_345  # four chunks, the last one short


@pytest.fixture()
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "home" / "blobs")


@pytest.fixture()
def keys(tmp_path: Path) -> Path:
    return tmp_path / "home" / "keys"


def _encrypt(path: Path, blobs: BlobStore, keys: Path) -> EncryptedAsset:
    return encrypt_asset(path, fingerprint(path), blobs, keys)


def _writable_blob(blobs: BlobStore, digest: str) -> Path:
    p = blobs.path(digest)
    p.chmod(0o644)  # blobs are read-only: an attacker with the disk would not care
    return p


def _all_blob_bytes(blobs: BlobStore) -> bytes:
    return b"".join(p.read_bytes() for p in blobs.root.rglob("*") if p.is_file())


def test_a_small_file_round_trips_and_no_plaintext_reaches_the_store(tmp_path: Path, blobs: BlobStore, keys: Path) -> None:
    secret = tmp_path / "patients.csv"
    secret.write_bytes(b"name,diagnosis\nAda Lovelace,confidential-marker-7731\n")
    fp = fingerprint(secret)
    enc = encrypt_asset(secret, fp, blobs, keys)

    assert enc.asset == fp.digest and enc.kind == "file" and enc.plain_manifest == fp.manifest
    assert b"confidential-marker-7731" not in _all_blob_bytes(blobs)
    assert not blobs.has(fp.digest)  # no plaintext manifest either: verify-by-id must not find half an asset
    key_file = key_path(keys, fp.digest)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert blobs.path(enc.files[0].blob).stat().st_size == ciphertext_size(fp.size) == fp.size + TAG_BYTES
    assert EncryptedAsset.load(blobs, enc.manifest_digest) == enc

    out = decrypt_to(enc, blobs, load_key(keys, fp.digest), tmp_path / "out" / "patients.csv")
    assert out.read_bytes() == secret.read_bytes()
    assert fingerprint(out).digest == fp.digest  # what `ledgermind verify` checks on the buyer's side


def test_a_multi_chunk_file_streams_chunk_by_chunk(tmp_path: Path, blobs: BlobStore, keys: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(BIG))
    enc = _encrypt(big, blobs, keys)
    key = load_key(keys, enc.asset)

    pieces = list(decrypt_stream(enc, blobs, key))
    assert [len(p) for p in pieces] == [CHUNK_SIZE] * 3 + [12_345]
    assert b"".join(pieces) == big.read_bytes()
    assert blobs.path(enc.files[0].blob).stat().st_size == BIG + 4 * TAG_BYTES
    assert decrypt_to(enc, blobs, key, tmp_path / "copy.bin").read_bytes() == big.read_bytes()


def test_a_folder_round_trips_with_empty_and_nested_files(tmp_path: Path, blobs: BlobStore, keys: Path) -> None:
    folder = tmp_path / "dataset"
    (folder / "images").mkdir(parents=True)
    (folder / "labels.csv").write_text("id,label\n1,cat\n")
    (folder / "images" / "a.raw").write_bytes(os.urandom(CHUNK_SIZE))  # exactly one full chunk
    (folder / "empty.txt").write_bytes(b"")
    fp = fingerprint(folder)
    enc = encrypt_asset(folder, fp, blobs, keys)
    assert enc.kind == "folder" and [f.path for f in enc.files] == ["empty.txt", "images/a.raw", "labels.csv"]

    out = decrypt_to(enc, blobs, load_key(keys, fp.digest), tmp_path / "restored")
    assert fingerprint(out).digest == fp.digest
    one = decrypt_to(enc, blobs, load_key(keys, fp.digest), tmp_path / "labels.csv", path="labels.csv")
    assert one.read_text() == "id,label\n1,cat\n"
    with pytest.raises(InvalidInputError, match="has 3 files"):
        decrypt_stream(enc, blobs, load_key(keys, fp.digest))
    with pytest.raises(NotFoundError, match="no file 'missing.csv'"):
        decrypt_stream(enc, blobs, load_key(keys, fp.digest), "missing.csv")


def test_encrypting_again_reuses_the_key_with_fresh_nonces(tmp_path: Path, blobs: BlobStore, keys: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("a,b\n1,2\n")
    first, second = _encrypt(f, blobs, keys), _encrypt(f, blobs, keys)
    assert first.key_check == second.key_check
    assert first.files[0].nonce_prefix != second.files[0].nonce_prefix
    assert first.files[0].blob != second.files[0].blob
    for enc in (first, second):
        assert b"".join(decrypt_stream(enc, blobs, load_key(keys, enc.asset))) == f.read_bytes()


def test_a_file_changed_after_fingerprinting_is_not_encrypted(tmp_path: Path, blobs: BlobStore, keys: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("a,b\n1,2\n")
    fp = fingerprint(f)
    f.write_text("a,b\n1,3\n")
    with pytest.raises(InvalidInputError, match="changed since it was fingerprinted"):
        encrypt_asset(f, fp, blobs, keys)


# ------------------------------------------------------------------------------------------ tampering


@pytest.fixture()
def big_asset(tmp_path: Path, blobs: BlobStore, keys: Path) -> tuple[Path, EncryptedAsset, bytes]:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(BIG))
    enc = _encrypt(big, blobs, keys)
    return big, enc, load_key(keys, enc.asset)


def _assert_refused(enc: EncryptedAsset, blobs: BlobStore, key: bytes, dest: Path, match: str) -> None:
    with pytest.raises(IntegrityError, match=match) as info:
        decrypt_to(enc, blobs, key, dest)
    assert "\n" not in str(info.value)
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_flipped_ciphertext_byte_is_refused_and_nothing_is_written(tmp_path: Path, blobs: BlobStore, big_asset) -> None:
    _, enc, key = big_asset
    blob = _writable_blob(blobs, enc.files[0].blob)
    data = bytearray(blob.read_bytes())
    data[2 * (CHUNK_SIZE + TAG_BYTES) + 100] ^= 0x01  # one bit of chunk 2
    blob.write_bytes(data)
    _assert_refused(enc, blobs, key, tmp_path / "out.bin", "chunk 2 of big.bin .* failed authentication")


def test_a_modified_tag_is_refused(tmp_path: Path, blobs: BlobStore, big_asset) -> None:
    _, enc, key = big_asset
    blob = _writable_blob(blobs, enc.files[0].blob)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x80
    blob.write_bytes(data)
    _assert_refused(enc, blobs, key, tmp_path / "out.bin", "chunk 3 .* failed authentication")


def test_swapped_chunks_are_refused(tmp_path: Path, blobs: BlobStore, big_asset) -> None:
    _, enc, key = big_asset
    blob = _writable_blob(blobs, enc.files[0].blob)
    data = blob.read_bytes()
    sealed = CHUNK_SIZE + TAG_BYTES
    blob.write_bytes(data[sealed : 2 * sealed] + data[:sealed] + data[2 * sealed :])
    _assert_refused(enc, blobs, key, tmp_path / "out.bin", "chunk 0 .* failed authentication")


def test_a_truncated_ciphertext_is_refused(tmp_path: Path, blobs: BlobStore, big_asset) -> None:
    _, enc, key = big_asset
    blob = _writable_blob(blobs, enc.files[0].blob)
    data = blob.read_bytes()
    blob.write_bytes(data[: 3 * (CHUNK_SIZE + TAG_BYTES)])  # whole chunks, the last one dropped
    _assert_refused(enc, blobs, key, tmp_path / "out.bin", "truncated or extended")


def test_a_stream_cut_at_a_chunk_boundary_fails_even_if_the_manifest_agrees(tmp_path: Path, blobs: BlobStore, big_asset) -> None:
    """The 'last chunk' flag: a forged manifest shrinking the file to three chunks still cannot pass chunk 2 as
    the last one, because it was sealed as 'not last'."""
    _, enc, key = big_asset
    data = blobs.path(enc.files[0].blob).read_bytes()
    cut = blobs.put_bytes(data[: 3 * (CHUNK_SIZE + TAG_BYTES)])
    forged = dataclasses.replace(enc, files=(dataclasses.replace(enc.files[0], size=3 * CHUNK_SIZE, blob=cut),))
    _assert_refused(forged, blobs, key, tmp_path / "out.bin", "chunk 2 .* failed authentication")


def test_a_chunk_from_another_file_of_the_same_asset_is_refused(tmp_path: Path, blobs: BlobStore, keys: Path) -> None:
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "a.bin").write_bytes(os.urandom(1000))
    (folder / "b.bin").write_bytes(os.urandom(1000))
    enc = _encrypt(folder, blobs, keys)
    a, b = enc.files
    swapped = dataclasses.replace(enc, files=(dataclasses.replace(a, blob=b.blob), b))
    with pytest.raises(IntegrityError, match="chunk 0 of a.bin"):
        b"".join(decrypt_stream(swapped, blobs, load_key(keys, enc.asset), "a.bin"))


def test_an_existing_destination_survives_a_failed_decryption(tmp_path: Path, blobs: BlobStore, big_asset) -> None:
    _, enc, key = big_asset
    blob = _writable_blob(blobs, enc.files[0].blob)
    data = bytearray(blob.read_bytes())
    data[5] ^= 0xFF
    blob.write_bytes(data)
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError):
        decrypt_to(enc, blobs, key, dest)
    assert dest.read_bytes() == b"previous"


def test_a_wrong_key_is_told_apart_from_tampering(tmp_path: Path, blobs: BlobStore, big_asset) -> None:
    _, enc, _ = big_asset
    with pytest.raises(IntegrityError, match="not the key of asset"):
        decrypt_stream(enc, blobs, os.urandom(32))


def test_keys_readable_by_others_or_malformed_are_refused(tmp_path: Path, blobs: BlobStore, keys: Path, big_asset) -> None:
    _, enc, _ = big_asset
    path = key_path(keys, enc.asset)
    path.chmod(0o644)
    with pytest.raises(StorageError, match="chmod 600"):
        load_key(keys, enc.asset)
    path.chmod(0o600)
    path.write_text("not hex\n")
    with pytest.raises(StorageError, match="malformed") as info:
        load_key(keys, enc.asset)
    with pytest.raises(NotFoundError, match="no data key"):
        load_key(keys, "ab" * 32)
    assert "not hex" not in str(info.value)


def test_a_tampered_encrypted_manifest_is_refused(tmp_path: Path, blobs: BlobStore, big_asset) -> None:
    _, enc, _ = big_asset
    obj = enc.to_json()
    obj["files"][0]["size"] += 1  # no longer the registered manifest
    with pytest.raises(InvalidInputError, match="do not hash to its asset digest"):
        EncryptedAsset.from_json(obj)
    obj = enc.to_json()
    obj["files"][0]["path"] = "../escape"
    with pytest.raises(InvalidInputError, match="unsafe"):
        EncryptedAsset.from_json(obj)


@pytest.mark.parametrize("size", [0, 1, SHARD_SIZE - 1, SHARD_SIZE, SHARD_SIZE + 1, 2 * SHARD_SIZE + 7])
def test_the_streaming_digest_is_the_file_digest(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    f = tmp_path / "f"
    f.write_bytes(data)
    d = StreamingDigest()
    for start in range(0, size, 3 * CHUNK_SIZE // 2 + 1):  # odd piece sizes cross shard boundaries
        d.update(data[start : start + 3 * CHUNK_SIZE // 2 + 1])
    assert d.size == size and d.hexdigest() == file_digest(f)

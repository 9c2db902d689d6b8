"""Private datasets at rest: every file of an asset encrypted with AES-256-GCM in chunks, in the blob store.

Format (``ledgermind/encrypted-asset/v1``):

- One random 256-bit **data key** per dataset, kept by the provider in ``keys_dir/<asset digest>.key``
  (64 hex characters, mode 0600, folder 0700). It is never logged, printed or put in an error message.
- Each file is cut into ``chunk_size`` plaintext chunks (1 MiB; an empty file is one empty chunk). Chunk ``i``
  is sealed with nonce ``prefix || i`` (a random 8-byte prefix per file and encryption, then a 4-byte big-endian
  counter) and associated data ``MAGIC || asset digest || file digest || i (8 bytes) || last (1 byte)``. So a
  chunk only opens at its own position, in its own file, of its own asset, and a stream that lost its last
  chunk or gained one fails. The ciphertext of a file is its chunks back to back (each 16 bytes longer than
  its plaintext): multi-GB files stream in constant memory both ways.
- Each file's ciphertext is a blob named by its own digest; a small JSON **encrypted-asset manifest** (also a
  blob, canonical JSON) lists, per file, the plaintext path, size and digest (exactly the registered
  manifest, which is public in the log anyway), the ciphertext blob and the nonce prefix, plus a key check
  (HMAC of a fixed label under the key) so a wrong key is told apart from tampering.

The registered asset digest stays the digest of the **plaintext**: a buyer verifies what it received with
``ledgermind verify``. Decryption authenticates every chunk before releasing a byte of it and checks the file
digest at the end; ``decrypt_to`` writes to a temporary file and renames it into place only if all of that
holds, so a tampered ciphertext leaves nothing at the destination.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import stat
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledgermind.access.atomic import TMP_PREFIX, staged_file, staged_folder, write_chunks
from ledgermind.access.digest import StreamingDigest
from ledgermind.access.errors import IntegrityError
from ledgermind.errors import InvalidInputError, NotFoundError, StorageError
from ledgermind.fingerprint import MANIFEST_TYPE, SHARD_SIZE, Fingerprint, asset_digest, manifest_files
from ledgermind.statements import canonical_json
from ledgermind.store import BlobStore

__all__ = [
    "CHUNK_SIZE",
    "FORMAT",
    "EncryptedAsset",
    "EncryptedFile",
    "check_stored",
    "ciphertext_size",
    "decrypt_stream",
    "decrypt_to",
    "encrypt_asset",
    "key_path",
    "load_key",
]

FORMAT = "ledgermind/encrypted-asset/v1"
CIPHER = "AES-256-GCM"
CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 64 << 20  # a manifest asking for more would make a reader allocate that much per chunk
KEY_BYTES = 32
PREFIX_BYTES = 8
TAG_BYTES = 16
MAX_CHUNKS = 1 << 32  # the nonce counter is 4 bytes: 4 Gi chunks (4 PiB at 1 MiB) per file
_MAGIC = FORMAT.encode() + b"\x00"
_KEY_CHECK_LABEL = b"ledgermind key check v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX_PREFIX = re.compile(f"[0-9a-f]{{{2 * PREFIX_BYTES}}}")


@dataclass(frozen=True)
class EncryptedFile:
    """One file of an encrypted asset: its plaintext path, size and digest, and where its ciphertext is."""

    path: str
    size: int
    sha256: str
    blob: str
    nonce_prefix: bytes

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "blob": self.blob,
                "noncePrefix": self.nonce_prefix.hex()}


@dataclass(frozen=True)
class EncryptedAsset:
    """An asset stored encrypted: what ``encrypt_asset`` returns and ``EncryptedAsset.load`` reads back.

    ``manifest_digest`` names the encrypted-asset manifest blob; ``kind`` ("file" or "folder") is how the
    asset was registered, which its plaintext manifest alone does not say.
    """

    asset: str
    kind: str
    chunk_size: int
    key_check: str
    files: tuple[EncryptedFile, ...]
    manifest_digest: str = ""

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def plain_manifest(self) -> dict[str, Any]:
        """The registered (plaintext) manifest: its canonical JSON hashes to ``asset``."""
        return {"type": MANIFEST_TYPE, "shardSize": SHARD_SIZE,
                "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files]}

    def file(self, path: str | None = None) -> EncryptedFile:
        """The file at ``path``; None means the asset's only file.

        Raises InvalidInputError if ``path`` is None for a multi-file asset; NotFoundError if no file has that path.
        """
        if path is None:
            if len(self.files) != 1:
                raise InvalidInputError(f"asset {self.asset} has {len(self.files)} files: name one of them")
            return self.files[0]
        for f in self.files:
            if f.path == path:
                return f
        raise NotFoundError(f"asset {self.asset} has no file {path!r}")

    def to_json(self) -> dict[str, Any]:
        return {"type": FORMAT, "asset": self.asset, "kind": self.kind, "cipher": CIPHER,
                "chunkSize": self.chunk_size, "keyCheck": self.key_check, "files": [f.to_json() for f in self.files]}

    @classmethod
    def from_json(cls, obj: Any, manifest_digest: str = "") -> EncryptedAsset:
        """Validate a decoded encrypted-asset manifest. Raises InvalidInputError naming the first problem."""
        if not isinstance(obj, dict):
            raise InvalidInputError("encrypted-asset manifest must be a JSON object")
        if obj.get("type") != FORMAT or obj.get("cipher") != CIPHER:
            raise InvalidInputError(f"not a {FORMAT} manifest with cipher {CIPHER}: type {obj.get('type')!r}")
        extra = set(obj) - {"type", "asset", "kind", "cipher", "chunkSize", "keyCheck", "files"}
        if extra:
            raise InvalidInputError(f"encrypted-asset manifest has unknown keys: {', '.join(sorted(extra))}")
        asset, kind, chunk, check, raw = (obj.get(k) for k in ("asset", "kind", "chunkSize", "keyCheck", "files"))
        if not isinstance(asset, str) or not _HEX64.fullmatch(asset):
            raise InvalidInputError(f"encrypted-asset manifest asset must be a 64-hex digest, got {asset!r}")
        if kind not in ("file", "folder"):
            raise InvalidInputError(f"encrypted-asset manifest kind must be 'file' or 'folder', got {kind!r}")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or not 0 < chunk <= MAX_CHUNK_SIZE:
            raise InvalidInputError(f"encrypted-asset manifest chunkSize must be 1..{MAX_CHUNK_SIZE}, got {chunk!r}")
        if not isinstance(check, str) or not _HEX64.fullmatch(check):
            raise InvalidInputError("encrypted-asset manifest keyCheck must be 64 hex characters")
        if not isinstance(raw, list):
            raise InvalidInputError("encrypted-asset manifest files must be a list")
        files = []
        for i, f in enumerate(raw):
            if not isinstance(f, dict) or set(f) != {"path", "size", "sha256", "blob", "noncePrefix"}:
                raise InvalidInputError(
                    f"encrypted-asset manifest file {i} needs exactly path, size, sha256, blob, noncePrefix"
                )
            if not isinstance(f["blob"], str) or not _HEX64.fullmatch(f["blob"]):
                raise InvalidInputError(f"encrypted-asset manifest file {i} blob must be a 64-hex digest")
            if not isinstance(f["noncePrefix"], str) or not _HEX_PREFIX.fullmatch(f["noncePrefix"]):
                raise InvalidInputError(
                    f"encrypted-asset manifest file {i} noncePrefix must be {2 * PREFIX_BYTES} hex characters"
                )
            files.append(EncryptedFile(f["path"], f["size"], f["sha256"], f["blob"], bytes.fromhex(f["noncePrefix"])))
        enc = cls(asset, kind, chunk, check, tuple(files), manifest_digest)
        manifest_files(enc.plain_manifest)  # paths safe and sorted, sizes and digests well formed
        if asset_digest(enc.plain_manifest) != asset:
            raise InvalidInputError(f"encrypted-asset manifest files do not hash to its asset digest {asset}")
        if kind == "file" and len(files) != 1:
            raise InvalidInputError(f"encrypted-asset manifest of a file lists {len(files)} files")
        return enc

    @classmethod
    def load(cls, blobs: BlobStore, manifest_digest: str) -> EncryptedAsset:
        """Read the encrypted-asset manifest blob ``manifest_digest``.

        Raises NotFoundError if it is not stored, InvalidInputError if it is not a valid manifest.
        """
        with blobs.open(manifest_digest) as f:
            raw = f.read()
        try:
            obj = json.loads(raw)
        except ValueError:
            raise InvalidInputError(f"blob {manifest_digest} is not an encrypted-asset manifest (not JSON)") from None
        return cls.from_json(obj, manifest_digest)


# ----------------------------------------------------------------------------------------------- keys


def key_path(keys_dir: str | os.PathLike[str], asset: str) -> Path:
    """Where the data key of ``asset`` lives. Raises InvalidInputError if ``asset`` is not a 64-hex digest."""
    if not isinstance(asset, str) or not _HEX64.fullmatch(asset):
        raise InvalidInputError(f"expected an asset digest of 64 lowercase hex chars, got {asset!r}")
    return Path(keys_dir) / f"{asset}.key"


def load_key(keys_dir: str | os.PathLike[str], asset: str) -> bytes:
    """The data key of ``asset``.

    Raises NotFoundError if there is none; StorageError if the file is malformed or readable by anyone but its
    owner (like ssh: a key others can read is refused, not used).
    """
    path = key_path(keys_dir, asset)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFoundError(f"no data key for asset {asset} in {keys_dir}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StorageError(f"data key {path} is accessible to others (mode {stat.S_IMODE(mode):o}): chmod 600 it")
        text = f.read(4 * KEY_BYTES).strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise StorageError(f"data key {path} is malformed (expected {2 * KEY_BYTES} hex characters)")
    return key


def _create_or_load_key(keys_dir: Path, asset: str) -> bytes:
    """The existing key of ``asset``, or a new random one written durably (0600) before any ciphertext exists."""
    path = key_path(keys_dir, asset)
    if path.exists():
        return load_key(keys_dir, asset)
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
    tmp = keys_dir / f"{TMP_PREFIX}{asset}-{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if a concurrent encryption created the key first: then use theirs
        except FileExistsError:
            return load_key(keys_dir, asset)
        _fsync_dir(keys_dir)
    finally:
        os.unlink(tmp)
    return key


def _key_check(key: bytes) -> str:
    return hmac.new(key, _KEY_CHECK_LABEL, "sha256").hexdigest()


def _cipher_for(enc: EncryptedAsset, key: bytes) -> AESGCM:
    if len(key) != KEY_BYTES or not hmac.compare_digest(_key_check(key), enc.key_check):
        raise IntegrityError(f"the data key given is not the key of asset {enc.asset}")
    return AESGCM(key)


# ----------------------------------------------------------------------------------------------- chunks


def chunk_count(size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Chunks of a file of ``size`` bytes (an empty file has one, empty, chunk)."""
    return max(1, -(-size // chunk_size))


def ciphertext_size(size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Bytes of the ciphertext of a ``size``-byte file: each chunk carries a 16-byte tag."""
    return size + TAG_BYTES * chunk_count(size, chunk_size)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


def _associated(asset: str, file_sha256: str, index: int, last: bool) -> bytes:
    return _MAGIC + bytes.fromhex(asset) + bytes.fromhex(file_sha256) + index.to_bytes(8, "big") + bytes([last])


# ----------------------------------------------------------------------------------------------- encrypt


def encrypt_asset(
    path: str | os.PathLike[str],
    fp: Fingerprint,
    blobs: BlobStore,
    keys_dir: str | os.PathLike[str],
    *,
    chunk_size: int = CHUNK_SIZE,
) -> EncryptedAsset:
    """Encrypt every file of the asset at ``path`` (fingerprinted as ``fp``) into ``blobs``; return its manifest.

    Requires ``fp`` to be the fingerprint of ``path``. The data key is created in ``keys_dir`` on the first
    encryption of the asset and reused afterwards (fresh nonce prefixes each time). Each file is checked against
    ``fp`` while it is read; the encrypted-asset manifest is stored last, so a stored manifest implies all its
    ciphertext blobs are present. Plaintext never enters the store.
    Raises InvalidInputError if ``fp`` is inconsistent, a file changed since it was fingerprinted or cannot be
    read, or ``chunk_size`` is out of range; NotFoundError if a file is gone; StorageError if the key is unusable.
    """
    if asset_digest(fp.manifest) != fp.digest:
        raise InvalidInputError(f"fingerprint digest {fp.digest} does not match its manifest")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise InvalidInputError(f"chunk_size must be 1..{MAX_CHUNK_SIZE} bytes, got {chunk_size!r}")
    base = Path(path)
    key = _create_or_load_key(Path(keys_dir), fp.digest)
    aes = AESGCM(key)
    files = []
    for entry in fp.files:
        if chunk_count(entry.size, chunk_size) > MAX_CHUNKS:
            raise InvalidInputError(f"{entry.path} needs more than {MAX_CHUNKS} chunks of {chunk_size} bytes")
        source = base if fp.kind == "file" else base / entry.path
        prefix = os.urandom(PREFIX_BYTES)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + "enc-", dir=blobs.root)
        try:
            with os.fdopen(fd, "wb") as out, _open_plain(source) as src:
                _encrypt_file(aes, src, out, fp.digest, entry.sha256, prefix, chunk_size, str(source), entry.size)
            blob = blobs.put_file(tmp)
        finally:
            os.unlink(tmp)
        files.append(EncryptedFile(entry.path, entry.size, entry.sha256, blob, prefix))
    enc = EncryptedAsset(fp.digest, fp.kind, chunk_size, _key_check(key), tuple(files))
    manifest_digest = blobs.put_bytes(canonical_json(enc.to_json()))
    return EncryptedAsset(enc.asset, enc.kind, enc.chunk_size, enc.key_check, enc.files, manifest_digest)


def _encrypt_file(
    aes: AESGCM, src: BinaryIO, out: BinaryIO, asset: str, sha256: str, prefix: bytes, chunk_size: int,
    name: str, expected_size: int,
) -> None:
    digest = StreamingDigest()
    current, index = src.read(chunk_size), 0
    while True:
        # read one chunk ahead: the last chunk is sealed as last, so a truncated stream cannot pass for whole
        following = src.read(chunk_size) if len(current) == chunk_size else b""
        last = not following
        digest.update(current)
        out.write(aes.encrypt(_nonce(prefix, index), current, _associated(asset, sha256, index, last)))
        if last:
            break
        current, index = following, index + 1
    out.flush()
    os.fsync(out.fileno())
    if digest.size != expected_size or digest.hexdigest() != sha256:
        raise InvalidInputError(f"{name} changed since it was fingerprinted: register and encrypt it again")


def _open_plain(source: Path) -> BinaryIO:
    try:
        return source.open("rb")
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {source}") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {source}: {exc.strerror}") from None


# ----------------------------------------------------------------------------------------------- decrypt


def check_stored(enc: EncryptedAsset, blobs: BlobStore, key: bytes) -> None:
    """Cheap checks before serving: ``key`` is the asset's key and every ciphertext blob is stored with exactly
    the expected length (no byte is read). Raises IntegrityError or NotFoundError naming the first problem."""
    _cipher_for(enc, key)
    for entry in enc.files:
        actual = blobs.path(entry.blob).stat().st_size
        expected = ciphertext_size(entry.size, enc.chunk_size)
        if actual != expected:
            raise IntegrityError(
                f"ciphertext of {entry.path} in asset {enc.asset} has {actual} bytes, expected {expected}: "
                "it was truncated or extended"
            )


def decrypt_stream(enc: EncryptedAsset, blobs: BlobStore, key: bytes, path: str | None = None) -> Iterator[bytes]:
    """The plaintext of one file of ``enc`` (``path``; None for a single-file asset), one chunk per item.

    Checks the key, that the ciphertext blob exists and has exactly the expected length now; then every chunk
    is authenticated before it is yielded, and the file digest is checked after the last one. Iterating raises
    IntegrityError at the first chunk that fails (modified, reordered, from another file) or, at the end, if
    the bytes do not have the registered digest: a consumer must discard what it got when that happens.
    Raises, before anything is yielded: IntegrityError (wrong key, wrong ciphertext length), NotFoundError (no
    such file in the asset, or its blob is missing), InvalidInputError (``path`` None for a multi-file asset).
    """
    entry = enc.file(path)
    aes = _cipher_for(enc, key)
    handle = blobs.open(entry.blob)
    try:
        actual = os.fstat(handle.fileno()).st_size
        expected = ciphertext_size(entry.size, enc.chunk_size)
        if actual != expected:
            raise IntegrityError(
                f"ciphertext of {entry.path} in asset {enc.asset} has {actual} bytes, expected {expected}: "
                "it was truncated or extended"
            )
    except BaseException:
        handle.close()
        raise
    return _chunks(enc, entry, aes, handle)


def _chunks(enc: EncryptedAsset, entry: EncryptedFile, aes: AESGCM, handle: BinaryIO) -> Iterator[bytes]:
    n = chunk_count(entry.size, enc.chunk_size)
    digest = StreamingDigest()
    with handle:
        for index in range(n):
            plain_len = enc.chunk_size if index < n - 1 else entry.size - (n - 1) * enc.chunk_size
            sealed = handle.read(plain_len + TAG_BYTES)
            try:
                plain = aes.decrypt(
                    _nonce(entry.nonce_prefix, index), sealed,
                    _associated(enc.asset, entry.sha256, index, index == n - 1),
                )
            except InvalidTag:
                raise IntegrityError(
                    f"chunk {index} of {entry.path} in asset {enc.asset} failed authentication: "
                    "the stored ciphertext was modified, reordered or truncated"
                ) from None
            digest.update(plain)
            yield plain
    if digest.hexdigest() != entry.sha256:  # only a faulty encryptor gets here: the chunks authenticated
        raise IntegrityError(f"decrypted {entry.path} has digest {digest.hexdigest()}, registered {entry.sha256}")


def decrypt_to(
    enc: EncryptedAsset, blobs: BlobStore, key: bytes, dest: str | os.PathLike[str], path: str | None = None
) -> Path:
    """Decrypt into ``dest`` and return it: the file ``path`` (None: the asset's only file) as the file ``dest``,
    or, for a folder asset with ``path`` None, the whole folder as the folder ``dest``.

    Everything is written next to ``dest`` under a temporary name and renamed into place only once every chunk
    authenticated and every digest matched: on any error nothing is left at ``dest`` (an existing file there is
    kept as it was). A folder ``dest`` must not exist or be empty; a file ``dest`` is replaced.
    Raises IntegrityError on tampering or a wrong key; NotFoundError / InvalidInputError as ``decrypt_stream``
    does, or if ``dest`` cannot be written.
    """
    target = Path(dest)
    if path is None and enc.kind == "folder":
        with staged_folder(target) as staging:
            for entry in enc.files:
                out = staging.joinpath(*entry.path.split("/"))
                out.parent.mkdir(parents=True, exist_ok=True)
                write_chunks(decrypt_stream(enc, blobs, key, entry.path), out)
        return target
    if target.is_dir():
        raise InvalidInputError(f"{target} is a folder: give the file to write")
    chunks = decrypt_stream(enc, blobs, key, path)  # its up-front checks fail before anything is created
    with staged_file(target) as tmp:
        write_chunks(chunks, tmp)
    return target


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

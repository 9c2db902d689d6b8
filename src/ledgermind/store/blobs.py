"""Local content-addressed blob store: bytes on disk named by their ledgermind file digest.

Layout: ``root/ab/cdef...`` where ``abcdef...`` is the 64-hex digest. A manifest is kept as a blob named by its
asset digest (which is the plain SHA-256 of its canonical JSON), so a stored asset can be rebuilt from the store
alone. Every write goes to a temporary file in the target folder, is fsync'ed and then renamed into place, so a
blob path either does not exist or holds the complete, verified bytes. Blobs are made read-only.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import tempfile
import uuid
from typing import Any, BinaryIO

from ledgermind.errors import InvalidInputError, NotFoundError, StorageError
from ledgermind.fingerprint import (
    Fingerprint,
    asset_digest,
    canonical_manifest,
    digest_bytes,
    file_digest,
    manifest_files,
)
from ledgermind.fingerprint.shards import stat_regular_file

__all__ = ["BlobStore"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
_BLOB_MODE = 0o444  # blobs are immutable; read-only makes an accidental in-place edit fail loudly


class BlobStore:
    """Content-addressed blobs under ``root``; safe for concurrent writers (the same digest means the same bytes)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """Use (creating if needed) the folder ``root``. Raises StorageError if it cannot be created."""
        self.root = pathlib.Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create blob store {self.root}: {exc.strerror}") from None

    def has(self, digest: str) -> bool:
        """True if a blob named ``digest`` is stored. Raises InvalidInputError on a malformed digest."""
        return self._location(digest).is_file()

    def path(self, digest: str) -> pathlib.Path:
        """Path of the stored blob (do not write to it).

        Raises NotFoundError if absent, InvalidInputError if ``digest`` is malformed.
        """
        location = self._location(digest)
        if not location.is_file():
            raise NotFoundError(f"no blob {digest} in {self.root}")
        return location

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for binary reading. Raises NotFoundError if absent, InvalidInputError if malformed."""
        return self.path(digest).open("rb")

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its file digest. Idempotent."""
        digest = digest_bytes(data)
        if not self.has(digest):
            self._write_bytes(digest, data)
        return digest

    def put_file(self, path: str | os.PathLike[str], digest: str | None = None) -> str:
        """Copy the file at ``path`` into the store and return its file digest.

        The digest is computed over the copy, so the stored bytes always match their name even if the source is
        being modified. With ``digest``, the content must have that digest; if the blob is already stored, the
        source is hashed (not copied) to check it.
        Raises InvalidInputError if ``digest`` is malformed or does not match (nothing is stored then), or the file
        cannot be read; NotFoundError if there is no file at ``path``.
        """
        source = os.fspath(path)
        if digest is not None:
            self._location(digest)  # reject a malformed digest before doing any work
            if self.has(digest):
                _expect(digest, file_digest(source), source)
                return digest
        folder = self.root if digest is None else self._location(digest).parent
        tmp = self._copy_to_temp(source, folder)
        try:
            actual = file_digest(tmp)
            if digest is not None:
                _expect(digest, actual, source)
            if not self.has(actual):
                self._install(tmp, actual)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return actual

    def put_asset(self, path: str | os.PathLike[str], fp: Fingerprint) -> None:
        """Store every file of the asset at ``path`` (fingerprinted as ``fp``), then its manifest.

        The manifest goes last, so a stored manifest implies all its blobs are present. Files already stored are not
        read again; the others are copied and the copy is checked against ``fp``.
        Raises InvalidInputError if ``fp`` is inconsistent (digest does not match manifest) or a file no longer
        matches ``fp``.
        """
        files = manifest_files(fp.manifest)
        if asset_digest(fp.manifest) != fp.digest:
            raise InvalidInputError(f"fingerprint digest {fp.digest} does not match its manifest")
        base = pathlib.Path(path)
        for entry in files:
            if self.has(entry.sha256):
                continue
            source = base if fp.kind == "file" else base / entry.path
            self.put_file(source, entry.sha256)
        if not self.has(fp.digest):
            self._write_bytes(fp.digest, canonical_manifest(fp.manifest))

    def manifest(self, asset_digest: str) -> dict[str, Any] | None:
        """The manifest stored under ``asset_digest``, or None if absent.

        Raises InvalidInputError if ``asset_digest`` is malformed or the blob is not a valid manifest.
        """
        location = self._location(asset_digest)
        try:
            raw = location.read_bytes()
        except FileNotFoundError:
            return None
        try:
            manifest = json.loads(raw)
        except ValueError:
            raise InvalidInputError(f"blob {asset_digest} is not a manifest (not JSON)") from None
        manifest_files(manifest)
        return manifest

    def materialize(self, asset_digest: str, dest: str | os.PathLike[str]) -> pathlib.Path:
        """Rebuild the asset as the folder ``dest``, each manifest entry at ``dest/<path>``; return ``dest``.

        A single-file asset becomes ``dest/<file name>``: the manifest does not say whether it was a file or a
        folder, and ``fingerprint(dest)`` gives ``asset_digest`` back either way. ``dest`` must not exist or be an
        empty folder. The folder is built next to ``dest`` and renamed into place, so ``dest`` never holds a part.
        Raises NotFoundError if the manifest or one of its blobs is absent; InvalidInputError if ``dest`` is not
        empty or the manifest is malformed.
        """
        manifest = self.manifest(asset_digest)
        if manifest is None:
            raise NotFoundError(f"no manifest {asset_digest} in {self.root}")
        files = manifest_files(manifest)
        for entry in files:
            if not self.has(entry.sha256):
                raise NotFoundError(f"blob {entry.sha256} of {entry.path} is missing from {self.root}")
        target = pathlib.Path(dest)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InvalidInputError(f"{target} already exists and is not an empty folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Not mkdtemp: it makes the folder 0700, and the rebuilt folder should get the usual umask permissions.
        staging = target.parent / f"{_TMP_PREFIX}{target.name}-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for entry in files:
                out = staging.joinpath(*entry.path.split("/"))
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self._location(entry.sha256), out)
            try:
                os.replace(staging, target)  # POSIX rename replaces an empty folder atomically
            except OSError as exc:
                raise InvalidInputError(f"cannot create {target}: {exc.strerror}") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    # -- internals -------------------------------------------------------------------------------------------------

    def _location(self, digest: str) -> pathlib.Path:
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise InvalidInputError(f"expected a digest of 64 lowercase hex chars, got {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def _write_bytes(self, digest: str, data: bytes) -> None:
        folder = self._location(digest).parent
        folder.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self._install(tmp, digest)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    def _copy_to_temp(self, source: str, folder: pathlib.Path) -> str:
        """Copy ``source`` to a fsync'ed temporary file in ``folder``; return its path."""
        stat_regular_file(source)  # a fifo would block open() forever
        folder.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
        try:
            with os.fdopen(fd, "wb") as out, _open_source(source) as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    def _install(self, tmp: str, digest: str) -> None:
        """Atomically move the complete temporary file ``tmp`` to the blob path of ``digest``."""
        final = self._location(digest)
        final.parent.mkdir(exist_ok=True)
        os.chmod(tmp, _BLOB_MODE)
        os.replace(tmp, final)  # a concurrent writer of the same digest wrote the same bytes: last one wins, harmless
        _fsync_dir(final.parent)


def _open_source(source: str) -> BinaryIO:
    try:
        return open(source, "rb")  # noqa: SIM115 - the caller's with-statement closes it
    except FileNotFoundError:
        raise NotFoundError(f"no such file or folder: {source}") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {source}: {exc.strerror}") from None


def _expect(expected: str, actual: str, source: str) -> None:
    if actual != expected:
        raise InvalidInputError(f"{source} has digest {actual}, expected {expected}")


def _fsync_dir(folder: pathlib.Path) -> None:
    # Makes the rename durable; without it a crash can forget a blob the caller was told is stored.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

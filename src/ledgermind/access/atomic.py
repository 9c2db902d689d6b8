"""Write a file or a folder under a temporary name next to its destination, and rename it into place only if
the writing finished without an error: nobody (and no crash) ever finds a part of it at the destination.

    with staged_file(dest) as tmp:
        write_chunks(chunks, tmp)
        check(tmp)            # raising here leaves dest as it was
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ledgermind.errors import InvalidInputError

TMP_PREFIX = ".tmp-"  # what the blob store uses too: one prefix to look for when cleaning up after a crash


@contextmanager
def staged_file(target: Path) -> Iterator[Path]:
    """Yield a new empty file (mode 0600) next to ``target``; on a clean exit it replaces ``target``.

    On an error the temporary file, and any folder made above ``target`` for it, are removed and the error
    propagates; an existing ``target`` is left as it was.
    """
    made = _make_parents(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent)
        os.close(fd)
    except BaseException:
        _remove_made(made)
        raise
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        _remove_made(made)
        raise


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield a new empty folder next to ``target``; on a clean exit it becomes ``target``.

    Requires ``target`` not to exist or to be an empty folder (else InvalidInputError, before anything is made).
    On an error the temporary folder and any folder made above it are removed and the error propagates.
    """
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInputError(f"{target} already exists and is not an empty folder")
    made = _make_parents(target)
    # not mkdtemp: it makes the folder 0700, and the result should get the usual umask permissions
    staging = target.parent / f"{TMP_PREFIX}{target.name}-{uuid.uuid4().hex}"
    try:
        staging.mkdir()
        yield staging
        try:
            os.replace(staging, target)  # POSIX rename replaces an empty folder atomically
        except OSError as exc:
            raise InvalidInputError(f"cannot create {target}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_made(made)
        raise


def write_chunks(chunks: Iterable[bytes], path: Path) -> None:
    """Write ``chunks`` to ``path`` (truncating it) and fsync: a file renamed into place afterwards is whole."""
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def _make_parents(target: Path) -> list[Path]:
    """Create the missing folders above ``target``; return them deepest first."""
    missing = [p for p in target.parents if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_made(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; a folder someone else put something into meanwhile stays
        try:
            folder.rmdir()
        except OSError:
            return

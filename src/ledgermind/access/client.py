"""Downloading a private dataset from a provider, as a holder: sign, fetch, verify, then keep.

``download`` reads the dataset's terms, checks that the manifest the provider describes hashes to the dataset
id asked for (the id *is* the plaintext digest), signs a one-shot EIP-712 access request (fresh random 256-bit
nonce, short expiry), streams the bytes into a temporary file or folder next to ``dest``, checks them against
that manifest, and only then renames them into place. On any failure nothing is left at ``dest``.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.access.atomic import staged_file, staged_folder, write_chunks
from ledgermind.access.errors import AccessRefused, IntegrityError
from ledgermind.access.policy import ACCESS_HEADER, DOWNLOAD, dataset_digest
from ledgermind.errors import InvalidInputError, LedgermindError, NotFoundError
from ledgermind.fingerprint import FileDigest, asset_digest, file_digest, fingerprint, manifest_files
from ledgermind.market.eip712 import AccessRequest

if TYPE_CHECKING:
    import httpx
    from eth_account.signers.local import LocalAccount

    from ledgermind.chain.connection import Chain

__all__ = ["DEFAULT_VALIDITY", "download", "fetch_terms"]

DEFAULT_VALIDITY = 120  # seconds a signed request stays usable: long enough for a slow link, short for a thief
_TMP_PREFIX = ".tmp-"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def fetch_terms(provider_url: str, dataset_id: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """The provider's terms for ``dataset_id``, checked to describe that dataset (see ``download``).

    Raises AccessRefused if the provider answers with an error, LedgermindError if it cannot be reached or its
    terms are malformed or about other bytes.
    """
    import httpx

    asset = dataset_digest(dataset_id)
    with httpx.Client(timeout=timeout) as http:
        return _terms(http, provider_url.rstrip("/"), asset)


def download(
    provider_url: str,
    dataset_id: str,
    account: LocalAccount,
    dest: str | os.PathLike[str] | None = None,
    chain: Chain | None = None,
    *,
    path: str | None = None,
    expected_digest: str | None = None,
    validity: int = DEFAULT_VALIDITY,
    timeout: float = 30.0,
) -> Path:
    """Download dataset ``dataset_id`` (its 64-hex digest) from ``provider_url`` as ``account``; return where it is.

    A single-file dataset, or one file of a folder dataset (``path``), is written as the file ``dest`` (into it,
    under the registered file name, if ``dest`` is an existing folder; default: that name in the current folder;
    an existing file is replaced only once the new bytes verified). A folder dataset is written as the folder
    ``dest`` (default: the dataset's name), which must not exist or be empty.
    ``expected_digest`` is the registered digest the bytes must have, when the caller knows it from elsewhere
    (e.g. the log); it must equal the id. With ``chain``, the terms must name that chain and a contract on it.
    Raises InvalidInputError (bad id, dest, or terms for another chain), AccessRefused (the provider's status and
    reason), IntegrityError (the bytes do not match the registered digest), LedgermindError (network).
    """
    import httpx

    asset = dataset_digest(dataset_id)
    if expected_digest is not None and dataset_digest(expected_digest) != asset:
        raise InvalidInputError(f"dataset id {asset} is not the expected digest {expected_digest}")
    if isinstance(validity, bool) or not isinstance(validity, int) or validity < 1:
        raise InvalidInputError(f"validity must be a positive number of seconds, got {validity!r}")
    base = provider_url.rstrip("/")
    with httpx.Client(timeout=timeout) as http:
        terms = _terms(http, base, asset)
        _check_chain(terms, chain)
        files = manifest_files(terms["manifest"])
        entry = _entry(files, terms, path)
        target = _target(dest, terms, entry, asset)

        expiry = int(time.time()) + min(validity, int(terms["maxValidity"]))
        request = AccessRequest(account.address, bytes.fromhex(asset), DOWNLOAD, secrets.randbits(256), expiry)
        signed = request.sign(account, int(terms["chainId"]), terms["verifyingContract"])
        headers = {ACCESS_HEADER: json.dumps(signed.to_json())}
        params = {"path": path} if path is not None else None
        url = f"{base}/v1/datasets/{asset}"
        try:
            with http.stream("GET", url, params=params, headers=headers) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise AccessRefused(f"{base} refused ({resp.status_code}): {_reason(resp)}", resp.status_code)
                if entry is not None:
                    return _keep_file(resp.iter_bytes(), entry, target)
                return _keep_folder(resp.iter_bytes(), files, asset, target)
        except httpx.HTTPError as e:
            raise LedgermindError(f"download from {url} failed: {_one_line(e)}") from None


# ---------------------------------------------------------------------------------------------- terms


def _terms(http: httpx.Client, base: str, asset: str) -> dict[str, Any]:
    import httpx

    url = f"{base}/v1/datasets/{asset}/terms"
    try:
        resp = http.get(url)
    except httpx.HTTPError as e:
        raise LedgermindError(f"cannot reach the provider at {base}: {_one_line(e)}") from None
    if resp.status_code != 200:
        raise AccessRefused(f"{base} has no terms for {asset} ({resp.status_code}): {_reason(resp)}", resp.status_code)
    try:
        terms = resp.json()
    except ValueError:
        raise LedgermindError(f"the terms from {url} are not JSON") from None
    if not isinstance(terms, dict):
        raise LedgermindError(f"the terms from {url} are not a JSON object")
    chain_id, contract, kind, ttl = (terms.get(k) for k in ("chainId", "verifyingContract", "kind", "maxValidity"))
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id < 0:
        raise LedgermindError(f"the terms from {url} have no valid chainId")
    if not isinstance(contract, str) or not _ADDRESS.fullmatch(contract):
        raise LedgermindError(f"the terms from {url} have no valid verifyingContract")
    if kind not in ("file", "folder") or isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
        raise LedgermindError(f"the terms from {url} need kind 'file' or 'folder' and a positive maxValidity")
    if terms.get("assetId") != "0x" + asset:
        raise LedgermindError(f"the terms from {url} are for asset {terms.get('assetId')!r}, not 0x{asset}")
    try:
        files = manifest_files(terms.get("manifest"))
    except InvalidInputError as e:
        raise LedgermindError(f"the terms from {url} carry a malformed manifest: {e}") from None
    # the one check that makes the rest trustworthy: the manifest must be the one the id is the digest of
    if asset_digest(terms["manifest"]) != asset:
        got = asset_digest(terms["manifest"])
        raise IntegrityError(f"the manifest in the terms from {url} hashes to {got}, not {asset}")
    if kind == "file" and len(files) != 1:
        raise LedgermindError(f"the terms from {url} call a {len(files)}-file manifest a file")
    return terms


def _check_chain(terms: dict[str, Any], chain: Chain | None) -> None:
    if chain is None:
        return
    if terms["chainId"] != chain.chain_id:
        raise InvalidInputError(
            f"the provider's terms are for chain {terms['chainId']}, but {chain.describe} is chain {chain.chain_id}"
        )
    if not chain.code_at(terms["verifyingContract"]):
        contract = terms["verifyingContract"]
        raise InvalidInputError(f"the provider's Marketplace {contract} has no code on {chain.describe}")


def _entry(files: list[FileDigest], terms: dict[str, Any], path: str | None) -> FileDigest | None:
    """The one file to download, or None for a whole folder."""
    if path is not None:
        for f in files:
            if f.path == path:
                return f
        raise NotFoundError(f"dataset {terms['dataset']} has no file {path!r}")
    return files[0] if terms["kind"] == "file" else None


def _target(dest: str | os.PathLike[str] | None, terms: dict[str, Any], entry: FileDigest | None, asset: str) -> Path:
    if entry is not None:
        name = entry.path.rsplit("/", 1)[-1]  # manifest paths are checked relative and free of '..'
        target = Path.cwd() / name if dest is None else Path(dest).expanduser()
        return target / name if target.is_dir() else target
    # a name from the provider is only a suggestion: never let it leave the current folder
    suggested = Path(str(terms.get("name") or "")).name
    name = suggested if suggested not in ("", ".", "..") else asset[:12]
    target = Path.cwd() / name if dest is None else Path(dest).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInputError(f"{target} already exists and is not an empty folder")
    return target


def _reason(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        reason = body.get("error") or body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        reason = None
    return _one_line(reason if isinstance(reason, str) else resp.text[:300] or resp.reason_phrase)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:500] or type(text).__name__


# ---------------------------------------------------------------------------------------------- keep


def _keep_file(chunks: Iterator[bytes], entry: FileDigest, target: Path) -> Path:
    # mkstemp's 0600 is kept on purpose: a private dataset stays readable by its holder only
    with staged_file(target) as tmp:
        write_chunks(chunks, tmp)
        size, digest = tmp.stat().st_size, file_digest(tmp)
        if size != entry.size or digest != entry.sha256:
            raise IntegrityError(
                f"received {entry.path} has {size} bytes and digest {digest}; "
                f"registered: {entry.size} bytes, {entry.sha256}"
            )
    return target


def _keep_folder(chunks: Iterator[bytes], files: list[FileDigest], asset: str, target: Path) -> Path:
    with staged_folder(target) as staging:
        _extract(chunks, {f.path: f for f in files}, staging)
        got = fingerprint(staging).digest
        if got != asset:
            raise IntegrityError(f"received folder has digest {got}, registered {asset}")
    return target


def _extract(chunks: Iterator[bytes], expected: dict[str, FileDigest], staging: Path) -> None:
    """Write the tar stream's files into ``staging``: only regular files, each a manifest path of the right size,
    once. Member names are looked up in the manifest, never used as given: nothing lands outside ``staging``."""
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BufferedReader(_StreamReader(chunks), 1 << 20), mode="r|") as tar:
            for member in tar:
                entry = expected.get(member.name)
                if not member.isreg() or entry is None or member.name in seen or member.size != entry.size:
                    raise IntegrityError(f"the tar stream holds an unexpected entry {member.name[:200]!r}")
                seen.add(member.name)
                out = staging.joinpath(*entry.path.split("/"))
                out.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has a reader
                with out.open("wb") as f:
                    shutil.copyfileobj(source, f, 1 << 20)
    except tarfile.TarError as e:
        raise IntegrityError(f"the folder stream is not a valid tar: {_one_line(e)}") from None
    missing = sorted(set(expected) - seen)
    if missing:
        raise IntegrityError(f"the folder stream ended without {len(missing)} file(s), e.g. {missing[0]!r}")


class _StreamReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks, for tarfile's streaming mode (no copy of the rest)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = memoryview(b"")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self._pos >= len(self._chunk):
            try:
                self._chunk, self._pos = memoryview(next(self._chunks)), 0
            except StopIteration:
                return 0
        n = min(len(b), len(self._chunk) - self._pos)
        b[:n] = self._chunk[self._pos : self._pos + n]
        self._pos += n
        return n

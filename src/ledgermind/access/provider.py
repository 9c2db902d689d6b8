"""Serving private datasets over HTTP: ``AccessService`` (the decisions, no HTTP) and ``access_router`` (a
FastAPI ``APIRouter`` any provider app can mount).

Endpoints (every error is ``{"error": "<one line>"}``):

``GET /v1/datasets/{id}/terms``
    200 with what a client signs: ``assetId``, ``chainId``, ``verifyingContract`` (the Marketplace), the EIP-712
    domain and types, the provider's address, ``maxValidity``, and the dataset's name, kind, size and plaintext
    manifest (public in the log already), so the client can verify what it receives. 400 bad id, 404 not offered.

``GET /v1/datasets/{id}[?path=FILE]`` with header ``X-Ledgermind-Access: <JSON of AccessRequest.to_json()>``
    200 streams the decrypted bytes: the file (``application/octet-stream``) for a single-file dataset or with
    ``?path=`` for one file of a folder, else the whole folder as an uncompressed tar (``application/x-tar``),
    entries in manifest order. ``Content-Length`` is exact; ``X-Ledgermind-Digest`` is the file digest (the
    dataset digest for a tar) and ``X-Ledgermind-Log-Index`` the log entry recording this access.
    400 malformed header, id, or request for another asset/action or too long-lived; 401 bad signature or
    expired; 403 no licence or token on chain; 404 dataset or path not offered; 409 nonce already used;
    503 the chain or the log cannot answer; 500 the provider's own stored ciphertext or key is unusable.

Every decision the policy makes, granted or refused, becomes an ``access/v1`` statement signed by the provider's
account and appended to the log; a granted one is durable before the first byte is sent (if it cannot be
appended, nothing is sent). Requests refused before reaching the policy (malformed, unknown dataset) are not
accesses to a dataset and are not recorded.
"""

from __future__ import annotations

import logging
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ledgermind.access.crypto import EncryptedAsset, check_stored, decrypt_stream, load_key
from ledgermind.access.errors import AccessRefused
from ledgermind.access.policy import (
    ACCESS_HEADER,
    DOWNLOAD,
    MAX_VALIDITY,
    AccessPolicy,
    dataset_digest,
    parse_access_header,
)
from ledgermind.access.statement import access_envelope
from ledgermind.access.store import AccessStore, Offer
from ledgermind.chain.connection import Chain
from ledgermind.errors import InvalidInputError, LedgermindError, NotFoundError
from ledgermind.market.eip712 import ACCESS_NAME, ACCESS_TYPES, ACCESS_VERSION, AccessRequest
from ledgermind.statements import Envelope
from ledgermind.store import BlobStore

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = ["AccessService", "Served", "access_router"]

log = logging.getLogger("ledgermind.access")

_BLOCK = 512  # tar block size
_TAR_END = bytes(2 * _BLOCK)


@dataclass
class Served:
    """A granted download: the bytes to stream and what the response says about them."""

    body: _Prefetched
    length: int
    media_type: str
    filename: str
    digest: str
    log_index: int


class AccessService:
    """Terms and downloads of the datasets offered in ``store``, decided by an ``AccessPolicy``.

    ``submit(envelope) -> log index`` appends a signed statement durably (e.g. ``Ledger.submit``); it may be
    called from several threads at once. ``account`` is the provider's, which signs the access statements.
    """

    def __init__(
        self,
        *,
        blobs: BlobStore,
        keys_dir: str | Path,
        store: AccessStore,
        chain: Chain,
        marketplace: str,
        account: LocalAccount,
        submit: Callable[[Envelope], int],
        max_validity: int = MAX_VALIDITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.blobs = blobs
        self.keys_dir = Path(keys_dir)
        self.store = store
        self.account = account
        self.submit = submit
        self.policy = AccessPolicy(store, chain, marketplace, max_validity=max_validity, clock=clock)

    # ------------------------------------------------------------------ terms
    def terms(self, dataset_id: str) -> dict[str, Any]:
        """What a client needs to sign a request for the dataset. Raises AccessRefused (400, 404, 500)."""
        asset, offer, enc = self._offered(dataset_id)
        policy = self.policy
        return {
            "dataset": asset, "assetId": "0x" + asset, "name": offer.name, "kind": enc.kind, "size": enc.size,
            "manifest": enc.plain_manifest, "action": DOWNLOAD, "chainId": policy.chain_id,
            "verifyingContract": policy.marketplace, "provider": self.account.address,
            "maxValidity": policy.max_validity, "header": ACCESS_HEADER,
            "eip712": {
                "domain": {"name": ACCESS_NAME, "version": ACCESS_VERSION, "chainId": policy.chain_id,
                           "verifyingContract": policy.marketplace},
                "primaryType": "AccessRequest", "types": ACCESS_TYPES,
            },
        }

    # ------------------------------------------------------------------ download
    def download(self, dataset_id: str, header: str | None, path: str | None = None) -> Served:
        """Decide a download request and, if granted, record it and return the bytes to stream.

        Raises AccessRefused with the HTTP status and one-line reason of any refusal.
        """
        asset, offer, enc = self._offered(dataset_id)
        if path is not None:
            try:
                enc.file(path)
            except NotFoundError as e:
                raise AccessRefused(str(e), 404) from None
        elif enc.kind == "file":
            path = enc.files[0].path
        try:
            request = parse_access_header(header)
        except InvalidInputError as e:
            raise AccessRefused(str(e), 400) from None
        decision = self.policy.decide(request, asset, DOWNLOAD)
        if not decision.granted:
            self._record(request, offer, False, decision.reason, path, required=False)
            raise AccessRefused(decision.reason, decision.status)
        try:
            served = self._prepare(enc, offer, path)
        except (LedgermindError, OSError) as e:
            # the provider's own storage is at fault, not the request: say so, and keep the refusal on record
            reason = f"the provider cannot serve {asset}: {e}"
            log.error("%s", reason)
            self._record(request, offer, False, reason, path, required=False)
            raise AccessRefused(reason, 500) from None
        try:
            served.log_index = self._record(request, offer, True, decision.reason, path, required=True)
        except LedgermindError as e:
            served.body.close()
            raise AccessRefused(f"cannot record the access in the log, so nothing is served: {e}", 503) from None
        return served

    def _offered(self, dataset_id: str) -> tuple[str, Offer, EncryptedAsset]:
        try:
            asset = dataset_digest(dataset_id)
        except InvalidInputError as e:
            raise AccessRefused(str(e), 400) from None
        offer = self.store.offered(asset)
        if offer is None:
            raise AccessRefused(f"dataset {asset} is not offered here", 404)
        try:
            enc = EncryptedAsset.load(self.blobs, offer.manifest)
        except (LedgermindError, OSError) as e:
            log.error("offer of %s is unusable: %s", asset, e)
            raise AccessRefused(f"the provider's record of dataset {asset} is unusable: {e}", 500) from None
        if enc.asset != asset:
            log.error("offer of %s points to the encrypted asset %s", asset, enc.asset)
            raise AccessRefused(f"the provider's record of dataset {asset} is for asset {enc.asset}", 500)
        return asset, offer, enc

    def _prepare(self, enc: EncryptedAsset, offer: Offer, path: str | None) -> Served:
        """Check key and ciphertext, and authenticate the first chunk, before anything is promised."""
        key = load_key(self.keys_dir, enc.asset)
        check_stored(enc, self.blobs, key)
        if path is not None:
            entry = enc.file(path)
            body = _Prefetched(decrypt_stream(enc, self.blobs, key, path))
            return Served(body, entry.size, "application/octet-stream", path.rsplit("/", 1)[-1], entry.sha256, -1)
        body = _Prefetched(_tar_stream(enc, self.blobs, key))
        return Served(body, _tar_length(enc), "application/x-tar", f"{offer.name}.tar", enc.asset, -1)

    def _record(
        self, request: AccessRequest, offer: Offer, granted: bool, reason: str, path: str | None, *, required: bool
    ) -> int:
        """Append the access statement; return its log index (-1 if a refusal could not be recorded)."""
        try:
            envelope = access_envelope(
                self.account, request, asset=offer.asset, name=offer.name, granted=granted, reason=reason,
                chain_id=self.policy.chain_id, verifying_contract=self.policy.marketplace, path=path,
            )
            return self.submit(envelope)
        except LedgermindError as e:
            if required:
                raise
            log.warning("refusal of %s to %s not recorded: %s", offer.asset, request.holder, e)
            return -1


class _Prefetched:
    """The items of ``chunks`` with the first pulled at once, so its errors (a wrong key, a tampered first chunk)
    happen before a response starts rather than after its headers are out."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._first = next(chunks)

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield self._first
            yield from self._chunks
        except LedgermindError as e:
            # headers and some bytes are out: all we can do is cut the connection; the client sees a short body
            log.error("stream aborted: %s", e)
            raise

    def close(self) -> None:
        self._chunks.close()  # type: ignore[attr-defined] - a generator: releases its open blob


def _tar_header(path: str, size: int) -> bytes:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime, info.type = size, 0o644, 0, tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _tar_length(enc: EncryptedAsset) -> int:
    return sum(len(_tar_header(f.path, f.size)) + f.size + (-f.size % _BLOCK) for f in enc.files) + len(_TAR_END)


def _tar_stream(enc: EncryptedAsset, blobs: BlobStore, key: bytes) -> Iterator[bytes]:
    for entry in enc.files:
        chunks = decrypt_stream(enc, blobs, key, entry.path)
        yield _tar_header(entry.path, entry.size) + next(chunks)  # the header goes out with authenticated bytes
        yield from chunks
        yield bytes(-entry.size % _BLOCK)
    yield _TAR_END


# ---------------------------------------------------------------------------------------------- HTTP


def access_router(service: AccessService) -> APIRouter:
    """The two endpoints as an ``APIRouter``: ``app.include_router(access_router(service))``."""
    router = APIRouter(tags=["access"])

    def error(e: AccessRefused) -> Response:
        headers = {"WWW-Authenticate": f'EIP712 header="{ACCESS_HEADER}"'} if e.status == 401 else None
        return JSONResponse({"error": str(e)}, status_code=e.status, headers=headers)

    # sync handlers: FastAPI runs them on its thread pool, so signature checks, SQLite and disk never block the loop
    @router.get("/v1/datasets/{dataset_id}/terms")
    def terms(dataset_id: str) -> Response:
        try:
            return JSONResponse(service.terms(dataset_id))
        except AccessRefused as e:
            return error(e)

    @router.get("/v1/datasets/{dataset_id}")
    def download(dataset_id: str, request: Request) -> Response:
        try:
            served = service.download(dataset_id, request.headers.get(ACCESS_HEADER), request.query_params.get("path"))
        except AccessRefused as e:
            return error(e)
        return StreamingResponse(served.body, media_type=served.media_type, headers={
            "Content-Length": str(served.length),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(served.filename)}",
            "X-Ledgermind-Digest": served.digest,
            "X-Ledgermind-Log-Index": str(served.log_index),
        })

    return router

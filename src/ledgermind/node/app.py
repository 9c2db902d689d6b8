"""The node's REST API: a FastAPI app over one ledgermind home (``create_app``), with the web explorer's static
files under ``/explorer``.

Reads are public. State changes are signed by their actor (``ledgermind.node.signing``); request bodies are
capped (413) and each client is rate limited (429). Every error is ``{"error": "<one line>"}``: 4xx for what the
client got wrong, 503 when the chain or the disk is unavailable, 500 only for a bug (logged).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledgermind import __version__
from ledgermind.chain.connection import ChainError
from ledgermind.client import Client
from ledgermind.config import Settings
from ledgermind.errors import LedgermindError, NotFoundError, SignatureError, StorageError
from ledgermind.node.auth import NonceStore, Refused
from ledgermind.node.ratelimit import RateLimit, TokenBuckets
from ledgermind.node.workers import Workers

log = logging.getLogger("ledgermind.node")
STATIC_DIR = Path(__file__).parent / "static"
JSON = "application/json"


@dataclass(frozen=True)
class NodeOptions:
    """Limits and sizing of the API. ``rpc_url`` is only reported (GET /v1/node)."""

    max_body_bytes: int = 1 << 20
    rate: float = 50.0  # requests per second per client address
    burst: int = 200
    readers: int = 4
    rpc_url: str | None = None


@dataclass
class NodeState:
    settings: Settings
    options: NodeOptions
    chain_id: int
    origin: str
    public_key: str
    reads: Workers
    writes: Workers
    nonces: NonceStore


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": " ".join(str(reason).split())[:1000]})  # one line, whatever the reason held
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def _status_of(e: LedgermindError) -> int:
    if isinstance(e, NotFoundError):
        return 404
    if isinstance(e, SignatureError):
        return 400  # a statement's own signature: the request itself was signed fine
    if isinstance(e, ChainError):
        # the chain refused the transaction (a revert: the caller asked for something the contract forbids) or
        # could not be reached (503)
        return 409 if " reverted: " in str(e) or "transaction rejected by" in str(e) else 503
    if isinstance(e, StorageError):
        return 503
    return 400


class BodyLimit:
    """ASGI middleware: refuse (413) a request body over ``limit`` bytes, declared or streamed, before the app
    sees any of it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            reason = "Content-Length is not a number" if not declared.isdigit() else \
                f"request body of {int(declared)} bytes exceeds the {self.limit}-byte limit"
            await _error(400 if not declared.isdigit() else 413, reason)(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _error(413, f"request body exceeds the {self.limit}-byte limit")(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _node_facts(settings: Settings) -> tuple[int, str, str]:
    """(chain id, log origin, log public key) of the home, creating its log if it has none yet. Raises
    ChainError when the chain cannot be reached."""
    with Client(settings=settings) as client:
        store = client.ledger.store
        return client.chain().chain_id, store.origin, store.verifier.vkey()


def create_app(settings: Settings, options: NodeOptions | None = None) -> FastAPI:
    """The API over the home ``settings.home`` (its log is created if missing). Its chain must be reachable: the
    home's running node, ``settings.rpc_url``, or the embedded chain if no other process holds it (then only this
    process may use it). Raises ChainError otherwise."""
    from ledgermind.node.routes import chain as chain_routes, log as log_routes, writes as write_routes

    options = options or NodeOptions()
    # anchoring runs on its own schedule beside the API (``ledgermind up``), not after each request's write
    settings = dataclasses.replace(settings, auto_anchor=False)
    chain_id, origin, public_key = _node_facts(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = NodeState(settings, options, chain_id, origin, public_key,
                          reads=Workers(settings, options.readers, "ledgermind-api-read"),
                          writes=Workers(settings, 1, "ledgermind-api-write"),
                          nonces=NonceStore(settings.home / "node" / "nonces.sqlite"))
        app.state.node = state
        try:
            yield
        finally:
            state.writes.close()
            state.reads.close()
            state.nonces.close()

    app = FastAPI(
        title="ledgermind node", version=__version__, lifespan=lifespan,
        description=(
            "Read the log, assets, lineage, anchors, markets, federations and governance of a ledgermind home; "
            "submit signed statements, register datasets and models by their digests, anchor, vote.\n\n"
            "Writes carry an EIP-712 signature of the actor (headers X-Ledgermind-Signer, -Nonce, -Expiry, "
            "-Signature; see GET /v1/node and `ledgermind.node.signing`). Reads are public. Errors are "
            '`{"error": "<one line>"}`.'),
        responses={413: {"description": "Body too large"}, 429: {"description": "Rate limited"}},
    )

    @app.exception_handler(Refused)
    async def _refused(request: Request, e: Refused) -> Response:
        return _error(e.status, e.reason)

    @app.exception_handler(LedgermindError)
    async def _ledgermind(request: Request, e: LedgermindError) -> Response:
        return _error(_status_of(e), str(e))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg')}" if where else str(first.get("msg")))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> Response:
        return _error(e.status_code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception) -> Response:
        log.exception("request failed: %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(e).__name__}); nothing was changed by this request")

    for module in (log_routes, chain_routes, write_routes):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    async def _root() -> RedirectResponse:
        return RedirectResponse("/explorer/")

    app.mount("/explorer", StaticFiles(directory=STATIC_DIR, html=True, check_dir=False), name="explorer")
    app.add_middleware(BodyLimit, limit=options.max_body_bytes)
    app.add_middleware(RateLimit, buckets=TokenBuckets(options.rate, options.burst))
    return app


def state_of(request: Request) -> NodeState:
    return request.app.state.node


def node_info(state: NodeState) -> dict[str, Any]:
    """What GET /v1/node reports (without the log size, which the caller reads)."""
    from ledgermind.node.auth import MAX_TTL
    from ledgermind.node.signing import (
        DOMAIN_NAME,
        DOMAIN_TYPES,
        DOMAIN_VERSION,
        EXPIRY_HEADER,
        NONCE_HEADER,
        REQUEST_TYPES,
        SIGNATURE_HEADER,
        SIGNER_HEADER,
    )
    from ledgermind.statements import predicate_types

    o = state.options
    return {
        "node": state.origin, "version": __version__, "chainId": state.chain_id, "rpcUrl": o.rpc_url,
        "publicKey": state.public_key, "predicateTypes": predicate_types(),
        "signing": {
            "primaryType": "NodeRequest",
            "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": state.chain_id},
            "types": {"EIP712Domain": DOMAIN_TYPES, **REQUEST_TYPES},
            "headers": {"signer": SIGNER_HEADER, "nonce": NONCE_HEADER, "expiry": EXPIRY_HEADER,
                        "signature": SIGNATURE_HEADER},
            "maxTtl": MAX_TTL,
        },
        "limits": {"maxBodyBytes": o.max_body_bytes, "ratePerSecond": o.rate, "burst": o.burst},
    }


__all__ = ["NodeOptions", "NodeState", "create_app", "node_info", "state_of"]

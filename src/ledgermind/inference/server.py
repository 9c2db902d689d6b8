"""The HTTP face of a provider: a FastAPI app over an ``InferenceService``, and runners for it.

Endpoints (every error is ``{"error": "<one line>"}`` with a 4xx status for anything the client got wrong, never
a 5xx; 503 means the provider could not record or check something and nothing was charged)::

    GET  /healthz                         {"ok": true, "provider": ..., "logSize": ...}
    GET  /v1/models                       the models served, with their terms
    GET  /v1/models/{model_id}            terms: price, token, chainId, channels contract, provider, model digest
    POST /v1/models/{model_id}/infer      body {"inputs": [...]}; headers X-Ledgermind-Ticket
                                          ("<channel id><link>:<voucher amount>:<index>") with, until the provider
                                          has answered a request of its book, X-Ledgermind-Voucher (the ticket book:
                                          voucher JSON with anchor and bookSignature); or X-Ledgermind-Access (an
                                          access request JSON); answers
                                          {"model", "outputs", "price", "receipt": {"logIndex", "envelope"}} (the
                                          receipt's channel field names the voucher and ticket that paid)
    POST /v1/channels/close               body: a voucher for exactly what the payer sent through a channel that
                                          paid ahead with a ticket book; settlement redeems it instead
    GET  /v1/receipts/{index}             a receipt with its inclusion proof and checkpoint (verify offline)

One process, one asyncio loop: payment checks (a hash per request, two signature recoveries per new ticket
book), receipt signing and predictions run on the loop (they take tens of microseconds each and batch well);
chain reads and settlement transactions in worker threads, and the log's commits in its writer thread. While
the server runs it settles every channel about to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledgermind.inference.errors import RequestRefused
from ledgermind.inference.service import (ACCESS_HEADER, MAX_BODY_BYTES, TICKET_HEADER, VOUCHER_HEADER,
                                         InferenceService)

log = logging.getLogger("ledgermind.inference")
JSON = "application/json"


def _error_body(reason: str) -> bytes:
    return orjson.dumps({"error": " ".join(str(reason).split())[:1000]})  # one line, whatever the reason held


def _error(status: int, reason: str) -> Response:
    return Response(_error_body(reason), status_code=status, media_type=JSON)


def _json(obj: Any) -> Response:
    return Response(orjson.dumps(obj), media_type=JSON)


async def _body(request: Request) -> bytes:
    """The request body, refusing (413) anything over MAX_BODY_BYTES before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestRefused(400, "Content-Length is not a number")
        if int(declared) > MAX_BODY_BYTES:
            raise RequestRefused(413, f"request body of {declared} bytes exceeds the {MAX_BODY_BYTES}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestRefused(413, f"request body exceeds the {MAX_BODY_BYTES}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


_INFER_PATH = re.compile(r"/v1/models/([^/]+)/infer")
_VOUCHER_KEY, _ACCESS_KEY = VOUCHER_HEADER.lower().encode(), ACCESS_HEADER.lower().encode()
_TICKET_KEY = TICKET_HEADER.lower().encode()


class ProviderApp(FastAPI):
    """The FastAPI app, with ``POST /v1/models/{id}/infer`` answered before the middleware stack.

    Every other route goes through FastAPI as usual. The inference route is also registered on FastAPI (for
    the OpenAPI description and for anything mounting the app's router), with the same behaviour; here it is
    taken first because the framework's layers (routing, exception middlewares, telemetry, body limits) cost
    about half of the provider's time per request, more than paying and signing together.
    """

    service: InferenceService

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            m = _INFER_PATH.fullmatch(scope["path"])
            if m is not None:
                await self._infer(m.group(1), scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _infer(self, model_id: str, scope: dict[str, Any], receive: Any, send: Any) -> None:
        voucher = ticket = access = declared = None
        for key, value in scope["headers"]:
            if key == _VOUCHER_KEY:
                voucher = value.decode("latin-1")
            elif key == _TICKET_KEY:
                ticket = value.decode("latin-1")
            elif key == _ACCESS_KEY:
                access = value.decode("latin-1")
            elif key == b"content-length":
                declared = value.decode("latin-1")
        status = 200
        try:
            self.service.offer(model_id)  # 404 before reading a body for a model we do not serve
            body = await _read_body(receive, declared)
            payload = await self.service.infer(model_id, body, voucher, access, ticket)
        except RequestRefused as e:
            status, payload = e.status, _error_body(e.reason)
        except Exception as e:  # noqa: BLE001 - a bug of ours: say so, without the details
            log.exception("inference request failed")
            status, payload = 500, _error_body(f"internal error ({type(e).__name__}); nothing was charged")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Any, declared: str | None) -> bytes:
    """An ASGI request body, refusing (413) anything over MAX_BODY_BYTES before reading it all."""
    if declared is not None:
        if not declared.isdigit():
            raise RequestRefused(400, "Content-Length is not a number")
        if int(declared) > MAX_BODY_BYTES:
            raise RequestRefused(413, f"request body of {declared} bytes exceeds the {MAX_BODY_BYTES}-byte limit")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestRefused(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestRefused(413, f"request body exceeds the {MAX_BODY_BYTES}-byte limit")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def create_app(service: InferenceService, *, settle_interval: float = 30.0) -> ProviderApp:
    """The provider's FastAPI app. ``settle_interval``: seconds between checks for channels to settle before
    they expire (0 disables automatic settlement)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if settle_interval > 0 and service.channels is not None and service.account is not None:
            task = asyncio.create_task(_settle_forever(service, settle_interval))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = ProviderApp(title="ledgermind inference provider", version="1", lifespan=lifespan, docs_url=None,
                      redoc_url=None, openapi_url="/openapi.json")
    app.service = app.state.service = service

    @app.exception_handler(RequestRefused)
    async def refused(_: Request, e: RequestRefused) -> Response:
        return _error(e.status, e.reason)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> Response:
        return _error(e.status_code, e.detail if isinstance(e.detail, str) else str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        return _error(422, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")

    @app.exception_handler(Exception)
    async def crashed(_: Request, e: Exception) -> Response:  # a bug of ours: say so, without the details
        log.exception("inference request failed")
        return _error(500, f"internal error ({type(e).__name__}); nothing was charged")

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json(service.health())

    @app.get("/v1/models")
    async def models() -> Response:
        return _json({"models": [service.terms(d) for d in service.offers]})

    @app.get("/v1/models/{model_id}")
    async def terms(model_id: str) -> Response:
        return _json(service.terms(model_id))

    @app.post("/v1/models/{model_id}/infer")
    async def infer(model_id: str, request: Request) -> Response:
        service.offer(model_id)  # 404 before reading a body for a model we do not serve
        body = await _body(request)
        headers = request.headers
        answer = await service.infer(model_id, body, headers.get(VOUCHER_HEADER), headers.get(ACCESS_HEADER),
                                     headers.get(TICKET_HEADER))
        return Response(answer, media_type=JSON)

    @app.post("/v1/channels/close")
    async def close_out(request: Request) -> Response:
        return _json(service.close_out(await _body(request)))

    @app.get("/v1/receipts/{index}")
    async def receipt(index: int) -> Response:
        return _json(service.receipt_bundle(index))

    return app


async def _settle_forever(service: InferenceService, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for done in await service.settle_due():
            log.info("settled channel %s for %s (payout %s) in %s", done["channelId"], done["amount"], done["payout"],
                     done["txHash"])


def serve(service: InferenceService, host: str = "127.0.0.1", port: int = 8080, *, settle_interval: float = 30.0,
          log_level: str = "warning") -> None:
    """Run the provider in this process until interrupted (the CLI's ``ledgermind serve``)."""
    import uvicorn

    uvicorn.run(create_app(service, settle_interval=settle_interval), host=host, port=port, log_level=log_level,
                access_log=False, lifespan="on", proxy_headers=False, server_header=False)


class ServerThread:
    """A provider served by uvicorn in a background thread of this process, on an already bound port (0: any
    free one). For tests and for embedding a provider in another program::

        with ServerThread(service) as server:
            httpx.get(server.url + "/healthz")
    """

    def __init__(self, service: InferenceService, host: str = "127.0.0.1", port: int = 0, *,
                 settle_interval: float = 30.0) -> None:
        import uvicorn

        # proto must say TCP: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and without it
        # every keep-alive response waits ~40 ms for a delayed ACK (Nagle)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(create_app(service, settle_interval=settle_interval), log_level="warning",
                                access_log=False, lifespan="on", proxy_headers=False, server_header=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                        name=f"ledgermind-provider-{self.port}")

    def start(self) -> ServerThread:
        self._thread.start()
        started = threading.Event()

        def wait() -> None:
            while not self.server.started and self._thread.is_alive():
                started.wait(0.005)

        wait()
        if not self.server.started:
            raise RuntimeError(f"the provider on port {self.port} did not start")
        return self

    def stop(self) -> None:
        """Stop accepting requests, finish the ones in flight, and stop."""
        self.server.should_exit = True
        self._thread.join()
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(service: InferenceService, **kw: Any) -> Iterator[str]:
    """``with running(service) as url:`` a ServerThread's URL while it runs."""
    with ServerThread(service, **kw) as server:
        yield server.url


# ---------------------------------------------------------------------- python -m ledgermind.inference.server
def main(argv: list[str] | None = None) -> int:
    """Serve one registered model from a ledgermind home until SIGTERM or SIGINT.

    Prints one JSON line ``{"url": ..., "provider": ..., "model": ...}`` on stdout once the port is listening
    (``--port 0`` picks a free one), so a parent process can wait for it. The chain is the home's (or
    ``LEDGERMIND_RPC_URL``'s). Exit status 2 with a one-line reason on stderr when it cannot start (a model file
    that is not the registered model, no PaymentChannels contract, ...).
    """
    import argparse
    import sys

    import uvicorn

    from ledgermind.client import Client
    from ledgermind.errors import LedgermindError
    from ledgermind.inference.adapters import load_registered
    from ledgermind.inference.channels import ZERO_ADDRESS
    from ledgermind.inference.service import Offer

    parser = argparse.ArgumentParser(prog="python -m ledgermind.inference.server", description=main.__doc__.split("\n")[0])
    parser.add_argument("model", help="the registered model: digest, prefix or name")
    parser.add_argument("--path", help="the model file (default: its copy in the home's blob store)")
    parser.add_argument("--home")
    parser.add_argument("--price", type=int, default=0, help="per input row, in the smallest unit of --token")
    parser.add_argument("--token", default=ZERO_ADDRESS, help="ERC-20 the provider is paid in (default: native coin)")
    parser.add_argument("--channels", help="PaymentChannels address (default: the home's deployment)")
    parser.add_argument("--marketplace", help="Marketplace address: also serve access-token holders")
    parser.add_argument("--margin", type=float, default=300.0, help="seconds before a channel's expiry to stop and settle")
    parser.add_argument("--settle-interval", type=float, default=30.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    client = Client(args.home)
    try:
        model = load_registered(client, args.model, args.path)
        service = InferenceService.from_client(client, [Offer(model, args.price)], token=args.token,
                                               channels_address=args.channels, marketplace=args.marketplace,
                                               margin=args.margin)
    except LedgermindError as e:
        print(f"error: {e}", file=sys.stderr)
        client.close()
        return 2
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    url = f"http://{args.host}:{sock.getsockname()[1]}"
    print(orjson.dumps({"url": url, "provider": service.provider, "model": model.digest,
                        "restored": service.restored}).decode(), flush=True)
    config = uvicorn.Config(create_app(service, settle_interval=args.settle_interval), log_level="warning",
                            access_log=False, lifespan="on", proxy_headers=False, server_header=False)
    # what start-up loaded (web3, the embedded chain, the model) lives as long as the process: keep it out of
    # the garbage collector's scans, which otherwise cost every request more the more the process holds
    gc.collect()
    gc.freeze()
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Serve the access router alone: for tests, and for a provider that runs nothing else.

In-process (a background thread, loopback, port 0 picks a free port)::

    with ProviderServer(provider_app(service)) as server:
        download(server.url, digest, account, "out.csv", chain)

As a process (prints one JSON line ``{"url": ..., "provider": ..., "marketplace": ...}`` once it listens, then
serves until SIGINT/SIGTERM; errors are one line on stderr and exit status 1)::

    python -m ledgermind.access.serve --home HOME [--marketplace ADDR] [--rpc-url URL] [--port 0]

The provider's home gives its account (which signs access statements), log, blob store, ``keys/`` and
``access.sqlite``; the Marketplace address comes from ``--marketplace`` or the home's deployment record.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ledgermind.access.provider import AccessService, access_router
from ledgermind.access.store import AccessStore
from ledgermind.errors import InvalidInputError, LedgermindError, StorageError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ledgermind.client import Client


def provider_app(service: AccessService) -> FastAPI:
    """A FastAPI app with only the access router mounted."""
    from fastapi import FastAPI

    app = FastAPI(title="ledgermind access provider", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(access_router(service))
    return app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class ProviderServer:
    """Uvicorn serving ``app`` on a socket bound up front (so ``url`` is known before the first request).

    ``start()`` returns once the server accepts connections; ``stop()`` shuts it down and releases the port.
    Raises OSError if the port is taken, StorageError if the server fails to start.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ProviderServer:
        import uvicorn

        self._sock = _bind(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="ledgermind-access", daemon=True
        )
        self._thread.start()
        while not self._server.started:  # uvicorn sets it once it accepts; wait on its thread, not a clock
            if not self._thread.is_alive():
                raise StorageError(f"the access server on {self.url} failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving (in-flight responses finish first) and release the port. Idempotent."""
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join()
            self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def service_from_client(client: Client, marketplace: str | None = None) -> tuple[AccessService, AccessStore]:
    """Wire an AccessService to a home through the ``Client`` facade; close the store (then the client) after.

    Statements go through ``Client.submit`` (so the log's anchoring policy applies), one at a time. Raises
    ChainError if the chain is unreachable or ``marketplace`` is not given and not in the deployment record;
    InvalidInputError if there is no contract at ``marketplace``.
    """
    chain = client.chain()
    if marketplace is None:
        marketplace = client.deployments.require(chain, "Marketplace").address
    if not chain.code_at(marketplace):
        raise InvalidInputError(f"no contract at {marketplace} on {chain.describe}: is that the Marketplace?")
    account = client.account()
    lock = threading.Lock()  # the facade opens its parts lazily and is not meant for concurrent callers

    def submit(envelope: Any) -> int:
        with lock:
            return int(client.submit(envelope.to_bytes())["logIndex"])

    store = AccessStore(client.settings.home / "access.sqlite", client.settings.busy_timeout)
    service = AccessService(
        blobs=client.blobs, keys_dir=client.settings.home / "keys", store=store, chain=chain,
        marketplace=marketplace, account=account, submit=submit,
    )
    return service, store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledgermind.access.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--home", help="LEDGERMIND_HOME of the provider")
    parser.add_argument("--account", help="the provider's account (default: the home's default account)")
    parser.add_argument("--marketplace", help="Marketplace address (default: the home's deployment record)")
    parser.add_argument("--rpc-url", help="EVM JSON-RPC URL (default: the embedded chain or its running node)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8600)
    args = parser.parse_args(argv)

    import uvicorn

    from ledgermind.client import Client
    from ledgermind.config import load_settings

    client: Client | None = None
    store: AccessStore | None = None
    try:
        client = Client(settings=load_settings(args.home, account=args.account, rpc_url=args.rpc_url))
        service, store = service_from_client(client, args.marketplace)
        sock = _bind(args.host, args.port)
    except (LedgermindError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        for part in (store, client):
            if part is not None:
                part.close()
        return 1
    try:
        host, port = sock.getsockname()[:2]
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        print(json.dumps({"url": url, "provider": service.account.address, "marketplace": service.policy.marketplace}),
              flush=True)
        server = uvicorn.Server(uvicorn.Config(provider_app(service), log_level="warning", lifespan="off",
                                               access_log=False))
        # uvicorn stops on SIGINT/SIGTERM after in-flight responses, then re-raises the signal to the handler it
        # found: a no-op one lets the cleanup below run and the process exit 0
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)
        server.run(sockets=[sock])
    finally:
        sock.close()
        store.close()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

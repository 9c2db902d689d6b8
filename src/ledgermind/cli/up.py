"""``ledgermind up``: one command for a whole local node on loopback, until SIGINT or SIGTERM.

It serves the home's embedded chain over JSON-RPC (as ``ledgermind node`` does; or uses the chain at ``--rpc-url``),
the REST API and web explorer, and anchors the log on the policy's schedule. On a signal it stops taking requests,
finishes those in flight (each acknowledged write is durable in the log), then stops the chain: the home is left
as after any command.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from ledgermind.cli.common import client_of
from ledgermind.cli.output import err, out
from ledgermind.config import Settings
from ledgermind.errors import InvalidInputError

if TYPE_CHECKING:
    from ledgermind.node.app import NodeOptions

RATE_HELP = "Requests per second per client address (burst: --burst)."


@dataclass
class Up:
    """A running node: ``api_url``, ``rpc_url`` (None when the chain is external), and ``stop()``."""

    api_url: str
    rpc_url: str | None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        """Stop in reverse order of starting: API (in-flight requests finish), anchoring, chain. Idempotent."""
        while self._stops:
            self._stops.pop()()


def start_up(settings: Settings, *, host: str = "127.0.0.1", api_port: int = 8700, rpc_port: int = 8545,
             options: NodeOptions | None = None, report: Callable[[str], None] = lambda line: None) -> Up:
    """Start chain RPC (unless ``settings.rpc_url``), anchoring and API. Raises InvalidInputError (a port taken,
    another node on this home), ChainError (the chain cannot be reached)."""
    import dataclasses

    from ledgermind.chain.connection import node_record
    from ledgermind.cli.node import anchor_loop
    from ledgermind.node.app import NodeOptions, create_app
    from ledgermind.node.serve import LOOPBACK, ApiServer

    if host not in LOOPBACK:
        raise InvalidInputError(f"ledgermind up serves loopback only; {host!r} is not")
    up = Up(api_url="", rpc_url=None)
    try:
        if settings.rpc_url is None:
            from ledgermind.chain.embedded import EmbeddedChain
            from ledgermind.chain.rpc_server import NodeServer

            running = node_record(settings.chain_dir)
            if running is not None:
                raise InvalidInputError(f"a ledgermind node already serves this home's chain at {running['url']}: "
                                        f"stop it, or pass --rpc-url {running['url']}")
            chain = EmbeddedChain(settings.chain_dir, settings.chain_id)
            up._stops.append(chain.close)
            try:
                rpc = NodeServer(chain, host, rpc_port).start()
            except OSError as e:
                raise InvalidInputError(f"cannot serve the chain on {host}:{rpc_port}: {e.strerror}") from None
            up._stops.append(rpc.stop)
            up.rpc_url = rpc.url
        opts = dataclasses.replace(options or NodeOptions(), rpc_url=up.rpc_url or settings.rpc_url)
        api = ApiServer(create_app(settings, opts), host, api_port).start()
        if settings.auto_anchor:
            stop = threading.Event()
            loop = threading.Thread(target=anchor_loop, args=(settings, None, stop, report), daemon=True)
            loop.start()
            up._stops.append(lambda: (stop.set(), loop.join(30)))
        up._stops.append(api.stop)
        up.api_url = api.url
        return up
    except BaseException:
        up.stop()
        raise


def up_command(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", help="Data folder (same as the global --home)."),
    rpc_url: Optional[str] = typer.Option(
        None, "--rpc-url", help="Attach to this chain instead of serving the embedded one (same as the global --rpc-url)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback only)."),
    api_port: int = typer.Option(8700, help="Port of the REST API and explorer (0 picks a free one)."),
    rpc_port: int = typer.Option(8545, help="Port of the chain's JSON-RPC (0 picks a free one; unused with --rpc-url)."),
    rate: float = typer.Option(50.0, help=RATE_HELP),
    burst: int = typer.Option(200, help="Requests a client may send at once before the rate applies."),
    max_body: int = typer.Option(1 << 20, help="Largest request body in bytes (413 beyond)."),
) -> None:
    """Start the chain's JSON-RPC, the REST API and the web explorer on loopback, until interrupted."""
    from ledgermind.node.app import NodeOptions

    if rate <= 0 or burst < 1 or max_body < 1:
        raise InvalidInputError("--rate must be > 0, --burst and --max-body at least 1")
    state = ctx.find_root().obj
    if home is not None or rpc_url is not None:
        state.update({k: v for k, v in (("home", home), ("rpc_url", rpc_url)) if v is not None})
    settings = client_of(ctx).settings
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    up = start_up(settings, host=host, api_port=api_port, rpc_port=rpc_port,
                  options=NodeOptions(max_body_bytes=max_body, rate=rate, burst=burst),
                  report=lambda line: err.print(line, markup=False))
    try:
        if up.rpc_url:
            out.print(f"chain JSON-RPC  {up.rpc_url}  (chain {settings.chain_dir})", markup=False)
        else:
            out.print(f"chain JSON-RPC  {settings.rpc_url}  (external)", markup=False)
        out.print(f"REST API        {up.api_url}/v1  (OpenAPI: {up.api_url}/openapi.json, docs: {up.api_url}/docs)",
                  markup=False)
        out.print(f"explorer        {up.api_url}/explorer/", markup=False)
        out.file.flush()
        while not done.wait(0.5):
            pass
    finally:
        up.stop()
    err.print("ledgermind up: stopped", markup=False)

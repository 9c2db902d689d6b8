"""Serving and using AI assets: ``serve``, ``infer``, ``download``, ``providers``, ``receipt verify`` and
``channel open|status|close``. Thin calls on the Client; ``serve`` runs until SIGINT or SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from ledgermind.cli.common import JsonOpt, after_write, client_of
from ledgermind.cli.output import emit_json, err, out, print_report
from ledgermind.cli.units import format_amount, parse_amount, parse_duration
from ledgermind.errors import InvalidInputError, LedgermindError, NotFoundError

receipt_app = typer.Typer(no_args_is_help=True, help="Inference receipts: check what a provider answered.")
channel_app = typer.Typer(no_args_is_help=True, help="Your payment channels to inference providers.")


def serve(
    ctx: typer.Context,
    models: list[str] = typer.Argument(None, metavar="[MODEL]...", help="Registered models to serve."),
    path: list[Path] = typer.Option([], "--path", help="Each model's file, in order (default: its stored copy)."),
    price: str = typer.Option("0", "--price", help="Per input row, e.g. 1gwei (0: free, receipts still signed)."),
    token: str = typer.Option("native", "--token", help="Paid in: native, demo (LMPAY) or an ERC-20 address."),
    datasets: bool = typer.Option(True, "--datasets/--no-datasets", help="Also serve the private datasets offered here."),
    announce: bool = typer.Option(False, "--announce", help="Announce each model's endpoint on chain (must be minted)."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="The URL to announce (default: where it listens)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port (0 picks a free one)."),
    settle_interval: float = typer.Option(30.0, "--settle-interval", help="Seconds between settling expiring channels."),
) -> None:
    """Serve models for payment (a signed receipt per answer) and private datasets to their holders.

    On the embedded chain it also serves the chain over JSON-RPC (as 'ledgermind node' does), so clients on this
    machine can pay."""
    import uvicorn

    from ledgermind.chain.connection import node_record

    models = models or []
    if path and len(path) != len(models):
        raise InvalidInputError(f"give one --path per model ({len(models)} models, {len(path)} paths) or none")
    client = client_of(ctx)
    settings = client.settings
    node = chain = None
    if settings.rpc_url is None and node_record(settings.chain_dir) is None:
        from ledgermind.chain.embedded import EmbeddedChain
        from ledgermind.chain.rpc_server import NodeServer

        chain = EmbeddedChain(settings.chain_dir, settings.chain_id)
        node = NodeServer(chain, "127.0.0.1", 0).start()
    provider = None
    try:
        pairs: list[tuple[str, Any]] = [(m, path[i] if path else None) for i, m in enumerate(models)]
        provider = client.provider(pairs, price=parse_amount(price), token=token, datasets=datasets,
                                   settle_interval=settle_interval)
        sock = _bind(host, port)
        url = f"http://{host}:{sock.getsockname()[1]}"
        if announce:
            for m in provider.models:
                client.announce(m["id"], endpoint or url, int(m["price"]), m["token"])
        info = {"url": url, "provider": provider.address, "models": provider.models, "datasets": provider.datasets,
                "chain": node.url if node else (settings.rpc_url or "node")}
        config = uvicorn.Config(provider.app, log_level="warning", access_log=False, lifespan="on",
                                proxy_headers=False, server_header=False)
        server = uvicorn.Server(config)
        # Once running, uvicorn stops on SIGINT/SIGTERM after answering in-flight requests, then re-raises the
        # signal to the handler it found. This one, set before the ready line below, makes a signal that comes
        # before uvicorn runs stop it as soon as it starts, and lets the cleanup below run (node record removed,
        # chain closed) for an exit 0 either way.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
        # one JSON line first, so a parent process can wait for it; then the human summary on stderr
        print(json.dumps(info), flush=True)
        for m in provider.models:
            err.print(f"serving model {escape(m['name'])} {m['id'][:12]} at {url}/v1/models/{m['id']} for "
                      f"{format_amount(m['price'], m['token'])} per row")
        for d in provider.datasets:
            err.print(f"serving private dataset {escape(d['name'])} {d['id'][:12]} to holders")
        server.run(sockets=[sock])
    finally:
        if provider is not None:
            provider.close()
        client.close()
        if node is not None:
            node.stop()
        if chain is not None:
            chain.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (TCP_NODELAY-capable: proto set, see inference.server.ServerThread)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InvalidInputError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    return sock


def _inputs(text: str) -> Any:
    """``--input`` as JSON, or ``@FILE`` holding JSON."""
    if text.startswith("@"):
        p = Path(text[1:]).expanduser()
        if not p.is_file():
            raise NotFoundError(f"no such input file: {p}")
        text = p.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"--input is not JSON: {e}") from None


def infer(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL", help="The model: its digest, or its name if registered here."),
    input_: str = typer.Option(..., "--input", "-i", help='Inputs as JSON (e.g. "[[1.0, 2.0]]") or @FILE.'),
    provider: list[str] = typer.Option([], "--provider", help="Provider URL (repeat); default: discovered on chain."),
    deposit: Optional[str] = typer.Option(None, "--deposit", help="Open a channel with this deposit if none is open."),
    access: bool = typer.Option(False, "--access", help="Use your access token or licence instead of paying."),
    receipt: Optional[Path] = typer.Option(None, "--receipt", help="Save the receipt bundle (verifiable offline) here."),
    as_json: bool = JsonOpt,
) -> None:
    """Run a model at a provider, pay per request through a payment channel, and check the signed receipt."""
    client = client_of(ctx)
    result = client.infer(model, _inputs(input_), providers=provider,
                          deposit=parse_amount(deposit) if deposit else 0, use_access=access)
    if receipt is not None:
        result["receiptBundle"] = str(_save_receipt(result, receipt))
    if as_json:
        emit_json(result)
        return
    out.print(json.dumps(result["outputs"]))
    err.print(f"paid {result['price']} to {result['provider']} at {result['endpoint']}; receipt at its log index "
              f"{result['receipt']['logIndex']} checked" + (f", bundle in {receipt}" if receipt else ""))


def _save_receipt(result: dict[str, Any], target: Path) -> Path:
    import httpx

    url = f"{result['endpoint']}/v1/receipts/{result['receipt']['logIndex']}"
    try:
        r = httpx.get(url, timeout=30)
    except httpx.HTTPError as e:
        raise LedgermindError(f"cannot fetch the receipt bundle from {url}: {e}") from None
    if r.status_code != 200:
        raise LedgermindError(f"{url} answered {r.status_code}: {r.text[:200]}")
    target = target.expanduser()
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(r.content)
    tmp.replace(target)
    return target


def download(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="ID", help="The dataset: its digest, or its name if registered here."),
    provider: str = typer.Option(..., "--from", help="The provider's URL."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write it (default: its name here)."),
    path: Optional[str] = typer.Option(None, "--path", help="Only this file of a folder dataset."),
    as_json: bool = JsonOpt,
) -> None:
    """Download a private dataset as a holder of its access token or licence (verified before it is kept)."""
    where = client_of(ctx).download(ref, provider, output, path=path)
    emit_json({"path": str(where)}) if as_json else out.print(f"downloaded and verified {where}")


def providers(ctx: typer.Context, model: str = typer.Argument(..., metavar="MODEL"), as_json: bool = JsonOpt) -> None:
    """The providers announced on chain for a model."""
    rows = client_of(ctx).providers(model)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no provider announced")
    for p in rows:
        out.print(f"{p['provider']}  {p['endpoint']}  {format_amount(p['price'], p['token'])} per row")


def settle(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """As a provider: redeem the vouchers of your channels on chain now ('market withdraw' then collects)."""
    rows = client_of(ctx).settle()
    if as_json:
        emit_json(rows)
    elif not rows:
        out.print("nothing to settle")
    for r in rows if not as_json else []:
        out.print(f"settled {r['channelId'][:18]}… for {r['amount']} (+{r['payout']}, tx {r['txHash']})")


@receipt_app.command("verify")
def receipt_verify(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="BUNDLE|INDEX",
                                 help="A receipt bundle file (from 'infer --receipt'), or a log index of this home's log."),
    model: Optional[str] = typer.Option(None, "--model", help="The model the receipt must name."),
    log_key: Optional[str] = typer.Option(None, "--log-key", help="Pin the provider's log public key."),
    as_json: bool = JsonOpt,
) -> None:
    """Check a receipt: the provider's signature, its inclusion in its log, the model it names (exit 0 if all pass)."""
    client = client_of(ctx)
    report = client.verify_receipt(int(target) if target.isdigit() else target, model=model, log_key=log_key)
    data = report.to_json()
    emit_json(data) if as_json else print_report(data)
    if not report.ok:
        raise typer.Exit(1)


@channel_app.command("open")
def channel_open(
    ctx: typer.Context,
    provider: str = typer.Argument(..., metavar="PROVIDER", help="The provider's address (see 'providers MODEL')."),
    deposit: str = typer.Option(..., "--deposit", help="What the channel holds, e.g. 0.001ether."),
    token: Optional[str] = typer.Option(None, "--token", help='"native" (default), "demo" or an ERC-20 address.'),
    duration: str = typer.Option("1d", "--duration", help="How long until you may reclaim what is left (e.g. 7d)."),
    as_json: bool = JsonOpt,
) -> None:
    """Open a payment channel to a provider; 'infer' then pays through it (it opens one itself with --deposit)."""
    client = client_of(ctx)
    row = client.open_channel(provider, parse_amount(deposit), token=token, duration=parse_duration(duration))
    emit_json(row) if as_json else out.print(f"opened {row['channelId'][:18]}… to {row['recipient']} holding "
                                             f"{row['deposit']}, expires {row['expiry']}")
    after_write(client)


@channel_app.command("status")
def channel_status(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Your channels: deposit, how much you promised, how much the provider redeemed, expiry."""
    rows = client_of(ctx).channels()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no payment channels")
    for c in rows:
        state = "closed" if c["closed"] else f"expires {c['expiry']}"
        out.print(f"{c['channelId'][:18]}… to {c['recipient']}: promised {c['issued']} of {c['deposit']}, "
                  f"redeemed {c['paid']}, {state}")


@channel_app.command("close")
def channel_close(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Close your expired channels and collect what their providers did not redeem (a channel stays open to its
    provider until it expires, so the provider can always redeem what it served)."""
    client = client_of(ctx)
    rows = client.reclaim()
    if as_json:
        emit_json(rows)
    elif not rows:
        out.print("no expired channel to reclaim")
    for r in rows if not as_json else []:
        out.print(f"reclaimed {r['channelId'][:18]}…: refund {r['refund']} (tx {r['txHash']})")
    after_write(client)

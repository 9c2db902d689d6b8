"""``ledgermind guard scan|watch|health`` and ``ledgermind alerts [show ID]``: abuse and health of the chain, as
signed alerts in the log. Thin calls on ``ledgermind.guard.service``; ``watch`` runs until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
from typing import Any, Optional

import typer
from rich.markup import escape

from ledgermind.cli.common import JsonOpt, after_write, client_of
from ledgermind.cli.output import emit_json, err, out
from ledgermind.guard import service
from ledgermind.guard.alerts import KINDS

guard_app = typer.Typer(no_args_is_help=True, help="Watch the chain: abuse detectors, network health, signed alerts.")
alerts_app = typer.Typer(help="The guard's alerts in the log; 'alerts show ID' re-checks one.")

RpcOpt = typer.Option(None, "--rpc-url", help="Watch this chain (overrides the global --rpc-url).")


def _client(ctx: typer.Context, rpc_url: str | None) -> Any:
    if rpc_url is not None:
        ctx.find_root().obj["rpc_url"] = rpc_url
    return client_of(ctx)


def _print_alert(a: dict[str, Any]) -> None:
    out.print(f"[bold red]{a['kind']}[/] {a['id'][:12]} score {a['score']:.3g} (threshold {a['threshold']:.3g}): "
              f"{escape(a['summary'])}" + (f", log index {a['logIndex']}" if "logIndex" in a else ""))


def _print_scan(result: dict[str, Any]) -> None:
    if "error" in result:
        err.print(f"[yellow]scan failed, retrying:[/] {escape(result['error'])}")
        return
    s = result["sync"]
    out.print(f"chain {result['chainId']} head {result['head']}: indexed {s['blocks']} blocks, {s['transactions']} "
              f"transactions" + (f" (reorganisation of {s['reorg']} blocks)" if s["reorg"] else "") +
              f"; {len(result['alerts'])} new alerts, {result['known']} already recorded")
    for a in result["alerts"]:
        _print_alert(a)


@guard_app.command("scan")
def guard_scan(ctx: typer.Context, rpc_url: Optional[str] = RpcOpt, as_json: bool = JsonOpt) -> None:
    """Index the chain up to its head, run the detectors, and append new alerts signed by the acting account."""
    client = _client(ctx, rpc_url)
    result = service.scan(client)
    emit_json(result) if as_json else _print_scan(result)
    after_write(client)


@guard_app.command("watch")
def guard_watch(ctx: typer.Context, rpc_url: Optional[str] = RpcOpt,
                interval: float = typer.Option(5.0, "--interval", help="Seconds between scans."),
                as_json: bool = JsonOpt) -> None:
    """Scan every --interval seconds until SIGINT or SIGTERM (one line per scan, or one JSON object per line)."""
    import json

    client = _client(ctx, rpc_url)
    stopping = {"now": False}

    def stop(*_: object) -> None:
        stopping["now"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)

    def report(result: dict[str, Any]) -> None:
        if as_json:
            out.file.write(json.dumps(result) + "\n")
            out.file.flush()
        else:
            _print_scan(result)

    scans = service.watch(client, interval, lambda: stopping["now"], report)
    err.print(f"stopped after {scans} scans")


@guard_app.command("health")
def guard_health(ctx: typer.Context, rpc_url: Optional[str] = RpcOpt, as_json: bool = JsonOpt) -> None:
    """The chain's normal profile, departures from it, health alerts in the log, recommended parameters."""
    h = service.health(_client(ctx, rpc_url))
    if as_json:
        emit_json(h)
        return
    p = h["profile"]
    out.print(f"chain {p['chainId']} up to block {p['head']}: {p['blocks']} blocks, {p['transactions']} transactions "
              f"in {p['windows']} windows of {p['window']}")
    bi, gb = p["blockInterval"], p["gasPerBlock"]
    if bi["median"] is not None:
        out.print(f"  block interval median {bi['median']:g} s (p90 {bi['p90']:g} s); gas per block median "
                  f"{gb['median']:,.0f} ({gb['utilisation']:.1%} of the limit); failed transactions {p['failedRate']:.1%}")
    out.print("  pending backlog: " + (f"{p['pending']['current']} now, median {p['pending']['median']}"
                                      if p["pending"] else "not exposed by this node"))
    if not p["ready"]:
        out.print(f"  [yellow]learning:[/] departures are checked once there are more than "
                  f"{service.health_mod.HEALTH_DEFAULTS['min_windows']} windows")
    for name, m in p["metrics"].items():
        out.print(f"  {name:<16} now {m['current']:.4g}  normal {m['baseline']:.4g} ± {m['spread']:.3g}  z {m['z']:+.1f}")
    for contract, m in p["contracts"].items():
        out.print(f"  calls to {contract}: {m['current']:.0%} of the window (normally {m['baseline']:.0%})")
    if p["isolationScore"] is not None:
        out.print(f"  isolation score of the newest window {p['isolationScore']:.3f} (about 0.5 is unremarkable)")
    for a in h["departures"]:
        _print_alert(a)
    if not h["departures"]:
        out.print("[green]no departure from the normal profile[/]")
    if h["alerts"]:
        out.print(f"{len(h['alerts'])} health alerts recorded in the log (ledgermind alerts --kind health)")
    r = h["recommendations"]
    g, an = r["gasPrice"], r["anchoring"]
    out.print(f"gas price: maxPriorityFeePerGas {g['maxPriorityFeePerGas']:,} wei, maxFeePerGas {g['maxFeePerGas']:,} "
              f"wei ({g['basis']})")
    out.print(f"anchoring: every {an['everySeconds']:g} s or {an['everyEntries']} statements "
              f"({an['gasPerStatement']:.1f} gas per statement): {an['env']}")


@alerts_app.callback(invoke_without_command=True)
def alerts_list(ctx: typer.Context, kind: Optional[str] = typer.Option(None, "--kind", help="Only this kind."),
                as_json: bool = JsonOpt) -> None:
    """List the alerts recorded in the log, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"expected one of {', '.join(KINDS)}", param_hint="--kind")
    rows = service.alerts(client_of(ctx), kind)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no alerts")
    for a in rows:
        _print_alert(a)


@alerts_app.command("show")
def alerts_show(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID"), as_json: bool = JsonOpt) -> None:
    """An alert, its evidence, and a re-check of it against the chain index; exit 1 if any check fails."""
    shown = service.show(client_of(ctx), ref)
    if as_json:
        emit_json(shown)
    else:
        a = shown["alert"]
        _print_alert({**a, "id": shown["id"], "logIndex": shown["logIndex"]})
        out.print(f"  subjects: {', '.join(a['subjects'])}")
        out.print(f"  detector: {a['detector']['name']} v{a['detector']['version']} ({a['detector']['digest'][:16]}…), "
                  f"chain {a['chainId']} up to block {a['head']}, raised {a['raisedAt']}")
        out.print("  features: " + ", ".join(f"{k}={v:g}" for k, v in a["features"].items()))
        out.print(f"  evidence: {len(a['evidence'])} transactions" +
                  (f" ({', '.join(h[:12] + '…' for h in a['evidence'][:4])}{', …' if len(a['evidence']) > 4 else ''})"
                   if a["evidence"] else ""))
        for c in shown["checks"]:
            out.print(f"[{'bold green' if c['ok'] else 'bold red'}]{'PASS' if c['ok'] else 'FAIL'}[/] "
                      f"{c['check']:<11} {escape(c['detail'])}")
    if not shown["ok"]:
        raise typer.Exit(1)

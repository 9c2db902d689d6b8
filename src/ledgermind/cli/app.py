"""``ledgermind``: every command is a call on ledgermind.Client; every read command has ``--json``.

Errors print one line (``error: ...``) on stderr and exit 1; usage errors exit 2; nothing prints a
traceback unless LEDGERMIND_DEBUG=1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from ledgermind import __version__
from ledgermind.cli.common import JsonOpt, after_write, client_of
from ledgermind.cli.federated import fed_app
from ledgermind.cli.governance import gov_app
from ledgermind.cli.guard import alerts_app, guard_app
from ledgermind.cli.market import balance, market_app
from ledgermind.cli.oracle import insurance_app, oracle_app
from ledgermind.cli.serving import channel_app, download, infer, providers, receipt_app, serve, settle
from ledgermind.cli.up import up_command
from ledgermind.cli.output import emit_json, err, hashing_progress, lineage_tree, out, print_report
from ledgermind.client import Client
from ledgermind.errors import InvalidInputError, LedgermindError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Verifiable, ownable, decentralized AI: provenance log, signed statements, lineage, verify.",
)
account_app = typer.Typer(no_args_is_help=True, help="Local accounts (Ethereum keystores): your actor identity.")
register_app = typer.Typer(no_args_is_help=True, help="Register datasets and models as signed statements.")
log_app = typer.Typer(no_args_is_help=True, help="The transparency log: size, checkpoints, entries, fsck.")
app.add_typer(account_app, name="account")
app.add_typer(register_app, name="register")
app.add_typer(log_app, name="log")

@app.callback()
def main_callback(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", help="Data folder (default: $LEDGERMIND_HOME or ~/.ledgermind)."),
    account: Optional[str] = typer.Option(None, "--account", help="Acting account address (default: the default account)."),
    rpc_url: Optional[str] = typer.Option(
        None, "--rpc-url", help="An EVM chain's JSON-RPC URL (default: $LEDGERMIND_RPC_URL, else the embedded chain)."
    ),
    chain_id: Optional[int] = typer.Option(None, "--chain-id", help="Refuse any chain that reports another chain id."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit()
    ctx.obj = {"home": home, "account": account, "rpc_url": rpc_url, "chain_id": chain_id, "client": None}


# ---------------------------------------------------------------------- accounts
@account_app.command("new")
def account_new(
    ctx: typer.Context,
    default: bool = typer.Option(False, "--default", help="Make it the default account."),
    as_json: bool = JsonOpt,
) -> None:
    """Create an account (password from LEDGERMIND_PASSWORD; empty for a dev account). Prints its address only."""
    client = client_of(ctx)
    address = client.new_account(make_default=default)
    emit_json({"address": address}) if as_json else out.print(address)


@account_app.command("list")
def account_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """List account addresses; the default one is marked."""
    rows = client_of(ctx).accounts()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no accounts yet (one is created on first use)")
    for r in rows:
        out.print(f"{r['address']}{'  (default)' if r['default'] else ''}")


# ---------------------------------------------------------------------- registration
def _print_registration(r: dict[str, Any]) -> None:
    verb = "registered" if r["created"] else "already registered"
    out.print(f"{verb} {r['kind']} [bold]{escape(r['name'])}[/] id [cyan]{r['id']}[/] at log index {r['logIndex']} by {r['signer']}")


@register_app.command("dataset")
def register_dataset(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Dataset file or folder."),
    name: Optional[str] = typer.Option(None, help="Name (default: the file or folder name)."),
    licence: Optional[str] = typer.Option(None, "--licence", "--license", help="Licence, e.g. CC-BY-4.0."),
    source: Optional[str] = typer.Option(None, help="Where the data comes from (URL, institution...)."),
    consent: Optional[bool] = typer.Option(None, "--consent/--no-consent", help="Personal data collected with consent."),
    pii: Optional[bool] = typer.Option(None, "--pii/--no-pii", help="Whether it contains personal data."),
    store: bool = typer.Option(False, "--store", help="Also copy the bytes into the local content store."),
    private: bool = typer.Option(
        False, "--private", help="Keep an encrypted copy to serve to holders of its access tokens or licences."
    ),
    mint_it: bool = typer.Option(False, "--mint", help="Also mint the dataset as an ERC-721 token to the actor."),
    as_json: bool = JsonOpt,
) -> None:
    """Fingerprint a dataset and append its signed registration to the log."""
    if private and store:
        raise InvalidInputError("--private keeps an encrypted copy; --store would keep the plaintext too: choose one")
    client = client_of(ctx)
    with hashing_progress(f"hashing {path.name}") as progress:
        r = client.register_dataset(
            path, name=name, licence=licence, source=source, consent=consent, contains_pii=pii, store=store,
            progress=progress,
        )
    info = r.to_json()
    if private:
        info["private"] = client.offer_dataset(r.digest, path)
    _finish_registration(client, info, mint_it, as_json)


def _finish_registration(client: Client, r: dict[str, Any], mint_it: bool, as_json: bool) -> None:
    if mint_it:
        r["token"] = client.mint(r["id"])
    after_write(client)
    if as_json:
        emit_json(r)
        return
    _print_registration(r)
    if mint_it:
        _print_mint(r["token"])


def _print_mint(t: dict[str, Any]) -> None:
    out.print(f"minted token [cyan]{t['tokenId'][:18]}…[/] to {t['owner']} on chain {t['chainId']} "
              f"(contract {t['contract']}, tx {t['txHash']}, {t['gasUsed']:,} gas)")


def _json_file(path: Optional[Path], what: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise InvalidInputError(f"{what} file {path} does not exist") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"{what} file {path} is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} file {path} must hold a JSON object")
    return value


def _pairs(items: list[str], what: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"{what} {item!r} must look like key=value")
        try:
            result[key] = json.loads(raw)
        except json.JSONDecodeError:
            result[key] = raw
    return result


@register_app.command("model")
def register_model(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Model file or folder (weights, config...)."),
    trained_on: list[str] = typer.Option(..., "--trained-on", help="Dataset id, digest prefix or name (repeat)."),
    parent: list[str] = typer.Option([], "--parent", help="Parent model it was derived from (repeat)."),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="JSON file of metrics, e.g. {\"accuracy\": 0.93}."),
    param: list[str] = typer.Option([], "--param", help="Hyperparameter key=value (repeat)."),
    code_rev: Optional[str] = typer.Option(None, "--code-rev", help="Code revision (git commit) that trained it."),
    framework: Optional[str] = typer.Option(None, help="Framework (guessed from the file type)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Serialization format (guessed from the file type)."),
    name: Optional[str] = typer.Option(None, help="Name (default: the file or folder name)."),
    store: bool = typer.Option(False, "--store", help="Also copy the bytes into the local content store."),
    mint_it: bool = typer.Option(False, "--mint", help="Also mint the model as an ERC-721 token (parents must be minted)."),
    as_json: bool = JsonOpt,
) -> None:
    """Register a model with its lineage: the datasets it was trained on and its parent models."""
    client = client_of(ctx)
    with hashing_progress(f"hashing {path.name}") as progress:
        r = client.register_model(
            path, trained_on=trained_on, parents=parent, metrics=_json_file(metrics, "metrics"),
            hyperparameters=_pairs(param, "--param"), code_rev=code_rev, framework=framework, format=fmt,
            name=name, store=store, progress=progress,
        )
    _finish_registration(client, r.to_json(), mint_it, as_json)


@app.command("event")
def event(
    ctx: typer.Context,
    domain: str = typer.Argument(..., help="Domain, e.g. supply-chain, energy, healthcare."),
    type_: str = typer.Argument(..., metavar="TYPE", help="Event type, e.g. shipped, meter-reading."),
    related: list[str] = typer.Option([], "--related", help="Registered asset it concerns (repeat)."),
    data: Optional[str] = typer.Option(None, "--data", help="JSON object, or @FILE holding one."),
    as_json: bool = JsonOpt,
) -> None:
    """Record a signed domain event (a supply-chain step, a reading...) in the log."""
    payload: dict[str, Any] = {}
    if data:
        if data.startswith("@"):
            payload = _json_file(Path(data[1:]), "--data")
        else:
            try:
                payload = json.loads(data)
            except json.JSONDecodeError as e:
                raise InvalidInputError(f"--data is not JSON: {e}") from e
            if not isinstance(payload, dict):
                raise InvalidInputError("--data must be a JSON object")
    client = client_of(ctx)
    r = client.record_event(domain=domain, type=type_, data=payload, related=related)
    after_write(client)
    if as_json:
        emit_json(r.to_json())
    else:
        out.print(f"recorded {domain}/{type_} event about [cyan]{r.digest[:12]}[/] at log index {r.log_index}")


@app.command("submit")
def submit(
    ctx: typer.Context,
    envelope: Path = typer.Argument(..., help="A DSSE envelope (JSON) holding a signed in-toto statement."),
    as_json: bool = JsonOpt,
) -> None:
    """Append a statement signed elsewhere, after checking its signature and contents."""
    try:
        raw = envelope.read_bytes()
    except FileNotFoundError as e:
        raise InvalidInputError(f"no such file: {envelope}") from e
    except IsADirectoryError as e:
        raise InvalidInputError(f"{envelope} is a folder, expected a DSSE envelope JSON file") from e
    client = client_of(ctx)
    r = client.submit(raw)
    after_write(client)
    emit_json(r) if as_json else out.print(f"appended at log index {r['logIndex']}, signed by {r['signer']}")


# ---------------------------------------------------------------------- reads
@app.command("list")
def list_registered(
    ctx: typer.Context,
    kind: Optional[str] = typer.Option(None, help="Only 'dataset' or 'model'."),
    as_json: bool = JsonOpt,
) -> None:
    """List the datasets and models registered in the log."""
    if kind not in (None, "dataset", "model"):
        raise InvalidInputError("--kind must be 'dataset' or 'model'")
    rows = client_of(ctx).assets(kind)
    if as_json:
        emit_json(rows)
        return
    from rich.table import Table

    table = Table("id", "kind", "name", "log index", "signer", box=None)
    for r in rows:
        table.add_row(r["id"][:16], r["kind"], escape(r["name"]), str(r["logIndex"]), r["signer"])
    out.print(table)


@app.command("show")
def show(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID"), as_json: bool = JsonOpt) -> None:
    """Show an asset's registration statement and the statements about it."""
    info = client_of(ctx).show(ref)
    if as_json:
        emit_json(info)
        return
    out.print(f"[bold]{info['kind']}[/] {escape(info['name'])} [cyan]{info['id']}[/] (log index {info['logIndex']}, by {info['signer']})")
    out.print_json(json.dumps(info["statement"]["predicate"]))


@app.command("inspect")
def inspect_cmd(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="PATH|ID", help="A dataset file or folder, or a registered dataset."),
    against: Optional[Path] = typer.Option(None, "--against", help="A training table to check this one against."),
    as_json: bool = JsonOpt,
) -> None:
    """Data-quality report: missing values, duplicates, label balance, outliers, PII, train/test leakage."""
    report = client_of(ctx).inspect(target, against)
    if as_json:
        emit_json(report)
        return
    reg = report["registered"]
    out.print(f"[bold]{escape(report['target'])}[/]" + (f" (registered {reg['id'][:12]}, log index {reg['logIndex']})"
                                                        if reg else ""))
    for t in report["tables"]:
        label = t.get("label")
        balance = (f", label {label['column']!r}: " + ", ".join(f"{k}={v}" for k, v in label["classes"].items())
                   if label else "")
        out.print(f"  {escape(t['file'])}: {t['rows']} rows ({t['checked_rows']} checked), {len(t['columns'])} columns, "
                  f"{t['duplicates']} duplicates{escape(balance)}")
    if report.get("leakage"):
        leak = report["leakage"]
        out.print(f"  leakage {escape(leak['train'])} -> {escape(leak['test'])}: {leak['exact']} exact, "
                  f"{leak['near']} near duplicates of {leak['testRows']} rows")
    if not report["issues"]:
        out.print("[bold green]no issues found[/]")
    for issue in report["issues"]:
        out.print(f"[yellow]issue[/] {escape(issue)}")


@app.command("lineage")
def lineage(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID"), as_json: bool = JsonOpt) -> None:
    """Show a model's tree back to its source datasets."""
    tree = client_of(ctx).lineage(ref)
    emit_json(tree) if as_json else out.print(lineage_tree(tree))


@app.command("verify")
def verify(
    ctx: typer.Context,
    target: Optional[str] = typer.Argument(None, metavar="PATH|ID", help="File, folder or registered id to verify."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Verify offline against this bundle (no log needed)."),
    expect: Optional[str] = typer.Option(None, "--id", help="Registered asset the PATH must match."),
    log_key: Optional[str] = typer.Option(None, "--log-key", help="Pin the log's public key (name+id+key) for --bundle."),
    as_json: bool = JsonOpt,
) -> None:
    """Recompute the fingerprint and check signature, inclusion proof and checkpoint. Exit 0 only if all pass."""
    if bundle is None and target is None:
        raise InvalidInputError("give a PATH or ID to verify, or --bundle FILE [PATH]")
    with hashing_progress("hashing") as progress:
        if bundle is not None:
            rpc = ctx.find_root().obj["rpc_url"] or os.environ.get("LEDGERMIND_RPC_URL")
            report = Client.verify_bundle(bundle, target, log_key=log_key, rpc_url=rpc, progress=progress)
        else:
            report = client_of(ctx).verify(target, expect=expect, progress=progress)  # type: ignore[arg-type]
    emit_json(report.to_json()) if as_json else print_report(report.to_json())
    if not report.ok:
        raise typer.Exit(1)


@app.command("bundle")
def bundle_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="ID"),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the bundle JSON."),
    as_json: bool = JsonOpt,
) -> None:
    """Export a self-contained bundle (statements, inclusion proofs, checkpoint, log key) for offline verify."""
    path = client_of(ctx).export_bundle(ref, output)
    emit_json({"bundle": str(path)}) if as_json else out.print(f"wrote {path}")


# ---------------------------------------------------------------------- chain
@app.command("assets")
def assets(
    ctx: typer.Context,
    owner: Optional[str] = typer.Option(None, "--owner", help="Whose tokens (default: the acting account)."),
    as_json: bool = JsonOpt,
) -> None:
    """List the asset tokens an account owns on the chain."""
    rows = client_of(ctx).owned(owner)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("no asset tokens owned")
    from rich.table import Table

    table = Table("token id", "kind", "name", "log index", "chain", box=None)
    for r in rows:
        table.add_row(r["tokenId"][:18] + "…", r["kind"], escape(str(r["name"])), str(r["logIndex"]), str(r["chainId"]))
    out.print(table)


@app.command("mint")
def mint_cmd(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID"), as_json: bool = JsonOpt) -> None:
    """Mint a registered dataset or model as an ERC-721 token to the acting account."""
    t = client_of(ctx).mint(ref)
    emit_json(t) if as_json else _print_mint(t)


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    grant: list[str] = typer.Option([], "--grant", help="Also let this address anchor and mint (repeat)."),
    as_json: bool = JsonOpt,
) -> None:
    """Deploy the contracts on the chain (idempotent) and record them under LEDGERMIND_HOME/deployments."""
    info = client_of(ctx).deploy(grant)
    if as_json:
        emit_json(info)
        return
    for name, d in info["contracts"].items():
        out.print(f"{name:<15} {d['address']}  block {d['block_number']}  tx {d['tx_hash']}")
    out.print(f"chain {info['chainId']}: deployed")


@app.command("anchor")
def anchor(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Anchor the log's latest checkpoint on the chain now (queued and retried if the chain fails)."""
    info = client_of(ctx).anchor()
    if as_json:
        emit_json(info)
        return
    a = info["anchored"]
    if a is None:
        out.print("nothing to anchor: the log is empty")
    else:
        out.print(f"tree size {a['treeSize']} anchored on chain {a['chainId']} in {a['contract']} "
                  f"(tx {a['txHash']}, block {a['blockNumber']}); log size {info['logSize']}")


@app.command("anchors")
def anchors(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """List anchors: anchored, queued (with their last error) and superseded."""
    rows = client_of(ctx).anchors()
    if as_json:
        emit_json(rows)
        return
    for a in rows:
        extra = f"tx {a['txHash']} block {a['blockNumber']}" if a["status"] == "anchored" else (a["lastError"] or "")
        out.print(f"chain {a['chainId']} size {a['treeSize']:>8} {a['status']:<10} {escape(extra)}")


@app.command("node")
def node(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8545, help="Port (0 picks a free one)."),
) -> None:
    """Serve the embedded chain over standard Ethereum JSON-RPC until interrupted."""
    from ledgermind.cli.node import run_node

    client = client_of(ctx)
    run_node(
        client.settings, host, port,
        lambda url: out.print(f"ledgermind node: chain {client.settings.chain_dir} serving at {url}"),
        lambda line: err.print(escape(line)),
    )


# ---------------------------------------------------------------------- log
@log_app.command("info")
def log_info(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Size, root, origin and public key of the log."""
    info = client_of(ctx).log_info()
    if as_json:
        emit_json(info)
        return
    for key in ("path", "origin", "publicKey", "size", "root"):
        out.print(f"{key:<10} {info[key]}")


@log_app.command("checkpoint")
def log_checkpoint(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint signed note)."""
    note = client_of(ctx).checkpoint()
    emit_json({"checkpoint": note}) if as_json else sys.stdout.write(note)


@log_app.command("entry")
def log_entry(ctx: typer.Context, index: int = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Print one entry's statement, signer and inclusion proof."""
    info = client_of(ctx).entry(index)
    if as_json:
        emit_json(info)
        return
    out.print(f"entry {index} signed by {info['signer']}")
    out.print_json(json.dumps(info["statement"]))


@log_app.command("fsck")
def log_fsck(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Re-derive the tree from every stored entry and compare it with the signed checkpoints."""
    report = client_of(ctx).fsck()
    data = {
        "ok": report.ok, "size": report.size, "entriesChecked": report.entries_checked,
        "checkpointsChecked": report.checkpoints_checked, "root": report.root.hex(),
        "tamperedIndices": report.tampered_indices, "problems": report.problems,
    }
    if as_json:
        emit_json(data)
    elif report.ok:
        out.print(f"[bold green]ok[/] {report.entries_checked} entries, {report.checkpoints_checked} checkpoints, root {data['root']}")
    else:
        for p in report.problems:
            out.print(f"[bold red]FAIL[/] {escape(p)}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("demo")
def demo(
    ctx: typer.Context,
    workdir: Optional[Path] = typer.Option(None, help="Where to write the demo's files (default: HOME/demo)."),
) -> None:
    """Register a dataset and a model with lineage, verify, tamper, bundle and verify offline."""
    from ledgermind.cli.demo import run_demo

    ok = run_demo(client_of(ctx), workdir)
    if not ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- markets, serving (cli/market.py, cli/serving.py)
app.add_typer(market_app, name="market")
app.command("up")(up_command)
app.command("balance")(balance)
for _command in (serve, infer, download, providers, settle):
    app.command(_command.__name__)(_command)
app.add_typer(receipt_app, name="receipt")
app.add_typer(channel_app, name="channel")
app.add_typer(fed_app, name="fed")
app.add_typer(gov_app, name="gov")
app.add_typer(oracle_app, name="oracle")
app.add_typer(insurance_app, name="insurance")
app.add_typer(guard_app, name="guard")
app.add_typer(alerts_app, name="alerts")


def main() -> None:
    """Console entry point: usage errors are click's (exit 2); ours are one line (exit 1); no tracebacks."""
    try:
        app()  # standalone mode: click prints usage errors and exits by itself
    except LedgermindError as e:
        _fail(str(e))
    except Exception as e:  # a bug, or an unexpected environment: still one line
        if os.environ.get("LEDGERMIND_DEBUG"):
            raise
        _fail(f"unexpected {type(e).__name__}: {e} (set LEDGERMIND_DEBUG=1 for the traceback)")


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(1)


if __name__ == "__main__":
    main()

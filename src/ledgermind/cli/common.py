"""What every CLI command shares: the ``--json`` option, the one Client per invocation, and the notes printed
on stderr after a write."""

from __future__ import annotations

import typer
from rich.markup import escape

from ledgermind.cli.output import err
from ledgermind.client import Client
from ledgermind.config import load_settings

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of text.")


def client_of(ctx: typer.Context) -> Client:
    state = ctx.find_root().obj
    if state.get("client") is None:
        state["client"] = Client(settings=load_settings(
            state["home"], account=state["account"], rpc_url=state["rpc_url"], chain_id=state["chain_id"]
        ))
        ctx.find_root().call_on_close(state["client"].close)
    return state["client"]


def after_write(client: Client) -> None:
    """Say on stderr what happened around a write: a dev account created, an anchor sent or queued."""
    note = client.last_anchor
    if note and note.get("queued"):
        err.print(f"[yellow]anchor queued, will retry:[/] {escape(note['reason'])}")
    elif note and note.get("anchored"):
        a = note["anchored"]
        err.print(f"anchored tree size {a['treeSize']} on chain {a['chainId']} (tx {a['txHash']})")
    note_dev_account(client)


def note_dev_account(client: Client) -> None:
    if client.dev_account_created:
        err.print(
            f"[yellow]created development account {client.account().address} with an empty password "
            f"in {client.settings.keystore_dir}[/] (set LEDGERMIND_PASSWORD and run 'ledgermind account new' for real use)"
        )

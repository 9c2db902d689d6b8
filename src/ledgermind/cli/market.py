"""``ledgermind market list|sell|buy|delist|withdraw|faucet`` and ``ledgermind balance``: thin calls on the Client.

Amounts take units (``0.01ether``, ``5gwei``, ``2token``; a bare integer is the smallest unit) and durations
too (``30d``, ``12h``). Every write prints the transactions it made and the log index of each one's statement.
"""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.markup import escape

from ledgermind.cli.common import JsonOpt, after_write, client_of
from ledgermind.cli.output import emit_json, out
from ledgermind.cli.units import format_amount, parse_amount, parse_duration, whole
from ledgermind.errors import InvalidInputError

market_app = typer.Typer(no_args_is_help=True, help="Sell and buy access to assets: access tokens, licences, NFTs.")

TokenOpt = typer.Option("native", "--token", help="Payment token: native, demo (LMPAY) or an ERC-20 address.")


def _contributors(items: list[str]) -> list[tuple[str, int]]:
    out_: list[tuple[str, int]] = []
    for item in items:
        address, sep, bps = item.partition("=")
        if not sep or not bps.strip().isdigit():
            raise InvalidInputError(f"--contributor must be ADDRESS=BASIS_POINTS (e.g. 0xabc…=1500), got {item!r}")
        out_.append((address.strip(), int(bps)))
    return out_


def _print_txs(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        what = f" {r['asset'][:12]}" if r.get("asset") else ""
        money = f" {r['price']}" if r.get("price") else (f" {r['amount']}" if r.get("amount") else "")
        log = f", log index {r['logIndex']}" if "logIndex" in r else ""
        out.print(f"{r['action']}{what}{money}: tx {r.get('txHash', '-')}{log}")


@market_app.command("list")
def market_list(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """What is on sale on the Marketplace: access tokens, licences, NFTs and free dispensers."""
    client = client_of(ctx)
    rows = client.listings()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("nothing listed")
        return
    from rich.table import Table

    demo = client.market().payment_token
    table = Table("asset", "name", "access token", "licence", "NFT", "free", box=None)
    for r in rows:
        def cell(part: dict[str, Any] | None, extra: str = "") -> str:
            if part is None:
                return "-"
            text = format_amount(part["price"], part["token"], demo) + extra
            return f"[dim]{text} (void)[/]" if part["void"] else text

        lic = r["licence"]
        free = r["dispenser"]
        table.add_row(r["id"][:12], escape(str(r["name"] or "?")),
                      cell(r["access"]), cell(lic, f" / {lic['duration']} s" if lic else ""), cell(r["asset"]),
                      f"{free['maxPerAddress']} per address" if free else "-")
    out.print(table)


@market_app.command("sell")
def market_sell(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="ID", help="The asset (minted, owned by the acting account)."),
    price: Optional[str] = typer.Option(None, "--price", help="Per access token, per licence, or for the NFT."),
    licence: Optional[str] = typer.Option(None, "--licence", help="Sell licences of this duration (e.g. 30d)."),
    nft: bool = typer.Option(False, "--nft", help="Sell the asset NFT itself (royalty per ERC-2981)."),
    free: Optional[int] = typer.Option(None, "--free", help="Give access tokens away: this many per address."),
    token: str = TokenOpt,
    contributor: list[str] = typer.Option([], "--contributor", help="ADDRESS=BASIS_POINTS share of each sale (repeat)."),
    lineage_share: Optional[int] = typer.Option(
        None, "--lineage-share", help="Basis points of each access sale shared by the owners of the asset's parents."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """List an asset: access tokens (default), licences (--licence), the NFT (--nft) or a free dispenser (--free)."""
    if sum([licence is not None, nft, free is not None]) > 1:
        raise InvalidInputError("choose one of --licence, --nft and --free")
    if free is None and price is None:
        raise InvalidInputError("--price is required (or --free N to give access tokens away)")
    kind = "licence" if licence is not None else "asset" if nft else "access"
    client = client_of(ctx)
    rows = client.sell(
        ref, price=parse_amount(price) if price is not None else 0, kind=kind, token=token,
        duration=parse_duration(licence) if licence is not None else None,
        contributors=_contributors(contributor) or None, lineage_bps=lineage_share, free_per_address=free,
    )
    emit_json(rows) if as_json else _print_txs(rows)
    after_write(client)


@market_app.command("buy")
def market_buy(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="ID", help="A listed asset: registered name or id, or its digest."),
    quantity: int = typer.Option(1, "--quantity", "-n", help="Access tokens to buy."),
    licence: bool = typer.Option(False, "--licence", help="Buy a licence period instead."),
    nft: bool = typer.Option(False, "--nft", help="Buy the asset NFT instead."),
    free: bool = typer.Option(False, "--free", help="Take one free access token from the dispenser."),
    as_json: bool = JsonOpt,
) -> None:
    """Buy access tokens (default), a licence, the NFT, or take a free token; pays in the listing's token."""
    if sum([licence, nft, free]) > 1:
        raise InvalidInputError("choose one of --licence, --nft and --free")
    kind = "licence" if licence else "asset" if nft else "free" if free else "access"
    client = client_of(ctx)
    rows = client.buy(ref, kind=kind, quantity=quantity)
    emit_json(rows) if as_json else _print_txs(rows)
    after_write(client)


@market_app.command("delist")
def market_delist(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="ID"),
    kind: str = typer.Option("access", "--kind", help="access, licence, asset (the NFT) or dispenser."),
    as_json: bool = JsonOpt,
) -> None:
    """End a listing."""
    client = client_of(ctx)
    rows = client.delist(ref, kind)
    emit_json(rows) if as_json else _print_txs(rows)
    after_write(client)


@market_app.command("withdraw")
def market_withdraw(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Collect what the acting account is owed: sale proceeds and settled inference payments."""
    client = client_of(ctx)
    rows = client.withdraw()
    if as_json:
        emit_json(rows)
    elif not rows:
        out.print("nothing to withdraw")
    else:
        _print_txs(rows)
    after_write(client)


@market_app.command("fee")
def market_fee(
    ctx: typer.Context,
    bps: Optional[int] = typer.Argument(None, help="New platform fee in basis points (0-1000); omit to show it."),
    recipient: Optional[str] = typer.Option(None, "--recipient", help="Who receives it (default: the acting account)."),
    as_json: bool = JsonOpt,
) -> None:
    """Show or set the platform fee taken from every sale (the Marketplace owner sets it)."""
    client = client_of(ctx)
    if bps is None:
        fee, to = client.market().fee()
        emit_json({"feeBps": fee, "feeRecipient": to}) if as_json else out.print(f"{fee} basis points to {to}")
        return
    rows = client.set_market_fee(bps, recipient)
    emit_json(rows) if as_json else out.print(f"fee set to {bps} basis points for {rows[0]['feeRecipient']}")
    after_write(client)


@market_app.command("faucet")
def market_faucet(
    ctx: typer.Context,
    to: Optional[str] = typer.Argument(None, help="Who gets them (default: the acting account)."),
    amount: str = typer.Option("1000token", "--amount", help="How many demo tokens."),
    as_json: bool = JsonOpt,
) -> None:
    """Mint demo payment tokens (LMPAY) on a development chain; only their deployer can."""
    r = client_of(ctx).faucet(to, parse_amount(amount))
    emit_json(r) if as_json else out.print(f"minted {format_amount(r['amount'], r['token'], r['token'])} to {r['to']} (tx {r['txHash']})")


def balance(
    ctx: typer.Context,
    address: Optional[str] = typer.Argument(None, help="Whose (default: the acting account)."),
    as_json: bool = JsonOpt,
) -> None:
    """Coins, demo tokens, what can be withdrawn, and access tokens and licences held."""
    b = client_of(ctx).balance(address)
    if as_json:
        emit_json(b)
        return
    demo = b["demoToken"]["address"]
    w = b["withdrawable"]
    out.print(f"account {b['account']} on chain {b['chainId']}")
    out.print(f"  native        {format_amount(b['native'])}")
    out.print(f"  demo token    {format_amount(b['demoToken']['balance'], demo, demo)}")
    out.print(f"  withdrawable  {format_amount(w['marketplace']['native'])} + {format_amount(w['marketplace']['demoToken'], demo, demo)}"
              f" from sales, {format_amount(w['channels']['native'])} + {format_amount(w['channels']['demoToken'], demo, demo)}"
              f" from payment channels")
    for a in b["access"]:
        licence = f", licence until {a['licenceExpiry']}" if a["licenceExpiry"] else ""
        out.print(f"  asset {a['id'][:12]}: {whole(a['accessTokens'])} access tokens{licence}; "
                  f"access {'yes' if a['hasAccess'] else 'no'}")

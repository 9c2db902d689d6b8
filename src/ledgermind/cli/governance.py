"""``ledgermind gov ...``: the consortium's approvals of datasets and models, voted on chain."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.markup import escape

from ledgermind.cli.common import JsonOpt, client_of
from ledgermind.cli.output import emit_json, out
from ledgermind.cli.units import parse_duration

gov_app = typer.Typer(no_args_is_help=True, help="Governance: approve the data that may train deployable models.")

DECISIONS = ("approve-dataset", "revoke-dataset", "approve-model", "revoke-model")


def _show(p: dict[str, Any]) -> None:
    out.print(f"proposal {p['proposal_id']}: {p['action']} {p['target'][:12]}: {p['status']} "
              f"({p['yes']} for, {p['no']} against)" + (f", log index {p['logIndex']}" if "logIndex" in p else ""))


def _decision(decision: str) -> str:
    if decision not in DECISIONS:
        raise typer.BadParameter(f"expected one of {', '.join(DECISIONS)}")
    return decision


@gov_app.command("propose")
def gov_propose(ctx: typer.Context, decision: str = typer.Argument(..., metavar="DECISION", help=" | ".join(DECISIONS)),
                ref: str = typer.Argument(..., metavar="ID"), as_json: bool = JsonOpt) -> None:
    """Propose a decision on an asset (members only)."""
    p = client_of(ctx).gov_propose(_decision(decision), ref)
    emit_json(p) if as_json else _show(p)


@gov_app.command("vote")
def gov_vote(ctx: typer.Context, proposal: int = typer.Argument(..., metavar="PROPOSAL"),
             against: bool = typer.Option(False, "--against", help="Vote against (default: for)."),
             as_json: bool = JsonOpt) -> None:
    """Vote on a proposal (members only, once each)."""
    p = client_of(ctx).gov_vote(proposal, not against)
    emit_json(p) if as_json else _show(p)


@gov_app.command("execute")
def gov_execute(ctx: typer.Context, proposal: int = typer.Argument(..., metavar="PROPOSAL"), as_json: bool = JsonOpt) -> None:
    """Apply a passed proposal once its timelock is over (anyone)."""
    p = client_of(ctx).gov_execute(proposal)
    emit_json(p) if as_json else _show(p)


@gov_app.command("approve")
def gov_approve(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID"),
                revoke: bool = typer.Option(False, "--revoke", help="Revoke instead."),
                as_json: bool = JsonOpt) -> None:
    """Propose, vote for and (if quorum and timelock allow) execute approving a dataset or promoting a model."""
    client = client_of(ctx)
    digest, _ = client._asset_ref(ref)
    kind = client.market().asset_kind(digest)
    p = client.gov_decide(f"{'revoke' if revoke else 'approve'}-{kind}", ref)
    emit_json(p) if as_json else _show(p)


@gov_app.command("status")
def gov_status(ctx: typer.Context, ref: Optional[str] = typer.Argument(None, metavar="[ID]"), as_json: bool = JsonOpt) -> None:
    """An asset's approvals and its lineage's; without ID the governance's parameters, gate and proposals."""
    s = client_of(ctx).gov_status(ref)
    if as_json:
        emit_json(s)
        return
    if ref is not None:
        out.print(f"{escape(str(s['name'] or s['id'][:12]))}: dataset approved {s['dataset']}, model approved "
                  f"{s['model']}, whole lineage approved {s['lineageApproved']}")
        return
    out.print(f"governance {s['contract']} on chain {s['chainId']}: quorum {s['quorum']}, timelock {s['timelock']} s, "
              f"voting period {s['votingPeriod']} s, marketplace gate {'on' if s['marketplaceGate'] else 'off'}")
    for p in s["proposals"]:
        _show(p)


@gov_app.command("member")
def gov_member(ctx: typer.Context, address: str = typer.Argument(...),
               remove: bool = typer.Option(False, "--remove"), as_json: bool = JsonOpt) -> None:
    """Add (or remove) a member (the governance admin only)."""
    r = client_of(ctx).gov_member(address, not remove)
    emit_json(r) if as_json else out.print(f"{r['member']} is {'now' if r['isMember'] else 'no longer'} a member")


@gov_app.command("parameters")
def gov_parameters(ctx: typer.Context, quorum: int = typer.Option(..., "--quorum"),
                   timelock: str = typer.Option("0", "--timelock", help="e.g. 0, 3600, 2d"),
                   voting_period: str = typer.Option("7d", "--voting-period"), as_json: bool = JsonOpt) -> None:
    """Set quorum, timelock and voting period (the governance admin only)."""
    r = client_of(ctx).gov_parameters(quorum, 0 if timelock.strip() == "0" else parse_duration(timelock),
                                      parse_duration(voting_period))
    emit_json(r) if as_json else out.print(f"quorum {r['quorum']}, timelock {r['timelock']} s, "
                                           f"voting period {r['votingPeriod']} s")


@gov_app.command("enable")
def gov_enable(ctx: typer.Context, off: bool = typer.Option(False, "--off", help="Turn the gate off."),
               as_json: bool = JsonOpt) -> None:
    """Make the Marketplace refuse models whose lineage governance has not approved (its owner only)."""
    r = client_of(ctx).gov_gate(not off)
    emit_json(r) if as_json else out.print(f"marketplace gate {'on' if r['enabled'] else 'off'} "
                                           f"(governance {r['governance']})")

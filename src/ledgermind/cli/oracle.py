"""``ledgermind oracle ...`` (AI decisions posted on chain, disputed optimistically) and ``ledgermind insurance ...``
(its example consumer: parametric claims assessed by a registered model). Thin calls on ``ledgermind.oracle``.

Amounts take units (``10token``; a bare integer is the token's smallest unit), durations too (``1h``, ``30d``).
An input is JSON (``--input '[1.5, 2]'`` or ``--input @report.json``) or one of the claims demo's sample lab
reports (``--case 3``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from ledgermind.cli.common import JsonOpt, after_write, client_of
from ledgermind.cli.output import emit_json, err, out
from ledgermind.cli.units import parse_amount, parse_duration, whole
from ledgermind.errors import InvalidInputError, NotFoundError

oracle_app = typer.Typer(no_args_is_help=True, help="AI oracle: registered models answer on chain, disputes slash.")
insurance_app = typer.Typer(no_args_is_help=True, help="Parametric insurance whose claims a registered model assesses.")

InputOpt = typer.Option(None, "--input", help="JSON array of numbers (one row or rows), or @FILE.")
CaseOpt = typer.Option(None, "--case", help="Sample lab report K of the claims demo instead of --input.")


def _inputs(text: Optional[str], case: Optional[int]) -> Any:
    from ledgermind.oracle import insurance, runner

    if (text is None) == (case is None):
        raise InvalidInputError("give the input with exactly one of --input JSON (or @FILE) and --case K")
    if case is not None:
        return insurance.claim_case(case)
    assert text is not None
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        if not path.is_file():
            raise NotFoundError(f"no input file {path}")
        text = path.read_text()
    return runner.parse_inputs(text)


def _show_request(r: dict[str, Any]) -> None:
    answer = f", decision {r['decision']}" if r.get("output") else ""
    if r.get("outcome") == "overturned":
        answer = f", decision {r['final_decision']} (the oracle's {r['decision']} was overturned)"
    elif r.get("outcome"):
        answer += f" ({r['outcome']})"
    extra = f", log index {r['logIndex']}" if "logIndex" in r else ""
    out.print(f"request {r['request_id']}: {r['state']}{answer}; model {r['model'][:12]}, input {r['input'][:12]}, "
              f"oracle {r['oracle']}{extra}")


def _done(ctx: typer.Context, result: dict[str, Any], as_json: bool, show: Any = _show_request) -> None:
    after_write(client_of(ctx))
    emit_json(result) if as_json else show(result)


# ---------------------------------------------------------------------- oracle
@oracle_app.command("register")
def oracle_register(ctx: typer.Context,
                    model: list[str] = typer.Option([], "--model", help="A model this oracle serves (repeat; none: any)."),
                    bond: str = typer.Option("0", "--bond", help="First bond, e.g. 100token."),
                    as_json: bool = JsonOpt) -> None:
    """Register the acting account as an oracle serving registered models, with a bond that backs its answers."""
    from ledgermind.oracle import service

    r = service.register(client_of(ctx), model, parse_amount(bond))
    _done(ctx, r, as_json, lambda r: out.print(
        f"oracle {r['account']} registered: bond {whole(r['bond'])}, models "
        f"{', '.join(m[:12] for m in r['models']) or 'any'}, log index {r['logIndex']}"))


@oracle_app.command("request")
def oracle_request(ctx: typer.Context, model: str = typer.Argument(..., metavar="MODEL"),
                   oracle: str = typer.Option(..., "--oracle", help="The oracle's address."),
                   input_: Optional[str] = InputOpt, case: Optional[int] = CaseOpt,
                   fee: str = typer.Option("0", "--fee", help="Paid to the oracle once its answer is final."),
                   stake: str = typer.Option("0", "--stake", help="Bond the oracle must lock behind its answer."),
                   as_json: bool = JsonOpt) -> None:
    """Ask an oracle to run a registered model on an input (validated and published first)."""
    from ledgermind.oracle import service

    inputs = _inputs(input_, case)
    _done(ctx, service.request(client_of(ctx), model, inputs, oracle, fee=parse_amount(fee),
                               stake=parse_amount(stake)), as_json)


@oracle_app.command("decide")
def oracle_decide(ctx: typer.Context, request_id: int = typer.Argument(..., metavar="REQUEST"),
                  attack: Optional[str] = typer.Option(None, "--attack",
                                                       help="flip: post the opposite decision (a faulty oracle)."),
                  as_json: bool = JsonOpt) -> None:
    """Answer one request as its oracle: run the model, sign the decision into the log, post the commitment."""
    from ledgermind.oracle import service

    _done(ctx, service.decide(client_of(ctx), request_id, attack), as_json)


@oracle_app.command("serve")
def oracle_serve(ctx: typer.Context, once: bool = typer.Option(False, "--once", help="One pass, then exit."),
                 interval: float = typer.Option(2.0, "--interval", help="Seconds between passes."),
                 as_json: bool = JsonOpt) -> None:
    """Answer requests addressed to this account as they arrive, finalize its final answers and settle the
    claims they assessed; as the resolver, also rule on disputes."""
    from ledgermind.oracle import service

    client = client_of(ctx)
    acts: list[dict[str, Any]] = []

    def done(act: dict[str, Any]) -> None:
        acts.append(act)
        if not as_json:
            rid = act.get("request_id", act.get("requestId"))
            what = act.get("decision") if act["action"] != "settle" else ("paid" if act["approved"] else "rejected")
            out.print(f"{act['action']}: request {rid} -> {what}, log index {act['logIndex']}")

    if not once:
        err.print(f"oracle {client.account().address} serving (Ctrl-C to stop)")
    try:
        service.serve(client, once=once, interval=interval, on_done=done, note=lambda m: err.print(escape(m)))
    except KeyboardInterrupt:
        pass
    after_write(client)
    if as_json:
        emit_json(acts)
    elif once and not acts:
        out.print("nothing to do")


@oracle_app.command("dispute")
def oracle_dispute(ctx: typer.Context, request_id: int = typer.Argument(..., metavar="REQUEST"),
                   as_json: bool = JsonOpt) -> None:
    """Re-run the registered model on a request's input; if the oracle's answer differs, challenge it (bond)."""
    from ledgermind.oracle import service

    _done(ctx, service.dispute(client_of(ctx), request_id), as_json)


@oracle_app.command("resolve")
def oracle_resolve(ctx: typer.Context, request_id: int = typer.Argument(..., metavar="REQUEST"),
                   as_json: bool = JsonOpt) -> None:
    """Rule on a dispute as the resolver: re-run the model, sign the re-run, post the verdict (slashing)."""
    from ledgermind.oracle import service

    _done(ctx, service.resolve(client_of(ctx), request_id), as_json)


@oracle_app.command("finalize")
def oracle_finalize(ctx: typer.Context, request_id: int = typer.Argument(..., metavar="REQUEST"),
                    as_json: bool = JsonOpt) -> None:
    """Settle a request whose decision became final (anyone): unlock the stake, credit the fee."""
    from ledgermind.oracle import service

    _done(ctx, service.finalize(client_of(ctx), request_id), as_json)


@oracle_app.command("cancel")
def oracle_cancel(ctx: typer.Context, request_id: int = typer.Argument(..., metavar="REQUEST"),
                  as_json: bool = JsonOpt) -> None:
    """Close a request left unanswered past its response window (anyone): the fee goes back to the requester."""
    from ledgermind.oracle import service

    _done(ctx, service.cancel(client_of(ctx), request_id), as_json)


@oracle_app.command("withdraw")
def oracle_withdraw(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Collect fees, returned bonds, shares of slashed stakes and refunds owed to the acting account."""
    from ledgermind.oracle import service

    _done(ctx, service.withdraw(client_of(ctx)), as_json,
          lambda r: out.print(f"withdrew {whole(r['amount'])} to {r['account']}, log index {r['logIndex']}"))


@oracle_app.command("windows")
def oracle_windows(ctx: typer.Context, response: str = typer.Option("1h", "--response"),
                   dispute: str = typer.Option("1d", "--dispute"), resolution: str = typer.Option("3d", "--resolution"),
                   as_json: bool = JsonOpt) -> None:
    """Set the windows to answer, dispute and rule, for phases that start from now on (the resolver only)."""
    from ledgermind.oracle import service

    r = service.set_windows(client_of(ctx), parse_duration(response), parse_duration(dispute),
                            parse_duration(resolution))
    _done(ctx, r, as_json, lambda r: out.print(
        f"windows: respond {r['response']} s, dispute {r['dispute']} s, rule {r['resolution']} s"))


@oracle_app.command("status")
def oracle_status(ctx: typer.Context, request_id: Optional[int] = typer.Argument(None, metavar="[REQUEST]"),
                  as_json: bool = JsonOpt) -> None:
    """A request now; without REQUEST, the contract and the acting account's registration and balance."""
    from ledgermind.oracle import service

    s = service.status(client_of(ctx), request_id)
    if as_json:
        emit_json(s)
    elif request_id is not None:
        _show_request(s)
    else:
        a, w = s["account"], s["windows"]
        out.print(f"oracle contract {s['contract']} on chain {s['chainId']}: {s['requests']} requests, resolver "
                  f"{s['resolver']}, windows {w['response']}/{w['dispute']}/{w['resolution']} s, dispute bond "
                  f"{whole(s['disputeBond'])}")
        out.print(f"{a['account']}: " + (f"oracle with bond {whole(a['bond'])} ({whole(a['locked'])} locked), "
                                         f"{a['answered']} answered, {a['overturned']} overturned"
                                         if a["registered"] else "not an oracle")
                  + f"; withdrawable {whole(s['withdrawable'])}")


# ---------------------------------------------------------------------- insurance
def _show_policy(p: dict[str, Any]) -> None:
    request = p.get("request")
    claim = f", claim: oracle request {request['request_id']} {request['state']}" if request else ""
    paid = f", paid {whole(p['payout'])}" if p.get("approved") else (", rejected" if p.get("approved") is False and not p.get("lapsed") else "")
    log = f", log index {p['logIndex']}" if "logIndex" in p else ""
    out.print(f"policy {p['policy_id']} (product {p['product_id']}): {p['status']}, {p['claims']} claims{claim}"
              f"{paid}{log}")


@insurance_app.command("model")
def insurance_model(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Train the claims model on the bundled breast-cancer biopsies and register it with its data (idempotent)."""
    from ledgermind.oracle import insurance

    _done(ctx, insurance.claims_model(client_of(ctx)), as_json, lambda r: out.print(
        f"{escape(r['name'])} {r['id']}: held-out accuracy {r['heldOutAccuracy']:.3f}, trained on {r['dataset'][:12]}"))


@insurance_app.command("product")
def insurance_product(ctx: typer.Context, assessor: str = typer.Option(..., "--assessor", help="The oracle that assesses claims."),
                      premium: str = typer.Option(..., "--premium"), coverage: str = typer.Option(..., "--coverage"),
                      duration: str = typer.Option("365d", "--duration"),
                      fee: str = typer.Option("0", "--fee", help="Paid to the assessor per claim."),
                      model: Optional[str] = typer.Option(None, "--model",
                                                          help="Default: the bundled claims model (trained now)."),
                      as_json: bool = JsonOpt) -> None:
    """Offer policies (the insurer only): premium, coverage paid on an approved claim, duration, assessment."""
    from ledgermind.oracle import insurance

    r = insurance.create_product(client_of(ctx), assessor=assessor, premium=parse_amount(premium),
                                 coverage=parse_amount(coverage), duration=parse_duration(duration),
                                 fee=parse_amount(fee), model=model)
    _done(ctx, r, as_json, lambda r: out.print(
        f"product {r['product_id']}: premium {whole(r['premium'])}, coverage {whole(r['coverage'])}, "
        f"{r['duration']} s, assessed by {r['assessor']} with model {r['model'][:12]}, log index {r['logIndex']}"))


@insurance_app.command("fund")
def insurance_fund(ctx: typer.Context, amount: str = typer.Argument(..., metavar="AMOUNT"), as_json: bool = JsonOpt) -> None:
    """Add capital to the pool that backs every policy (the insurer only)."""
    from ledgermind.oracle import insurance

    _done(ctx, insurance.fund(client_of(ctx), parse_amount(amount)), as_json, lambda r: out.print(
        f"pool {whole(r['pool'])} ({whole(r['reserved'])} reserved for policies), log index {r['logIndex']}"))


@insurance_app.command("buy")
def insurance_buy(ctx: typer.Context, product_id: int = typer.Argument(..., metavar="PRODUCT"),
                  as_json: bool = JsonOpt) -> None:
    """Buy a policy (the premium is paid now)."""
    from ledgermind.oracle import insurance

    _done(ctx, insurance.buy(client_of(ctx), product_id), as_json, _show_policy)


@insurance_app.command("claim")
def insurance_claim(ctx: typer.Context, policy_id: int = typer.Argument(..., metavar="POLICY"),
                    input_: Optional[str] = InputOpt, case: Optional[int] = CaseOpt, as_json: bool = JsonOpt) -> None:
    """Claim on a policy with a lab report: the product's oracle assesses it with the product's model."""
    from ledgermind.oracle import insurance

    inputs = _inputs(input_, case)
    _done(ctx, insurance.claim(client_of(ctx), policy_id, inputs), as_json, _show_policy)


@insurance_app.command("settle")
def insurance_settle(ctx: typer.Context, policy_id: int = typer.Argument(..., metavar="POLICY"),
                     as_json: bool = JsonOpt) -> None:
    """Settle a claim once its decision is final (anyone): an approved one credits the coverage."""
    from ledgermind.oracle import insurance

    _done(ctx, insurance.settle(client_of(ctx), policy_id), as_json, _show_policy)


@insurance_app.command("withdraw")
def insurance_withdraw(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Collect payouts owed to the acting account."""
    from ledgermind.oracle import insurance

    _done(ctx, insurance.withdraw(client_of(ctx)), as_json,
          lambda r: out.print(f"withdrew {whole(r['amount'])} to {r['account']}, log index {r['logIndex']}"))


@insurance_app.command("status")
def insurance_status(ctx: typer.Context, policy_id: Optional[int] = typer.Argument(None, metavar="[POLICY]"),
                     as_json: bool = JsonOpt) -> None:
    """A policy and its latest claim; without POLICY, the pool, the products and the acting account's policies."""
    from ledgermind.oracle import insurance

    s = insurance.status(client_of(ctx), policy_id)
    if as_json:
        emit_json(s)
        return
    if policy_id is not None:
        _show_policy(s)
        return
    out.print(f"insurance {s['contract']} (insurer {s['insurer']}): pool {whole(s['pool'])}, reserved "
              f"{whole(s['reserved'])}, free {whole(s['free'])}; withdrawable {whole(s['withdrawable'])}")
    for p in s["products"]:
        out.print(f"product {p['product_id']}: premium {whole(p['premium'])}, coverage {whole(p['coverage'])}, "
                  f"assessor {p['assessor']}{'' if p['open'] else ' (closed)'}")
    for p in s["policies"]:
        _show_policy(p)

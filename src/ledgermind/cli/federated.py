"""``ledgermind fed create|join|run|status|claim``: federated training coordinated and rewarded on chain.

Thin calls on the Client. Amounts take units (``100token``; a bare integer is the smallest unit).
"""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.markup import escape

from ledgermind.cli.common import JsonOpt, after_write, client_of
from ledgermind.cli.output import emit_json, err, out
from ledgermind.cli.units import parse_amount, whole
from ledgermind.errors import InvalidInputError

fed_app = typer.Typer(no_args_is_help=True, help="Federated training: tasks, rounds, rewards and slashing on chain.")


@fed_app.command("create")
def fed_create(
    ctx: typer.Context,
    dataset: str = typer.Option("breast_cancer", help="Bundled dataset to split: breast_cancer or digits."),
    parties: int = typer.Option(5, help="How many participants' data files to prepare."),
    split: str = typer.Option("iid", help="iid, or dirichlet (label skew)."),
    alpha: float = typer.Option(0.5, help="Dirichlet concentration (smaller: more skewed)."),
    rounds: int = typer.Option(5, help="Training rounds."),
    pool: str = typer.Option("100token", "--pool", help="Reward pool, paid out by contribution over the rounds."),
    stake: str = typer.Option("10token", "--stake", help="Minimum stake of a participant (slashed if flagged)."),
    quorum: Optional[int] = typer.Option(None, help="Fewest revealed updates a round needs (default: a majority)."),
    token: str = typer.Option("demo", "--token", help="Stake and reward token: demo (LMPAY) or an ERC-20 address."),
    commit_window: int = typer.Option(30, "--commit-window", help="Seconds to commit an update's digest."),
    reveal_window: int = typer.Option(60, "--reveal-window", help="Seconds to reveal it after the commit phase."),
    aggregator: str = typer.Option("ours", help="ours, fedavg, median, trimmed_mean, multi_krum or fltrust."),
    trainer: str = typer.Option("logistic", help="logistic or mlp."),
    seed: int = typer.Option(0, help="Seed of the split and the training."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a task as its coordinator: split the data, register the approved validation set, stake the pool."""
    client = client_of(ctx)
    info = client.fed_create(
        dataset=dataset, parties=parties, partition=split, alpha=alpha, rounds=rounds,
        reward_pool=parse_amount(pool), min_stake=parse_amount(stake), quorum=quorum, token=token,
        commit_window=commit_window, reveal_window=reveal_window, aggregator=aggregator, trainer=trainer, seed=seed,
    )
    if as_json:
        emit_json(info)
    else:
        out.print(f"task {info['taskId']} created on chain {info['chainId']} ({info['contract']}), quorum {info['quorum']}")
        for f in info["partyFiles"]:
            out.print(f"  data file for a participant: {escape(f)}")
    after_write(client)


@fed_app.command("join")
def fed_join(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., metavar="TASK"),
    data: str = typer.Option(..., "--data", help="The CSV this participant trains on (f0..fN,label)."),
    stake: Optional[str] = typer.Option(None, "--stake", help="Stake (default: the task's minimum)."),
    as_json: bool = JsonOpt,
) -> None:
    """Join a task as the acting account: register the data as a dataset, stake, and sign a join statement."""
    client = client_of(ctx)
    info = client.fed_join(task_id, data, parse_amount(stake) if stake else None)
    emit_json(info) if as_json else out.print(
        f"{info['participant']} joined task {task_id} with {info['samples']} samples (dataset {info['dataset'][:12]}), "
        f"stake {whole(info['stake'])}")
    after_write(client)


def _attacks(items: list[str]) -> dict[str, str]:
    out_: dict[str, str] = {}
    for item in items:
        address, sep, kind = item.partition("=")
        if not sep:
            raise InvalidInputError(f"--attack must be ADDRESS=KIND (scale, sign_flip, label_flip, nan), got {item!r}")
        out_[address.strip()] = kind.strip()
    return out_


@fed_app.command("run")
def fed_run(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., metavar="TASK"),
    attack: list[str] = typer.Option([], "--attack", help="ADDRESS=KIND: make a local participant a poisoner (demo)."),
    as_json: bool = JsonOpt,
) -> None:
    """Run a task's rounds as its coordinator (in-process engine), then register the final model with lineage."""
    client = client_of(ctx)

    def show(r: dict[str, Any]) -> None:
        if as_json:
            return
        flags = "; ".join(f"{a[:10]}… flagged: {why}" for a, why in r["flags"].items())
        err.print(f"round {r['round']}: validation accuracy {r['validationAccuracy']:.4f}"
                  + (f", {escape(flags)}" if flags else "") + (f", skipped: {r['skipped']}" if r["skipped"] else ""))

    result = client.fed_run(task_id, _attacks(attack), on_round=show)
    if as_json:
        emit_json(result)
    else:
        m = result["model"]
        out.print(f"task {task_id} {result['status']}; model {escape(m['name'])} registered as {m['id']} at log index "
                  f"{m['logIndex']}")
    after_write(client)


@fed_app.command("status")
def fed_status(ctx: typer.Context, task_id: int = typer.Argument(..., metavar="TASK"), as_json: bool = JsonOpt) -> None:
    """A task's terms, rounds, and each participant's stake, state and rewards owed."""
    s = client_of(ctx).fed_status(task_id)
    if as_json:
        emit_json(s)
        return
    t = s["task"]
    out.print(f"task {task_id}: {t['status']}, round {t['round']} of {t['rounds']}, pool {whole(t['pool'])} left, "
              f"coordinator {t['coordinator']}")
    for r in s["rounds"]:
        out.print(f"  round {r['round']}: {r['status']}, {r['reveals']}/{r['commits']} revealed, "
                  f"rewarded {whole(r['rewarded'])}, slashed {r['slashed']}")
    for p in s["participants"]:
        out.print(f"  {p['account']}: {p['state']}, stake {whole(p['stake'])}, owed {whole(p['withdrawable'])}")


@fed_app.command("claim")
def fed_claim(ctx: typer.Context, task_id: int = typer.Argument(..., metavar="TASK"), as_json: bool = JsonOpt) -> None:
    """Collect the acting account's rewards, and its stake unless it was slashed."""
    client = client_of(ctx)
    r = client.fed_claim(task_id)
    emit_json(r) if as_json else out.print(
        f"{r['account']} ({r['state']}): stake returned {whole(r['stake'])}, paid {whole(r['paid'])}")
    after_write(client)

"""Rendering for the CLI: JSON for machines, Rich for people, one-line errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.markup import escape
from rich.tree import Tree

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PROGRESS_MIN_BYTES = 64 * 1024 * 1024  # below this a bar only flickers


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


@contextmanager
def hashing_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress callback for fingerprinting that draws a bar on a terminal for large inputs only."""
    if not err.is_terminal:
        yield lambda done, total: None
        return
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err, transient=True,
    ) as bar:
        task = None

        def update(done: int, total: int) -> None:
            nonlocal task
            if total < PROGRESS_MIN_BYTES:
                return
            if task is None:
                task = bar.add_task(label, total=total)
            bar.update(task, completed=done)

        yield update


STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "SKIP": "yellow"}


def print_report(report: dict[str, Any]) -> None:
    for check in report["checks"]:
        style = STATUS_STYLE[check["status"]]
        out.print(f"[{style}]{check['status']}[/] {check['check']:<22} {escape(check['detail'])}")
    if report["ok"]:
        out.print(f"[bold green]verified[/] {escape(report['target'])}")
    else:
        out.print(f"[bold red]verification FAILED[/] for {escape(report['target'])}")


def lineage_tree(node: dict[str, Any]) -> Tree:
    def label(n: dict[str, Any]) -> str:
        if n.get("missing"):
            return f"[red]{n['relation']}[/] {n['id'][:12]} [red](not registered)[/]"
        rel = f"[dim]{n['relation']}[/] " if n.get("relation") else ""
        return (
            f"{rel}[bold]{n['kind']}[/] {escape(n['name'])} [cyan]{n['id'][:12]}[/] "
            f"[dim]log #{n['logIndex']} by {n['signer'][:10]}…[/]"
        )

    def add(tree: Tree, n: dict[str, Any]) -> None:
        for p in n.get("parents", []):
            add(tree.add(label(p)), p)

    root = Tree(label(node))
    add(root, node)
    return root

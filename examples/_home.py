"""What every example shares: a ``--home DIR`` option, a temporary home (removed afterwards) without it, and an
exit status of 0 only when the example's own verification passed."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def example_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first line of the example's docstring, with ``--home``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--home", type=Path, help="LEDGERMIND_HOME to use and keep (default: a temporary one)")
    return parser


@contextmanager
def example_home(home: Path | None) -> Iterator[Path]:
    """``home`` if given, else a new temporary home, removed on exit."""
    if home is not None:
        yield home
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp) / "home"


def run_example(run: Callable[[Path], bool], doc: str) -> int:
    """Parse ``--home``, call ``run(home)`` and turn its verdict into the exit status."""
    args = example_parser(doc).parse_args()
    with example_home(args.home) as home:
        return 0 if run(home) else 1

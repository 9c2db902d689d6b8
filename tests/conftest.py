"""Shared fixtures: real temp homes, real files, the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _anchor_only_where_tested(request, monkeypatch):
    """Tests of the log and registry do not anchor on every write; chain tests (marked ``chain``) do."""
    if "chain" not in request.keywords:
        monkeypatch.setenv("LEDGERMIND_AUTO_ANCHOR", "0")


@pytest.fixture(scope="module", autouse=True)
def _own_boa_env(request):
    """Each test module that uses titanoboa gets a fresh environment. titanoboa keeps a trace of storage writes per
    address for its error messages; when one module's contract lands at an address another module used, rendering a
    revert decodes the old contract's slots with the new contract's types and fails."""
    boa = getattr(request.module, "boa", None)
    if boa is None:
        yield
        return
    with boa.swap_env(boa.Env()):
        yield


@pytest.fixture(scope="session")
def accounts():
    from eth_account import Account

    return [Account.from_key(bytes([i + 1]) * 32) for i in range(3)]


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    """A CSV dataset, a second dataset, and a model folder."""
    data = tmp_path / "data.csv"
    data.write_text("age,bp,label\n51,130.5,1\n38,118.0,0\n64,142.2,1\n")
    other = tmp_path / "more.csv"
    other.write_text("age,bp,label\n44,121.0,0\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(bytes(range(256)) * 8)
    (model / "config.json").write_text('{"layers": 2}')
    return {"data": data, "other": other, "model": model}


class CLI:
    def __init__(self, home: Path) -> None:
        self.home = home

    def __call__(self, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LEDGERMIND_HOME": str(self.home), "COLUMNS": "200"}
        env.pop("LEDGERMIND_DEBUG", None)
        proc = subprocess.run(
            [sys.executable, "-m", "ledgermind.cli.app", *args], capture_output=True, text=True, env=env, timeout=120
        )
        if ok is True:
            assert proc.returncode == 0, f"{args} failed: {proc.stderr}{proc.stdout}"
        if ok is False:
            assert proc.returncode != 0, f"{args} unexpectedly succeeded: {proc.stdout}"
        return proc

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


class InProcessCLI(CLI):
    """The same CLI entry point (``ledgermind.cli.app.main``: argument parsing, one-line errors, exit codes),
    run in this process: a chain command costs ~1.5 s of imports as a subprocess (web3, eth-account, py-ecc), so
    tests that make dozens of calls use this; ``tests/test_cli.py`` keeps the real subprocess."""

    def __call__(self, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        import contextlib
        import io

        from ledgermind.cli import app as cli_app

        saved_env, saved_argv = dict(os.environ), sys.argv
        os.environ.update({"LEDGERMIND_HOME": str(self.home), "COLUMNS": "200"})
        os.environ.pop("LEDGERMIND_DEBUG", None)
        out, err = io.StringIO(), io.StringIO()
        code = 0
        try:
            sys.argv = ["ledgermind", *args]
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    cli_app.main()
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.argv = saved_argv
            os.environ.clear()
            os.environ.update(saved_env)
        proc = subprocess.CompletedProcess(["ledgermind", *args], code, out.getvalue(), err.getvalue())
        if ok is True:
            assert proc.returncode == 0, f"{args} failed: {proc.stderr}{proc.stdout}"
        if ok is False:
            assert proc.returncode != 0, f"{args} unexpectedly succeeded: {proc.stdout}"
        return proc


@pytest.fixture()
def cli(home: Path) -> CLI:
    return CLI(home)

"""The committed contract artifacts: reproducible from the sources, honest about how they were built, and
readable without vyper installed."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledgermind.contracts import BUILD_DIR, CONTRACTS, SOURCE_DIR, load
from ledgermind.contracts.build import render
from ledgermind.errors import NotFoundError


def run_build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledgermind.contracts.build", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh build, with the same command a developer runs, into a temporary directory."""
    out = tmp_path_factory.mktemp("artifacts")
    proc = run_build("--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("name", CONTRACTS)
def test_committed_artifacts_are_byte_identical_to_a_rebuild(rebuilt: Path, name: str):
    committed = (BUILD_DIR / f"{name}.json").read_bytes()
    assert (rebuilt / f"{name}.json").read_bytes() == committed, (
        f"{name}.json is stale: run python -m ledgermind.contracts.build and commit the result"
    )


def test_check_mode_reports_a_stale_artifact(rebuilt: Path, tmp_path: Path):
    out = tmp_path / "artifacts"  # a copy: the module's build stays as built for the other tests, in any order
    shutil.copytree(rebuilt, out)
    stale = out / "AnchorRegistry.json"
    stale.write_text(stale.read_text().replace("cancun", "prague"))
    proc = run_build("--check", "--out", str(out))
    assert proc.returncode == 1
    assert "stale:" in proc.stderr and "AnchorRegistry.json" in proc.stderr


def snekmate_root() -> Path:
    spec = importlib.util.find_spec("snekmate")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))).parent


@pytest.mark.parametrize("name", CONTRACTS)
def test_artifact_records_how_it_was_built(name: str):
    art = load(name)
    assert art["contractName"] == name
    assert art["evmVersion"] == "cancun"
    assert art["compiler"]["version"].startswith("0.4.3+")
    assert art["compiler"]["snekmate"] == "0.1.2"
    assert art["bytecode"].startswith("0x") and art["deployedBytecode"].startswith("0x")
    # the deploy code carries the runtime code
    assert art["deployedBytecode"][2:] in art["bytecode"]
    # every source that went in is named by import path, with the digest of the file on disk
    assert f"{name}.vy" in art["sources"]
    for path, digest in art["sources"].items():
        root = SOURCE_DIR if path == f"{name}.vy" else snekmate_root()
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == digest, path
    # committed in the one stable format
    assert (BUILD_DIR / f"{name}.json").read_text() == render(art)


def test_artifacts_name_the_snekmate_modules_they_use():
    assert {"snekmate/auth/access_control.vy"} <= set(load("AnchorRegistry")["sources"])
    assert {"snekmate/tokens/erc721.vy", "snekmate/extensions/erc2981.vy", "snekmate/auth/ownable.vy"} <= set(
        load("AssetRegistry")["sources"]
    )


def test_load_works_without_vyper():
    """Users get the artifacts without the compiler: loading must not import vyper."""
    code = (
        "import sys; sys.modules['vyper'] = None\n"  # any `import vyper` now raises ImportError
        "from ledgermind.contracts import load, CONTRACTS\n"
        "print(all(len(load(n)['abi']) > 0 for n in CONTRACTS), len(CONTRACTS))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"True {len(CONTRACTS)}"


def test_load_returns_a_fresh_copy_and_rejects_unknown_names():
    art = load("AnchorRegistry")
    art["abi"].clear()
    assert load("AnchorRegistry")["abi"]
    with pytest.raises(NotFoundError, match="unknown contract 'Nope'"):
        load("Nope")


def test_sources_pin_the_evm_version_themselves():
    """The pragma travels with the source, so any other tool compiling it gets the same target."""
    for name in CONTRACTS:
        source = (SOURCE_DIR / f"{name}.vy").read_text()
        assert "# pragma evm-version cancun\n" in source
        assert "# pragma version 0.4.3\n" in source
    assert json.loads((BUILD_DIR / "AnchorRegistry.json").read_text())["optimize"] == "gas"

"""Compile the Vyper contracts into the committed JSON artifacts in ``build/``.

Build-time only: needs ``vyper==0.4.3`` and ``snekmate==0.1.2`` (the dev extras). Users never import this
module; they read the artifacts through :func:`ledgermind.contracts.load`.

::

    python -m ledgermind.contracts.build            # rewrite build/*.json
    python -m ledgermind.contracts.build --check    # exit 1 if an artifact differs from a fresh compile

The output is deterministic: the same sources and compiler give byte-identical files (keys sorted, fixed
indentation, source paths relative to their search path, no timestamps or absolute paths).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from ledgermind.contracts import BLUEPRINTS, BUILD_DIR, CONTRACTS, EVM_VERSION, SOURCE_DIR
from ledgermind.errors import LedgermindError

#: The exact compiler the artifacts are built with; snekmate 0.1.2 requires exactly this version.
VYPER_VERSION = "0.4.3"
SNEKMATE_VERSION = "0.1.2"
OPTIMIZE = "gas"


class BuildError(LedgermindError):
    """The build environment is wrong (compiler or snekmate version) or a source does not compile."""


def _snekmate_search_path() -> Path:
    """The directory that contains the ``snekmate`` package, so ``from snekmate.tokens import erc721`` resolves.

    Raises BuildError if snekmate is not installed or is not version 0.1.2.
    """
    spec = importlib.util.find_spec("snekmate")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("snekmate is not installed: pip install snekmate==" + SNEKMATE_VERSION)
    found = importlib.metadata.version("snekmate")
    if found != SNEKMATE_VERSION:
        raise BuildError(f"snekmate {SNEKMATE_VERSION} expected, found {found}")
    # snekmate ships no __init__.py (a namespace package), hence submodule_search_locations, not origin.
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def _relative(path: Path, roots: list[Path]) -> str:
    """``path`` relative to the innermost root that contains it, in POSIX form.

    Innermost, because roots nest in a regular (non-editable) install: snekmate's root is site-packages,
    which also holds ledgermind/contracts, and the artifact must not depend on how ledgermind was installed.
    """
    containing = [root for root in roots if path.is_relative_to(root)]
    if not containing:
        raise BuildError(f"{path} is outside the search paths {roots}")
    return path.relative_to(max(containing, key=lambda root: len(root.parts))).as_posix()


def compile_contract(name: str) -> dict[str, Any]:
    """Compile ``<name>.vy`` from this package and return its artifact as a dict.

    Requires name in CONTRACTS. Raises BuildError if vyper is not exactly 0.4.3, snekmate is not 0.1.2, or
    the source does not compile.
    """
    if name not in CONTRACTS:
        raise BuildError(f"unknown contract {name!r}; expected one of {', '.join(CONTRACTS)}")
    try:
        import vyper
        from vyper.compiler import outputs_from_compiler_data
        from vyper.compiler.input_bundle import FilesystemInputBundle
        from vyper.compiler.phases import CompilerData
        from vyper.compiler.settings import OptimizationLevel, Settings
    except ImportError as exc:
        raise BuildError(f"vyper is not installed: pip install vyper=={VYPER_VERSION}") from exc
    if vyper.__version__ != VYPER_VERSION:
        raise BuildError(f"vyper {VYPER_VERSION} expected, found {vyper.__version__}")

    # Only two search paths, not the whole sys.path: a stray .vy file elsewhere must not shadow an import.
    bundle = FilesystemInputBundle([_snekmate_search_path(), SOURCE_DIR.resolve()])
    file_input = bundle.load_file(f"{name}.vy")
    # The sources pin the same settings with pragmas; passing them here as well makes the compiler reject a
    # source whose pragmas drift from what the artifacts claim.
    settings = Settings(evm_version=EVM_VERSION, optimize=OptimizationLevel.from_string(OPTIMIZE))
    data = CompilerData(file_input, bundle, settings=settings)
    try:
        formats = ["abi", "bytecode", "bytecode_runtime", "integrity"]
        if name in BLUEPRINTS:
            formats.append("blueprint_bytecode")
        out = outputs_from_compiler_data(data, formats)
        imports = data.resolved_imports.compiler_inputs
    except Exception as exc:  # vyper raises many exception types; all mean "does not compile"
        raise BuildError(f"{name}.vy does not compile: {exc}") from exc

    # Keyed by path relative to its search path ("snekmate/auth/access_control.vy"), never absolute, so the
    # artifact does not depend on where the venv lives. The compiler's own interfaces (ethereum.ercs) are
    # covered by its version.
    sources = {}
    for inp in [file_input, *imports]:
        if not inp.from_builtin:
            sources[_relative(Path(inp.resolved_path), bundle.search_paths)] = inp.sha256sum

    artifact = {
        "contractName": name,
        "abi": out["abi"],
        "bytecode": out["bytecode"],
        "deployedBytecode": out["bytecode_runtime"],
        "compiler": {"name": "vyper", "version": vyper.__long_version__, "snekmate": SNEKMATE_VERSION},
        "evmVersion": EVM_VERSION,
        "optimize": OPTIMIZE,
        # sha256 of every source file that went into the bytecode, keyed by its import path
        "sources": sources,
        # vyper's own digest over all those inputs (`vyper -f integrity`)
        "integrity": out["integrity"],
    }
    if name in BLUEPRINTS:
        # deploy code that stores the contract as an ERC-5202 blueprint, for `create_from_blueprint`
        artifact["blueprintBytecode"] = out["blueprint_bytecode"]
    return artifact


def render(artifact: dict[str, Any]) -> str:
    """Serialise an artifact in the one stable format that is committed (sorted keys, 2-space indent)."""
    return json.dumps(artifact, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def build(out_dir: Path = BUILD_DIR, *, check: bool = False) -> list[str]:
    """Compile every contract; write ``<out_dir>/<Name>.json`` unless ``check``.

    Returns the names whose artifact on disk differed from the fresh compile (before writing, when not
    checking). Raises BuildError as compile_contract does.
    """
    changed = []
    for name in CONTRACTS:
        text = render(compile_contract(name))
        path = out_dir / f"{name}.json"
        if not path.exists() or path.read_text() != text:
            changed.append(name)
            if not check:
                out_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".json.tmp")
                tmp.write_text(text)
                tmp.replace(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledgermind.contracts.build", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if an artifact is stale")
    parser.add_argument("--out", type=Path, default=BUILD_DIR, help="artifact directory (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        changed = build(args.out, check=args.check)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for name in changed:
            print(f"stale: {args.out / name}.json", file=sys.stderr)
        return 1 if changed else 0
    for name in CONTRACTS:
        print(f"{'wrote' if name in changed else 'unchanged'} {args.out / name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ledgermind's EVM contracts: Vyper sources and their compiled artifacts.

``load(name)`` returns a committed artifact (ABI, deploy and runtime bytecode, compiler and EVM version,
source digests); it needs nothing but the standard library, so vyper is a build/test dependency only::

    from ledgermind.contracts import load
    art = load("AnchorRegistry")
    w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])

Rebuild the artifacts after editing a ``.vy`` file with ``python -m ledgermind.contracts.build``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from ledgermind.errors import NotFoundError

#: Contracts shipped with ledgermind, in build order.
CONTRACTS: tuple[str, ...] = (
    "AnchorRegistry",
    "AssetRegistry",
    "PaymentChannels",
    "ProviderRegistry",
    "PaymentToken",
    "AccessToken",
    "AccessTokenFactory",
    "Marketplace",
    "Federation",
    "Governance",
    "AIOracle",
    "Insurance",
)

#: Contracts deployed as ERC-5202 blueprints (their artifact also has ``blueprintBytecode``): AccessToken, which
#: AccessTokenFactory instantiates once per asset with ``create_from_blueprint``.
BLUEPRINTS: tuple[str, ...] = ("AccessToken",)

#: EVM version every contract is compiled for. Cancun: runs on py-evm's Prague VM (eth-tester's default),
#: anvil, and the L2s that have not adopted Prague yet; Vyper 0.4.3 emits no Prague-only opcode anyway.
EVM_VERSION = "cancun"

SOURCE_DIR = Path(__file__).parent
BUILD_DIR = SOURCE_DIR / "build"

__all__ = ["BLUEPRINTS", "CONTRACTS", "EVM_VERSION", "load"]


def load(name: str) -> dict[str, Any]:
    """Return the compiled artifact of contract ``name`` (one of CONTRACTS) as a fresh dict.

    Keys: ``contractName``, ``abi``, ``bytecode`` (deploy code, 0x-hex), ``deployedBytecode`` (runtime code),
    ``compiler``, ``evmVersion``, ``optimize``, ``sources`` (import path -> sha256 of every file compiled in)
    and ``integrity`` (vyper's digest over them). The code a deployment leaves on chain is ``deployedBytecode``
    followed by the immutables its constructor set (AssetRegistry: collection name, symbol, EIP-712 domain),
    so compare with ``startswith``. Blueprints (BLUEPRINTS) also have ``blueprintBytecode``: the deploy code that
    stores the contract as an ERC-5202 blueprint, whose address AccessTokenFactory's constructor takes.
    Raises NotFoundError for an unknown name or a missing artifact (run the build).
    """
    if name not in CONTRACTS:
        raise NotFoundError(f"unknown contract {name!r}; expected one of {', '.join(CONTRACTS)}")
    return json.loads(_read(name))


@cache
def _read(name: str) -> str:
    path = BUILD_DIR / f"{name}.json"
    try:
        return path.read_text()
    except FileNotFoundError:
        raise NotFoundError(f"artifact {path} is missing; run: python -m ledgermind.contracts.build") from None

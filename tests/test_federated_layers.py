"""The federated core stays below the chain, market and client layers, and needs no torch."""

from __future__ import annotations

import subprocess
import sys

CORE = ["aggregation", "anomaly", "attacks", "contribution", "data", "simulation", "trainers", "updates"]


def test_core_imports_nothing_from_the_layers_above_it():
    code = (
        "import sys\n"
        + "".join(f"import ledgermind.federated.{m}\n" for m in CORE)
        + "import ledgermind.federated\n"
        "above = ('ledgermind.chain', 'ledgermind.market', 'ledgermind.inference', 'ledgermind.client',"
        " 'ledgermind.cli', 'torch', 'flwr', 'web3')\n"
        "print(sorted(m for m in sys.modules if m.startswith(above)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"

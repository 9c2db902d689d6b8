"""The node under load, as ``bench/bench_node_load.py`` runs it but smaller: 16 concurrent clients for 5 seconds of
reads, signed writes and paid inference against ``ledgermind up`` and a provider on the same home. No request
fails, and after SIGTERM every acknowledged write and receipt is in the log, byte for byte."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def _bench():
    path = Path(__file__).resolve().parent.parent / "bench" / "bench_node_load.py"
    spec = importlib.util.spec_from_file_location("bench_node_load", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_sixteen_clients_for_five_seconds_no_errors_nothing_lost():
    result = _bench().run(clients=16, seconds=5, floor_seconds=0)
    node, log = result["node"], result["log"]
    assert node["errors"] == 0, node["error_samples"]
    assert all(k["requests"] > 0 for k in node["kinds"].values()), node["kinds"]
    assert log["acknowledged"] == node["kinds"]["write"]["requests"] + node["kinds"]["infer"]["requests"]
    assert log["lost"] == 0 and log["fsck_ok"], log
    assert result["exit_codes"][-1] == 0  # ledgermind up stopped cleanly on SIGTERM

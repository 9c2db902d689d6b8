"""Standard clients read ledgermind's contracts from a running ``ledgermind node``: web3.py over HTTP and
ethers.js from npm. The CLI commands run meanwhile reach the chain through that node."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from .anvil import ROOT, anvil_binary

pytestmark = [pytest.mark.chain, pytest.mark.slow]


@pytest.fixture()
def node(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "LEDGERMIND_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledgermind.cli.app", "node", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    line = proc.stdout.readline()
    match = re.search(r"serving at (http://\S+)", line)
    assert match, f"node did not start: {line}{proc.stderr.read() if proc.poll() is not None else ''}"
    yield home, match.group(1), env
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def run(env, *args):
    proc = subprocess.run([sys.executable, "-m", "ledgermind.cli.app", *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def test_web3_and_ethers_read_the_asset_registry_through_the_node(node, files):
    home, url, env = node
    data = run(env, "register", "dataset", str(files["data"]), "--mint", "--json")
    model = run(env, "register", "model", str(files["model"]), "--trained-on", data["id"], "--mint", "--json")
    # the CLI went through the node: its chain folder is locked by the node, and both tokens exist
    record = json.loads(next((home / "deployments").glob("*.json")).read_text())
    address = record["contracts"]["AssetRegistry"]["address"]

    from web3 import Web3

    from ledgermind.contracts import load

    w3 = Web3(Web3.HTTPProvider(url))
    assert w3.eth.chain_id == 1337
    registry = w3.eth.contract(address=address, abi=load("AssetRegistry")["abi"])
    model_token = int(model["id"], 16)
    assert registry.functions.ownerOf(model_token).call() == model["signer"]
    assert registry.functions.tokenURI(model_token).call().endswith(f"/entries/{model['logIndex']}")
    assert registry.functions.parents_of(model_token).call() == [int(data["id"], 16)]

    node_bin = shutil.which("node")
    assert node_bin, "Node.js is needed for the ethers.js client test"
    anvil_binary()  # makes sure `npm install` ran (it brings ethers too)
    script = f"""
const {{ ethers }} = require({json.dumps(str(ROOT / "node_modules" / "ethers"))});
(async () => {{
  const provider = new ethers.JsonRpcProvider({json.dumps(url)});
  const net = await provider.getNetwork();
  const abi = ["function ownerOf(uint256) view returns (address)", "function tokenURI(uint256) view returns (string)",
               "function balanceOf(address) view returns (uint256)"];
  const c = new ethers.Contract({json.dumps(address)}, abi, provider);
  const owner = await c.ownerOf(BigInt("0x{model['id']}"));
  const uri = await c.tokenURI(BigInt("0x{model['id']}"));
  const balance = await c.balanceOf(owner);
  console.log(JSON.stringify({{chainId: Number(net.chainId), owner, uri, balance: Number(balance)}}));
}})().catch((e) => {{ console.error(e.message); process.exit(1); }});
"""
    proc = subprocess.run([node_bin, "-e", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen == {"chainId": 1337, "owner": model["signer"], "uri": registry.functions.tokenURI(model_token).call(),
                    "balance": 2}

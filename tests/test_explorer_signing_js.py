"""The explorer's in-browser signing (static/js/sign.js) is byte-compatible with what the node verifies.

The JS runs under Node.js with the ethers build the page vendors: its RFC 8785 canonical JSON must equal the
Python one on awkward values (non-ASCII keys and strings, escapes, floats, deep nesting), its DSSE envelopes of
event/v1 statements must open with ``open_envelope`` (EIP-191 signature over the PAE, canonical payload, valid
statement), and its EIP-712 request headers must pass the node's ``check_request`` for that node and chain only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_account import Account

from ledgermind.node.auth import Refused, check_request
from ledgermind.node.signing import DOMAIN_NAME, DOMAIN_TYPES, DOMAIN_VERSION, REQUEST_TYPES
from ledgermind.statements import EVENT, canonical_json, open_envelope
from ledgermind.statements.dsse import Envelope

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "tests" / "browser" / "signing_check.mjs"
KEY = "0x" + "4f" * 32  # a test key
EVENTS = [
    {},
    {"site": "Rotterdam", "ok": True, "n": 3, "none": None},
    {"temp_c": 4.1, "tiny": 1e-7, "big": 1e21, "neg": -0.5, "int": 9007199254740991},
    {"é": "ünïcødé ✓", "a": "quote \" backslash \\ tab \t newline \n nul \u0000", "emoji": "🚢",
     "\u00e9a": 1, "Z": 2},
    {"nested": {"b": [1, {"y": 2, "x": [True, False]}], "a": {"k": "v"}}, "list": [3, 2, 1]},
]
HEADERS = {"signer": "X-Ledgermind-Signer", "nonce": "X-Ledgermind-Nonce", "expiry": "X-Ledgermind-Expiry",
           "signature": "X-Ledgermind-Signature"}


def _info(chain_id: int, node: str) -> dict:
    """The signing part of GET /v1/node, as the node builds it."""
    return {"node": node, "chainId": chain_id,
            "signing": {"primaryType": "NodeRequest", "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION,
                                                                  "chainId": chain_id},
                        "types": {"EIP712Domain": DOMAIN_TYPES, **REQUEST_TYPES}, "headers": HEADERS, "maxTtl": 3600}}


def test_js_signatures_verify_in_python(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the explorer's JS signing runs under node here")
    if not (ROOT / "node_modules" / "ethers").is_dir():
        pytest.skip("ethers is not installed: run `npm install` (package.json pins it)")
    body = json.dumps({"envelope": "stand-in"})
    cases = {"key": KEY, "info": _info(1337, "ledgermind.local/abc"), "events": EVENTS,
             "request": {"path": "/v1/statements", "body": body}}
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run([node, str(CHECK), str(tmp_path / "cases.json")], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    address = Account.from_key(KEY).address

    assert out["canonical"] == [canonical_json(e).decode() for e in EVENTS]
    for data, envelope in zip(EVENTS, out["envelopes"]):
        opened = open_envelope(Envelope.from_json(envelope))  # raises unless signature, form and statement hold
        assert opened.signer == address and opened.statement.predicate_type == EVENT
        assert opened.statement.predicate["data"] == data

    headers, raw = out["request"], body.encode()
    for node_name, chain_id, signed_body in [("other", 1337, raw), ("ledgermind.local/abc", 1, raw),
                                             ("ledgermind.local/abc", 1337, b"{}")]:
        with pytest.raises(Refused, match="signature is not by"):  # another node, chain or body was not signed
            check_request(headers, "POST", "/v1/statements", signed_body, chain_id=chain_id, node=node_name)
    signer, nonce, expiry = check_request(headers, "POST", "/v1/statements", raw, chain_id=1337,
                                          node="ledgermind.local/abc")
    assert signer == address and 0 <= nonce < 2**63 and expiry > 0

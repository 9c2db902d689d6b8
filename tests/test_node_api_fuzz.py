"""schemathesis against the node's OpenAPI description, over real HTTP: generated requests to every operation, reads
and writes, never get a 5xx. Writes are sent both unsigned and signed (by an operator of the node, so anchors and
votes get past authentication and their handlers see the generated bodies). Bounded: a few examples per
operation."""

from __future__ import annotations

import itertools
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from ledgermind.cli.up import start_up
from ledgermind.config import load_settings
from ledgermind.node.app import NodeOptions
from ledgermind.node.signing import signed_headers

from .conftest import InProcessCLI

pytestmark = [pytest.mark.chain, pytest.mark.slow]


class SigningSession(requests.Session):
    """Signs every POST with the account as sent (exact body bytes, path), like a well-behaved client."""

    def __init__(self, account, chain_id: int, node: str) -> None:
        super().__init__()
        self.account, self.chain_id, self.node = account, chain_id, node

    def send(self, request, **kw):
        if request.method == "POST":
            body = request.body or b""
            body = body.encode() if isinstance(body, str) else body
            request.headers.update(signed_headers(self.account, self.chain_id, self.node, "POST",
                                                  urlsplit(request.url).path, body))
        return super().send(request, **kw)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    cli = InProcessCLI(root / "home")
    (root / "data.csv").write_text("a,b\n1,2\n3,4\n")
    operator = cli("account", "new", "--default").stdout.strip()
    data = cli.json("register", "dataset", str(root / "data.csv"), "--mint")
    cli("gov", "propose", "approve-dataset", data["id"])
    settings_ = load_settings(root / "home", auto_anchor=False)
    up = start_up(settings_, api_port=0, rpc_port=0, options=NodeOptions(rate=1e6, burst=10**6))
    from ledgermind.accounts import DEV_PASSWORD, Keystore

    account = Keystore(settings_.keystore_dir).unlock(operator, DEV_PASSWORD)
    info = requests.get(f"{up.api_url}/v1/node", timeout=30).json()
    try:
        yield up.api_url, SigningSession(account, info["chainId"], info["node"])
    finally:
        up.stop()


def test_no_server_errors(live):
    url, signing = live
    api = schemathesis.openapi.from_url(f"{url}/openapi.json")
    checks = [schemathesis.checks.not_a_server_error]
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 20
    statuses: dict[str, set[int]] = {}

    for operation, mode in itertools.product(operations, GenerationMode):
        @given(case=operation.as_strategy(mode))
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def fuzz(case):
            r = case.call_and_validate(base_url=url, checks=checks)
            statuses.setdefault(f"{case.method} {operation.path}", set()).add(r.status_code)
            if case.method == "POST":
                r = case.call_and_validate(base_url=url, session=signing, checks=checks)
                statuses.setdefault(f"signed {case.method} {operation.path}", set()).add(r.status_code)

        try:
            fuzz()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid request
    # signed writes got past authentication to their handlers (which refused or did what the body said)
    signed = {k: v for k, v in statuses.items() if k.startswith("signed")}
    assert len(signed) == 4 and all(v - {401} for v in signed.values()), signed
    print(sorted(statuses.items()))

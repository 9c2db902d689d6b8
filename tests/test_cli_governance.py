"""Governance from the command line on the real embedded chain: the Marketplace refuses a model trained on
unapproved data (on chain, and the CLI says why first), a provider refuses to serve it, members vote with a
quorum and a timelock, and every act is a statement. Bad input: one line, exit 1."""

from __future__ import annotations

import joblib
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from ledgermind import Client
from ledgermind.errors import InvalidInputError
from ledgermind.statements import GOVERNANCE

from .conftest import InProcessCLI as CLI
from .test_cli import one_line_error

pytestmark = pytest.mark.chain


@pytest.fixture()
def minted(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    (tmp_path / "data.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    joblib.dump(LogisticRegression(max_iter=5000).fit(X, y), tmp_path / "model.joblib")
    cli = CLI(tmp_path / "home")
    data = cli.json("register", "dataset", str(tmp_path / "data.csv"), "--mint")
    model = cli.json("register", "model", str(tmp_path / "model.joblib"), "--trained-on", data["id"], "--mint")
    return cli, data["id"], model["id"], tmp_path


def test_unapproved_lineage_is_refused_until_approved(minted):
    cli, data, model, tmp = minted
    cli("market", "sell", model, "--licence", "1d", "--price", "1gwei")  # no gate yet: sells
    assert cli.json("gov", "enable")["enabled"]
    one_line_error(cli("market", "sell", model, "--price", "1gwei", ok=False), "governance has not approved")
    one_line_error(cli("market", "buy", model, "--licence", ok=False), "governance has not approved")
    with Client(tmp / "home") as lm, pytest.raises(InvalidInputError, match="refusing to serve"):
        lm.provider([(model, tmp / "model.joblib")], price=1)

    decided = cli.json("gov", "approve", data)
    assert decided["action"] == "approve-dataset" and decided["status"] == "executed"
    assert cli.json("gov", "status", model) == {"id": model, "name": "model.joblib", "dataset": False,
                                                "model": False, "lineageApproved": True}
    cli("market", "sell", model, "--price", "1gwei")
    with Client(tmp / "home") as lm:
        provider = lm.provider([(model, tmp / "model.joblib")], price=1)
        assert provider.models[0]["id"] == model
        provider.close()
    cli("gov", "approve", data, "--revoke")
    one_line_error(cli("market", "buy", model, ok=False), "governance has not approved")
    # every act is signed and in the log
    with Client(tmp / "home") as lm:
        acts = [lm.ledger.read(i).statement.predicate for i in range(lm.ledger.store.size())
                if lm.ledger.read(i).statement.predicate_type == GOVERNANCE]
    assert [a["action"] for a in acts] == ["gate", "propose", "vote", "execute", "propose", "vote", "execute"]


def test_members_vote_with_quorum_and_timelock(minted):
    cli, data, model, tmp = minted
    second = cli("account", "new").stdout.strip()
    outsider = cli("account", "new").stdout.strip()
    cli("gov", "member", second)
    cli("gov", "parameters", "--quorum", "2", "--timelock", "1h")
    p = cli.json("gov", "propose", "approve-dataset", data)
    pid = str(p["proposal_id"])
    cli("gov", "vote", pid)
    one_line_error(cli("gov", "execute", pid, ok=False), "not passed")
    one_line_error(cli("--account", outsider, "gov", "vote", pid, ok=False), "missing role")
    one_line_error(cli("gov", "vote", pid, ok=False), "already voted")
    assert cli.json("--account", second, "gov", "vote", pid)["status"] == "passed"
    one_line_error(cli("gov", "execute", pid, ok=False), "timelock not over")
    assert not cli.json("gov", "status", data)["dataset"]
    for args, words in [
        (("gov", "propose", "approve-model", data), "not a model"),
        (("gov", "propose", "approve-dataset", "ab" * 32), "unknown asset"),
        (("gov", "propose", "bless", data), "expected one of"),
        (("gov", "vote", "99"), "no proposal 99"),
        (("--account", outsider, "gov", "member", outsider), "missing role"),
        (("gov", "parameters", "--quorum", "0"), "zero quorum"),
        (("--account", outsider, "gov", "enable"), "only the Marketplace owner"),
    ]:
        proc = cli(*args, ok=False)
        assert proc.returncode in (1, 2) and words in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    status = cli.json("gov", "status")
    assert (status["quorum"], status["timelock"]) == (2, 3600) and len(status["proposals"]) == 1

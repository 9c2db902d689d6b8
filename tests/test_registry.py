"""Registry through the Python API: registration, lineage, verify, bundles, offline verification."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest

from ledgermind import Client
from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.registry import BUNDLE_MEDIA_TYPE


def statuses(report):
    return {c.name: c.status for c in report.checks}


@pytest.fixture()
def registered(home, files):
    with Client(home) as lm:
        data = lm.register_dataset(files["data"], licence="CC-BY-4.0", source="clinic", consent=True, contains_pii=False)
        more = lm.register_dataset(files["other"], name="more")
        base = lm.register_model(files["model"], trained_on=[data.digest], metrics={"accuracy": 0.91}, code_rev="abc123")
    return {"data": data, "more": more, "model": base}


def test_registration_records_a_signed_statement_with_predicate(home, files, registered):
    with Client(home) as lm:
        info = lm.show(registered["data"].digest)
        pred = info["statement"]["predicate"]
        assert info["kind"] == "dataset" and info["logIndex"] == 0
        assert pred["licence"] == "CC-BY-4.0" and pred["consent"] is True and pred["containsPii"] is False
        assert pred["rows"] == 3
        assert [c["name"] for c in pred["schema"]["columns"]] == ["age", "bp", "label"]
        assert [c["type"] for c in pred["schema"]["columns"]] == ["int", "float", "int"]
        assert pred["cid"].startswith("bafkrei")
        model = lm.show(registered["model"].digest)["statement"]["predicate"]
        assert model["trainingDatasets"][0]["digest"] == registered["data"].digest
        assert model["metrics"] == {"accuracy": 0.91} and model["codeRevision"] == "abc123"
        assert lm.log_info()["size"] == 3


def test_registering_the_same_bytes_again_returns_the_first_registration(home, files, registered):
    with Client(home) as lm:
        again = lm.register_dataset(files["data"], name="another-name")
        assert not again.created and again.log_index == registered["data"].log_index
        assert lm.log_info()["size"] == 3
        with pytest.raises(InvalidInputError, match="already registered as a dataset"):
            lm.register_model(files["data"], trained_on=["more"])
        assert lm.log_info()["size"] == 3


def test_model_lineage_back_to_source_datasets(home, files, registered, tmp_path):
    tuned = tmp_path / "tuned.bin"
    tuned.write_bytes(b"fine-tuned weights")
    with Client(home) as lm:
        child = lm.register_model(tuned, trained_on=["more"], parents=[registered["model"].digest[:10]])
        tree = lm.lineage(child.digest)
    assert tree["kind"] == "model"
    rels = {(p["relation"], p["name"]) for p in tree["parents"]}
    assert rels == {("trainedOn", "more"), ("derivedFrom", "model")}
    parent = next(p for p in tree["parents"] if p["relation"] == "derivedFrom")
    assert parent["parents"][0]["id"] == registered["data"].digest


def test_unregistered_lineage_is_refused_and_nothing_is_appended(home, files, registered, tmp_path):
    other = tmp_path / "other-model.bin"
    other.write_bytes(b"x" * 100)
    with Client(home) as lm:
        for kw in ({"trained_on": ["nope"]}, {"trained_on": ["more"], "parents": ["f" * 64]},
                   {"trained_on": [registered["model"].digest]}):
            with pytest.raises((NotFoundError, InvalidInputError)):
                lm.register_model(other, **kw)
        assert lm.log_info()["size"] == 3


def test_verify_passes_then_names_the_changed_file(home, files, registered):
    with Client(home) as lm:
        report = lm.verify(files["model"])
        assert report.ok, report.to_json()
        assert statuses(report) == {
            "fingerprint": "PASS", "signature": "PASS", "subject": "PASS", "inclusion": "PASS", "checkpoint": "PASS",
            "anchor": "SKIP", f"lineage {registered['data'].digest[:12]}": "PASS",
        }
        (files["model"] / "weights.bin").write_bytes(b"\xff" + (files["model"] / "weights.bin").read_bytes()[1:])
        bad = lm.verify(files["model"])
        assert not bad.ok
        fp = next(c for c in bad.checks if c.name == "fingerprint")
        assert fp.status == "FAIL"
        assert registered["model"].digest in fp.detail and "changed: weights.bin" in fp.detail
        assert "computed sha256:" in fp.detail


def test_verify_by_id_uses_the_content_store_when_asked_to_keep_bytes(home, files, tmp_path):
    with Client(home) as lm:
        stored = lm.register_dataset(files["other"], store=True)
        assert statuses(lm.verify(stored.digest))["fingerprint"] == "PASS"
        plain = lm.register_dataset(files["data"])
        report = lm.verify(plain.digest)
        assert statuses(report)["fingerprint"] == "SKIP" and report.ok
        with pytest.raises(NotFoundError):
            lm.verify(str(tmp_path / "missing.csv"))


def test_bundle_verifies_offline_and_detects_tampering(home, files, registered, tmp_path):
    with Client(home) as lm:
        out = lm.export_bundle(registered["model"].digest, tmp_path / "b.json")
        vkey = lm.log_info()["publicKey"]
    bundle = json.loads(out.read_text())
    assert bundle["mediaType"] == BUNDLE_MEDIA_TYPE
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    assert set(proof) == {"logIndex", "treeSize", "rootHash", "hashes", "checkpoint"}
    assert len(bundle["lineage"]) == 1

    report = Client.verify_bundle(out, files["model"], log_key=vkey)
    assert report.ok and statuses(report)["log key"] == "PASS"
    assert Client.verify_bundle(out, files["model"]).ok  # unpinned: SKIP on the key, still ok

    def variant(mutate) -> Path:
        b = copy.deepcopy(bundle)
        mutate(b)
        p = tmp_path / "t.json"
        p.write_text(json.dumps(b))
        return p

    def flip_b64(s: str) -> str:
        raw = bytearray(base64.b64decode(s))
        raw[0] ^= 1
        return base64.b64encode(bytes(raw)).decode()

    p0 = lambda b: b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]  # noqa: E731
    tamperings = {
        "inclusion": lambda b: p0(b).__setitem__("hashes", [flip_b64(p0(b)["hashes"][0])]),
        "checkpoint": lambda b: p0(b)["checkpoint"].__setitem__("envelope", p0(b)["checkpoint"]["envelope"].replace("\n3\n", "\n4\n")),
        "signature": lambda b: b["dsseEnvelope"].__setitem__("payload", base64.b64encode(
            base64.b64decode(b["dsseEnvelope"]["payload"]).replace(b"0.91", b"0.99")).decode()),
        "root": lambda b: p0(b).__setitem__("rootHash", flip_b64(p0(b)["rootHash"])),
        "lineage": lambda b: b["lineage"][0]["verificationMaterial"]["tlogEntries"][0]["inclusionProof"].__setitem__(
            "rootHash", flip_b64(b["lineage"][0]["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["rootHash"])),
    }
    for what, mutate in tamperings.items():
        report = Client.verify_bundle(variant(mutate), files["model"], log_key=vkey)
        assert not report.ok, what
    # a different log key pinned
    with Client(tmp_path / "other-home") as other:
        other.register_dataset(files["other"])
        other_key = other.log_info()["publicKey"]
    assert not Client.verify_bundle(out, files["model"], log_key=other_key).ok
    # a lineage entry removed
    assert not Client.verify_bundle(variant(lambda b: b.__setitem__("lineage", [])), files["model"]).ok
    # the wrong bytes
    assert not Client.verify_bundle(out, files["data"]).ok


@pytest.mark.parametrize("content, message", [
    ("{", "not JSON"), ("[]", "not a ledgermind bundle"), ('{"mediaType": "x"}', "not a ledgermind bundle"),
    (json.dumps({"mediaType": BUNDLE_MEDIA_TYPE, "dsseEnvelope": {}}), "malformed"),
])
def test_corrupt_bundles_raise_one_clear_error(tmp_path, files, content, message):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(InvalidInputError, match=message):
        Client.verify_bundle(p, files["data"])


def test_events_and_evaluations_are_statements_about_assets(home, registered):
    with Client(home) as lm:
        ev = lm.record_event(domain="supply-chain", type="shipped", data={"carrier": "ACME", "temp_c": 4.1},
                             related=[registered["model"].digest])
        assert ev.digest == registered["model"].digest
        lm.record_evaluation(model=registered["model"].digest, dataset="more", metrics={"f1": 0.8})
        kinds = [s["predicateType"].rsplit("/", 2)[-2] for s in lm.show(registered["model"].digest)["statements"]]
        assert kinds == ["model", "event", "evaluation"]
        loose = lm.record_event(domain="energy", type="meter-reading", data={"kwh": 12})
        assert loose.name == "energy/meter-reading" and len(loose.digest) == 64
        with pytest.raises(InvalidInputError):
            lm.record_event(domain="energy", type="x", data={"bad": float("inf")})
        assert lm.fsck().ok


def test_index_is_derived_state_and_rebuilds_from_the_log(home, registered):
    (home / "index.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (home / f"index.sqlite{suffix}").unlink(missing_ok=True)
    with Client(home) as lm:
        assert {a["id"] for a in lm.assets()} == {r.digest for r in registered.values()}
        assert lm.lineage("model")["parents"][0]["id"] == registered["data"].digest


def test_an_index_ahead_of_a_readers_view_of_the_log_is_kept(home, registered, tmp_path):
    """Syncers share the index: one whose view of the log is behind (it read the size before others appended)
    must leave a fresher index alone, not take it for another log's and empty it under every reader."""
    import shutil

    from ledgermind.client import log_signer
    from ledgermind.log.store import LogStore

    with Client(home) as lm:
        for suffix in ("", "-wal", "-shm"):  # the log as a reader saw it: 3 entries
            src = Path(str(lm.settings.log_path) + suffix)
            if src.exists():
                shutil.copyfile(src, tmp_path / f"behind.sqlite{suffix}")
        lm.record_event(domain="test", type="tick", related=[registered["model"].digest])
        lm.registry.sync()
        index, ahead = lm.registry.index, lm.registry.index._indexed()
        assert ahead == 4
        behind = LogStore(tmp_path / "behind.sqlite", log_signer(lm.settings.log_key_path))
        try:
            assert behind.size() == 3 and behind.origin == lm.ledger.store.origin
            assert index.sync(behind) == 0
        finally:
            behind.close()
        assert index._indexed() == 4 and index.asset(registered["model"].digest) is not None


def test_name_and_prefix_resolution(home, files, registered, tmp_path):
    with Client(home) as lm:
        assert lm.show("more")["id"] == registered["more"].digest
        assert lm.show(registered["more"].digest[:8])["id"] == registered["more"].digest
        assert lm.show("sha256:" + registered["more"].digest)["id"] == registered["more"].digest
        dup = tmp_path / "dup.csv"
        dup.write_text("a\n1\n")
        lm.register_dataset(dup, name="more")
        with pytest.raises(InvalidInputError, match="matches 2 assets"):
            lm.show("more")


def test_statements_are_signed_by_the_chosen_account(home, files):
    with Client(home) as lm:
        second = lm.new_account(password="")
    with Client(home, account=second) as lm:
        r = lm.register_dataset(files["data"])
        assert r.signer == second
        assert lm.entry(r.log_index)["signer"] == second

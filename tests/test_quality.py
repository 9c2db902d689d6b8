"""Data-quality checks on tables with planted problems (and a clean one), as recorded at registration and shown by
``ledgermind inspect``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from ledgermind import Client
from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.quality import inspect_dataset, inspect_table, leakage

from .conftest import InProcessCLI


def write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def clean_rows(n: int = 300, seed: int = 0) -> list[list]:
    rng = np.random.default_rng(seed)
    return [[f"{rng.normal(50, 10):.3f}", f"{rng.normal(0, 1):.4f}", int(rng.integers(0, 2))] for _ in range(n)]


def test_a_clean_table_has_no_issues(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    path = write(tmp_path / "cancer.csv", [f"f{i}" for i in range(30)] + ["label"],
                 [[f"{v:.6g}" for v in x] + [int(t)] for x, t in zip(X, y)])
    r = inspect_table(path)
    assert r.rows == r.checked_rows == 569 and r.duplicates == 0 and not r.pii
    assert r.label == {"column": "label", "classes": {"1": 357, "0": 212}, "imbalance": round(357 / 212, 3)}
    # the real data has a few extreme values (a robust z above 6), and says so column by column
    assert all(i.startswith("column 'f") and "robust standard deviations" in i for i in r.issues)


def test_missing_duplicates_imbalance_and_outliers(tmp_path):
    rows = clean_rows()
    for k, r in enumerate(rows):
        r[1] = "NA" if k < 30 else r[1]
        r[2] = 1 if k < 12 else 0
    rows[100][0] = "99999"
    rows += [list(rows[200]), list(rows[201]), list(rows[202])]  # three copies of complete rows, label 0
    report = inspect_table(write(tmp_path / "t.csv", ["age", "score", "label"], rows))
    assert report.duplicates == 3 and report.columns[1] == {"name": "score", "missing": 30}
    assert report.outliers == {"age": 1}
    assert report.label["classes"] == {"0": 291, "1": 12}
    assert "column 'score': 30 missing values (10%)" in report.issues
    assert "3 duplicate rows of 303" in report.issues
    assert any(i.startswith("label 'label': classes are imbalanced") for i in report.issues)


@pytest.mark.parametrize(("value", "kind"), [
    ("alice@example.org", "email"), ("+44 20 7946 0958", "phone"), ("10.0.12.7", "ipv4"),
    ("4111 1111 1111 1111", "card"), ("078-05-1120", "ssn"), ("DE89370400440532013000", "iban"),
])
def test_pii_detectors(tmp_path, value, kind):
    rows = [[str(i), value if i % 2 else "n/a"] for i in range(60)]
    report = inspect_table(write(tmp_path / "p.csv", ["id", "contact"], rows))
    assert kind in report.pii["contact"] and report.pii["contact"][kind] == 30


def test_pii_detectors_do_not_fire_on_measurements(tmp_path):
    rows = [[f"{1_000_000_000 + i * 7919}", f"{i * 0.123456789:.9f}", "4111 1111 1111 1112"] for i in range(200)]
    report = inspect_table(write(tmp_path / "m.csv", ["reading", "value", "not_a_card"], rows))
    assert report.pii == {}  # big integers and decimals are numbers; a Luhn-invalid number is no card


def test_leakage_exact_and_near(tmp_path):
    train = clean_rows(200, seed=1)
    test = clean_rows(100, seed=2)
    test[:5] = [list(r) for r in train[:5]]  # copies
    test[5:8] = [[f"{float(a) + 1e-6:.6f}", b, c] for a, b, c in train[5:8]]  # copies with noise in the 7th digit
    tr = write(tmp_path / "train.csv", ["a", "b", "label"], train)
    te = write(tmp_path / "test.csv", ["a", "b", "label"], test)
    assert leakage(tr, te) == {"train": "train.csv", "test": "test.csv", "testRows": 100, "exact": 5, "near": 3}
    other = write(tmp_path / "other.csv", ["x", "y", "label"], test)
    with pytest.raises(InvalidInputError, match="do not have the same columns"):
        leakage(tr, other)
    folder = tmp_path / "split"
    folder.mkdir()
    (folder / "train.csv").write_bytes(tr.read_bytes())
    (folder / "test.csv").write_bytes(te.read_bytes())
    report = inspect_dataset(folder)
    assert [t["file"] for t in report["tables"]] == ["test.csv", "train.csv"]
    assert report["leakage"]["exact"] == 5 and report["issues"][-1].startswith("5 exact and 3 near duplicates")


def test_bounded_rows_bad_files_and_non_tables(tmp_path):
    path = write(tmp_path / "big.csv", ["a", "b", "label"], clean_rows(500))
    r = inspect_table(path, max_rows=100)
    assert (r.rows, r.checked_rows) == (500, 100) and "only the first 100 of 500 rows were checked" in r.issues
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\x00" * 50)
    with pytest.raises(InvalidInputError, match="not a readable CSV"):
        inspect_table(tmp_path / "bin.csv")
    with pytest.raises(NotFoundError):
        inspect_dataset(tmp_path / "nope.csv")
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 10)
    assert inspect_dataset(tmp_path / "weights.bin") == {"tables": [], "issues": []}


def test_registration_records_the_report_and_inspect_shows_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERMIND_AUTO_ANCHOR", "0")
    rows = clean_rows()
    for r in rows[::3]:
        r.append("bob@example.com")
    for r in rows:
        r[len(r):] = [""] * (4 - len(r))
    path = write(tmp_path / "patients.csv", ["age", "score", "label", "email"], rows)
    with Client(tmp_path / "home") as lm:
        reg = lm.register_dataset(path, contains_pii=False)
        quality = lm.ledger.read(reg.log_index).statement.predicate["quality"]
    assert quality["tables"][0]["pii"] == {"email": {"email": 100}}
    assert quality["issues"][-1] == "registered as holding no personal data, but the detectors found: email"
    cli = InProcessCLI(tmp_path / "home")
    by_id = cli.json("inspect", reg.digest[:10])
    assert by_id["registered"] == {"id": reg.digest, "logIndex": reg.log_index} and by_id["issues"] == quality["issues"]
    by_path = cli.json("inspect", str(path))
    assert by_path["registered"]["id"] == reg.digest and by_path["tables"] == quality["tables"]
    assert "email" in cli("inspect", reg.digest).stdout
    for args, words in [(("inspect", "nope"), "no registered asset matches"),
                        (("inspect", reg.digest, "--against", str(path)), "--against needs the dataset's file")]:
        proc = cli(*args, ok=False)
        assert proc.returncode == 1 and words in proc.stderr and "Traceback" not in proc.stderr

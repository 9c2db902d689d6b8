"""The checks behind ``ledgermind.quality``: one streaming pass over a table, bounded memory, no dependencies.

A table is read with the csv module (UTF-8, BOM tolerated); only its first ``MAX_ROWS`` data rows are checked
(the report says how many were). What each check does:

- missing: empty cells (and NA, NaN, null, None, "?") per column;
- duplicates: rows identical to an earlier row (compared by an 8-byte hash of the row);
- label balance: the label column (named label, target, class, y, outcome, flag, diagnosis, or else a last column
  of at most 20 distinct integer values): count per class and the majority/minority ratio;
- outliers: numeric cells more than 6 robust standard deviations (1.4826 x MAD) from the column's median, from a
  seeded reservoir sample of 10,000 values per column;
- PII: e-mail addresses, phone numbers, IPv4 addresses, payment card numbers (Luhn-valid), US social security
  numbers and IBANs, counted per column (a column is reported when at least 5% of its sampled cells match, or at
  least 20 do);
- leakage (``leakage(train, test)``): rows of the test table equal to a training row, exactly or after rounding
  every number to 4 significant digits and folding case and spaces (near-duplicates).

Issues are one-line strings naming the column and the numbers, so a statement reader sees why a check fired.
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ledgermind.errors import InvalidInputError, NotFoundError

MAX_ROWS = 200_000  # rows checked per table: enough to judge, bounded time for multi-gigabyte files
SAMPLE_VALUES = 10_000  # values per numeric column kept for the outlier check
OUTLIER_Z = 6.0
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
LABEL_NAMES = ("label", "target", "class", "y", "outcome", "flag", "diagnosis")
MAX_CLASSES = 20
PII_MIN_SHARE, PII_MIN_COUNT = 0.05, 20
_PII = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "phone": re.compile(r"(?<![\w.])\+?\d[\d\s().-]{7,}\d(?![\w.])"),
    "ipv4": re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"),
    "card": re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"),
    "ssn": re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"),
}


@dataclass
class QualityReport:
    """What the checks found in one table (see the module docstring); ``issues`` is what deserves attention."""

    file: str
    rows: int
    checked_rows: int
    columns: list[dict[str, Any]]
    duplicates: int
    label: dict[str, Any] | None
    outliers: dict[str, int]
    pii: dict[str, dict[str, int]]
    leakage: dict[str, Any] | None = None
    issues: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _is_missing(v: str) -> bool:
    return v.strip().lower() in MISSING


def _number(v: str) -> float | None:
    try:
        x = float(v)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _pii_kinds(value: str) -> list[str]:
    found = []
    for kind, pattern in _PII.items():
        m = pattern.search(value)
        if m is None:
            continue
        if kind == "card" and not _luhn(re.sub(r"\D", "", m.group())):
            continue
        if kind == "phone" and (_number(value) is not None or not 8 <= sum(c.isdigit() for c in m.group()) <= 15):
            continue  # a plain number is a measurement; E.164 numbers have at most 15 digits
        found.append(kind)
    return found


def _open(path: Path) -> tuple[Any, str]:
    if not path.is_file():
        raise NotFoundError(f"no such file: {path}")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        return path.open(newline="", encoding="utf-8-sig"), delimiter
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror}") from None


def _row_key(row: list[str], near: bool) -> bytes:
    """A compact identity for a row: exact cells, or (near) numbers to 4 significant digits, text folded."""
    if near:
        cells = []
        for v in row:
            x = _number(v)
            cells.append(f"{x:.4g}" if x is not None else " ".join(v.split()).lower())
    else:
        cells = row
    return hashlib.blake2b("\x1f".join(cells).encode(), digest_size=8).digest()


def inspect_table(path: str | Path, *, max_rows: int = MAX_ROWS, seed: int = 0) -> QualityReport:
    """Check one CSV/TSV table. Raises NotFoundError, or InvalidInputError for a file that is not text CSV."""
    p = Path(path)
    f, delimiter = _open(p)
    rng = random.Random(seed)
    with f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as e:
            raise InvalidInputError(f"{p} is not a readable CSV table: {e}") from None
        if not header:
            return QualityReport(p.name, 0, 0, [], 0, None, {}, {}, issues=[f"{p.name} is empty"])
        names = [h.strip() or f"column_{i}" for i, h in enumerate(header)]
        n = len(names)
        missing = [0] * n
        kinds: list[set[str]] = [set() for _ in range(n)]
        samples: list[list[float]] = [[] for _ in range(n)]
        seen_numbers = [0] * n
        distinct: list[set[str]] = [set() for _ in range(n)]  # capped: label detection only needs small sets
        pii: list[Counter[str]] = [Counter() for _ in range(n)]
        text_cells = [0] * n
        keys: set[bytes] = set()
        duplicates = ragged = checked = total = 0
        try:
            for row in reader:
                total += 1
                if checked >= max_rows:
                    continue
                checked += 1
                if len(row) != n:
                    ragged += 1
                    row = (row + [""] * n)[:n]
                key = _row_key(row, near=False)
                if key in keys:
                    duplicates += 1
                else:
                    keys.add(key)
                for i, v in enumerate(row):
                    if _is_missing(v):
                        missing[i] += 1
                        continue
                    x = _number(v)
                    if x is None:
                        low = v.strip().lower()
                        kinds[i].add("bool" if low in ("true", "false") else "string")
                        text_cells[i] += 1
                        for kind in _pii_kinds(v):
                            pii[i][kind] += 1
                    else:
                        kinds[i].add("int" if x.is_integer() and "." not in v and "e" not in v.lower() else "float")
                        seen_numbers[i] += 1
                        if len(samples[i]) < SAMPLE_VALUES:
                            samples[i].append(x)
                        else:  # reservoir sampling: every value equally likely to be kept
                            j = rng.randrange(seen_numbers[i])
                            if j < SAMPLE_VALUES:
                                samples[i][j] = x
                        if (v.isdigit() or v.replace("-", "").isdigit()) and len(v.replace("-", "")) >= 9:
                            for kind in _pii_kinds(v):  # card and SSN-like numbers look numeric
                                if kind in ("card", "ssn"):
                                    pii[i][kind] += 1
                    if len(distinct[i]) <= MAX_CLASSES:
                        distinct[i].add(v.strip())
        except (csv.Error, UnicodeDecodeError) as e:
            raise InvalidInputError(f"{p} is not a readable CSV table (row {total + 1}): {e}") from None

    columns = []
    issues: list[str] = []
    for i, name in enumerate(names):
        columns.append({"name": name, "missing": missing[i]})  # types: the statement's schema summary
        if checked and missing[i]:
            share = missing[i] / checked
            if share >= 0.05:
                issues.append(f"column {name!r}: {missing[i]} missing values ({share:.0%})")
    outliers = {}
    for i, name in enumerate(names):
        values = samples[i]
        if len(values) < 20:
            continue
        values = sorted(values)
        med = values[len(values) // 2]
        mad = sorted(abs(v - med) for v in values)[len(values) // 2] * 1.4826
        if mad == 0:
            continue
        count = sum(1 for v in values if abs(v - med) / mad > OUTLIER_Z)
        if count:
            outliers[name] = count
            issues.append(f"column {name!r}: {count} of {len(values)} sampled values are more than {OUTLIER_Z:g} "
                          f"robust standard deviations from the median")
    pii_found = {}
    for i, name in enumerate(names):
        for kind, count in pii[i].items():
            base = max(text_cells[i], seen_numbers[i], 1)
            if count >= PII_MIN_COUNT or count / base >= PII_MIN_SHARE:
                pii_found.setdefault(name, {})[kind] = count
                issues.append(f"column {name!r}: {count} values look like {kind} (personal data?)")
    label = _label(names, kinds, distinct, p, delimiter, max_rows)
    if label and label["imbalance"] >= 10:
        issues.append(f"label {label['column']!r}: classes are imbalanced {label['imbalance']:.1f} to 1")
    if duplicates:
        issues.append(f"{duplicates} duplicate rows of {checked}")
    if ragged:
        issues.append(f"{ragged} rows do not have {n} cells")
    if total > checked:
        issues.append(f"only the first {checked} of {total} rows were checked")
    return QualityReport(p.name, total, checked, columns, duplicates, label, outliers, pii_found, issues=issues)


def _label(names: list[str], kinds: list[set[str]], distinct: list[set[str]], path: Path, delimiter: str,
           max_rows: int) -> dict[str, Any] | None:
    """The label column and its class counts (a second pass over that one column), or None."""
    index = next((i for i, nm in enumerate(names) if nm.strip().lower() in LABEL_NAMES), None)
    if index is None:
        last = len(names) - 1
        if last > 0 and kinds[last] == {"int"} and 1 < len(distinct[last]) <= MAX_CLASSES:
            index = last
    if index is None or len(distinct[index]) > MAX_CLASSES:
        return None
    counts: Counter[str] = Counter()
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        next(reader, None)
        for k, row in enumerate(reader):
            if k >= max_rows:
                break
            if index < len(row) and not _is_missing(row[index]):
                counts[row[index].strip()] += 1
    if len(counts) < 2:
        return None
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    values = list(ordered.values())
    return {"column": names[index], "classes": ordered, "imbalance": round(values[0] / values[-1], 3)}


def leakage(train: str | Path, test: str | Path, *, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """Rows of ``test`` that repeat a row of ``train``: exactly, and nearly (numbers to 4 significant digits,
    text case- and space-folded). Both tables must have the same header. Raises InvalidInputError otherwise."""
    keys_exact: set[bytes] = set()
    keys_near: set[bytes] = set()
    header = None
    for role, path in (("train", Path(train)), ("test", Path(test))):
        f, delimiter = _open(path)
        with f:
            reader = csv.reader(f, delimiter=delimiter)
            head = next(reader, None)
            if role == "train":
                header = head
            elif head != header:
                raise InvalidInputError(f"{Path(test).name} and {Path(train).name} do not have the same columns")
            exact = near = rows = 0
            for k, row in enumerate(reader):
                if k >= max_rows:
                    break
                rows += 1
                e, nr = _row_key(row, near=False), _row_key(row, near=True)
                if role == "train":
                    keys_exact.add(e)
                    keys_near.add(nr)
                elif e in keys_exact:
                    exact += 1
                elif nr in keys_near:
                    near += 1
    return {"train": Path(train).name, "test": Path(test).name, "testRows": rows, "exact": exact,
            "near": near}


def inspect_dataset(path: str | Path, *, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """The quality report of a dataset: its table (a file), or each table of a folder, plus train/test leakage
    when the folder holds one table named like train and one like test. Returns JSON for the statement; a
    dataset with no CSV/TSV table gets ``{"tables": [], "issues": []}``."""
    p = Path(path)
    if p.is_file():
        tables = [p] if p.suffix.lower() in (".csv", ".tsv") else []
    elif p.is_dir():
        tables = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in (".csv", ".tsv"))
    else:
        raise NotFoundError(f"no such file or folder: {p}")
    reports = [inspect_table(t, max_rows=max_rows) for t in tables]
    out: dict[str, Any] = {"tables": [r.to_json() for r in reports],
                           "issues": [f"{r.file}: {i}" if len(reports) > 1 else i for r in reports for i in r.issues]}
    train = [t for t in tables if "train" in t.stem.lower()]
    test = [t for t in tables if "test" in t.stem.lower()]
    if len(train) == 1 and len(test) == 1:
        leak = leakage(train[0], test[0], max_rows=max_rows)
        out["leakage"] = leak
        if leak["exact"] or leak["near"]:
            out["issues"].append(f"{leak['exact']} exact and {leak['near']} near duplicates of training rows in "
                                 f"{leak['test']} (of {leak['testRows']})")
    return out

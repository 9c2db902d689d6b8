"""Schema summaries of datasets: format, columns with inferred types, and row counts.

Cheap and dependency-free: CSV/TSV are read with the csv module (types inferred from a sample), JSON
Lines by counting lines; anything else is summarised by its file formats.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

SAMPLE_ROWS = 1000


def _infer(values: list[str]) -> str:
    present = [v for v in values if v.strip() != ""]
    if not present:
        return "empty"
    for kind, conv in (("int", int), ("float", float)):
        try:
            for v in present:
                conv(v)
            return kind
        except ValueError:
            continue
    if all(v.strip().lower() in {"true", "false"} for v in present):
        return "bool"
    return "string"


def summarize(path: Path, files: list[str]) -> tuple[dict[str, Any], int | None]:
    """Return (schema summary, row count or None) for a dataset file or folder."""
    target = path if path.is_file() else None
    if target is None:
        tables = [f for f in files if f.lower().endswith((".csv", ".tsv"))]
        if len(tables) == 1:
            target = path / tables[0]
    if target is not None and target.suffix.lower() in {".csv", ".tsv"}:
        return _table(target)
    if target is not None and target.suffix.lower() in {".jsonl", ".ndjson"}:
        with target.open("rb") as f:
            return {"format": "jsonl", "columns": []}, sum(1 for line in f if line.strip())
    formats = sorted({Path(f).suffix.lower().lstrip(".") or "none" for f in files})
    return {"format": "folder" if path.is_dir() else (formats[0] or "binary"), "columns": []}, None


def _table(path: Path) -> tuple[dict[str, Any], int | None]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return {"format": path.suffix.lower().lstrip("."), "columns": []}, 0
            sample = list(itertools.islice(reader, SAMPLE_ROWS))
            rows = len(sample) + sum(1 for _ in reader)
    except (UnicodeDecodeError, csv.Error):
        return {"format": "binary", "columns": []}, None
    columns = [
        {"name": name.strip() or f"column_{i}", "type": _infer([r[i] for r in sample if i < len(r)])}
        for i, name in enumerate(header)
    ]
    return {"format": path.suffix.lower().lstrip("."), "columns": columns}, rows

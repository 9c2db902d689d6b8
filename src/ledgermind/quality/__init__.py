"""Data-quality checks of tabular datasets, recorded in the dataset's registration statement.

``inspect_dataset(path)`` reads a CSV/TSV file (or the tables of a folder) and reports its schema, missing values,
duplicate rows, label balance, outliers, personal data that simple detectors find, and, for a folder holding a
train and a test table, rows of the test table that (nearly) repeat training rows. ``ledgermind inspect``
prints the report; ``register dataset`` records it under the statement's ``quality``.
"""

from ledgermind.quality.checks import MAX_ROWS, QualityReport, inspect_dataset, inspect_table, leakage

__all__ = ["MAX_ROWS", "QualityReport", "inspect_dataset", "inspect_table", "leakage"]

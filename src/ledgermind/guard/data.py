"""The real labelled data the fraud detector is trained and checked on, read from the shared data folder.

- ``load_kaggle()``: the public Ethereum fraud dataset (``eth-fraud-kaggle/transaction_dataset.csv``): 9,841 rows
  of per-account aggregates with a fraud label, read into the columns of ``ledgermind.guard.features.FEATURES``.
  Duplicate addresses (25; 7 of them with differing rows) are kept once, first row wins, so no address can land
  on both sides of a split. Accounts with nothing recorded at all (274 rows of zeros and blanks, every one of them
  fraudulent) are left out unless asked for: there is nothing to judge them by, and a model would learn "no data
  means fraud" (12.6% of the fraud class for free).
- ``load_forta()``: the Forta labelled datasets (``forta-labelled/labels/1``): Etherscan-derived phishing, exploit
  and heist addresses and malicious contracts. They carry labels only, no transactions.

The Kaggle file's ERC-20 columns are blank for 829 accounts, every one of them fraudulent; among accounts with
those columns filled, no fraudulent one has zero ERC-20 transfers while 4,399 legitimate ones do. So a blank
there is how the file records "no ERC-20 transfer" for fraudulent accounts. ``load_kaggle`` reads a blank as 0
(what the extractor computes for an account with no transfers), which makes a blank indistinguishable from a
legitimate account's zero; ``erc20_missing`` keeps the mask so an evaluation can show it does not matter. The
categorical "most sent/received token type" columns (blank, "0", "None" or " " with label-correlated frequency)
are not read at all.

The folder is ``$LEDGERMIND_SHARED_DATA``, else ``../shared/data`` beside the checkout.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.guard.features import FEATURES, derived

KAGGLE_FILE = Path("eth-fraud-kaggle") / "transaction_dataset.csv"
FORTA_DIR = Path("forta-labelled") / "labels" / "1"

#: Feature name -> column of the Kaggle file (names stripped of their stray spaces) for every FEATURES entry
#: that is not a ratio.
KAGGLE_COLUMNS: dict[str, str] = {
    "avg_min_between_sent": "Avg min between sent tnx",
    "avg_min_between_received": "Avg min between received tnx",
    "time_diff_first_last_min": "Time Diff between first and last (Mins)",
    "sent_tnx": "Sent tnx",
    "received_tnx": "Received Tnx",
    "created_contracts": "Number of Created Contracts",
    "unique_received_from": "Unique Received From Addresses",
    "unique_sent_to": "Unique Sent To Addresses",
    "min_value_received": "min value received",
    "max_value_received": "max value received",
    "avg_value_received": "avg val received",
    "min_value_sent": "min val sent",
    "max_value_sent": "max val sent",
    "avg_value_sent": "avg val sent",
    "total_transactions": "total transactions (including tnx to create contract",
    "total_ether_sent": "total Ether sent",
    "total_ether_received": "total ether received",
    "total_ether_balance": "total ether balance",
    "erc20_total_tnxs": "Total ERC20 tnxs",
    "erc20_total_received": "ERC20 total Ether received",
    "erc20_total_sent": "ERC20 total ether sent",
    "erc20_uniq_sent_addr": "ERC20 uniq sent addr",
    "erc20_uniq_rec_addr": "ERC20 uniq rec addr",
    "erc20_min_val_rec": "ERC20 min val rec",
    "erc20_max_val_rec": "ERC20 max val rec",
    "erc20_avg_val_rec": "ERC20 avg val rec",
    "erc20_min_val_sent": "ERC20 min val sent",
    "erc20_max_val_sent": "ERC20 max val sent",
    "erc20_avg_val_sent": "ERC20 avg val sent",
    "erc20_uniq_sent_token": "ERC20 uniq sent token name",
    "erc20_uniq_rec_token": "ERC20 uniq rec token name",
}
if tuple(KAGGLE_COLUMNS) != FEATURES[: len(KAGGLE_COLUMNS)]:  # derived() reads the base columns by position
    raise AssertionError("KAGGLE_COLUMNS must list the non-ratio FEATURES in their order")


@dataclass(frozen=True)
class KaggleData:
    """The Kaggle dataset as FEATURES columns: ``X[i]`` describes ``addresses[i]``, ``y[i]`` is 1 for fraud."""

    addresses: list[str]
    X: np.ndarray
    y: np.ndarray
    erc20_missing: np.ndarray  # True where the file left the ERC-20 columns blank (read as 0)
    empty_dropped: int = 0  # accounts with nothing recorded, left out
    names: tuple[str, ...] = FEATURES


def shared_data_dir() -> Path:
    """The shared data folder: $LEDGERMIND_SHARED_DATA, else ``shared/data`` beside the checkout (seen from the
    working directory, which is how a regular install finds it, or from this file in an editable install), else
    ``/work/shared/data`` (this project's machines).

    Raises NotFoundError if none exists.
    """
    env = os.environ.get("LEDGERMIND_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().resolve().parent / "shared" / "data",
                   Path(__file__).resolve().parents[4] / "shared" / "data", Path("/work/shared/data")]
    for c in candidates:
        if c.is_dir():
            return c
    raise NotFoundError(f"no shared data folder at {', '.join(map(str, candidates))}: set LEDGERMIND_SHARED_DATA")


def load_kaggle(path: str | os.PathLike[str] | None = None, keep_empty: bool = False) -> KaggleData:
    """Read the Kaggle fraud dataset (default: the shared folder's copy), one row per distinct address, without
    the accounts that have nothing recorded unless ``keep_empty``.

    Raises NotFoundError if the file is missing, InvalidInputError if a column is missing or a cell is not a number.
    """
    file = Path(path) if path is not None else shared_data_dir() / KAGGLE_FILE
    if not file.is_file():
        raise NotFoundError(f"no Kaggle fraud dataset at {file}")
    with file.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [c.strip() for c in next(reader)]
        rows = list(reader)
    wanted = ["Address", "FLAG", *KAGGLE_COLUMNS.values()]
    absent = [c for c in wanted if c not in header]
    if absent:
        raise InvalidInputError(f"{file} lacks the columns {', '.join(absent)}")
    idx = [header.index(c) for c in wanted]
    erc20_at = header.index(KAGGLE_COLUMNS["erc20_total_tnxs"])
    seen: set[str] = set()
    addresses, values, labels, missing = [], [], [], []
    empty = 0
    for line, row in enumerate(rows, start=2):
        address = row[idx[0]].strip().lower()
        if address in seen:  # duplicates: keep the first row
            continue
        seen.add(address)
        try:
            base = [float(row[i]) if row[i].strip() else 0.0 for i in idx[2:]]
            label = int(row[idx[1]])
        except ValueError as e:
            raise InvalidInputError(f"{file} line {line}: {e}") from e
        if not keep_empty and not any(base):
            empty += 1
            continue
        addresses.append(address)
        values.append(base + derived(base))
        labels.append(label)
        missing.append(not row[erc20_at].strip())
    return KaggleData(addresses, np.array(values), np.array(labels, dtype=np.int64), np.array(missing), empty)


def load_forta(path: str | os.PathLike[str] | None = None) -> dict[str, set[str]]:
    """The Forta labels of Ethereum mainnet: address (lower-case) -> the labels it carries.

    Labels: ``phishing`` (phishing_scams.csv), ``phish-hack``/``exploit``/``heist`` (the Etherscan list of
    etherscan_malicious_labels.csv, by its data source), ``malicious-contract`` and ``malicious-contract-creator``
    (malicious_smart_contracts.csv). Raises NotFoundError if the folder is missing.
    """
    folder = Path(path) if path is not None else shared_data_dir() / FORTA_DIR
    if not folder.is_dir():
        raise NotFoundError(f"no Forta labels at {folder}")
    labels: dict[str, set[str]] = {}

    def add(address: str, label: str) -> None:
        if address.strip():
            labels.setdefault(address.strip().lower(), set()).add(label)

    for row in _rows(folder / "phishing_scams.csv"):
        add(row["address"], "phishing")
    for row in _rows(folder / "etherscan_malicious_labels.csv"):
        source = row.get("data_source", "")
        kind = next((k for k in ("phish-hack", "exploit", "heist") if k in source), "etherscan-malicious")
        add(row["banned_address"], kind)
    for row in _rows(folder / "malicious_smart_contracts.csv"):
        add(row["contract_address"], "malicious-contract")
        add(row["contract_creator"], "malicious-contract-creator")
    return labels


def _rows(file: Path) -> list[dict[str, str]]:
    if not file.is_file():
        raise NotFoundError(f"no Forta label file {file}")
    with file.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


"""Per-account features of a plain transactions table, in the families of the public Ethereum fraud dataset.

The families are those of the "Ethereum Fraud Detection Dataset" (Kaggle; ``../shared/data/eth-fraud-kaggle``):
how many transactions an account sent and received, the ether values of them, how many distinct counterparties,
how long between its transactions, how many contracts it created, and the same for its ERC-20 transfers. The
extractor needs nothing but rows, so it works on any chain's history or an exported table, not only on
``ledgermind.chain.indexer.ChainIndex``:

    from ledgermind.guard.features import TxTable, account_features
    fm = account_features(TxTable.from_rows(index.transactions(), index.transfers()))
    fm.addresses, fm.names, fm.values  # one row per account, one column per feature

A transaction row has ``from`` (or ``sender``), ``to`` (or ``recipient``; None for a contract creation),
``value`` (wei), ``timestamp`` (seconds), and optionally ``created`` (the contract a creation made). A token
transfer row has ``from``/``sender``, ``to``/``recipient``, ``value`` (raw token units), ``timestamp``, ``token``
(the token contract), and optionally ``decimals`` (default 18) and ``nft`` (ERC-721 transfers are skipped: the
families count fungible tokens only).

Units follow the dataset: ether (not wei), token units (raw value / 10**decimals), minutes between transactions.
Features the dataset carries only as constant or broken columns (value sent to contracts, ERC-20 times between
transfers, ERC-20 sent to contracts) are left out: a model trained on that file cannot use them. So is its "ERC20
uniq rec contract addr", which repeats "ERC20 uniq rec token name" (distinct tokens received) in 96.5% of rows.
A contract creation counts in ``created_contracts`` and ``total_transactions``, not among the sent transactions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ledgermind.errors import InvalidInputError

WEI = 10**18

#: Features computed for every account, in column order. Each is one column of the Kaggle file (see
#: ``ledgermind.guard.data.KAGGLE_COLUMNS``) or, for the last group, a ratio of earlier ones.
FEATURES: tuple[str, ...] = (
    # ether transactions
    "avg_min_between_sent", "avg_min_between_received", "time_diff_first_last_min",
    "sent_tnx", "received_tnx", "created_contracts", "unique_received_from", "unique_sent_to",
    "min_value_received", "max_value_received", "avg_value_received",
    "min_value_sent", "max_value_sent", "avg_value_sent",
    "total_transactions", "total_ether_sent", "total_ether_received", "total_ether_balance",
    # ERC-20 transfers
    "erc20_total_tnxs", "erc20_total_received", "erc20_total_sent",
    "erc20_uniq_sent_addr", "erc20_uniq_rec_addr",
    "erc20_min_val_rec", "erc20_max_val_rec", "erc20_avg_val_rec",
    "erc20_min_val_sent", "erc20_max_val_sent", "erc20_avg_val_sent",
    "erc20_uniq_sent_token", "erc20_uniq_rec_token",
    # ratios of the above
    "sent_share", "balance_share", "received_per_sender", "sent_per_recipient", "min_per_transaction",
    "max_received_share", "erc20_share",
)

#: The ERC-20 group: in the Kaggle file these are blank for 829 accounts, all of them fraudulent.
ERC20_FEATURES: tuple[str, ...] = tuple(n for n in FEATURES if n.startswith("erc20_"))


@dataclass(frozen=True)
class FeatureMatrix:
    """Features of several accounts: ``values[i, j]`` is feature ``names[j]`` of ``addresses[i]``."""

    addresses: list[str]
    names: list[str]
    values: np.ndarray

    def column(self, name: str) -> np.ndarray:
        """One feature for every account. Raises InvalidInputError for an unknown feature name."""
        if name not in self.names:
            raise InvalidInputError(f"no feature {name!r}: expected one of {', '.join(self.names)}")
        return self.values[:, self.names.index(name)]

    def row(self, address: str) -> dict[str, float]:
        """The features of one account as a dict. Raises InvalidInputError if the account is not in the matrix."""
        key = address.lower()
        if key not in self.addresses:
            raise InvalidInputError(f"no features for account {address}: it is not in the table")
        return dict(zip(self.names, self.values[self.addresses.index(key)].tolist()))


@dataclass
class TxTable:
    """A plain table of ether transactions and (optionally) ERC-20 transfers, as parallel lists.

    ``created[i]`` is the address a contract-creation transaction made (``to[i]`` is None then). Token transfers
    have their own columns (``t_*``). Addresses are stored lower-case.
    """

    sender: list[str] = field(default_factory=list)
    to: list[str | None] = field(default_factory=list)
    value: list[int] = field(default_factory=list)
    timestamp: list[int] = field(default_factory=list)
    created: list[str | None] = field(default_factory=list)
    t_sender: list[str] = field(default_factory=list)
    t_to: list[str] = field(default_factory=list)
    t_value: list[float] = field(default_factory=list)  # token units (raw / 10**decimals)
    t_timestamp: list[int] = field(default_factory=list)
    t_token: list[str] = field(default_factory=list)

    @classmethod
    def from_rows(
        cls, transactions: Iterable[Mapping[str, Any]], transfers: Iterable[Mapping[str, Any]] = ()
    ) -> TxTable:
        """Build a table from dict rows (``ChainIndex.transactions()`` / ``transfers()``, CSV readers...).

        Raises InvalidInputError naming the row and the field when a required field is missing or malformed.
        """
        table = cls()
        for i, row in enumerate(transactions):
            sender = _addr(_field(row, i, "from", "sender"), i, "from")
            to = row.get("to", row.get("recipient"))
            created = row.get("created") or row.get("contract")
            table.sender.append(sender)
            table.to.append(_addr(to, i, "to") if to else None)
            table.value.append(_int(_field(row, i, "value"), i, "value"))
            table.timestamp.append(_int(_field(row, i, "timestamp"), i, "timestamp"))
            table.created.append(_addr(created, i, "created") if created else None)
        for i, row in enumerate(transfers):
            if row.get("nft"):
                continue
            decimals = _int(row.get("decimals", 18), i, "decimals")
            table.t_sender.append(_addr(_field(row, i, "from", "sender"), i, "from"))
            table.t_to.append(_addr(_field(row, i, "to", "recipient"), i, "to"))
            table.t_value.append(_int(_field(row, i, "value"), i, "value") / 10**decimals)
            table.t_timestamp.append(_int(_field(row, i, "timestamp"), i, "timestamp"))
            table.t_token.append(_addr(_field(row, i, "token"), i, "token"))
        return table

    def accounts(self) -> list[str]:
        """Every address that appears as a sender or recipient, sorted."""
        seen = set(self.sender) | {a for a in self.to if a} | {a for a in self.created if a}
        seen |= set(self.t_sender) | set(self.t_to)
        return sorted(seen)


def _field(row: Mapping[str, Any], i: int, *names: str) -> Any:
    for name in names:
        if row.get(name) is not None:
            return row[name]
    raise InvalidInputError(f"row {i} has no {' or '.join(repr(n) for n in names)} field")


def _addr(value: Any, i: int, name: str) -> str:
    text = str(value).strip().lower()
    if not text:
        raise InvalidInputError(f"row {i}: empty {name!r} address")
    return text


def _int(value: Any, i: int, name: str) -> int:
    try:
        return int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"row {i}: {name!r} must be an integer, got {value!r}") from e


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    """min, max, mean; zeros for no values (the dataset's convention)."""
    if not values:
        return 0.0, 0.0, 0.0
    return float(min(values)), float(max(values)), float(sum(values) / len(values))


def _avg_gap_minutes(times: Sequence[int]) -> float:
    """Mean time between consecutive events in minutes: (last - first) / (n - 1); 0 for fewer than two."""
    if len(times) < 2:
        return 0.0
    return (max(times) - min(times)) / 60.0 / (len(times) - 1)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


class _Account:
    __slots__ = ("sent", "received", "sent_t", "received_t", "all_t", "to", "frm", "created",
                 "e_sent", "e_received", "e_to", "e_frm", "e_tok_sent", "e_tok_rec")

    def __init__(self) -> None:
        self.sent: list[float] = []
        self.received: list[float] = []
        self.sent_t: list[int] = []
        self.received_t: list[int] = []
        self.all_t: list[int] = []
        self.to: set[str] = set()
        self.frm: set[str] = set()
        self.created = 0
        self.e_sent: list[float] = []
        self.e_received: list[float] = []
        self.e_to: set[str] = set()
        self.e_frm: set[str] = set()
        self.e_tok_sent: set[str] = set()
        self.e_tok_rec: set[str] = set()

    def features(self) -> list[float]:
        min_r, max_r, avg_r = _stats(self.received)
        min_s, max_s, avg_s = _stats(self.sent)
        e_min_r, e_max_r, e_avg_r = _stats(self.e_received)
        e_min_s, e_max_s, e_avg_s = _stats(self.e_sent)
        n_sent, n_rec = len(self.sent), len(self.received)
        total = n_sent + n_rec + self.created
        ether_sent, ether_rec = sum(self.sent), sum(self.received)
        span = (max(self.all_t) - min(self.all_t)) / 60.0 if self.all_t else 0.0
        erc20 = len(self.e_sent) + len(self.e_received)
        base = [
            _avg_gap_minutes(self.sent_t), _avg_gap_minutes(self.received_t), span,
            n_sent, n_rec, self.created, len(self.frm), len(self.to),
            min_r, max_r, avg_r, min_s, max_s, avg_s,
            total, ether_sent, ether_rec, ether_rec - ether_sent,
            erc20, sum(self.e_received), sum(self.e_sent),
            len(self.e_to), len(self.e_frm),
            e_min_r, e_max_r, e_avg_r, e_min_s, e_max_s, e_avg_s,
            len(self.e_tok_sent), len(self.e_tok_rec),
        ]
        return base + derived(base)


def derived(base: Sequence[float]) -> list[float]:
    """The ratio features (the last group of FEATURES) from the others, in FEATURES order.

    Shared by the extractor and the dataset loader so a model sees the same definitions in both.
    """
    f = dict(zip(FEATURES, base))
    return [
        _ratio(f["sent_tnx"], f["total_transactions"]),
        _ratio(f["total_ether_balance"], f["total_ether_received"]),
        _ratio(f["received_tnx"], f["unique_received_from"]),
        _ratio(f["sent_tnx"], f["unique_sent_to"]),
        _ratio(f["time_diff_first_last_min"], f["total_transactions"]),
        _ratio(f["max_value_received"], f["total_ether_received"]),
        _ratio(f["erc20_total_tnxs"], f["erc20_total_tnxs"] + f["total_transactions"]),
    ]


def account_features(txs: TxTable | Iterable[Mapping[str, Any]], addresses: Sequence[str] | None = None,
                     transfers: Iterable[Mapping[str, Any]] = ()) -> FeatureMatrix:
    """Compute FEATURES for ``addresses`` (default: every account in the table) from ``txs``.

    ``txs`` is a TxTable or an iterable of transaction dict rows (then ``transfers`` may hold the token transfer
    rows). Accounts with no activity get all-zero rows. Values are in ether, token units and minutes.
    Raises InvalidInputError for malformed rows.
    """
    table = txs if isinstance(txs, TxTable) else TxTable.from_rows(txs, transfers)
    wanted = [a.lower() for a in addresses] if addresses is not None else table.accounts()
    accounts: dict[str, _Account] = defaultdict(_Account)
    for sender, to, value, ts, created in zip(table.sender, table.to, table.value, table.timestamp, table.created,
                                              strict=True):
        ether = value / WEI
        a = accounts[sender]
        a.all_t.append(ts)
        if to is None:  # a contract creation: counted apart, like the dataset's "Number of Created Contracts"
            a.created += 1
            continue
        a.sent.append(ether)
        a.sent_t.append(ts)
        a.to.add(to)
        b = accounts[to]
        b.received.append(ether)
        b.received_t.append(ts)
        b.all_t.append(ts)
        b.frm.add(sender)
    for sender, to, value, _ts, token in zip(table.t_sender, table.t_to, table.t_value, table.t_timestamp,
                                             table.t_token, strict=True):
        a, b = accounts[sender], accounts[to]
        a.e_sent.append(value)
        a.e_to.add(to)
        a.e_tok_sent.add(token)
        b.e_received.append(value)
        b.e_frm.add(sender)
        b.e_tok_rec.add(token)
    empty = _Account()
    values = np.array([(accounts[a] if a in accounts else empty).features() for a in wanted], dtype=np.float64)
    return FeatureMatrix(list(wanted), list(FEATURES), values.reshape(len(wanted), len(FEATURES)))

"""What the guard reads: the chain index's raw logs and calldata, decoded against the ABIs of the contracts it
watches (Marketplace, PaymentChannels, Federation), and the funding edges between accounts.

The index stores logs undecoded (address, topics, data); decoding happens here, against the ABI of the contract
at that address only, so an unrelated contract emitting an event with the same signature is never mistaken for
ours. ``Activity`` is one snapshot of everything the detectors look at, bounded by a head block so that an alert
can be re-derived later from exactly what it saw.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ledgermind.errors import InvalidInputError

if TYPE_CHECKING:
    from ledgermind.chain.indexer import ChainIndex

WATCHED = ("Marketplace", "PaymentChannels", "Federation")
ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class Event:
    """One decoded event: which contract (by name), which event, its arguments, and where it is on chain."""

    contract: str
    name: str
    args: dict[str, Any]
    tx_hash: str
    block: int
    timestamp: int
    log_index: int


@dataclass(frozen=True)
class Call:
    """A transaction to a watched contract, decoded: function name and arguments, and whether it reverted."""

    contract: str
    function: str
    args: dict[str, Any]
    tx_hash: str
    sender: str
    block: int
    timestamp: int
    ok: bool


@lru_cache(maxsize=None)
def _abi_tables(name: str) -> tuple[dict[str, tuple[str, list[dict[str, Any]]]], dict[str, tuple[str, list[Any]]]]:
    """(topic0 -> (event name, inputs), selector -> (function name, inputs)) of contract ``name``'s ABI."""
    from eth_utils import event_abi_to_log_topic, function_abi_to_4byte_selector

    from ledgermind.contracts import load

    events, functions = {}, {}
    for item in load(name)["abi"]:
        if item.get("type") == "event":
            events["0x" + event_abi_to_log_topic(item).hex()] = (item["name"], item["inputs"])
        elif item.get("type") == "function" and item.get("stateMutability") not in ("view", "pure"):
            functions["0x" + function_abi_to_4byte_selector(item).hex()] = (item["name"], item["inputs"])
    return events, functions


def _canonical_type(inp: dict[str, Any]) -> str:
    if inp["type"].startswith("tuple"):
        return "(" + ",".join(_canonical_type(c) for c in inp["components"]) + ")" + inp["type"][5:]
    return inp["type"]


def _plain(value: Any) -> Any:
    """ABI-decoded values as JSON-friendly ones: bytes as 0x hex, addresses lowercase, tuples as lists."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def decode_log(contract: str, log: dict[str, Any]) -> Event | None:
    """Decode one raw index log of contract ``contract``; None if it is not one of that contract's events."""
    from eth_abi import decode

    events, _ = _abi_tables(contract)
    if not log["topics"] or log["topics"][0] not in events:
        return None
    name, inputs = events[log["topics"][0]]
    indexed = [i for i in inputs if i.get("indexed")]
    plain = [i for i in inputs if not i.get("indexed")]
    args: dict[str, Any] = {}
    try:
        for inp, topic in zip(indexed, log["topics"][1:]):
            (args[inp["name"]],) = decode([_canonical_type(inp)], bytes.fromhex(topic[2:]))
        values = decode([_canonical_type(i) for i in plain], bytes.fromhex(log["data"][2:]))
    except Exception:  # noqa: BLE001 - malformed data: not an event of this ABI after all
        return None
    args.update(zip((i["name"] for i in plain), values))
    return Event(contract, name, {k: _plain(v) for k, v in args.items()}, log["tx_hash"], log["block"],
                 log["timestamp"], log["log_index"])


def decode_call(contract: str, tx: dict[str, Any]) -> Call | None:
    """Decode a transaction's calldata against ``contract``'s ABI; None if it calls none of its functions."""
    from eth_abi import decode

    _, functions = _abi_tables(contract)
    data = tx.get("input") or ""
    if len(data) < 10 or data[:10] not in functions:
        return None
    name, inputs = functions[data[:10]]
    try:
        values = decode([_canonical_type(i) for i in inputs], bytes.fromhex(data[10:]))
    except Exception:  # noqa: BLE001 - calldata that does not decode: not a call we can read
        return None
    return Call(contract, name, {i["name"]: _plain(v) for i, v in zip(inputs, values)}, tx["hash"], tx["sender"],
                tx["block"], tx["timestamp"], tx["status"] == 1)


@dataclass
class Activity:
    """Everything the detectors see, up to block ``head`` of chain ``chain_id``: decoded events and calls of the
    watched contracts (``contracts``: name -> lowercase address), all transactions and token transfers."""

    chain_id: int
    head: int
    contracts: dict[str, str]
    events: list[Event] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    txs: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, index: ChainIndex, contracts: dict[str, str], head: int | None = None) -> Activity:
        """Read the index up to ``head`` (default: its head). Raises InvalidInputError if the index is empty or
        ``head`` is beyond it."""
        top = index.head()
        chain_id = index.chain_id()
        if top is None or chain_id is None:
            raise InvalidInputError(f"the chain index {index.path} is empty: sync it first")
        head = top[0] if head is None else head
        if head > top[0]:
            raise InvalidInputError(f"block {head} is beyond the index's head {top[0]}")
        contracts = {n: a.lower() for n, a in contracts.items()}
        by_address = {a: n for n, a in contracts.items()}
        act = cls(chain_id, head, contracts)
        for log in index.logs(list(by_address), until_block=head):
            event = decode_log(by_address[log["address"]], log)
            if event is not None:
                act.events.append(event)
        act.txs = index.transactions(until_block=head)
        for tx in act.txs:
            if tx["recipient"] in by_address:
                call = decode_call(by_address[tx["recipient"]], tx)
                if call is not None:
                    act.calls.append(call)
        act.transfers = index.transfers(until_block=head)
        return act

    def of(self, contract: str, *names: str) -> list[Event]:
        """The events ``names`` (all if none) of the watched contract ``contract``, oldest first."""
        return [e for e in self.events if e.contract == contract and (not names or e.name in names)]

    def funding(self) -> list[tuple[str, str, int, str]]:
        """Value moved between accounts, oldest first: (from, to, block, tx hash) for every successful native
        transfer with value and every fungible token transfer that is not a mint (from the zero address) and not
        to or from a watched contract (a payment or a payout, not a funding)."""
        watched = set(self.contracts.values())
        edges = [(t["sender"], t["recipient"], t["block"], t["hash"]) for t in self.txs
                 if t["status"] == 1 and t["value"] > 0 and t["recipient"] and t["recipient"] not in watched]
        edges += [(t["sender"], t["recipient"], t["block"], t["tx_hash"]) for t in self.transfers
                  if not t["nft"] and t["sender"] != ZERO and t["sender"] not in watched
                  and t["recipient"] not in watched]
        edges.sort(key=lambda e: e[2])
        return edges


def hubs(activity: Activity, min_share: float = 0.5, min_funded: int = 4) -> list[str]:
    """Accounts that fund most of the chain: a dev faucet, an exchange's hot wallet. Funding from them says
    nothing about who controls an account, so the detectors ignore it. A hub funded at least ``min_funded``
    accounts and at least ``min_share`` of all the accounts anyone funded."""
    funded: dict[str, set[str]] = defaultdict(set)
    for src, dst, _, _ in activity.funding():
        funded[src].add(dst)
    everyone = set().union(*funded.values()) if funded else set()
    return sorted(a for a, to in funded.items() if len(to) >= min_funded and len(to) >= min_share * len(everyone))

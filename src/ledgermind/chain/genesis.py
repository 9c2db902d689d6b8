"""Genesis and fork schedule of an embedded chain: the zero-setup dev chain, or a chain from a geth ``genesis.json``.

A ``Genesis`` is what py-evm needs to create block 0 (header fields and the allocated accounts) plus a
``ChainSpec``: the chain id and which fork rules apply from which block. py-evm picks rules by block number
only, so forks that geth schedules by timestamp (Shanghai onwards) are pinned to the first block at or after
that time, given the timestamps of the blocks to import. The spec is stored next to the chain and wins on
reopen. py-evm implements forks up to Prague: later forks (Osaka, the BPO forks) run with Prague rules and are
listed in ``ChainSpec.substitutions``; importing a block whose execution depends on them fails its state-root
check rather than importing a wrong state.

Dev-chain keys are derived from the chain id (like anvil's well-known accounts): the same on every machine,
for a local chain only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from ledgermind.errors import InvalidInputError

DEFAULT_CHAIN_ID = 1337
DEFAULT_GAS_LIMIT = 30_000_000
DEV_ACCOUNTS = 10
FAUCET_BALANCE = 10**9 * 10**18  # 1e9 ETH: the faucet funds every local account of ledgermind
DEV_BALANCE = 10**6 * 10**18
SPEC_FORMAT = "ledgermind-chain-spec-v1"

# py-evm's forks in order; a chain's rules at block N are those of the last fork starting at or before N
FORK_ORDER = (
    "frontier", "homestead", "tangerine_whistle", "spurious_dragon", "byzantium", "constantinople",
    "petersburg", "istanbul", "muir_glacier", "berlin", "london", "arrow_glacier", "gray_glacier",
    "paris", "shanghai", "cancun", "prague",
)
LATEST_FORK = FORK_ORDER[-1]

# geth genesis config keys for forks scheduled by block number, in order
_GETH_BLOCK_FORKS = (
    ("homesteadBlock", "homestead"), ("eip150Block", "tangerine_whistle"), ("eip158Block", "spurious_dragon"),
    ("byzantiumBlock", "byzantium"), ("constantinopleBlock", "constantinople"), ("petersburgBlock", "petersburg"),
    ("istanbulBlock", "istanbul"), ("muirGlacierBlock", "muir_glacier"), ("berlinBlock", "berlin"),
    ("londonBlock", "london"), ("arrowGlacierBlock", "arrow_glacier"), ("grayGlacierBlock", "gray_glacier"),
)
_GETH_TIME_FORKS = (("shanghaiTime", "shanghai"), ("cancunTime", "cancun"), ("pragueTime", "prague"))
# forks after Prague that geth knows and py-evm does not: they run with the rules of LATEST_FORK
_GETH_LATER_TIME_FORKS = ("osakaTime", "bpo1Time", "bpo2Time", "bpo3Time", "bpo4Time", "bpo5Time", "amsterdamTime")


@dataclass(frozen=True)
class ChainSpec:
    """Chain id and fork schedule: ``forks`` is ((first block, fork name), ...) sorted by block, starting at 0."""

    chain_id: int
    forks: tuple[tuple[int, str], ...] = ((0, LATEST_FORK),)
    dao_fork_block: int | None = None  # only for chains that took the DAO fork's irregular state change
    substitutions: tuple[str, ...] = ()  # forks py-evm lacks, each "name@block runs with prague rules"

    def __post_init__(self) -> None:
        if not (0 < self.chain_id < 2**64):
            raise InvalidInputError(f"chain id must be between 1 and 2**64-1, got {self.chain_id}")
        if not self.forks or self.forks[0][0] != 0:
            raise InvalidInputError("the fork schedule must start at block 0")
        for _, name in self.forks:
            if name not in FORK_ORDER:
                raise InvalidInputError(f"unknown fork {name!r}; known: {', '.join(FORK_ORDER)}")

    @property
    def head_fork(self) -> str:
        """The rules of blocks after the last scheduled fork, which is where new blocks are mined."""
        return self.forks[-1][1]

    def vm_configuration(self) -> tuple[tuple[int, type], ...]:
        """py-evm's ``vm_configuration``. Seals are not checked (NoProofConsensus): pre-merge blocks are
        trusted for their proof of work, but everything they execute is checked against their roots."""
        from eth.consensus import ConsensusApplier, NoProofConsensus

        vms = _vm_classes()
        config = []
        for block, name in self.forks:
            vm = vms[name]
            if name == "homestead":
                vm = vm.configure(
                    support_dao_fork=self.dao_fork_block is not None, _dao_fork_block_number=self.dao_fork_block
                )
            config.append((block, vm))
        return ConsensusApplier(NoProofConsensus).amend_vm_configuration(tuple(config))

    def to_json(self) -> bytes:
        doc = {
            "format": SPEC_FORMAT,
            "chain_id": self.chain_id,
            "forks": [list(f) for f in self.forks],
            "dao_fork_block": self.dao_fork_block,
            "substitutions": list(self.substitutions),
        }
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ChainSpec:
        """Raises InvalidInputError if ``raw`` is not a spec this version wrote."""
        try:
            doc = json.loads(raw)
            if doc.get("format") != SPEC_FORMAT:
                raise InvalidInputError(f"unknown chain spec format {doc.get('format')!r}, expected {SPEC_FORMAT}")
            return cls(
                chain_id=int(doc["chain_id"]),
                forks=tuple((int(b), str(n)) for b, n in doc["forks"]),
                dao_fork_block=doc.get("dao_fork_block"),
                substitutions=tuple(doc.get("substitutions", ())),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidInputError(f"corrupt chain spec: {e}") from e


@dataclass(frozen=True)
class Genesis:
    """Everything needed to create block 0: the spec, py-evm header params, and the allocated accounts.

    ``state`` maps 20-byte addresses to {"balance", "nonce", "code", "storage"}; ``faucet_key`` is set for dev
    chains (their first funded account) and None for imported genesis files.
    """

    spec: ChainSpec
    params: dict[str, Any]
    state: dict[bytes, dict[str, Any]]
    faucet_key: bytes | None = field(default=None, repr=False)


def dev_key(chain_id: int, index: int) -> bytes:
    """The private key of dev account ``index`` of a dev chain (index 0 is the faucet). Deterministic, public."""
    return keccak(f"ledgermind embedded chain {chain_id} dev account {index}".encode())


def dev_genesis(
    chain_id: int = DEFAULT_CHAIN_ID, *, accounts: int = DEV_ACCOUNTS, gas_limit: int = DEFAULT_GAS_LIMIT
) -> Genesis:
    """A post-merge chain on the latest fork from block 0, with ``accounts`` funded dev accounts.

    Account 0 is the faucet (1e9 ETH); the others hold 1e6 ETH each. Requires accounts >= 1.
    """
    from eth.constants import (
        POST_MERGE_DIFFICULTY,
        POST_MERGE_MIX_HASH,
        POST_MERGE_NONCE,
    )
    from eth_keys import keys

    if accounts < 1:
        raise InvalidInputError(f"a dev chain needs at least one account (the faucet), got {accounts}")
    state: dict[bytes, dict[str, Any]] = {}
    for i in range(accounts):
        address = keys.PrivateKey(dev_key(chain_id, i)).public_key.to_canonical_address()
        balance = FAUCET_BALANCE if i == 0 else DEV_BALANCE
        state[address] = {"balance": balance, "nonce": 0, "code": b"", "storage": {}}
    params = {
        "coinbase": b"\x00" * 20,
        "difficulty": POST_MERGE_DIFFICULTY,
        "extra_data": b"ledgermind",
        "gas_limit": gas_limit,
        "mix_hash": POST_MERGE_MIX_HASH,
        "nonce": POST_MERGE_NONCE,
        "timestamp": int(time.time()),
    }
    return Genesis(spec=ChainSpec(chain_id=chain_id), params=params, state=state, faucet_key=dev_key(chain_id, 0))


def from_geth_genesis(
    genesis: Mapping[str, Any] | str | Path, block_timestamps: Mapping[int, int] | None = None
) -> Genesis:
    """A genesis from a geth ``genesis.json`` (a path or the parsed document).

    ``block_timestamps`` maps block numbers to timestamps of the blocks that will be imported; timestamp forks
    start at the first of them at or after the fork time (after the last of them if none is). Raises
    InvalidInputError for a document py-evm cannot follow (no chain id, a merge that no block number places).
    """
    if isinstance(genesis, (str, Path)):
        try:
            genesis = json.loads(Path(genesis).read_text())
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"cannot read genesis file {genesis}: {e}") from e
    try:
        config = genesis["config"]
        chain_id = int(config["chainId"])
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInputError(f"genesis.json has no config.chainId: {e}") from e
    spec = ChainSpec(
        chain_id=chain_id,
        forks=_geth_forks(config, block_timestamps or {}, _quantity(genesis.get("timestamp"))),
        dao_fork_block=config.get("daoForkBlock") if config.get("daoForkSupport") else None,
        substitutions=_geth_substitutions(config, block_timestamps or {}),
    )
    return Genesis(spec=spec, params=_geth_params(genesis, spec), state=_geth_alloc(genesis.get("alloc", {})))


# ---------------------------------------------------------------------------------------------- helpers
def _vm_classes() -> dict[str, type]:
    from eth.vm import forks as f

    return {
        "frontier": f.FrontierVM, "homestead": f.HomesteadVM, "tangerine_whistle": f.TangerineWhistleVM,
        "spurious_dragon": f.SpuriousDragonVM, "byzantium": f.ByzantiumVM, "constantinople": f.ConstantinopleVM,
        "petersburg": f.PetersburgVM, "istanbul": f.IstanbulVM, "muir_glacier": f.MuirGlacierVM,
        "berlin": f.BerlinVM, "london": f.LondonVM, "arrow_glacier": f.ArrowGlacierVM,
        "gray_glacier": f.GrayGlacierVM, "paris": f.ParisVM, "shanghai": f.ShanghaiVM, "cancun": f.CancunVM,
        "prague": f.PragueVM,
    }


def _quantity(value: Any) -> int:
    """A geth genesis number: JSON integer, hex string or decimal string."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def _data(value: Any) -> bytes:
    text = str(value or "0x")
    text = text[2:] if text.lower().startswith("0x") else text
    return bytes.fromhex(text if len(text) % 2 == 0 else "0" + text)


def _first_block_at(time_: int, block_timestamps: Mapping[int, int], genesis_time: int) -> int:
    if time_ <= genesis_time:
        return 0
    at = [n for n, ts in block_timestamps.items() if ts >= time_]
    if at:
        return min(at)
    return max(block_timestamps, default=0) + 1


def _geth_forks(config: Mapping[str, Any], block_timestamps: Mapping[int, int], genesis_time: int) -> tuple:
    starts: list[tuple[int, str]] = [(0, "frontier")]
    for key, name in _GETH_BLOCK_FORKS:
        if config.get(key) is not None:
            starts.append((_quantity(config[key]), name))
    if config.get("mergeNetsplitBlock") is not None:
        starts.append((_quantity(config["mergeNetsplitBlock"]), "paris"))
    elif config.get("terminalTotalDifficulty") is not None:
        if _quantity(config["terminalTotalDifficulty"]) != 0:
            raise InvalidInputError(
                "genesis.json sets terminalTotalDifficulty > 0 without mergeNetsplitBlock: "
                "py-evm needs the merge as a block number"
            )
        starts.append((_quantity(config.get("londonBlock", 0)), "paris"))
    for key, name in _GETH_TIME_FORKS:
        if config.get(key) is not None:
            starts.append((_first_block_at(_quantity(config[key]), block_timestamps, genesis_time), name))
    # several forks at one block: the later fork wins (geth applies them all at once)
    order = {name: i for i, name in enumerate(FORK_ORDER)}
    by_block: dict[int, str] = {}
    for block, name in sorted(starts, key=lambda s: (s[0], order[s[1]])):
        by_block[block] = name
    forks: list[tuple[int, str]] = []
    for block in sorted(by_block):
        if forks and order[by_block[block]] < order[forks[-1][1]]:
            raise InvalidInputError(f"fork {by_block[block]} at block {block} comes after a later fork")
        forks.append((block, by_block[block]))
    return tuple(forks)


def _geth_substitutions(config: Mapping[str, Any], block_timestamps: Mapping[int, int]) -> tuple[str, ...]:
    out = []
    for key in _GETH_LATER_TIME_FORKS:
        if config.get(key) is not None:
            block = _first_block_at(_quantity(config[key]), block_timestamps, 0)
            out.append(f"{key[: -len('Time')]}@{block} runs with {LATEST_FORK} rules")
    return tuple(out)


def _geth_params(genesis: Mapping[str, Any], spec: ChainSpec) -> dict[str, Any]:
    order = {name: i for i, name in enumerate(FORK_ORDER)}
    fork0 = spec.forks[0][1]
    params: dict[str, Any] = {
        "coinbase": _data(genesis.get("coinbase")).rjust(20, b"\x00"),
        "difficulty": _quantity(genesis.get("difficulty")),
        "extra_data": _data(genesis.get("extraData")),
        "gas_limit": _quantity(genesis.get("gasLimit")) or DEFAULT_GAS_LIMIT,
        "mix_hash": _data(genesis.get("mixHash")).rjust(32, b"\x00"),
        "nonce": _quantity(genesis.get("nonce")).to_bytes(8, "big"),
        "timestamp": _quantity(genesis.get("timestamp")),
    }
    if order[fork0] >= order["london"] and genesis.get("baseFeePerGas") is not None:
        params["base_fee_per_gas"] = _quantity(genesis["baseFeePerGas"])
    if order[fork0] >= order["cancun"]:
        for key, name in (("excessBlobGas", "excess_blob_gas"), ("blobGasUsed", "blob_gas_used")):
            if genesis.get(key) is not None:
                params[name] = _quantity(genesis[key])
    return params


def _geth_alloc(alloc: Mapping[str, Any]) -> dict[bytes, dict[str, Any]]:
    state: dict[bytes, dict[str, Any]] = {}
    for address, account in alloc.items():
        raw = _data(address)
        if len(raw) != 20:
            raise InvalidInputError(f"genesis alloc address {address!r} is not 20 bytes")
        state[raw] = {
            "balance": _quantity(account.get("balance")),
            "nonce": _quantity(account.get("nonce")),
            "code": _data(account.get("code")),
            "storage": {_quantity(k): _quantity(v) for k, v in (account.get("storage") or {}).items()},
        }
    return state

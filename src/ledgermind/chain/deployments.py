"""Where ledgermind's contracts live on each chain: records under LEDGERMIND_HOME/deployments/<chain id>.json.

``deploy`` is idempotent: a contract whose record matches code on chain is kept; a missing or stale
record (e.g. an anvil that was restarted: same chain id, new genesis) leads to a fresh deployment.
``require`` never deploys: it says what is missing in one line.

What is deployed, in order (a contract's constructor takes the addresses of those before it):
AnchorRegistry, AssetRegistry, AccessToken (an ERC-5202 blueprint, never called itself),
AccessTokenFactory(AssetRegistry, AccessToken), Marketplace(AssetRegistry, AccessTokenFactory),
PaymentChannels, ProviderRegistry(AssetRegistry), PaymentToken (the demo ERC-20, minted by its deployer),
Federation, Governance(AssetRegistry), AIOracle(PaymentToken) and Insurance(AIOracle). The Marketplace's governance
gate stays off until its owner turns it on (``ledgermind gov enable``). The deployer is the AIOracle's first
resolver and the Insurance's insurer.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgermind.chain.connection import Chain, ChainError
from ledgermind.contracts import load as load_artifact

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

#: name -> the names of the deployments its constructor takes, in order.
#: The Governance a deployment starts with: its deployer is the one member, one vote passes at once, proposals
#: stay open a week. A consortium adds members and raises quorum and timelock (``ledgermind gov``).
GOVERNANCE_DEFAULTS = (1, 0, 7 * 86_400)  # quorum, timelock (s), voting period (s)

CONSTRUCTOR_ARGS: dict[str, tuple[str, ...]] = {
    "AnchorRegistry": (),
    "AssetRegistry": (),
    "AccessToken": (),
    "AccessTokenFactory": ("AssetRegistry", "AccessToken"),
    "Marketplace": ("AssetRegistry", "AccessTokenFactory"),
    "PaymentChannels": (),
    "ProviderRegistry": ("AssetRegistry",),
    "PaymentToken": (),
    "Federation": (),
    "Governance": ("AssetRegistry",),
    "AIOracle": ("PaymentToken",),
    "Insurance": ("AIOracle",),
}
#: The AIOracle a deployment starts with: an hour to answer, a day to dispute, three days to rule, and a dispute
#: bond of 10 tokens (18 decimals). The resolver changes the windows with ``ledgermind oracle windows``.
ORACLE_DEFAULTS = (3_600, 86_400, 3 * 86_400, 10 * 10**18)  # response, dispute, resolution (s), dispute bond
EXTRA_ARGS: dict[str, tuple[int, ...]] = {"Governance": GOVERNANCE_DEFAULTS, "AIOracle": ORACLE_DEFAULTS}
CONTRACTS = tuple(CONSTRUCTOR_ARGS)
BLUEPRINTS = ("AccessToken",)  # deployed as ERC-5202 blueprints: code to copy, not to call
DEPLOY_GAS = 8_000_000
GRANT_GAS = 120_000


@dataclass(frozen=True)
class Deployment:
    name: str
    address: str
    block_number: int
    tx_hash: str
    code_hash: str  # sha256 of the runtime code, to notice a record that no longer matches the chain
    args: dict[str, str] | None = None  # constructor arguments: dependency name -> its address


class Deployments:
    """The deployment records of one home, one JSON file per chain id."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def _path(self, chain_id: int) -> Path:
        return self.folder / f"{chain_id}.json"

    def read(self, chain_id: int) -> dict[str, Any]:
        path = self._path(chain_id)
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ChainError(f"deployment record {path} is unreadable: {e}") from e

    def _write(self, chain_id: int, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(chain_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, path)

    def _valid(self, chain: Chain, record: dict[str, Any], name: str) -> Deployment | None:
        entry = record.get("contracts", {}).get(name)
        if not entry or record.get("genesisHash") != chain.genesis_hash():
            return None
        code = chain.code_at(entry["address"])
        if not code or hashlib.sha256(code).hexdigest() != entry["code_hash"]:
            return None
        return Deployment(**entry)

    def require(self, chain: Chain, name: str) -> Deployment:
        """The live deployment of ``name`` on ``chain``, or ChainError saying to run ``ledgermind deploy``."""
        record = self.read(chain.chain_id)
        entry = record.get("contracts", {}).get(name)
        if not entry:
            raise ChainError(f"no {name} deployment on {chain.describe}: run 'ledgermind deploy'")
        found = self._valid(chain, record, name)
        if found is None:
            raise ChainError(
                f"the {name} deployment record for chain {chain.chain_id} is stale (no matching code at "
                f"{entry['address']}; was the chain reset?): run 'ledgermind deploy'"
            )
        return found

    def deploy(self, chain: Chain, account: LocalAccount, operators: list[str] = ()) -> dict[str, Deployment]:  # type: ignore[assignment]
        """Deploy whatever is missing or stale; let ``account`` and ``operators`` anchor and mint. Idempotent.

        Granting needs ``account`` to administer the contracts (it does if it deployed them); otherwise
        ChainError says who can."""
        record = self.read(chain.chain_id)
        genesis = chain.genesis_hash()
        if record.get("genesisHash") != genesis:
            record = {"chainId": chain.chain_id, "genesisHash": genesis, "contracts": {}}
        chain.ensure_funds(account.address)
        out: dict[str, Deployment] = {}
        for name in CONTRACTS:
            found = self._valid(chain, record, name)
            # a contract built on a redeployed dependency must be redeployed too
            stale_dependency = any(out[dep].address != (found.args or {}).get(dep) for dep in CONSTRUCTOR_ARGS[name]) if found else False
            if found is None or stale_dependency:
                art = load_artifact(name)
                args = tuple(out[dep].address for dep in CONSTRUCTOR_ARGS[name]) + EXTRA_ARGS.get(name, ())
                if name in BLUEPRINTS:
                    receipt = chain.send(account, {"data": art["blueprintBytecode"]}, DEPLOY_GAS)
                else:
                    receipt = chain.deploy(account, art["bytecode"], art["abi"], args, gas=DEPLOY_GAS)
                if not receipt.contract_address:
                    raise ChainError(f"deploying {name} (tx {receipt.tx_hash}) created no contract")
                code = chain.code_at(receipt.contract_address)
                found = Deployment(name, receipt.contract_address, receipt.block_number, receipt.tx_hash,
                                   hashlib.sha256(code).hexdigest(),
                                   {dep: out[dep].address for dep in CONSTRUCTOR_ARGS[name]} or None)
                record["contracts"][name] = asdict(found)
                self._write(chain.chain_id, record)
            out[name] = found
        anchors = contract(chain, out["AnchorRegistry"])
        assets = contract(chain, out["AssetRegistry"])
        role = chain.call(anchors.functions.OPERATOR_ROLE())
        for who in dict.fromkeys([account.address, *operators]):
            if not chain.call(anchors.functions.hasRole(role, who)):
                chain.transact(account, anchors.functions.grantRole(role, who), GRANT_GAS)
            if not chain.call(assets.functions.is_minter(who)):
                chain.transact(account, assets.functions.set_minter(who, True), GRANT_GAS)
        return out


def contract(chain: Chain, deployment: Deployment) -> Any:
    """A web3 contract object for a deployment."""
    return chain.w3.eth.contract(address=deployment.address, abi=load_artifact(deployment.name)["abi"])

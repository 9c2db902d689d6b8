"""The Marketplace, its AccessTokenFactory and the demo PaymentToken, as one Python binding.

``Market`` turns each market action into one or two signed transactions with explicit gas limits, checking
first what the contract would refuse so the error names the asset and the fix ("asset X is not minted: run
'ledgermind mint X'") rather than a bare revert. Every write returns a ``MarketTx``: the receipt and the
fields of the ``market/v1`` statement that records it in the log (``ledgermind.market.statement``).

Amounts are integers in the smallest unit of the payment token (wei for the native coin). Access tokens are
bought and dispensed in whole tokens (one whole token = one access; the contract mints ``n * 10**18`` units).
Payments are pulled: a sale credits the seller and contributors in the Marketplace, and each collects with
``withdraw``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ledgermind.chain.connection import Chain, ChainError, Receipt
from ledgermind.chain.deployments import Deployments, contract
from ledgermind.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ONE_TOKEN = 10**18
MAX_CONTRIBUTORS = 16
KINDS = ("access", "licence", "asset")

# Explicit limits: the embedded chain estimates gas slowly. Generous for the worst case (16 contributors,
# first-time storage writes); a transaction pays only for the gas it uses.
GAS = {
    "create": 2_500_000, "minter": 100_000, "list": 1_500_000, "delist": 200_000, "buy": 900_000, "approve": 120_000,
    "dispenser": 200_000, "withdraw": 150_000, "mint_tokens": 150_000, "admin": 120_000,
}


@dataclass(frozen=True)
class MarketTx:
    """One market transaction: its receipt and what its ``market/v1`` statement records."""

    action: str
    asset: str | None  # the asset digest (64 hex); None for a withdrawal
    receipt: Receipt
    contract: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "asset": self.asset, "txHash": self.receipt.tx_hash,
                "blockNumber": self.receipt.block_number, "gasUsed": self.receipt.gas_used,
                "contract": self.contract, **self.details}


def token_id(digest: str) -> int:
    return int(digest, 16)


def _erc20_abi() -> list[Any]:
    from ledgermind.contracts import load

    return load("PaymentToken")["abi"]  # the standard ERC-20 surface is all that is used


class Market:
    """The market contracts deployed on ``chain`` (per the home's ``deployments``).

    Raises ChainError (naming ``ledgermind deploy``) if a contract is not deployed there.
    """

    def __init__(self, chain: Chain, deployments: Deployments) -> None:
        self.chain = chain
        self.marketplace = contract(chain, deployments.require(chain, "Marketplace"))
        self.factory = contract(chain, deployments.require(chain, "AccessTokenFactory"))
        self.assets = contract(chain, deployments.require(chain, "AssetRegistry"))
        self.payment_token: str = deployments.require(chain, "PaymentToken").address
        self.address: str = self.marketplace.address

    # ------------------------------------------------------------------ reads
    def token_address(self, token: str | None) -> str:
        """A payment token by name: None or "native" (the chain's coin), "demo"/"LMPAY" (the PaymentToken
        deployed with ledgermind), or an ERC-20 address (must have code). Raises InvalidInputError."""
        from web3 import Web3

        if token is None or token.lower() in {"native", "eth", ZERO_ADDRESS}:
            return ZERO_ADDRESS
        if token.lower() in {"demo", "lmpay"}:
            return self.payment_token
        if not Web3.is_address(token):
            raise InvalidInputError(f"payment token must be 'native', 'demo' or an ERC-20 address, got {token!r}")
        address = Web3.to_checksum_address(token)
        if not self.chain.code_at(address):
            raise InvalidInputError(f"no ERC-20 contract at {address} on {self.chain.describe}")
        return address

    def owner_of(self, digest: str) -> str:
        """The asset NFT's owner. Raises NotFoundError if the asset is not minted."""
        tid = token_id(digest)
        if not self.chain.call(self.assets.functions.exists(tid)):
            raise NotFoundError(f"asset {digest[:12]} is not minted on chain {self.chain.chain_id}: run "
                                f"'ledgermind mint {digest[:12]}' first")
        return str(self.chain.call(self.assets.functions.ownerOf(tid)))

    def asset_kind(self, digest: str) -> str:
        """"dataset" or "model", as minted. Raises NotFoundError if the asset is not minted."""
        self.owner_of(digest)
        return {1: "dataset", 2: "model"}.get(int(self.chain.call(self.assets.functions.kind_of(token_id(digest)))), "?")

    def access_token(self, digest: str) -> str | None:
        address = self.chain.call(self.factory.functions.access_token(token_id(digest)))
        return None if int(address, 16) == 0 else str(address)

    def listing(self, digest: str) -> dict[str, Any]:
        """What is on sale for the asset now: access tokens, licences, the NFT, a dispenser (absent kinds are
        None). A listing whose seller no longer owns the asset is void and shown as such."""
        tid = token_id(digest)
        owner = self.owner_of(digest)
        fn = self.marketplace.functions
        seller, price, token, contributors, shares = self.chain.call(fn.access_listing(tid))
        access = None
        if int(seller, 16):
            access = {"seller": seller, "price": str(price), "token": token, "void": seller != owner,
                      "contributors": [{"account": a, "bps": int(b)} for a, b in zip(contributors, shares)],
                      "accessToken": self.access_token(digest)}
        seller, price, duration, token, contributors, shares = self.chain.call(fn.licence_listing(tid))
        licence = None
        if int(seller, 16):
            licence = {"seller": seller, "price": str(price), "duration": int(duration), "token": token,
                       "void": seller != owner,
                       "contributors": [{"account": a, "bps": int(b)} for a, b in zip(contributors, shares)]}
        seller, price, token = self.chain.call(fn.asset_listing(tid))
        nft = {"seller": seller, "price": str(price), "token": token, "void": seller != owner} if int(seller, 16) else None
        d_owner, cap = self.chain.call(fn.dispenser(tid))
        dispenser = {"owner": d_owner, "maxPerAddress": int(cap), "void": d_owner != owner} if int(d_owner, 16) else None
        return {"id": digest, "owner": owner, "access": access, "licence": licence, "asset": nft,
                "dispenser": dispenser}

    def listed_assets(self) -> list[str]:
        """Digests of every asset ever listed (or given a dispenser) here, oldest first."""
        seen: dict[str, None] = {}
        events = self.marketplace.events
        for event in (events.AccessListed, events.LicenceListed, events.AssetListed, events.DispenserEnabled):
            for log in event().get_logs(from_block=0):
                seen.setdefault(f"{int(log['args']['asset_id']):064x}", None)
        return list(seen)

    def governance(self) -> str | None:
        """The Governance whose approvals gate model sales here, or None when the gate is off."""
        address = str(self.chain.call(self.marketplace.functions.governance()))
        return None if int(address, 16) == 0 else address

    def set_governance(self, account: LocalAccount, governance: str | None) -> Receipt:
        """Turn the governance gate on (a Governance address) or off (None). Requires the Marketplace owner."""
        owner = self.chain.call(self.marketplace.functions.owner())
        if owner.lower() != account.address.lower():
            raise InvalidInputError(f"only the Marketplace owner {owner} sets its governance, not {account.address}")
        return self._send(account, self.marketplace.functions.set_governance(governance or ZERO_ADDRESS), "admin")

    def has_access(self, digest: str, holder: str) -> bool:
        return bool(self.chain.call(self.marketplace.functions.has_access(token_id(digest), holder)))

    def licence_expiry(self, digest: str, holder: str) -> int:
        return int(self.chain.call(self.marketplace.functions.licence_expiry(token_id(digest), holder)))

    def withdrawable(self, account: str, token: str = ZERO_ADDRESS) -> int:
        return int(self.chain.call(self.marketplace.functions.withdrawable(account, token)))

    def token_balance(self, token: str, account: str) -> int:
        erc20 = self.chain.w3.eth.contract(address=token, abi=_erc20_abi())
        return int(self.chain.call(erc20.functions.balanceOf(account)))

    # ------------------------------------------------------------------ selling
    def _own(self, account: LocalAccount, digest: str) -> None:
        owner = self.owner_of(digest)
        if owner.lower() != account.address.lower():
            raise InvalidInputError(f"asset {digest[:12]} is owned by {owner}, not by the acting account {account.address}")

    def _check_gate(self, digest: str) -> None:
        """With the governance gate on, a model sells only if its whole lineage is approved (checked here first, so
        the refusal names the fix instead of costing a reverted transaction)."""
        gate = self.governance()
        if gate is None or self.asset_kind(digest) != "model":
            return
        from ledgermind.governance.onchain import GovernanceContract

        if not GovernanceContract(self.chain, gate).lineage_approved(digest):
            raise InvalidInputError(f"model {digest[:12]}'s lineage includes data governance has not approved: the "
                                    f"marketplace refuses it (see 'ledgermind gov status {digest[:12]}')")

    def _send(self, account: LocalAccount, call: Any, gas: str, value: int = 0) -> Receipt:
        self.chain.ensure_funds(account.address)
        return self.chain.transact(account, call, GAS[gas], value=value)

    def create_access_token(self, account: LocalAccount, digest: str, inferences_per_token: int = 1) -> MarketTx:
        """Create the asset's ERC-20 access token, with this Marketplace allowed to mint it. Requires the caller
        to own the asset; raises InvalidInputError if it already has one."""
        self._own(account, digest)
        if inferences_per_token < 1:
            raise InvalidInputError("an access token must buy at least one inference")
        existing = self.access_token(digest)
        if existing is not None:
            raise InvalidInputError(f"asset {digest[:12]} already has its access token {existing}")
        receipt = self._send(account, self.factory.functions.create_access_token(
            token_id(digest), inferences_per_token, self.address), "create")
        return MarketTx("create-access-token", digest, receipt, self.factory.address,
                        {"accessToken": self.access_token(digest)})

    def _access_token_for_sale(self, account: LocalAccount, digest: str) -> list[MarketTx]:
        """Make sure the asset's access token exists and the Marketplace may mint it for ``account`` (the owner):
        an access token accepts the minters its asset's *current* owner authorised, so whoever bought the NFT
        authorises the Marketplace again before selling access. Returns the transactions this took."""
        existing = self.access_token(digest)
        if existing is None:
            return [self.create_access_token(account, digest)]
        from ledgermind.contracts import load

        access = self.chain.w3.eth.contract(address=existing, abi=load("AccessToken")["abi"])
        if self.chain.call(access.functions.is_minter(self.address)):
            return []
        receipt = self._send(account, access.functions.set_minter(self.address, True), "minter")
        return [MarketTx("authorise-minter", digest, receipt, existing, {"minter": self.address})]

    def list_access(self, account: LocalAccount, digest: str, price: int, token: str = ZERO_ADDRESS, *,
                    contributors: list[tuple[str, int]] | None = None, lineage_bps: int | None = None) -> list[MarketTx]:
        """List access tokens at ``price`` per whole token, creating the access token first if needed.

        Sale proceeds are split: ``contributors`` (address, basis points) get their share, or, with
        ``lineage_bps``, the current owners of the asset's on-chain parents share that many basis points
        equally; the owner keeps the rest. Returns the transactions made (creation, listing)."""
        self._own(account, digest)
        self._check_gate(digest)
        _check_price(price)
        if contributors and lineage_bps is not None:
            raise InvalidInputError("give contributors or a lineage share, not both")
        done = self._access_token_for_sale(account, digest)
        fn = self.marketplace.functions
        tid = token_id(digest)
        if lineage_bps is not None:
            if not 0 < lineage_bps <= 10_000:
                raise InvalidInputError(f"lineage share must be 1 to 10000 basis points, got {lineage_bps}")
            parents = self.chain.call(self.assets.functions.parents_of(tid))
            if not parents:
                raise InvalidInputError(f"asset {digest[:12]} has no parents on chain to share with")
            share = lineage_bps // len(parents)
            split = [(self.chain.call(self.assets.functions.ownerOf(p)), share) for p in parents]
            receipt = self._send(account, fn.list_access_with_lineage(tid, price, token, lineage_bps), "list")
        else:
            split = _check_contributors(contributors or [])
            receipt = self._send(account, fn.list_access(tid, price, token, [a for a, _ in split],
                                                         [b for _, b in split]), "list")
        done.append(MarketTx("list-access", digest, receipt, self.address,
                             {"price": str(price), "token": token, "contributors": _split_json(split)}))
        return done

    def list_licence(self, account: LocalAccount, digest: str, price: int, duration: int, token: str = ZERO_ADDRESS,
                     *, contributors: list[tuple[str, int]] | None = None) -> MarketTx:
        """Sell licences of ``duration`` seconds at ``price`` each."""
        self._own(account, digest)
        self._check_gate(digest)
        _check_price(price)
        if duration < 1:
            raise InvalidInputError(f"licence duration must be at least one second, got {duration}")
        split = _check_contributors(contributors or [])
        receipt = self._send(account, self.marketplace.functions.list_licence(
            token_id(digest), price, duration, token, [a for a, _ in split], [b for _, b in split]), "list")
        return MarketTx("list-licence", digest, receipt, self.address,
                        {"price": str(price), "token": token, "duration": duration, "contributors": _split_json(split)})

    def list_asset(self, account: LocalAccount, digest: str, price: int, token: str = ZERO_ADDRESS) -> list[MarketTx]:
        """Offer the asset NFT itself at ``price``, approving the Marketplace to move it first if needed."""
        self._own(account, digest)
        self._check_gate(digest)
        _check_price(price)
        tid = token_id(digest)
        done = []
        approved = self.chain.call(self.assets.functions.getApproved(tid))
        if approved.lower() != self.address.lower() and not self.chain.call(
                self.assets.functions.isApprovedForAll(account.address, self.address)):
            self._send(account, self.assets.functions.approve(self.address, tid), "approve")
        receipt = self._send(account, self.marketplace.functions.list_asset(tid, price, token), "list")
        done.append(MarketTx("list-asset", digest, receipt, self.address, {"price": str(price), "token": token}))
        return done

    def enable_dispenser(self, account: LocalAccount, digest: str, max_per_address: int = 1) -> list[MarketTx]:
        """Give away access tokens, one at a time, at most ``max_per_address`` to each address."""
        self._own(account, digest)
        self._check_gate(digest)
        if max_per_address < 1:
            raise InvalidInputError("the dispenser must allow at least one token per address")
        done = self._access_token_for_sale(account, digest)
        receipt = self._send(account, self.marketplace.functions.enable_dispenser(token_id(digest), max_per_address),
                             "dispenser")
        done.append(MarketTx("enable-dispenser", digest, receipt, self.address, {"quantity": str(max_per_address)}))
        return done

    def delist(self, account: LocalAccount, digest: str, kind: str) -> MarketTx:
        """End the ``kind`` listing ("access", "licence", "asset" or "dispenser") of the asset."""
        listing = self.listing(digest)
        key = {"access": "access", "licence": "licence", "asset": "asset", "dispenser": "dispenser"}.get(kind)
        if key is None:
            raise InvalidInputError(f"unknown listing kind {kind!r}: access, licence, asset or dispenser")
        if listing[key] is None:
            raise NotFoundError(f"asset {digest[:12]} has no {kind} listing")
        fn = self.marketplace.functions
        call = {"access": fn.delist_access, "licence": fn.delist_licence, "asset": fn.delist,
                "dispenser": fn.disable_dispenser}[kind](token_id(digest))
        receipt = self._send(account, call, "delist")
        action = "disable-dispenser" if kind == "dispenser" else f"delist-{kind}"
        return MarketTx(action, digest, receipt, self.address)

    # ------------------------------------------------------------------ buying
    def _pay(self, account: LocalAccount, token: str, amount: int) -> int:
        """Approve an ERC-20 payment (checking the balance first); return the native value to send."""
        self.chain.ensure_funds(account.address)  # gas money on development chains; a clear error elsewhere
        if token == ZERO_ADDRESS:
            have = self.chain.balance(account.address)
            if have < amount:
                raise InvalidInputError(f"{account.address} has {have} wei, the price is {amount} wei")
            return amount
        have = self.token_balance(token, account.address)
        if have < amount:
            raise InvalidInputError(f"{account.address} has {have} units of token {token}, the price is {amount}")
        erc20 = self.chain.w3.eth.contract(address=token, abi=_erc20_abi())
        self._send(account, erc20.functions.approve(self.address, amount), "approve")
        return 0

    def _listed(self, digest: str, kind: str) -> dict[str, Any]:
        found = self.listing(digest)[kind]
        if found is None:
            what = {"access": "access tokens", "licence": "licences", "asset": "sale as an NFT"}[kind]
            raise NotFoundError(f"asset {digest[:12]} is not listed for {what} on chain {self.chain.chain_id}")
        if found["void"]:
            raise InvalidInputError(f"the {kind} listing of asset {digest[:12]} is void: its seller no longer owns it")
        return found

    def buy_access(self, account: LocalAccount, digest: str, quantity: int = 1) -> MarketTx:
        """Buy ``quantity`` whole access tokens at the listed price."""
        if quantity < 1:
            raise InvalidInputError(f"buy at least one access token, not {quantity}")
        listing = self._listed(digest, "access")
        self._check_gate(digest)
        total = int(listing["price"]) * quantity
        value = self._pay(account, listing["token"], total)
        receipt = self._send(account, self.marketplace.functions.buy_access(token_id(digest), quantity), "buy", value)
        return MarketTx("buy-access", digest, receipt, self.address,
                        {"price": str(total), "token": listing["token"], "quantity": str(quantity)})

    def buy_licence(self, account: LocalAccount, digest: str) -> MarketTx:
        """Buy one licence period (it extends a licence still running)."""
        listing = self._listed(digest, "licence")
        self._check_gate(digest)
        value = self._pay(account, listing["token"], int(listing["price"]))
        receipt = self._send(account, self.marketplace.functions.buy_licence(token_id(digest)), "buy", value)
        expiry = self.licence_expiry(digest, account.address)
        return MarketTx("buy-licence", digest, receipt, self.address,
                        {"price": listing["price"], "token": listing["token"], "duration": listing["duration"],
                         "expiry": expiry})

    def buy_asset(self, account: LocalAccount, digest: str) -> MarketTx:
        """Buy the asset NFT itself (the ERC-2981 royalty is paid to its receiver)."""
        listing = self._listed(digest, "asset")
        self._check_gate(digest)
        if listing["seller"].lower() == account.address.lower():
            raise InvalidInputError(f"{account.address} is the seller of asset {digest[:12]}")
        value = self._pay(account, listing["token"], int(listing["price"]))
        receipt = self._send(account, self.marketplace.functions.buy_asset(token_id(digest)), "buy", value)
        return MarketTx("buy-asset", digest, receipt, self.address, {"price": listing["price"], "token": listing["token"]})

    def dispense(self, account: LocalAccount, digest: str) -> MarketTx:
        """Take one free access token from the asset's dispenser."""
        found = self.listing(digest)["dispenser"]
        if found is None:
            raise NotFoundError(f"asset {digest[:12]} has no dispenser on chain {self.chain.chain_id}")
        taken = int(self.chain.call(self.marketplace.functions.dispensed(token_id(digest), account.address)))
        if taken >= found["maxPerAddress"]:
            raise InvalidInputError(f"{account.address} already took {taken} of the {found['maxPerAddress']} free "
                                    f"access tokens allowed per address")
        receipt = self._send(account, self.marketplace.functions.dispense(token_id(digest)), "buy")
        return MarketTx("dispense", digest, receipt, self.address, {"quantity": "1"})

    # ------------------------------------------------------------------ payments
    def withdraw(self, account: LocalAccount, token: str = ZERO_ADDRESS) -> MarketTx | None:
        """Collect the account's sale proceeds in ``token``; None when there is nothing to collect."""
        amount = self.withdrawable(account.address, token)
        if amount == 0:
            return None
        receipt = self._send(account, self.marketplace.functions.withdraw(token), "withdraw")
        return MarketTx("withdraw", None, receipt, self.address, {"token": token, "amount": str(amount)})

    def fee(self) -> tuple[int, str]:
        """The platform fee (basis points of every sale) and who receives it."""
        fn = self.marketplace.functions
        return int(self.chain.call(fn.fee_bps())), str(self.chain.call(fn.fee_recipient()))

    def set_fee(self, account: LocalAccount, fee_bps: int, recipient: str) -> MarketTx:
        """Set the platform fee (at most 1000 bps) and its recipient. Requires the Marketplace's owner."""
        from web3 import Web3

        owner = self.chain.call(self.marketplace.functions.owner())
        if owner.lower() != account.address.lower():
            raise InvalidInputError(f"only the Marketplace owner {owner} sets the fee, not {account.address}")
        if not 0 <= fee_bps <= 1_000:
            raise InvalidInputError(f"the platform fee is 0 to 1000 basis points (10%), got {fee_bps}")
        if not Web3.is_address(recipient) or int(recipient, 16) == 0:
            raise InvalidInputError(f"fee recipient {recipient!r} is not an account address")
        recipient = Web3.to_checksum_address(recipient)
        receipt = self._send(account, self.marketplace.functions.set_fee(fee_bps, recipient), "admin")
        return MarketTx("set-fee", None, receipt, self.address, {"feeBps": fee_bps, "feeRecipient": recipient})

    def mint_payment_tokens(self, account: LocalAccount, to: str, amount: int) -> Receipt:
        """Mint demo PaymentTokens (LMPAY) to ``to``. Requires ``account`` to be the PaymentToken's owner (its
        deployer): a faucet for development chains."""
        erc20 = self.chain.w3.eth.contract(address=self.payment_token, abi=_erc20_abi())
        owner = self.chain.call(erc20.functions.owner())
        if owner.lower() != account.address.lower():
            raise InvalidInputError(f"only the PaymentToken owner {owner} can mint demo tokens, not {account.address}")
        if amount < 1:
            raise InvalidInputError(f"mint a positive amount, not {amount}")
        return self._send(account, erc20.functions.mint(to, amount), "mint_tokens")


def _check_price(price: int) -> None:
    if price < 1 or price >= 2**256:
        raise InvalidInputError(f"price must be a positive integer in the token's smallest unit, got {price}")


def _check_contributors(contributors: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Checksummed (address, bps) pairs. Raises InvalidInputError for what the contract would refuse."""
    from web3 import Web3

    if len(contributors) > MAX_CONTRIBUTORS:
        raise InvalidInputError(f"at most {MAX_CONTRIBUTORS} contributors, got {len(contributors)}")
    out = []
    for address, bps in contributors:
        if not Web3.is_address(address) or int(address, 16) == 0:
            raise InvalidInputError(f"contributor {address!r} is not an account address")
        if not 0 < bps <= 10_000:
            raise InvalidInputError(f"contributor {address} share must be 1 to 10000 basis points, got {bps}")
        out.append((Web3.to_checksum_address(address), bps))
    if sum(b for _, b in out) > 10_000:
        raise InvalidInputError(f"contributor shares add up to {sum(b for _, b in out)} basis points, above 10000")
    return out


def _split_json(split: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"account": a, "bps": b} for a, b in split]


__all__ = ["GAS", "KINDS", "Market", "MarketTx", "ONE_TOKEN", "ZERO_ADDRESS", "ChainError"]

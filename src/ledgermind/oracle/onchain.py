"""The AIOracle and Insurance contracts from Python: thin web3 bindings over ``ledgermind.chain.connection.Chain``.

One method per contract function; reads return frozen dataclasses with states by name. Transactions carry
explicit gas limits (the embedded chain estimates gas slowly; see ``GAS``), ERC-20 payments are approved just
before the call that pulls them, and a revert raises ChainError with the contract's reason::

    from ledgermind.oracle.onchain import AIOracleContract
    oracle = AIOracleContract(chain, address)
    oracle.register(node, [model_digest], bond=100 * 10**18)
    rid = oracle.request(alice, node.address, model_digest, input_digest, fee=10**18, stake=50 * 10**18)
    oracle.fulfill(node, rid, output_digest, decision=1, receipt_log_index=7, log_id=log_id)
    oracle.dispute(bob, rid, other_output_digest, 0)        # within the dispute window, with the dispute bond
    oracle.resolve(resolver, rid, true_output_digest, 0, evidence)

Digests are 32 bytes or 64 hex characters (with or without 0x).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgermind.accounts import to_checksum_address
from ledgermind.chain.connection import Chain, ChainError, Receipt
from ledgermind.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = ["GAS", "AIOracleContract", "InsuranceContract", "OracleInfo", "Policy", "Product", "RequestInfo"]

# Explicit limits: the embedded chain estimates gas slowly. Measured there (first writes of fresh slots, the worst
# case) and given ~40% headroom: register 172k (one model), request 253k, fulfill 198k, dispute 102k, resolve 172k
# overturned (93k upheld), finalize 70k; Insurance claim 332k (its oracle request included), settle 109k (paid).
GAS = {
    "register": 200_000, "per_model": 50_000, "bond": 100_000, "request": 360_000, "fulfill": 280_000,
    "dispute": 150_000, "resolve": 250_000, "finalize": 110_000, "cancel": 100_000, "withdraw": 120_000,
    "admin": 100_000, "approve": 100_000,
    "fund": 120_000, "product": 300_000, "buy": 300_000, "claim": 470_000, "settle": 180_000, "collect": 150_000,
}

#: AIOracle.state, by number.
STATES = {0: "unknown", 1: "requested", 2: "expired", 3: "fulfilled", 4: "disputed", 5: "final", 6: "settled",
          7: "cancelled"}
#: How a request's decision became final.
OUTCOMES = {0: None, 1: "unchallenged", 2: "upheld", 3: "overturned", 4: "unresolved"}
#: Insurance policy status, by number.
POLICY_STATUS = {0: "unknown", 1: "active", 2: "claiming", 3: "paid", 4: "closed"}


def _hex(b: bytes) -> str:
    return bytes(b).hex()


def _bytes32(value: bytes | str, name: str) -> bytes:
    """32 bytes from bytes or 64 hex characters (with or without 0x). Raises InvalidInputError otherwise."""
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise InvalidInputError(f"{name} must be 64 hex characters, got {value!r}") from None
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise InvalidInputError(f"{name} must be 32 bytes")
    return bytes(value)


def _address(value: str, name: str = "address") -> str:
    try:
        return to_checksum_address(value)
    except InvalidInputError as e:
        raise InvalidInputError(f"{name}: {e}") from None


@dataclass(frozen=True)
class RequestInfo:
    """A request as AIOracle reports it. Digests are 64 hex (no 0x); ``final_*`` are the resolver's verdict when
    the outcome is overturned. ``state`` is AIOracle.state as the next transaction will see it: at the earliest
    time the next block can have (``next_block_time``), not at the head block's, so that "final" means a
    ``finalize`` sent now succeeds and "fulfilled" that a dispute sent now is in time."""

    request_id: int
    requester: str
    oracle: str
    model: str
    input: str
    fee: int
    stake: int
    response_deadline: int
    state: str
    output: str | None
    decision: int
    receipt_log_index: int
    log_id: str | None
    dispute_deadline: int
    challenger: str | None
    resolve_deadline: int
    outcome: str | None
    final_decision: int
    final_output: str | None

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["fee"], d["stake"] = str(self.fee), str(self.stake)
        return d


@dataclass(frozen=True)
class OracleInfo:
    """An oracle's registration: bond, the part locked behind answers not final, the free rest, counts, models
    (an empty list: any model)."""

    account: str
    registered: bool
    bond: int
    locked: int
    free: int
    answered: int
    overturned: int
    models: list[str]

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "bond": str(self.bond), "locked": str(self.locked), "free": str(self.free)}


@dataclass(frozen=True)
class Product:
    product_id: int
    model: str
    assessor: str
    premium: int
    coverage: int
    duration: int
    fee: int
    open: bool

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "premium": str(self.premium), "coverage": str(self.coverage), "fee": str(self.fee)}


@dataclass(frozen=True)
class Policy:
    policy_id: int
    holder: str
    product_id: int
    expiry: int
    status: str
    claims: int
    reserve: int
    request_id: int  # the oracle request of the latest claim (0 before the first)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "reserve": str(self.reserve)}


class _Binding:
    name = ""

    def __init__(self, chain: Chain, address: str) -> None:
        from ledgermind.contracts import load

        self.chain = chain
        self.address = _address(address, "contract address")
        self.contract = chain.w3.eth.contract(address=self.address, abi=load(self.name)["abi"])

    def _send(self, account: LocalAccount, call: Any, gas: int) -> Receipt:
        self.chain.ensure_funds(account.address)
        return self.chain.transact(account, call, gas)

    def _approve(self, account: LocalAccount, token: str, amount: int) -> None:
        """Let this contract pull ``amount`` of ``token`` from ``account`` (nothing to approve for 0)."""
        from ledgermind.contracts import load

        if amount:
            erc20 = self.chain.w3.eth.contract(address=token, abi=load("PaymentToken")["abi"])
            self._send(account, erc20.functions.approve(self.address, amount), GAS["approve"])

    def _event(self, receipt: Receipt, name: str) -> Any:
        """The one ``name`` event this contract emitted in ``receipt``, decoded."""
        event = getattr(self.contract.events, name)()
        topic = bytes.fromhex(event.topic.removeprefix("0x"))
        for entry in receipt.logs:
            if _address(entry["address"]) == self.address and entry["topics"] and bytes(entry["topics"][0]) == topic:
                return event.process_log(entry)
        raise ChainError(f"transaction {receipt.tx_hash} emitted no {name} event on {self.address}")

    def next_block_time(self) -> int:
        """The earliest time the next block can have: after the head's, and not before our clock (a node dates
        the blocks it mines with its clock; the embedded chain and anvil do)."""
        return max(int(self.chain.w3.eth.get_block("latest")["timestamp"]) + 1, int(time.time()))


class AIOracleContract(_Binding):
    """The AIOracle contract at ``address`` on ``chain``."""

    name = "AIOracle"

    # ------------------------------------------------------------------ reads
    @property
    def token(self) -> str:
        return _address(self.chain.call(self.contract.functions.token()))

    def resolver(self) -> str:
        return _address(self.chain.call(self.contract.functions.resolver()))

    def windows(self) -> dict[str, int]:
        fn = self.contract.functions
        return {"response": int(self.chain.call(fn.response_window())),
                "dispute": int(self.chain.call(fn.dispute_window())),
                "resolution": int(self.chain.call(fn.resolution_window()))}

    def dispute_bond(self) -> int:
        return int(self.chain.call(self.contract.functions.dispute_bond()))

    def request_count(self) -> int:
        return int(self.chain.call(self.contract.functions.request_count()))

    def request_info(self, request_id: int) -> RequestInfo:
        """Request ``request_id``. Raises NotFoundError for an id never used."""
        count = self.request_count()
        if not isinstance(request_id, int) or not 1 <= request_id <= count:
            raise NotFoundError(f"unknown request {request_id!r}: the oracle contract has requests 1 to {count}"
                                if count else f"unknown request {request_id!r}: the oracle contract has no requests")
        fn = self.contract.functions
        (requester, oracle, model, input_, fee, stake, response_deadline, status, output, decision, index, log_id,
         dispute_deadline, challenger, resolve_deadline, outcome, final_output, final_decision) = self.chain.call(
            fn.request_info(request_id))
        zero = bytes(32)
        # AIOracle.state's rule, at the next block's earliest time
        t, state = self.next_block_time(), STATES[int(status)]
        if (state == "requested" and t >= response_deadline) or (state == "fulfilled" and t >= dispute_deadline) \
                or (state == "disputed" and t >= resolve_deadline):
            state = "expired" if state == "requested" else "final"
        return RequestInfo(
            request_id, _address(requester), _address(oracle), _hex(model), _hex(input_), int(fee), int(stake),
            int(response_deadline), state,
            _hex(output) if bytes(output) != zero else None, int(decision), int(index),
            _hex(log_id) if bytes(log_id) != zero else None, int(dispute_deadline),
            _address(challenger) if int(challenger, 16) else None, int(resolve_deadline), OUTCOMES[int(outcome)],
            int(final_decision), _hex(final_output) if bytes(final_output) != zero else None)

    def result(self, request_id: int) -> tuple[bool, int, str]:
        """``(final, decision, output digest)``: the decision consumers act on once final."""
        final, decision, output = self.chain.call(self.contract.functions.result(request_id))
        return bool(final), int(decision), _hex(output)

    def oracle_info(self, account: str) -> OracleInfo:
        account = _address(account, "oracle")
        registered, bond, locked, free, answered, overturned, models = self.chain.call(
            self.contract.functions.oracle_info(account))
        return OracleInfo(account, bool(registered), int(bond), int(locked), int(free), int(answered),
                          int(overturned), [_hex(m) for m in models])

    def serves(self, account: str, model: bytes | str) -> bool:
        return bool(self.chain.call(self.contract.functions.serves(_address(account, "oracle"),
                                                                   _bytes32(model, "model digest"))))

    def withdrawable(self, account: str) -> int:
        return int(self.chain.call(self.contract.functions.withdrawable(_address(account, "account"))))

    def requests_for(self, oracle: str, from_block: int = 0) -> list[tuple[int, int]]:
        """``(request id, block number)`` of every request made to ``oracle`` from ``from_block`` on, from the
        chain's ``Requested`` events (filtered on the indexed oracle)."""
        logs = self.contract.events.Requested().get_logs(
            from_block=from_block, argument_filters={"oracle": _address(oracle, "oracle")})
        return [(int(e["args"]["request_id"]), int(e["blockNumber"])) for e in logs]

    def disputed_requests(self, from_block: int = 0) -> list[tuple[int, int]]:
        """``(request id, block number)`` of every dispute from ``from_block`` on."""
        logs = self.contract.events.Disputed().get_logs(from_block=from_block)
        return [(int(e["args"]["request_id"]), int(e["blockNumber"])) for e in logs]

    # ------------------------------------------------------------------ transactions
    def register(self, account: LocalAccount, models: list[bytes | str], bond: int = 0) -> Receipt:
        """Register ``account`` as an oracle serving ``models`` (empty: any model) with a first ``bond``."""
        digests = [_bytes32(m, "model digest") for m in models]
        self._approve(account, self.token, bond)
        return self._send(account, self.contract.functions.register(digests, bond),
                          GAS["register"] + GAS["per_model"] * len(digests))

    def add_bond(self, account: LocalAccount, amount: int) -> Receipt:
        self._approve(account, self.token, amount)
        return self._send(account, self.contract.functions.add_bond(amount), GAS["bond"])

    def request(self, account: LocalAccount, oracle: str, model: bytes | str, input_digest: bytes | str, *,
                fee: int, stake: int) -> tuple[int, Receipt]:
        """Ask ``oracle`` for a decision; the fee is approved, then pulled. Returns (request id, receipt)."""
        call = self.contract.functions.request(_address(oracle, "oracle"), _bytes32(model, "model digest"),
                                               _bytes32(input_digest, "input digest"), fee, stake)
        self._approve(account, self.token, fee)
        receipt = self._send(account, call, GAS["request"])
        return int(self._event(receipt, "Requested")["args"]["request_id"]), receipt

    def fulfill(self, account: LocalAccount, request_id: int, output_digest: bytes | str, decision: int,
                receipt_log_index: int, log_id: bytes | str) -> Receipt:
        return self._send(account, self.contract.functions.fulfill(
            request_id, _bytes32(output_digest, "output digest"), decision, receipt_log_index,
            _bytes32(log_id, "log id")), GAS["fulfill"])

    def dispute(self, account: LocalAccount, request_id: int, claimed_output: bytes | str,
                claimed_decision: int) -> Receipt:
        """Challenge an answer; the dispute bond is approved, then pulled."""
        self._approve(account, self.token, self.dispute_bond())
        return self._send(account, self.contract.functions.dispute(
            request_id, _bytes32(claimed_output, "claimed output digest"), claimed_decision), GAS["dispute"])

    def resolve(self, account: LocalAccount, request_id: int, output_digest: bytes | str, decision: int,
                evidence: bytes | str) -> Receipt:
        return self._send(account, self.contract.functions.resolve(
            request_id, _bytes32(output_digest, "output digest"), decision, _bytes32(evidence, "evidence")),
            GAS["resolve"])

    def finalize(self, account: LocalAccount, request_id: int) -> Receipt:
        return self._send(account, self.contract.functions.finalize(request_id), GAS["finalize"])

    def cancel(self, account: LocalAccount, request_id: int) -> Receipt:
        return self._send(account, self.contract.functions.cancel(request_id), GAS["cancel"])

    def withdraw(self, account: LocalAccount) -> int:
        """Collect ``account``'s whole balance; returns it (0, without a transaction, when there is none)."""
        amount = self.withdrawable(account.address)
        if amount:
            self._send(account, self.contract.functions.withdraw(), GAS["withdraw"])
        return amount

    def set_windows(self, account: LocalAccount, response: int, dispute: int, resolution: int) -> Receipt:
        return self._send(account, self.contract.functions.set_windows(response, dispute, resolution), GAS["admin"])


class InsuranceContract(_Binding):
    """The Insurance contract at ``address`` on ``chain`` (its token is its AIOracle's)."""

    name = "Insurance"

    # ------------------------------------------------------------------ reads
    @property
    def token(self) -> str:
        return _address(self.chain.call(self.contract.functions.token()))

    def insurer(self) -> str:
        return _address(self.chain.call(self.contract.functions.insurer()))

    def pool(self) -> dict[str, int]:
        fn = self.contract.functions
        pool, reserved = int(self.chain.call(fn.pool())), int(self.chain.call(fn.reserved()))
        return {"pool": pool, "reserved": reserved, "free": pool - reserved}

    def product_count(self) -> int:
        return int(self.chain.call(self.contract.functions.product_count()))

    def policy_count(self) -> int:
        return int(self.chain.call(self.contract.functions.policy_count()))

    def product(self, product_id: int) -> Product:
        """Product ``product_id``. Raises ChainError ("unknown product")."""
        model, assessor, premium, coverage, duration, fee, open_ = self.chain.call(
            self.contract.functions.product(product_id))
        return Product(product_id, _hex(model), _address(assessor), int(premium), int(coverage), int(duration),
                       int(fee), bool(open_))

    def policy(self, policy_id: int) -> Policy:
        """Policy ``policy_id``. Raises ChainError ("unknown policy")."""
        holder, product_id, expiry, status, claims, reserve, request_id = self.chain.call(
            self.contract.functions.policy(policy_id))
        return Policy(policy_id, _address(holder), int(product_id), int(expiry), POLICY_STATUS[int(status)],
                      int(claims), int(reserve), int(request_id))

    def withdrawable(self, account: str) -> int:
        return int(self.chain.call(self.contract.functions.withdrawable(_address(account, "account"))))

    def policy_of_request(self, request_id: int) -> int | None:
        """The policy whose claim opened oracle request ``request_id`` (from ``ClaimOpened``), or None."""
        logs = self.contract.events.ClaimOpened().get_logs(from_block=0,
                                                           argument_filters={"request_id": request_id})
        return int(logs[-1]["args"]["policy_id"]) if logs else None

    # ------------------------------------------------------------------ transactions
    def fund(self, account: LocalAccount, amount: int) -> Receipt:
        self._approve(account, self.token, amount)
        return self._send(account, self.contract.functions.fund(amount), GAS["fund"])

    def create_product(self, account: LocalAccount, model: bytes | str, assessor: str, *, premium: int,
                       coverage: int, duration: int, fee: int) -> tuple[int, Receipt]:
        """Offer a product (the insurer only); returns (product id, receipt)."""
        receipt = self._send(account, self.contract.functions.create_product(
            _bytes32(model, "model digest"), _address(assessor, "assessor"), premium, coverage, duration, fee),
            GAS["product"])
        return int(self._event(receipt, "ProductCreated")["args"]["product_id"]), receipt

    def buy(self, account: LocalAccount, product_id: int) -> tuple[int, Receipt]:
        self._approve(account, self.token, self.product(product_id).premium)
        receipt = self._send(account, self.contract.functions.buy(product_id), GAS["buy"])
        return int(self._event(receipt, "PolicyBought")["args"]["policy_id"]), receipt

    def claim(self, account: LocalAccount, policy_id: int, input_digest: bytes | str) -> tuple[int, Receipt]:
        """Claim on a policy; returns (the oracle's request id, receipt)."""
        receipt = self._send(account, self.contract.functions.claim(policy_id, _bytes32(input_digest, "input digest")),
                             GAS["claim"])
        return int(self._event(receipt, "ClaimOpened")["args"]["request_id"]), receipt

    def settle(self, account: LocalAccount, policy_id: int) -> tuple[dict[str, Any], Receipt]:
        """Settle the claim in progress; returns what ``ClaimSettled`` (or ``ClaimLapsed``) says, and the receipt."""
        receipt = self._send(account, self.contract.functions.settle(policy_id), GAS["settle"])
        try:
            args = self._event(receipt, "ClaimSettled")["args"]
        except ChainError:
            return {"approved": False, "lapsed": True, "payout": "0"}, receipt
        return {"approved": bool(args["approved"]), "lapsed": False, "decision": int(args["decision"]),
                "output": _hex(args["output_digest"]), "payout": str(int(args["payout"]))}, receipt

    def collect_refunds(self, account: LocalAccount) -> Receipt:
        return self._send(account, self.contract.functions.collect_refunds(), GAS["collect"])

    def withdraw(self, account: LocalAccount) -> int:
        amount = self.withdrawable(account.address)
        if amount:
            self._send(account, self.contract.functions.withdraw(), GAS["withdraw"])
        return amount

"""Parametric insurance on the AI oracle: the example consumer, through a ledgermind home (``ledgermind insurance``).

The framing: a critical-illness cover that pays a fixed sum on a malignant diagnosis. A claim's input is the
lab report of a fine-needle aspirate biopsy: the 30 cell-nucleus measurements of scikit-learn's bundled Wisconsin
breast-cancer dataset (569 cases). The claims model is a standardised logistic regression trained on a fixed,
stratified 75% of the cases; it approves (decision 1) when it classifies the biopsy malignant, rejects (0)
otherwise. The other 25% are the demo's sample lab reports (``claim_case``). Training is deterministic (fixed
split, deterministic solver), so the model file, its digest and every decision are the same on every machine,
and anyone can re-run an assessment from the registry.

The insurer (the Insurance contract's deployer) funds the pool and offers products (premium, coverage, duration,
assessment fee, the assessing oracle and the model); a holder buys a policy and claims with a lab report; the
assessor answers through the AIOracle; once the decision is final anyone settles the claim (the oracle service
does it for the claims it assessed) and an approved one credits the coverage to the holder, who withdraws it.
Every act is an ``oracle/v1`` statement naming the Insurance contract.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ledgermind.errors import InvalidInputError
from ledgermind.oracle import runner
from ledgermind.oracle.service import contract_of, insurance_of, record

if TYPE_CHECKING:
    from ledgermind.client import Client

CLAIMS_DATASET = "breast_cancer"
MODEL_NAME = "critical-illness claims model"
SEED = 0


@dataclass(frozen=True)
class ClaimsData:
    train_x: np.ndarray
    train_y: np.ndarray  # 1: malignant (approve), 0: benign (reject)
    cases_x: np.ndarray  # held-out lab reports, the demo's claims
    cases_y: np.ndarray
    features: list[str]


@cache
def claims_data() -> ClaimsData:
    """The bundled breast-cancer data as claims: a fixed stratified 75/25 split, label 1 for malignant."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    y = (data.target == 0).astype(np.int64)  # scikit-learn codes malignant as 0
    xtr, xte, ytr, yte = train_test_split(data.data, y, test_size=0.25, random_state=SEED, stratify=y)
    return ClaimsData(xtr, ytr, xte, yte, [str(f) for f in data.feature_names])


def claim_case(k: int) -> list[float]:
    """Sample lab report ``k`` (0-based) of the held-out cases. Raises InvalidInputError out of range."""
    cases = claims_data().cases_x
    if not 0 <= k < len(cases):
        raise InvalidInputError(f"no sample case {k}: there are {len(cases)} (0 to {len(cases) - 1})")
    return [float(v) for v in cases[k]]


def claims_model(client: Client) -> dict[str, Any]:
    """Train the claims model and register it (stored, with its training data as its lineage); idempotent: the
    same bytes are registered once. Returns the model's id, name and held-out accuracy."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = claims_data()
    folder = client.settings.home / "insurance"
    folder.mkdir(parents=True, exist_ok=True)
    train = folder / "claims-train.csv"
    rows = np.column_stack([d.train_x, d.train_y])
    np.savetxt(train, rows, delimiter=",", header=",".join([*d.features, "malignant"]).replace(" ", "_"),
               comments="", fmt="%.10g")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(d.train_x, d.train_y)
    accuracy = float((model.predict(d.cases_x) == d.cases_y).mean())
    path = folder / "claims-model.joblib"
    joblib.dump(model, path)
    dataset = client.register_dataset(train, name="breast cancer biopsies (claims training set)",
                                      source="scikit-learn bundled dataset (Wisconsin diagnostic breast cancer)",
                                      licence="BSD-3-Clause", store=True)
    reg = client.register_model(path, trained_on=[dataset.digest], name=MODEL_NAME, framework="scikit-learn",
                                metrics={"heldOutAccuracy": accuracy}, store=True)
    return {"id": reg.digest, "name": reg.name, "dataset": dataset.digest, "heldOutAccuracy": accuracy}


def _subject(ins_address: str, what: str) -> tuple[str, str]:
    return f"insurance {ins_address} {what}", hashlib.sha256(f"{ins_address.lower()} {what}".encode()).hexdigest()


def fund(client: Client, amount: int) -> dict[str, Any]:
    """Add ``amount`` to the pool (the insurer only; pulled from its wallet)."""
    if amount <= 0:
        raise InvalidInputError("the amount to fund must be positive")
    ins = insurance_of(client)
    receipt = ins.fund(client.account(), amount)
    index, _ = record(client, "fund", _subject(ins.address, "pool"), ins.address, receipt, amount=str(amount))
    return {**_pool(ins), "logIndex": index}


def _pool(ins: Any) -> dict[str, str]:
    return {k: str(v) for k, v in ins.pool().items()}


def create_product(client: Client, *, assessor: str, premium: int, coverage: int, duration: int, fee: int,
                   model: str | None = None) -> dict[str, Any]:
    """Offer a product assessed by ``assessor`` running ``model`` (default: the bundled claims model, trained
    and registered now). Raises InvalidInputError if the assessor does not serve the model (it registers with
    ``ledgermind oracle register --model ...`` first)."""
    ref = model or claims_model(client)["id"]
    served = runner.load_model(client, ref)
    oracle = contract_of(client)
    if not oracle.serves(assessor, served.digest):
        raise InvalidInputError(f"{assessor} is not a registered oracle serving model {served.digest[:12]}: it runs "
                                f"'ledgermind oracle register --model {served.digest[:12]}' first")
    ins = insurance_of(client)
    pid, receipt = ins.create_product(client.account(), served.digest, assessor, premium=premium,
                                      coverage=coverage, duration=duration, fee=fee)
    index, _ = record(client, "product", _subject(ins.address, f"product {pid}"), ins.address, receipt,
                      productId=pid, model=served.digest, oracle=assessor, premium=str(premium),
                      coverage=str(coverage), duration=duration, fee=str(fee))
    return {**ins.product(pid).to_json(), "logIndex": index}


def buy(client: Client, product_id: int) -> dict[str, Any]:
    """Buy a policy of ``product_id`` for the acting account (the premium is pulled)."""
    ins = insurance_of(client)
    product = ins.product(product_id)
    policy_id, receipt = ins.buy(client.account(), product_id)
    index, _ = record(client, "buy", _subject(ins.address, f"policy {policy_id}"), ins.address, receipt,
                      productId=product_id, policyId=policy_id, premium=str(product.premium),
                      coverage=str(product.coverage))
    return {**ins.policy(policy_id).to_json(), "logIndex": index}


def claim(client: Client, policy_id: int, inputs: Any) -> dict[str, Any]:
    """Claim on ``policy_id`` with ``inputs`` (a lab report): validated by the product's model and published
    before the claim is sent, so the assessor and anyone re-running it find it. Returns the oracle request."""
    ins = insurance_of(client)
    policy = ins.policy(policy_id)
    account = client.account()
    if policy.holder != account.address:
        raise InvalidInputError(f"policy {policy_id} is held by {policy.holder}, not {account.address}")
    product = ins.product(policy.product_id)
    served = runner.load_model(client, product.model)
    input_digest = runner.publish_inputs(client, served, inputs)
    request_id, receipt = ins.claim(account, policy_id, input_digest)
    oracle = contract_of(client)
    index, _ = record(client, "claim", ("input", input_digest), ins.address, receipt, policyId=policy_id,
                      requestId=request_id, oracle=product.assessor, model=product.model, input=input_digest,
                      inputs=inputs, fee=str(product.fee), stake=str(product.coverage))
    return {**ins.policy(policy_id).to_json(), "request": oracle.request_info(request_id).to_json(),
            "logIndex": index, "gasUsed": receipt.gas_used}


def settle(client: Client, policy_id: int) -> dict[str, Any]:
    """Settle the claim in progress on ``policy_id`` once its decision is final (anyone): an approved claim
    credits the coverage to the holder; refunds the oracle owes the pool are collected (``amount`` in the
    statement). Raises InvalidInputError while the decision can still change."""
    ins = insurance_of(client)
    policy = ins.policy(policy_id)
    if policy.status != "claiming":
        raise InvalidInputError(f"policy {policy_id} is {policy.status}: no claim in progress")
    state = contract_of(client).request_info(policy.request_id).state
    if state not in ("final", "settled", "expired", "cancelled"):
        raise InvalidInputError(f"the decision on policy {policy_id}'s claim (oracle request {policy.request_id}) "
                                f"is not final yet: it is {state}")
    outcome, receipt = ins.settle(client.account(), policy_id)
    # what the oracle owes the pool (a lapsed claim's fee; the requester's share of a slashed stake) comes back
    refunds = contract_of(client).withdrawable(ins.address)
    if refunds:
        ins.collect_refunds(client.account())
    index, _ = record(client, "settle", _subject(ins.address, f"policy {policy_id}"), ins.address, receipt,
                      policyId=policy_id, requestId=policy.request_id, approved=outcome["approved"],
                      payout=outcome["payout"], decision=outcome.get("decision"), output=outcome.get("output"),
                      amount=str(refunds) if refunds else None)
    return {**ins.policy(policy_id).to_json(), **outcome, "logIndex": index, "gasUsed": receipt.gas_used}


def withdraw(client: Client) -> dict[str, Any]:
    """Collect what the Insurance owes the acting account (payouts; capital the insurer took back)."""
    ins = insurance_of(client)
    account = client.account()
    amount = ins.withdraw(account)
    if not amount:
        raise InvalidInputError(f"the insurance contract owes {account.address} nothing")
    index, _ = record(client, "withdraw", _subject(ins.address, account.address), ins.address, amount=str(amount))
    return {"account": account.address, "amount": str(amount), "logIndex": index}


def status(client: Client, policy_id: int | None = None) -> dict[str, Any]:
    """A policy with its latest claim's oracle request; without ``policy_id``, the pool, products and the
    acting account's policies and balance."""
    ins = insurance_of(client)
    if policy_id is not None:
        policy = ins.policy(policy_id)
        request = contract_of(client).request_info(policy.request_id).to_json() if policy.request_id else None
        return {**policy.to_json(), "request": request}
    me = client.account().address
    policies = [ins.policy(i) for i in range(1, ins.policy_count() + 1)]
    return {"contract": ins.address, "insurer": ins.insurer(), **_pool(ins),
            "products": [ins.product(i).to_json() for i in range(1, ins.product_count() + 1)],
            "policies": [p.to_json() for p in policies if p.holder == me], "withdrawable": str(ins.withdrawable(me))}


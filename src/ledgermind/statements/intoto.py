"""in-toto Statement v1 and ledgermind's versioned predicate types.

A statement says something (the predicate) about one or more artifacts (the subjects, by SHA-256).
Every predicate type lives under one namespace and carries its version in its URI; a statement with
an unknown predicate type is rejected (deny by default). Later capabilities register their own types
with ``register_predicate``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ledgermind.errors import InvalidInputError
from ledgermind.statements.canonical import canonical_json

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_NAMESPACE = "https://ledgermind.dev/attestations/"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def utc_now() -> str:
    """Current time as RFC 3339 UTC with second precision, the form every predicate uses."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Digest = str  # 64 lowercase hex characters


def _check_digest(v: str) -> str:
    if not isinstance(v, str) or not _HEX64.fullmatch(v):
        raise ValueError("must be 64 lowercase hex characters (a SHA-256 digest)")
    return v


class AssetRef(_Strict):
    """A reference to another registered asset, by digest (the log index is a hint for readers)."""

    digest: str
    name: str | None = None
    logIndex: int | None = Field(default=None, ge=0)

    _d = field_validator("digest")(classmethod(lambda cls, v: _check_digest(v)))


class FileEntry(_Strict):
    path: str
    size: int = Field(ge=0)
    sha256: str


class Manifest(_Strict):
    type: Literal["ledgermind/manifest/v1"]
    shardSize: int = Field(gt=0)
    files: list[FileEntry] = Field(min_length=1)


class Column(_Strict):
    name: str
    type: str


class SchemaSummary(_Strict):
    format: str
    columns: list[Column] = []
    label: str | None = None


JSONScalar = str | int | float | bool | None


class DatasetV1(_Strict):
    """A dataset was registered: where it came from, under what terms, what it holds."""

    name: str = Field(min_length=1, max_length=200)
    source: str | None = None
    licence: str | None = None
    schema_: SchemaSummary | None = Field(default=None, alias="schema")
    rows: int | None = Field(default=None, ge=0)
    consent: bool | None = None  # personal data in it was collected with the subjects' consent
    containsPii: bool | None = None
    size: int = Field(ge=0)
    cid: str | None = None
    manifest: Manifest | None = None  # omitted for very large folders; the subject digest still binds it
    quality: dict[str, Any] | None = None  # ledgermind.quality's report: missing values, duplicates, PII...
    registeredAt: str


class ModelV1(_Strict):
    """A model was registered, with its lineage: the datasets it was trained on and its parent models."""

    name: str = Field(min_length=1, max_length=200)
    framework: str | None = None
    format: str | None = None
    hyperparameters: dict[str, Any] = {}
    trainingDatasets: list[AssetRef] = []
    parentModels: list[AssetRef] = []
    codeRevision: str | None = None
    metrics: dict[str, float] = {}
    size: int = Field(ge=0)
    cid: str | None = None
    manifest: Manifest | None = None
    registeredAt: str


class EvaluationV1(_Strict):
    """A model was evaluated on a dataset with these results."""

    model: AssetRef
    dataset: AssetRef
    metrics: dict[str, float]
    evaluatedAt: str


class InferenceReceiptV1(_Strict):
    """A provider ran a model on an input and answered with an output."""

    model: AssetRef
    inputDigest: str
    outputDigest: str
    provider: str
    time: str
    price: str | None = None
    channel: str | None = None

    _i = field_validator("inputDigest", "outputDigest")(classmethod(lambda cls, v: _check_digest(v)))

    @field_validator("provider")
    @classmethod
    def _addr(cls, v: str) -> str:
        if not _ADDRESS.fullmatch(v):
            raise ValueError("must be a 0x-prefixed 20-byte address")
        return v


class EventV1(_Strict):
    """A domain event, e.g. a supply-chain step or an energy meter reading, tied to its subjects."""

    domain: str = Field(min_length=1, max_length=100)
    type: str = Field(min_length=1, max_length=100)
    time: str
    data: dict[str, Any] = {}
    related: list[AssetRef] = []


_UINT256 = re.compile(r"0|[1-9][0-9]{0,77}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")
_TX_HASH = re.compile(r"0x[0-9a-f]{64}")


def _address_or_none(v: str | None) -> str | None:
    if v is not None and not _ADDRESS.fullmatch(v):
        raise ValueError("must be a 0x-prefixed 20-byte address")
    return v


def _uint256_or_none(v: str | None) -> str | None:
    if v is not None and (not _UINT256.fullmatch(v) or int(v) >= 2**256):
        raise ValueError("must be a decimal uint256")
    return v


class AccessV1(_Strict):
    """A data provider's record of one access decision, granted or refused: who asked for what, and why."""

    holder: str  # as claimed in the request; ``reason`` says when its signature did not check out
    asset: str
    action: str = Field(min_length=1, max_length=64)
    granted: bool
    reason: str = Field(min_length=1, max_length=500)
    nonce: str  # decimal uint256: JSON numbers lose precision above 2**53
    time: str
    expiry: str | None = None
    path: str | None = Field(default=None, max_length=4096)  # the one file served from a folder asset
    chainId: int | None = Field(default=None, ge=0)
    verifyingContract: str | None = None
    signature: str | None = None  # the holder's EIP-712 signature of the request

    _a = field_validator("holder", "verifyingContract")(classmethod(lambda cls, v: _address_or_none(v)))
    _d = field_validator("asset")(classmethod(lambda cls, v: _check_digest(v)))
    _u = field_validator("nonce", "expiry")(classmethod(lambda cls, v: _uint256_or_none(v)))

    @field_validator("signature")
    @classmethod
    def _sig(cls, v: str | None) -> str | None:
        if v is not None and not _SIGNATURE.fullmatch(v):
            raise ValueError("must be 0x and 65 bytes of lowercase hex")
        return v


class Contribution(_Strict):
    """A contributor's cut of every sale, in basis points (1/100 of a percent)."""

    account: str
    bps: int = Field(gt=0, le=10_000)

    _a = field_validator("account")(classmethod(lambda cls, v: _address_or_none(v)))


MARKET_ACTIONS = (
    "create-access-token", "authorise-minter", "list-access", "list-licence", "list-asset", "enable-dispenser",
    "delist-access", "delist-licence", "delist-asset", "disable-dispenser",
    "buy-access", "buy-licence", "buy-asset", "dispense", "withdraw", "set-fee",
)


class MarketV1(_Strict):
    """A market transaction an account made on chain: a listing, a purchase, a withdrawal. The statement's signer
    is the account that sent the transaction; ``txHash`` on ``chainId`` is where the chain has it."""

    action: Literal[MARKET_ACTIONS]  # type: ignore[valid-type]
    account: str
    chainId: int = Field(ge=0)
    contract: str
    txHash: str
    blockNumber: int = Field(ge=0)
    time: str
    price: str | None = None  # decimal, smallest unit of ``token``; per whole access token for access listings
    token: str | None = None  # payment token; the zero address is the chain's native coin
    quantity: str | None = None  # whole access tokens bought or dispensed
    duration: int | None = Field(default=None, gt=0)  # seconds of a licence
    expiry: int | None = Field(default=None, ge=0)  # unix time a bought licence ends
    contributors: list[Contribution] = []
    amount: str | None = None  # what a withdrawal paid out
    feeBps: int | None = Field(default=None, ge=0, le=10_000)  # the platform fee set
    feeRecipient: str | None = None

    _a = field_validator("account", "contract", "token", "feeRecipient")(classmethod(lambda cls, v: _address_or_none(v)))
    _u = field_validator("price", "quantity", "amount")(classmethod(lambda cls, v: _uint256_or_none(v)))

    @field_validator("txHash")
    @classmethod
    def _tx(cls, v: str) -> str:
        if not _TX_HASH.fullmatch(v):
            raise ValueError("must be 0x and 32 bytes of lowercase hex")
        return v


FEDERATION_ACTIONS = ("create", "join", "update", "round", "claim")


class FederationV1(_Strict):
    """One step of a federated training task coordinated on chain, signed by the account that took it:
    ``create`` (the coordinator: the task's terms), ``join`` (a participant: its stake and the dataset it
    trains on), ``update`` (a participant: the digest of its update for a round, committed on chain),
    ``round`` (the coordinator: the round's verdict, enough to re-run its aggregation from the published
    updates) and ``claim`` (a participant collecting its rewards and stake)."""

    action: Literal[FEDERATION_ACTIONS]  # type: ignore[valid-type]
    taskId: int = Field(ge=1)
    chainId: int = Field(ge=0)
    contract: str
    account: str
    time: str
    txHash: str | None = None
    round: int | None = Field(default=None, ge=1)
    # create
    token: str | None = None
    rounds: int | None = Field(default=None, ge=1)
    rewardPool: str | None = None
    minStake: str | None = None
    quorum: int | None = Field(default=None, ge=1)
    architecture: dict[str, Any] | None = None  # trainer, its parameters, input and output sizes
    initialWeights: str | None = None
    validationDataset: str | None = None
    # join
    stake: str | None = None
    dataset: str | None = None
    samples: int | None = Field(default=None, ge=0)
    # update
    updateDigest: str | None = None
    commitment: str | None = None
    # round
    globalModel: str | None = None
    aggregatedModel: str | None = None
    aggregator: str | None = None
    updates: dict[str, str] = {}  # participant -> revealed update digest
    weights: dict[str, float] = {}
    contributions: dict[str, float] = {}
    scoresBps: dict[str, int] = {}
    flags: dict[str, str] = {}  # participant -> why it was flagged (and slashed)
    rejected: dict[str, str] = {}  # participant -> why its update was not considered
    skipped: str | None = None
    validationAccuracy: float | None = None
    # claim
    amount: str | None = None

    _a = field_validator("contract", "account", "token")(classmethod(lambda cls, v: _address_or_none(v)))
    _u = field_validator("rewardPool", "minStake", "stake", "amount")(classmethod(lambda cls, v: _uint256_or_none(v)))

    @field_validator("initialWeights", "validationDataset", "dataset", "updateDigest", "globalModel", "aggregatedModel")
    @classmethod
    def _digests(cls, v: str | None) -> str | None:
        return None if v is None else _check_digest(v)


class GovernanceV1(_Strict):
    """A member's act on the consortium's Governance contract: a proposal (approve or revoke a dataset, promote
    or revoke a model), a vote, an execution, a change of members, parameters or of the Marketplace's gate."""

    action: Literal["propose", "vote", "execute", "member", "parameters", "gate"]
    account: str
    chainId: int = Field(ge=0)
    contract: str
    txHash: str
    time: str
    proposalId: int | None = Field(default=None, ge=1)
    decision: Literal["approve-dataset", "revoke-dataset", "approve-model", "revoke-model"] | None = None
    target: str | None = None
    support: bool | None = None
    member: str | None = None
    added: bool | None = None
    quorum: int | None = Field(default=None, ge=1)
    timelock: int | None = Field(default=None, ge=0)
    votingPeriod: int | None = Field(default=None, ge=1)
    enabled: bool | None = None

    _a = field_validator("account", "contract", "member")(classmethod(lambda cls, v: _address_or_none(v)))

    @field_validator("target")
    @classmethod
    def _t(cls, v: str | None) -> str | None:
        return None if v is None else _check_digest(v)


class AlertDetector(_Strict):
    """What raised an alert: the detector's name and version, the parameters it ran with, and the digest that binds
    them (SHA-256 of their canonical JSON; for a trained model, the model's own digest)."""

    name: str = Field(min_length=1, max_length=100)
    version: str = Field(min_length=1, max_length=40)
    digest: str
    params: dict[str, Any] = {}

    _d = field_validator("digest")(classmethod(lambda cls, v: _check_digest(v)))


class AlertV1(_Strict):
    """The guard's signed finding about activity on a chain: what kind, about which accounts, how strong (``score``
    against ``threshold``), the features it was computed from, the transactions that are its evidence, and the last
    block of the activity it rests on (``head``), so anyone can re-derive it from the chain up to that block."""

    kind: str = Field(min_length=1, max_length=64)
    case: str = Field(min_length=1, max_length=200)  # what the finding is about: an asset, a task, a channel
    chainId: int = Field(ge=0)
    head: int = Field(ge=0)
    subjects: list[str] = Field(min_length=1, max_length=256)
    score: float = Field(ge=0)
    threshold: float = Field(ge=0)
    summary: str = Field(min_length=1, max_length=500)
    features: dict[str, float] = {}
    evidence: list[str] = Field(default=[], max_length=1000)
    detector: AlertDetector
    raisedAt: str

    @field_validator("subjects")
    @classmethod
    def _subjects(cls, v: list[str]) -> list[str]:
        for a in v:
            _address_or_none(a)
        return v

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, v: list[str]) -> list[str]:
        for h in v:
            if not _TX_HASH.fullmatch(h):
                raise ValueError("evidence must be transaction hashes: 0x and 32 bytes of lowercase hex")
        return v


ORACLE_ACTIONS = ("register", "request", "decision", "dispute", "resolution", "finalize", "cancel", "withdraw",
                  "windows", "fund", "product", "buy", "claim", "settle")
_INT256 = 2**255


class OracleV1(_Strict):
    """One step of the AI oracle or of a consumer contract built on it (the Insurance example), signed by the
    account that took it. ``request`` carries the input itself (``inputs``), so anyone holding the log can re-run
    the model; ``decision`` is the oracle's answer (its log index is the receipt index the chain commits to);
    ``dispute`` a challenger's claim; ``resolution`` the resolver's re-run and verdict. The insurance actions
    (``fund``, ``product``, ``buy``, ``claim``, ``settle``, ``withdraw`` on the consumer) name the consumer
    contract in ``contract``. The full output of a model never needs to be here: ``output`` is the SHA-256 of its
    canonical JSON."""

    action: Literal[ORACLE_ACTIONS]  # type: ignore[valid-type]
    account: str
    chainId: int = Field(ge=0)
    contract: str
    time: str
    txHash: str | None = None
    requestId: int | None = Field(default=None, ge=1)
    oracle: str | None = None
    model: str | None = None
    input: str | None = None
    inputs: Any = None
    output: str | None = None
    decision: int | None = Field(default=None, ge=-_INT256, lt=_INT256)
    logId: str | None = None
    claimedOutput: str | None = None
    claimedDecision: int | None = Field(default=None, ge=-_INT256, lt=_INT256)
    overturned: bool | None = None
    models: list[str] | None = None
    windows: dict[str, int] | None = None
    fee: str | None = None
    stake: str | None = None
    bond: str | None = None
    amount: str | None = None
    productId: int | None = Field(default=None, ge=1)
    policyId: int | None = Field(default=None, ge=1)
    premium: str | None = None
    coverage: str | None = None
    duration: int | None = Field(default=None, ge=1)
    approved: bool | None = None
    payout: str | None = None

    _a = field_validator("account", "contract", "oracle")(classmethod(lambda cls, v: _address_or_none(v)))
    _u = field_validator("fee", "stake", "bond", "amount", "premium", "coverage", "payout")(
        classmethod(lambda cls, v: _uint256_or_none(v)))

    @field_validator("model", "input", "output", "logId", "claimedOutput")
    @classmethod
    def _digests(cls, v: str | None) -> str | None:
        return None if v is None else _check_digest(v)

    @field_validator("models")
    @classmethod
    def _model_list(cls, v: list[str] | None) -> list[str] | None:
        for d in v or []:
            _check_digest(d)
        return v

    @field_validator("txHash")
    @classmethod
    def _tx(cls, v: str | None) -> str | None:
        if v is not None and not _TX_HASH.fullmatch(v):
            raise ValueError("must be 0x and 32 bytes of lowercase hex")
        return v


DATASET = PREDICATE_NAMESPACE + "dataset/v1"
MODEL = PREDICATE_NAMESPACE + "model/v1"
EVALUATION = PREDICATE_NAMESPACE + "evaluation/v1"
INFERENCE_RECEIPT = PREDICATE_NAMESPACE + "inference-receipt/v1"
EVENT = PREDICATE_NAMESPACE + "event/v1"
ACCESS = PREDICATE_NAMESPACE + "access/v1"
MARKET = PREDICATE_NAMESPACE + "market/v1"
FEDERATION = PREDICATE_NAMESPACE + "federation/v1"
GOVERNANCE = PREDICATE_NAMESPACE + "governance/v1"
ALERT = PREDICATE_NAMESPACE + "alert/v1"
ORACLE = PREDICATE_NAMESPACE + "oracle/v1"

_PREDICATES: dict[str, type[BaseModel]] = {
    DATASET: DatasetV1,
    MODEL: ModelV1,
    EVALUATION: EvaluationV1,
    INFERENCE_RECEIPT: InferenceReceiptV1,
    EVENT: EventV1,
    ACCESS: AccessV1,
    MARKET: MarketV1,
    FEDERATION: FederationV1,
    GOVERNANCE: GovernanceV1,
    ALERT: AlertV1,
    ORACLE: OracleV1,
}


def register_predicate(predicate_type: str, model: type[BaseModel]) -> None:
    """Allow statements of ``predicate_type`` (must live under PREDICATE_NAMESPACE and end in /vN)."""
    if not predicate_type.startswith(PREDICATE_NAMESPACE) or not re.search(r"/v\d+$", predicate_type):
        raise ValueError(f"predicate type {predicate_type!r} must be {PREDICATE_NAMESPACE}<name>/v<N>")
    _PREDICATES[predicate_type] = model


def predicate_types() -> list[str]:
    return sorted(_PREDICATES)


@dataclass(frozen=True)
class Statement:
    """A validated in-toto Statement v1."""

    subjects: tuple[tuple[str, str], ...]  # (name, sha256 hex)
    predicate_type: str
    predicate: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": n, "digest": {"sha256": d}} for n, d in self.subjects],
            "predicateType": self.predicate_type,
            "predicate": self.predicate,
        }

    def to_bytes(self) -> bytes:
        """RFC 8785 canonical JSON: the exact payload that gets signed."""
        return canonical_json(self.to_json())

    @property
    def digest(self) -> str:
        """The first subject's digest: the asset this statement is about."""
        return self.subjects[0][1]


def _subject(s: Any, i: int) -> tuple[str, str]:
    # checked by hand, not by pydantic: this runs for every submitted statement
    if not isinstance(s, dict) or set(s) != {"name", "digest"}:
        raise InvalidInputError(f"statement subject {i} must have exactly 'name' and 'digest'")
    name, digest = s["name"], s["digest"]
    if not isinstance(name, str) or not 0 < len(name) <= 1024:
        raise InvalidInputError(f"statement subject {i} name must be a string of 1 to 1024 characters")
    if not isinstance(digest, dict) or not isinstance(digest.get("sha256"), str):
        raise InvalidInputError(f"statement subject {i} digest must include sha256")
    if not _HEX64.fullmatch(digest["sha256"]) or not all(isinstance(v, str) for v in digest.values()):
        raise InvalidInputError(f"statement subject {i} digest sha256 must be 64 lowercase hex characters")
    return name, digest["sha256"]


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "value"
    return f"{where}: {err['msg']}"


def make_statement(subjects: list[tuple[str, str]], predicate_type: str, predicate: dict[str, Any]) -> Statement:
    """Build a statement, validating the predicate against its type. Raises InvalidInputError."""
    return parse_statement(Statement(tuple(subjects), predicate_type, predicate).to_json())


def parse_statement(obj: Any) -> Statement:
    """Validate a decoded statement. Raises InvalidInputError naming the first problem."""
    if not isinstance(obj, dict):
        raise InvalidInputError("statement must be a JSON object")
    extra = set(obj) - {"_type", "subject", "predicateType", "predicate"}
    if extra:
        raise InvalidInputError(f"statement has unknown fields: {', '.join(sorted(extra))}")
    if obj.get("_type") != STATEMENT_TYPE:
        raise InvalidInputError(f"statement _type is {obj.get('_type')!r}, expected {STATEMENT_TYPE!r}")
    subjects = obj.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise InvalidInputError("statement needs a non-empty subject list")
    parsed = [_subject(s, i) for i, s in enumerate(subjects)]
    ptype = obj.get("predicateType")
    model = _PREDICATES.get(ptype) if isinstance(ptype, str) else None
    if model is None:
        raise InvalidInputError(f"unknown predicateType {ptype!r}; accepted: {', '.join(predicate_types())}")
    predicate = obj.get("predicate")
    try:
        model.model_validate(predicate)
    except ValidationError as e:
        raise InvalidInputError(f"predicate ({ptype.removeprefix(PREDICATE_NAMESPACE)}) {_first_error(e)}") from e
    return Statement(tuple(parsed), ptype, predicate)


def statement_from_payload(payload: bytes) -> Statement:
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"statement payload is not JSON: {e}") from e
    return parse_statement(obj)

"""Request and response bodies of the node's REST API (pydantic models: they make the OpenAPI description)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    """A body that may grow fields in later versions: readers ignore what they do not know."""

    model_config = ConfigDict(extra="allow")


class Error(BaseModel):
    error: str = Field(description="What went wrong, on one line.")


# ---------------------------------------------------------------------- node
class SigningInfo(BaseModel):
    primaryType: str
    domain: dict[str, Any] = Field(description="The EIP-712 domain: name, version, chainId.")
    types: dict[str, list[dict[str, str]]]
    headers: dict[str, str] = Field(description="Header names: signer, nonce, expiry, signature.")
    maxTtl: int = Field(description="Seconds a request may be signed ahead of its expiry, at most.")


class Limits(BaseModel):
    maxBodyBytes: int
    ratePerSecond: float
    burst: int


class NodeInfo(BaseModel):
    node: str = Field(description="The log's origin: the node's name in every signed request.")
    version: str
    chainId: int
    rpcUrl: str | None = Field(description="The chain's JSON-RPC endpoint, if this node serves or uses one.")
    logSize: int
    publicKey: str = Field(description="The log's checkpoint verifier key (C2SP vkey).")
    predicateTypes: list[str]
    signing: SigningInfo
    limits: Limits


class Health(BaseModel):
    ok: bool
    node: str
    logSize: int


# ---------------------------------------------------------------------- assets
class AssetSummary(BaseModel):
    id: str
    kind: str
    name: str
    logIndex: int
    signer: str
    registeredAt: str


class AssetPage(BaseModel):
    total: int
    items: list[AssetSummary]


class StatementRef(BaseModel):
    logIndex: int
    predicateType: str
    signer: str


class AssetDetail(BaseModel):
    id: str
    kind: str
    name: str
    logIndex: int
    signer: str
    statement: dict[str, Any] = Field(description="The registration's in-toto statement.")
    statements: list[StatementRef] = Field(description="Every statement about the asset, oldest first.")


class LineageNode(BaseModel):
    id: str
    kind: str | None
    name: str | None
    logIndex: int | None
    signer: str | None
    missing: bool = Field(description="Named as a parent but never registered in this log.")


class LineageEdge(BaseModel):
    child: str
    parent: str
    relation: str = Field(description="trainedOn or derivedFrom.")


class LineageGraph(BaseModel):
    root: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class Registration(BaseModel):
    id: str
    kind: str
    name: str
    logIndex: int
    signer: str
    created: bool = Field(description="False when the digest was registered before (nothing was appended).")


# ---------------------------------------------------------------------- log
class Envelope(BaseModel):
    """A DSSE envelope holding an in-toto statement, signed by its actor (EIP-191 over the DSSE PAE)."""

    payload: str = Field(description="base64 of the statement's canonical JSON")
    payloadType: str
    signatures: list[dict[str, str]] = Field(description="[{keyid: signer address, sig: base64}]")


class EnvelopeBody(BaseModel):
    envelope: Envelope


class Submitted(BaseModel):
    logIndex: int
    signer: str
    predicateType: str
    subject: str


class LogInfo(BaseModel):
    origin: str
    publicKey: str
    size: int
    root: str | None
    checkpoint: str | None = Field(description="The latest signed checkpoint note (C2SP tlog-checkpoint).")


class Checkpoint(BaseModel):
    origin: str
    size: int
    root: str
    note: str


class Subject(BaseModel):
    name: str
    digest: str


class EntrySummary(BaseModel):
    logIndex: int
    signer: str
    predicateType: str
    subject: Subject
    statement: dict[str, Any] | None = Field(None, description="Included when asked for (statements=true).")


class EntryPage(BaseModel):
    size: int = Field(description="The log's size when read.")
    items: list[EntrySummary]


class InclusionProof(BaseModel):
    logIndex: int
    treeSize: int
    leafHash: str
    rootHash: str
    hashes: list[str]


class Entry(BaseModel):
    logIndex: int
    signer: str
    statement: dict[str, Any]
    envelope: dict[str, Any]
    inclusionProof: InclusionProof = Field(description="Against the latest checkpoint.")
    checkpoint: str


class ConsistencyProof(BaseModel):
    first: int
    second: int
    firstRoot: str
    secondRoot: str
    hashes: list[str]


class Anchor(_Open):
    chainId: int
    treeSize: int
    rootHash: str
    status: str = Field(description="anchored, queued or superseded")
    contract: str | None = None
    txHash: str | None = None
    blockNumber: int | None = None
    lastError: str | None = None


class AnchorResult(BaseModel):
    chainId: int
    logSize: int
    anchored: Anchor | None


# ---------------------------------------------------------------------- chain, market, channels
class Transaction(BaseModel):
    hash: str
    chainId: int
    from_: str = Field(alias="from")
    to: str | None
    value: str
    nonce: int
    blockNumber: int
    blockHash: str
    status: int = Field(description="1 succeeded, 0 reverted")
    gasUsed: int
    contractAddress: str | None
    logs: int = Field(description="How many event logs it emitted.")



class Listing(_Open):
    id: str
    owner: str | None = None
    name: str | None = Field(None, description="The asset's name in this log, if registered here.")
    kind: str | None = None
    access: dict[str, Any] | None = None
    licence: dict[str, Any] | None = None
    asset: dict[str, Any] | None = None
    dispenser: dict[str, Any] | None = None


class Channel(BaseModel):
    channel: str
    provider: str
    receipts: int
    paid: str = Field(description="Sum of the receipts' prices (smallest unit of the channel's token).")
    firstLogIndex: int
    lastLogIndex: int


# ---------------------------------------------------------------------- federations, governance
class FederationTask(_Open):
    task_id: int
    coordinator: str
    status: str
    rounds: int
    round: int


class FederationDetail(BaseModel):
    task: dict[str, Any]
    participants: list[dict[str, Any]]
    rounds: list[dict[str, Any]]
    statements: list[EntrySummary] = Field(description="The task's federation/v1 statements: create, join, "
                                                       "update, round (scores, rewards, flags and slashing), claim.")


class Proposal(_Open):
    proposal_id: int
    action: str
    target: str
    status: str
    yes: int
    no: int


class GovernanceOverview(_Open):
    contract: str
    chainId: int
    proposals: list[Proposal]


class ProposalDetail(BaseModel):
    proposal: Proposal
    statements: list[EntrySummary]


class VoteBody(BaseModel):
    support: bool = True


class VoteResult(_Open):
    proposal_id: int
    status: str
    logIndex: int

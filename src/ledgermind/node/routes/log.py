"""Public reads of the log and the registry: node facts, assets and lineage, entries, proofs, checkpoints,
anchors, and statements filtered by predicate type (alerts, decisions, receipts...)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request

from ledgermind.errors import NotFoundError
from ledgermind.log import leaf_hash
from ledgermind.node import models as m
from ledgermind.node.app import node_info, state_of
from ledgermind.node.reading import MAX_PAGE, read_entry, statements, store_of, summary
from ledgermind.node.workers import Worker
from ledgermind.statements import INFERENCE_RECEIPT

router = APIRouter()
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": m.Error}, 400: {"model": m.Error}, 503: {"model": m.Error}}


@router.get("/healthz", response_model=m.Health, tags=["node"])
async def health(request: Request) -> dict[str, Any]:
    state = state_of(request)
    size = await state.reads.run(lambda w: store_of(w.client).size())
    return {"ok": True, "node": state.origin, "logSize": size}


@router.get("/v1/node", response_model=m.NodeInfo, tags=["node"])
async def node(request: Request) -> dict[str, Any]:
    """The node's name, chain id, log key, limits, and what a signed request must carry."""
    state = state_of(request)
    size = await state.reads.run(lambda w: store_of(w.client).size())
    return {**node_info(state), "logSize": size}


# ---------------------------------------------------------------------- assets
@router.get("/v1/assets", response_model=m.AssetPage, tags=["assets"])
async def assets(request: Request, kind: Literal["dataset", "model"] | None = None, offset: int = Query(0, ge=0),
                 limit: int = Query(100, ge=1, le=MAX_PAGE)) -> dict[str, Any]:
    """Registered datasets and models, in log order."""
    rows = await state_of(request).reads.run(lambda w: w.client.assets(kind))
    return {"total": len(rows), "items": rows[offset: offset + limit]}


@router.get("/v1/assets/{ref}", response_model=m.AssetDetail, responses=ERRORS, tags=["assets"])
async def asset(request: Request, ref: str) -> dict[str, Any]:
    """An asset (by digest, unique digest prefix of 6+ hex, or name): its registration statement and every
    statement about it."""
    return await state_of(request).reads.run(lambda w: w.client.show(ref))


def _graph(tree: dict[str, Any]) -> dict[str, Any]:
    nodes: dict[str, dict[str, Any]] = {}
    edges: set[tuple[str, str, str]] = set()

    def walk(n: dict[str, Any]) -> None:
        if n["id"] not in nodes:
            nodes[n["id"]] = {"id": n["id"], "kind": n.get("kind"), "name": n.get("name"),
                              "logIndex": n.get("logIndex"), "signer": n.get("signer"),
                              "missing": bool(n.get("missing"))}
        for p in n.get("parents", []):
            edges.add((n["id"], p["id"], p["relation"]))
            walk(p)

    walk(tree)
    return {"root": tree["id"], "nodes": list(nodes.values()),
            "edges": [{"child": c, "parent": p, "relation": r} for c, p, r in sorted(edges)]}


@router.get("/v1/assets/{ref}/lineage", response_model=m.LineageGraph, responses=ERRORS, tags=["assets"])
async def lineage(request: Request, ref: str) -> dict[str, Any]:
    """The asset and everything it was trained on or derived from, as a graph (edges point child -> parent)."""
    return _graph(await state_of(request).reads.run(lambda w: w.client.lineage(ref)))


# ---------------------------------------------------------------------- log
@router.get("/v1/log", response_model=m.LogInfo, tags=["log"])
async def log_info(request: Request) -> dict[str, Any]:
    """Size, root, origin, verifier key and latest signed checkpoint of the log."""
    return await state_of(request).reads.run(lambda w: w.client.log_info())


@router.get("/v1/log/checkpoint", response_model=m.Checkpoint, responses=ERRORS, tags=["log"])
async def checkpoint(request: Request) -> dict[str, Any]:
    """The latest checkpoint the log signed (C2SP tlog-checkpoint signed note)."""
    def read(w: Worker) -> dict[str, Any]:
        cp = store_of(w.client).latest_checkpoint()
        if cp is None:
            raise NotFoundError("the log has not signed a checkpoint yet")
        return {"origin": cp.checkpoint.origin, "size": cp.size, "root": cp.root.hex(), "note": cp.note.decode()}

    return await state_of(request).reads.run(read)


@router.get("/v1/log/entries", response_model=m.EntryPage, tags=["log"])
async def entries(request: Request, start: int | None = Query(None, ge=0, le=2**62), limit: int = Query(100, ge=1, le=MAX_PAGE),
                  order: Literal["asc", "desc"] = "asc", statements: bool = False) -> dict[str, Any]:
    """A page of entries: from ``start`` up (``asc``, default from 0) or down (``desc``, default from the
    newest). ``statements=true`` includes each statement."""
    def read(w: Worker) -> dict[str, Any]:
        store = store_of(w.client)
        size = store.size()
        if order == "asc":
            first = start or 0
            indices = range(first, min(size, first + limit))
        else:
            first = size - 1 if start is None else min(start, size - 1)
            indices = range(first, max(-1, first - limit), -1)
        return {"size": size, "items": [summary(store, i, statements) for i in indices]}

    return await state_of(request).reads.run(read)


@router.get("/v1/log/entries/{index}", response_model=m.Entry, responses=ERRORS, tags=["log"])
async def entry(request: Request, index: int = Path(ge=0, le=2**62)) -> dict[str, Any]:
    """An entry: its statement and DSSE envelope (signature re-checked), and its inclusion proof against the latest
    checkpoint."""
    def read(w: Worker) -> dict[str, Any]:
        store = store_of(w.client)
        signer, statement, env = read_entry(store, index)
        cp = store.latest_checkpoint()
        if cp is None or index >= cp.size:
            raise NotFoundError(f"entry {index} is not covered by a signed checkpoint yet")
        hashes = store.inclusion_proof(index, cp.size)
        return {"logIndex": index, "signer": signer, "statement": statement, "envelope": env.to_json(),
                "inclusionProof": {"logIndex": index, "treeSize": cp.size, "leafHash": leaf_hash(env.to_bytes()).hex(),
                                   "rootHash": cp.root.hex(), "hashes": [h.hex() for h in hashes]},
                "checkpoint": cp.note.decode()}

    return await state_of(request).reads.run(read)


@router.get("/v1/log/proofs/inclusion", response_model=m.InclusionProof, responses=ERRORS, tags=["log"])
async def inclusion(request: Request, index: int = Query(ge=0, le=2**62), size: int | None = Query(None, ge=1, le=2**62)) -> dict[str, Any]:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries (default: the whole log)."""
    def read(w: Worker) -> dict[str, Any]:
        store = store_of(w.client)
        tree = store.size() if size is None else size
        hashes = store.inclusion_proof(index, tree)
        return {"logIndex": index, "treeSize": tree, "leafHash": leaf_hash(store.entry(index)).hex(),
                "rootHash": store.root(tree).hex(), "hashes": [h.hex() for h in hashes]}

    return await state_of(request).reads.run(read)


@router.get("/v1/log/proofs/consistency", response_model=m.ConsistencyProof, responses=ERRORS, tags=["log"])
async def consistency(request: Request, first: int = Query(ge=1, le=2**62),
                      second: int | None = Query(None, ge=1, le=2**62)) -> dict[str, Any]:
    """RFC 9162 consistency proof from the tree of ``first`` entries to the tree of ``second`` (default: the whole
    log)."""
    def read(w: Worker) -> dict[str, Any]:
        store = store_of(w.client)
        size2 = store.size() if second is None else second
        hashes = store.consistency_proof(first, size2)
        return {"first": first, "second": size2, "firstRoot": store.root(first).hex(),
                "secondRoot": store.root(size2).hex(), "hashes": [h.hex() for h in hashes]}

    return await state_of(request).reads.run(read)


@router.get("/v1/anchors", response_model=list[m.Anchor], tags=["log"])
async def anchors(request: Request) -> list[dict[str, Any]]:
    """Anchors of the log on chain: anchored (with transaction and block), queued (with the last error), superseded."""
    return await state_of(request).reads.run(lambda w: w.client.anchors())


# ---------------------------------------------------------------------- statements
@router.get("/v1/statements", response_model=list[m.EntrySummary], responses=ERRORS, tags=["statements"])
async def list_statements(
    request: Request,
    predicate: str | None = Query(None, max_length=200, description="Full URI or short form, e.g. alert/v1"),
    subject: str | None = Query(None, pattern="^[0-9a-f]{64}$", description="SHA-256 of the first subject"),
    signer: str | None = Query(None, pattern="^0x[0-9a-fA-F]{40}$"),
    start: int | None = Query(None, ge=0, le=2**62), limit: int = Query(100, ge=1, le=MAX_PAGE),
    order: Literal["asc", "desc"] = "asc",
) -> list[dict[str, Any]]:
    """Statements filtered by predicate type, subject and signer, with their content: e.g. guard alerts
    (``alert/v1``), oracle decisions, market sales (``market/v1``), inference receipts."""
    desc = order == "desc"
    first = (2**62 if desc else 0) if start is None else start
    return await state_of(request).reads.run(
        lambda w: statements(w.client, predicate=predicate, subject=subject, signer=signer, start=first,
                             limit=limit, descending=desc))


@router.get("/v1/receipts", response_model=list[m.EntrySummary], tags=["channels"])
async def receipts(request: Request, start: int = Query(0, ge=0, le=2**62), limit: int = Query(100, ge=1, le=MAX_PAGE)) -> list[dict[str, Any]]:
    """Inference receipts in this home's log (this node's own paid answers, as a provider)."""
    return await state_of(request).reads.run(
        lambda w: statements(w.client, predicate=INFERENCE_RECEIPT, start=start, limit=limit))


@router.get("/v1/channels", response_model=list[m.Channel], tags=["channels"])
async def channels(request: Request) -> list[dict[str, Any]]:
    """Payment channels that paid for receipts in this log: requests and amounts per channel."""
    def read(w: Worker) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        start = 0
        while page := statements(w.client, predicate=INFERENCE_RECEIPT, start=start, limit=MAX_PAGE):
            for s in page:
                p = s["statement"]["predicate"]
                if not p.get("channel"):
                    continue
                c = out.setdefault(p["channel"], {"channel": p["channel"], "provider": p["provider"], "receipts": 0,
                                                  "paid": 0, "firstLogIndex": s["logIndex"]})
                c["receipts"] += 1
                c["paid"] += int(p.get("price") or 0)
                c["lastLogIndex"] = s["logIndex"]
            start = page[-1]["logIndex"] + 1
        return [{**c, "paid": str(c["paid"])} for c in out.values()]

    return await state_of(request).reads.run(read)

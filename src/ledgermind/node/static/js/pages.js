// The explorer's pages. Each takes the route's parameters and returns the elements to show; app.js mounts them.

import {
  api, apiOr, assetLink, badge, entryLink, h, json, kv, link, money, predicateName, short, table, txLink, units, when,
} from "./ui.js";
import { barPlot, lineageGraph, linePlot } from "./svg.js";
import { recoverEnvelopeSigner, verifyEntry } from "./verify.js";
import { eventStatement, findSigner, loadSigningLibrary, signStatement, signedPost, throwawaySigner } from "./sign.js";

const PAGE = 50;

// ------------------------------------------------------------------------------------------- overview
export async function overview() {
  const [node, log, assets, anchors, listings, sales, tasks, gov, alerts, receipts, oracle] = await Promise.all([
    api("/v1/node"), api("/v1/log"), api("/v1/assets", { limit: 1 }), api("/v1/anchors"),
    apiOr([], "/v1/market/listings"), apiOr([], "/v1/market/sales", { limit: 500 }), apiOr([], "/v1/federations"),
    apiOr({ proposals: [] }, "/v1/governance"), api("/v1/statements", { predicate: "alert/v1", limit: 500 }),
    api("/v1/receipts", { limit: 500 }), api("/v1/statements", { predicate: "oracle/v1", limit: 500 }),
  ]);
  const anchored = anchors.filter((a) => a.status === "anchored").sort((a, b) => b.treeSize - a.treeSize);
  // lists are read one page of 500 deep here: a full page means "at least"
  const stat = (name, n, label, href) => h("a", { class: "stat", href, "data-stat": name },
    h("div", { class: "n" }, n >= 500 && name !== "entries" && name !== "assets" ? "500+" : String(n)),
    h("div", { class: "l" }, label));
  const latest = anchored[0];
  return [
    h("h1", {}, "Overview"),
    h("p", { class: "muted" }, `Node `, h("span", { class: "mono", "data-fact": "node" }, node.node),
      ` on chain ${node.chainId}, ledgermind ${node.version}.`),
    h("div", { class: "grid" },
      stat("entries", log.size, "log entries", "#/log"),
      stat("assets", assets.total, "assets", "#/assets"),
      stat("anchors", anchored.length, "anchored checkpoints", "#/anchors"),
      stat("listings", listings.length, "market listings", "#/market"),
      stat("sales", sales.length, "sales", "#/market"),
      stat("federations", tasks.length, "federated tasks", "#/federations"),
      stat("proposals", gov.proposals.length, "governance proposals", "#/governance"),
      stat("receipts", receipts.length, "inference receipts", "#/receipts"),
      stat("alerts", alerts.length, "guard alerts", "#/alerts"),
      stat("decisions", oracle.filter((s) => s.statement.predicate.action === "decision").length, "oracle decisions", "#/oracle")),
    h("h2", {}, "Latest checkpoint"),
    h("div", { class: "card", "data-fact": "checkpoint" }, log.checkpoint
      ? [kv([["tree size", String(log.size)], ["root", h("span", { class: "hash" }, log.root || "")],
        ["origin", log.origin]]), h("pre", {}, log.checkpoint)]
      : h("p", { class: "muted" }, "The log has not signed a checkpoint yet.")),
    h("h2", {}, "Latest anchor"),
    h("div", { class: "card", "data-fact": "anchor" }, latest
      ? kv([["tree size", String(latest.treeSize)], ["root", h("span", { class: "hash" }, latest.rootHash)],
        ["chain", String(latest.chainId)], ["transaction", txLink(latest.txHash)], ["block", String(latest.blockNumber)]])
      : h("p", { class: "muted" }, "Nothing anchored yet.")),
  ];
}

// ------------------------------------------------------------------------------------------- assets
export async function assets(_, query) {
  const offset = Number(query.get("offset") || 0), kind = query.get("kind") || undefined;
  const page = await api("/v1/assets", { offset, limit: PAGE, kind });
  const pick = h("select", { "aria-label": "kind", onchange: (e) => {
    location.hash = `#/assets${e.target.value ? "?kind=" + e.target.value : ""}`;
  } }, ["", "dataset", "model"].map((k) => h("option", { value: k, selected: k === (kind || "") }, k || "all kinds")));
  return [
    h("h1", {}, "Assets"),
    h("div", { class: "row" }, pick, h("span", { class: "muted" }, `${page.total} registered`)),
    h("p"),
    table([
      ["name", (a) => assetLink(a.id, a.name)],
      ["kind", (a) => badge(a.kind, a.kind)],
      ["id", (a) => h("span", { class: "mono", title: a.id }, short(a.id, 16))],
      ["entry", (a) => entryLink(a.logIndex)],
      ["signer", (a) => h("span", { class: "mono" }, short(a.signer, 12))],
      ["registered", (a) => when(a.registeredAt)],
    ], page.items, "No assets registered yet.", { "data-table": "assets" }),
    pager(offset, page.items.length, page.total, (o) => `#/assets?offset=${o}${kind ? "&kind=" + kind : ""}`),
  ];
}

function pager(offset, shown, total, href) {
  return h("div", { class: "row pager" },
    offset > 0 ? link(href(Math.max(0, offset - PAGE)), "← previous") : null,
    h("span", { class: "muted" }, total ? `${offset + 1}–${offset + shown} of ${total}` : ""),
    offset + shown < total ? link(href(offset + PAGE), "next →") : null);
}

/** Models whose registration names `id` as training data or parent model: the lineage one step forward. */
async function childrenOf(id) {
  const out = [];
  for (let start = 0; ;) {
    const page = await api("/v1/statements", { predicate: "model/v1", start, limit: 500 });
    for (const s of page) {
      const p = s.statement.predicate;
      const rel = (p.trainingDatasets || []).some((r) => r.digest === id) ? "trainedOn"
        : (p.parentModels || []).some((r) => r.digest === id) ? "derivedFrom" : null;
      if (rel) out.push({ id: s.subject.digest, name: s.subject.name, kind: "model", relation: rel });
    }
    if (page.length < 500) return out;
    start = page[page.length - 1].logIndex + 1;
  }
}

export async function asset([ref]) {
  const [a, graph] = await Promise.all([api(`/v1/assets/${ref}`), api(`/v1/assets/${ref}/lineage`)]);
  for (const c of await childrenOf(graph.root)) {
    if (!graph.nodes.some((n) => n.id === c.id)) graph.nodes.push({ id: c.id, name: c.name, kind: c.kind, missing: false });
    graph.edges.push({ child: c.id, parent: graph.root, relation: c.relation });
  }
  const p = a.statement.predicate || {};
  const metrics = p.metrics ? Object.entries(p.metrics).map(([k, v]) => `${k} ${v}`).join(", ") : "";
  return [
    h("h1", {}, h("span", { "data-fact": "asset-name" }, a.name), " ", badge(a.kind, a.kind)),
    h("div", { class: "card" }, kv([
      ["id", h("span", { class: "hash" }, a.id)], ["registered in", entryLink(a.logIndex)], ["signer", a.signer],
      ["licence", p.licence], ["source", p.source], ["framework", p.framework], ["metrics", metrics],
      ["rows", p.rows !== undefined ? String(p.rows) : ""],
    ])),
    h("h2", {}, "Lineage"),
    h("p", { class: "muted" }, "What this asset was trained on or derived from (to its left) and the models trained on or derived from it (to its right). Click a node to open it; drag to pan, scroll to zoom."),
    lineageGraph(graph, (id) => { location.hash = `#/assets/${id}`; }),
    h("h2", {}, "Statements about it"),
    table([
      ["entry", (s) => entryLink(s.logIndex)],
      ["type", (s) => predicateName(s.predicateType)],
      ["signer", (s) => h("span", { class: "mono" }, s.signer)],
    ], a.statements, "No statements about it yet."),
    h("h2", {}, "Registration statement"),
    json(a.statement),
  ];
}

// ------------------------------------------------------------------------------------------- log
export async function logPage(_, query) {
  const start = query.get("start") ?? undefined, type = query.get("type") || undefined;
  const [node, page] = await Promise.all([api("/v1/node"), api("/v1/log/entries", { order: "desc", limit: 1 })]);
  // with a type, the statements index pages through that type only; both list newest first from `start`
  const items = type
    ? await api("/v1/statements", { predicate: type, order: "desc", limit: PAGE, start })
    : (await api("/v1/log/entries", { order: "desc", limit: PAGE, start, statements: true })).items;
  // what the statement records, in a word: a market or federation action, an event's type, an alert's kind
  const what = (e) => { const p = (e.statement || {}).predicate || {}; return p.action || p.type || p.kind || ""; };
  const newest = items.length ? items[0].logIndex : 0, oldest = items.length ? items[items.length - 1].logIndex : 0;
  const href = (s) => `#/log?start=${s}${type ? "&type=" + type : ""}`;
  const pick = h("select", { id: "log-type", "aria-label": "statement type", onchange: (e) => {
    location.hash = `#/log${e.target.value ? "?type=" + e.target.value : ""}`;
  } }, ["", ...node.predicateTypes.map(predicateName)].map((t) => h("option", { value: t, selected: t === (type || "") }, t || "all types")));
  return [
    h("h1", {}, "Log"),
    h("p", { class: "muted" }, `${page.size} entries, newest first. Each is a signed in-toto statement in an RFC 9162 Merkle tree.`),
    h("div", { class: "row" }, pick),
    h("p"),
    table([
      ["#", (e) => entryLink(e.logIndex)],
      ["type", (e) => predicateName(e.predicateType)],
      ["what", what],
      ["subject", (e) => h("span", { title: e.subject.digest }, e.subject.name)],
      ["signer", (e) => h("span", { class: "mono" }, short(e.signer, 12))],
    ], items, type ? `No ${type} statements.` : "The log is empty.", { "data-table": "log" }),
    h("div", { class: "row pager" },
      !type && newest < page.size - 1 ? link(href(Math.min(page.size - 1, newest + PAGE)), "← newer") : null,
      start !== undefined && type ? link(`#/log?type=${type}`, "← newest") : null,
      oldest > 0 && items.length === PAGE ? link(href(oldest - 1), "older →") : null),
  ];
}

export async function entryPage([n]) {
  const entry = await api(`/v1/log/entries/${n}`);
  const st = entry.statement;
  const out = h("div", { id: "verify-result" });
  const show = (res, tampered) => {
    out.replaceChildren(h("div", { class: `result ${res.ok ? "ok" : "bad"}`, "data-verified": res.ok ? "true" : "false",
      "data-tampered": tampered ? "true" : "false" },
    h("strong", {}, res.ok ? "✓ Included: the proof leads to the anchored root." : `✗ Not verified: ${res.error}`),
    h("ol", {}, res.steps.map((s) => h("li", {}, s)))));
  };
  const run = (tamper) => async (e) => {
    e.target.disabled = true;
    out.replaceChildren(h("p", { class: "muted" }, "verifying…"));
    try {
      show(await verifyEntry(entry, { tamper }), tamper);
    } catch (err) {
      out.replaceChildren(h("p", { class: "error" }, String(err.message || err)));
    } finally {
      e.target.disabled = false;
    }
  };
  const sigCheck = h("span", { "data-fact": "signature" }, "…");
  loadSigningLibrary().then((lib) => recoverEnvelopeSigner(entry.envelope, lib)).then((who) => {
    const ok = who.toLowerCase() === entry.signer.toLowerCase();
    sigCheck.replaceChildren(badge(ok ? "signature verified in the browser" : `signature recovers ${who}`, ok ? "ok" : "bad"));
  }).catch((e) => sigCheck.replaceChildren(badge(`signature not checked: ${e.message}`, "warn")));
  const subject = (st.subject || [])[0] || {};
  return [
    h("h1", {}, `Entry #${entry.logIndex}`),
    h("div", { class: "card" }, kv([
      ["type", h("span", { "data-fact": "predicate" }, predicateName(st.predicateType))],
      ["subject", /attestations\/(dataset|model)\/v1$/.test(st.predicateType)
        ? assetLink((subject.digest || {}).sha256, subject.name)
        : h("span", {}, subject.name || "", " ", h("span", { class: "mono muted" }, short((subject.digest || {}).sha256, 16)))],
      ["signer", h("span", { class: "mono", "data-fact": "signer" }, entry.signer)],
      ["signature", sigCheck],
      ["transaction", txLink((st.predicate || {}).txHash)],
    ])),
    h("h2", {}, "Inclusion"),
    h("div", { class: "card" },
      h("p", {}, "The browser hashes this entry's envelope (RFC 9162 leaf hash, SHA-256), fetches an inclusion proof for the latest anchored checkpoint and recomputes that checkpoint's root with WebCrypto, then checks a consistency proof from the anchored tree to the latest signed checkpoint: nothing but the anchored root is taken on trust."),
      h("div", { class: "row" },
        h("button", { id: "verify", onclick: run(false) }, "Verify inclusion"),
        h("button", { id: "verify-tampered", class: "secondary", onclick: run(true) }, "Try a tampered proof")),
      out),
    h("h2", {}, "Statement"),
    json(st),
    h("h2", {}, "Envelope (DSSE)"),
    json(entry.envelope),
  ];
}

// ------------------------------------------------------------------------------------------- anchors, transactions
export async function anchorsPage() {
  const anchors = await api("/v1/anchors");
  anchors.sort((a, b) => b.treeSize - a.treeSize);
  return [
    h("h1", {}, "Anchors"),
    h("p", { class: "muted" }, "Checkpoints of the log whose root was written on chain. A verifier checks an entry's proof against one of these roots."),
    table([
      ["tree size", (a) => String(a.treeSize)],
      ["root", (a) => h("span", { class: "mono", title: a.rootHash }, short(a.rootHash, 16))],
      ["status", (a) => badge(a.status, a.status === "anchored" ? "ok" : a.status === "superseded" ? "" : "warn")],
      ["chain", (a) => String(a.chainId)],
      ["transaction", (a) => txLink(a.txHash)],
      ["block", (a) => (a.blockNumber ?? "") + ""],
      ["last error", (a) => a.lastError || ""],
    ], anchors, "Nothing anchored yet.", { "data-table": "anchors" }),
  ];
}

export async function txPage([hash]) {
  const [tx, anchors] = await Promise.all([apiOr(null, `/v1/chain/transactions/${hash}`), api("/v1/anchors")]);
  const anchor = anchors.find((a) => (a.txHash || "").toLowerCase() === hash.toLowerCase());
  return [
    h("h1", {}, "Transaction"),
    h("p", { class: "hash", "data-fact": "tx" }, hash),
    anchor ? h("div", { class: "card" }, h("h2", {}, "Anchors the log"), kv([
      ["tree size", String(anchor.treeSize)], ["root", h("span", { class: "hash" }, anchor.rootHash)],
      ["checkpoint hash", h("span", { class: "hash" }, anchor.checkpointHash || "")], ["contract", anchor.contract],
      ["status", anchor.status]])) : null,
    tx ? h("div", { class: "card", "data-fact": "chain-tx" }, h("h2", {}, "On chain"), kv([
      ["status", badge(tx.status === 1 ? "succeeded" : "reverted", tx.status === 1 ? "ok" : "bad")],
      ["chain", String(tx.chainId)], ["block", `${tx.blockNumber} (${short(tx.blockHash, 18)})`],
      ["from", h("span", { class: "mono" }, tx.from)], ["to", h("span", { class: "mono" }, tx.to || "(contract creation)")],
      ["created", tx.contractAddress ? h("span", { class: "mono" }, tx.contractAddress) : ""],
      ["value", money(tx.value)], ["nonce", String(tx.nonce)], ["gas used", String(tx.gasUsed)],
      ["events", String(tx.logs)]]))
      : h("p", { class: "muted" }, "The node's chain has no such mined transaction."),
  ];
}

// ------------------------------------------------------------------------------------------- market
function price(offer, field = "price") {
  return offer && offer[field] !== undefined ? money(offer[field], offer.token) : "";
}

export async function market() {
  const [listings, sales] = await Promise.all([apiOr([], "/v1/market/listings"), apiOr([], "/v1/market/sales", { limit: 500 })]);
  const sold = new Map();
  for (const s of sales) {
    const name = s.subject.name;
    sold.set(name, (sold.get(name) || 0) + 1);
  }
  return [
    h("h1", {}, "Market"),
    h("h2", {}, "Listings"),
    table([
      ["asset", (l) => assetLink(l.id, l.name)],
      ["kind", (l) => (l.kind ? badge(l.kind, l.kind) : "")],
      ["owner", (l) => h("span", { class: "mono" }, short(l.owner, 12))],
      ["access token", (l) => (l.access ? `${price(l.access)} each` : "")],
      ["licence", (l) => (l.licence ? `${price(l.licence)} / ${Math.round((l.licence.duration || 0) / 86400 * 10) / 10} d` : "")],
      ["the NFT", (l) => price(l.asset)],
      ["free", (l) => (l.dispenser ? "dispenser" : "")],
    ], listings, "Nothing on sale.", { "data-table": "listings" }),
    h("h2", {}, "Sales"),
    table([
      ["entry", (s) => entryLink(s.logIndex)],
      ["asset", (s) => assetLink(s.subject.digest, s.subject.name)],
      ["what", (s) => s.statement.predicate.action],
      ["buyer", (s) => h("span", { class: "mono" }, short(s.signer, 12))],
      ["paid", (s) => money(s.statement.predicate.price, s.statement.predicate.token)],
      ["quantity", (s) => s.statement.predicate.quantity || ""],
      ["transaction", (s) => txLink(s.statement.predicate.txHash)],
      ["time", (s) => when(s.statement.predicate.time)],
    ], sales, "No sales yet.", { "data-table": "sales" }),
    sold.size ? barPlot([...sold].map(([label, value]) => ({ label, value })), { title: "Sales per asset", id: "sales",
      format: (v) => String(v) }) : null,
  ];
}

// ------------------------------------------------------------------------------------------- federations
export async function federations() {
  const tasks = await apiOr([], "/v1/federations");
  return [
    h("h1", {}, "Federations"),
    h("p", { class: "muted" }, "Federated training tasks coordinated on chain: parties stake, commit and reveal updates each round, and are paid by contribution or slashed."),
    table([
      ["task", (t) => link(`#/federations/${t.task_id}`, `task ${t.task_id}`)],
      ["status", (t) => badge(t.status, t.status === "finished" ? "ok" : "")],
      ["round", (t) => `${t.round} of ${t.rounds}`],
      ["coordinator", (t) => h("span", { class: "mono" }, short(t.coordinator, 12))],
      ["reward pool", (t) => (t.reward_pool !== undefined ? units(t.reward_pool) : "")],
    ], tasks, "No federated tasks on this chain.", { "data-table": "federations" }),
  ];
}

export async function federation([id]) {
  const d = await api(`/v1/federations/${id}`);
  const statements = d.statements.map((s) => ({ ...s, p: s.statement.predicate }));
  const verdicts = statements.filter((s) => s.p.action === "round").sort((a, b) => a.p.round - b.p.round);
  const claims = statements.filter((s) => s.p.action === "claim");
  const names = new Map(d.participants.map((p, i) => [p.account.toLowerCase(), `party ${i + 1}`]));
  const who = (a) => names.get((a || "").toLowerCase()) || short(a, 10);
  // rewards per party: what each round paid it on chain (score share of the round's reward), from the
  // round statements' scores and the chain's per-round reward, else what the party could withdraw or claimed
  const rewards = new Map(d.participants.map((p) => [p.account, 0]));
  for (const v of verdicts) {
    const round = d.rounds.find((r) => r.round === v.p.round) || {};
    const paid = Number(units(round.rewarded ?? 0));
    const total = Object.values(v.p.scoresBps || {}).reduce((a, b) => a + b, 0);
    for (const [acct, bps] of Object.entries(v.p.scoresBps || {})) {
      const key = [...rewards.keys()].find((k) => k.toLowerCase() === acct.toLowerCase()) || acct;
      rewards.set(key, (rewards.get(key) || 0) + (total ? (paid * bps) / total : 0));
    }
  }
  const slashed = new Set(d.participants.filter((p) => p.state === "slashed").map((p) => p.account.toLowerCase()));
  const accuracy = verdicts.filter((v) => typeof v.p.validationAccuracy === "number")
    .map((v) => [v.p.round, v.p.validationAccuracy]);
  const scoreSeries = d.participants.map((p) => ({
    name: who(p.account),
    points: verdicts.filter((v) => v.p.scoresBps && p.account in v.p.scoresBps).map((v) => [v.p.round, v.p.scoresBps[p.account] / 100]),
  })).filter((s) => s.points.length);
  const t = d.task;
  return [
    h("h1", {}, `Federated task ${id} `, badge(t.status, t.status === "finished" ? "ok" : "")),
    h("div", { class: "card" }, kv(Object.entries(t).filter(([, v]) => typeof v !== "object")
      .map(([k, v]) => [k.replace(/_/g, " "), /pool|stake|reward/.test(k) ? units(v) : String(v)]))),
    h("div", { class: "plots" },
      accuracy.length ? linePlot([{ name: "validation accuracy", points: accuracy }], { title: "Accuracy per round",
        xLabel: "round", yLabel: "validation accuracy", yMin: 0, yMax: 1, id: "accuracy" }) : null,
      rewards.size ? barPlot([...rewards].map(([acct, value]) => ({ label: who(acct), value,
        color: slashed.has(acct.toLowerCase()) ? "#c2261d" : "#18794e", note: slashed.has(acct.toLowerCase()) ? "slashed" : "" })),
      { title: "Rewards per party (token)", id: "rewards", format: (v) => v.toFixed(2) }) : null,
      scoreSeries.length ? linePlot(scoreSeries, { title: "Contribution score per round (%)", xLabel: "round",
        yLabel: "score %", yMin: 0, id: "scores" }) : null),
    h("h2", {}, "Parties"),
    table([
      ["party", (p) => who(p.account)],
      ["account", (p) => h("span", { class: "mono" }, p.account)],
      ["stake", (p) => units(p.stake)],
      ["state", (p) => badge(p.state, p.state === "slashed" ? "bad" : p.state === "active" ? "ok" : "")],
      ["owed now", (p) => units(p.withdrawable)],
      ["claimed", (p) => units(claims.filter((c) => c.signer.toLowerCase() === p.account.toLowerCase())
        .reduce((sum, c) => sum + BigInt(c.p.amount || 0), 0n).toString())],
    ], d.participants, "Nobody joined.", { "data-table": "parties" }),
    h("h2", {}, "Rounds"),
    table([
      ["round", (v) => String(v.p.round)],
      ["accuracy", (v) => (typeof v.p.validationAccuracy === "number" ? v.p.validationAccuracy.toFixed(3) : "")],
      ["aggregator", (v) => v.p.aggregator || ""],
      ["scores", (v) => Object.entries(v.p.scoresBps || {}).map(([a, s]) => `${who(a)} ${(s / 100).toFixed(1)}%`).join(", ")],
      ["flagged / slashed", (v) => Object.entries(v.p.flags || {}).map(([a, why]) => h("div", {}, badge(who(a), "bad"), " ", why))],
      ["rewarded", (v) => units((d.rounds.find((r) => r.round === v.p.round) || {}).rewarded ?? "")],
      ["slashed", (v) => units((d.rounds.find((r) => r.round === v.p.round) || {}).slashed ?? "")],
      ["statement", (v) => entryLink(v.logIndex)],
    ], verdicts, "No round finished yet.", { "data-table": "rounds" }),
    h("h2", {}, "Statements"),
    table([
      ["entry", (s) => entryLink(s.logIndex)],
      ["action", (s) => s.p.action],
      ["round", (s) => (s.p.round ? String(s.p.round) : "")],
      ["by", (s) => who(s.signer)],
    ], statements, "None."),
  ];
}

// ------------------------------------------------------------------------------------------- receipts, alerts, oracle
export async function receiptsPage() {
  const [receipts, channels] = await Promise.all([api("/v1/receipts", { limit: 500 }), api("/v1/channels")]);
  return [
    h("h1", {}, "Inference receipts"),
    h("p", { class: "muted" }, "Each paid or licensed answer of a model is a signed receipt in the log: which model, digests of input and output, who paid and how."),
    table([
      ["entry", (r) => entryLink(r.logIndex)],
      ["model", (r) => assetLink(r.statement.predicate.model.digest, r.statement.predicate.model.name)],
      ["provider", (r) => h("span", { class: "mono" }, short(r.statement.predicate.provider, 12))],
      ["price", (r) => money(r.statement.predicate.price, r.statement.predicate.token)],
      ["paid by", (r) => (r.statement.predicate.channel ? "channel voucher" : "access or licence")],
      ["time", (r) => when(r.statement.predicate.time)],
    ], receipts, "No inference receipts in this log.", { "data-table": "receipts" }),
    h("h2", {}, "Payment channels"),
    table([
      ["channel", (c) => h("span", { class: "mono" }, short(c.channel, 18))],
      ["provider", (c) => h("span", { class: "mono" }, short(c.provider, 12))],
      ["receipts", (c) => String(c.receipts)],
      ["paid", (c) => money(c.paid)],
    ], channels, "No channel paid for a receipt here."),
  ];
}

export async function alertsPage() {
  const alerts = await api("/v1/statements", { predicate: "alert/v1", limit: 500 });
  const byKind = new Map();
  for (const a of alerts) {
    const p = a.statement.predicate;
    if (!byKind.has(p.kind)) byKind.set(p.kind, []);
    byKind.get(p.kind).push([a.logIndex, p.score, p.case]);
  }
  const thresholds = new Set(alerts.map((a) => a.statement.predicate.threshold));
  return [
    h("h1", {}, "Guard alerts"),
    h("p", { class: "muted" }, "Signed findings of the guard about on-chain activity (alert/v1): a score against its threshold, the evidence transactions, and the detector that raised it."),
    alerts.length ? linePlot([...byKind].map(([name, points]) => ({ name, points })), { title: "Alert scores",
      xLabel: "log entry", yLabel: "score", yMin: 0, pointsOnly: true, id: "alert-scores",
      threshold: thresholds.size === 1 ? [...thresholds][0] : undefined }) : null,
    table([
      ["entry", (a) => entryLink(a.logIndex)],
      ["kind", (a) => a.statement.predicate.kind],
      ["case", (a) => a.statement.predicate.case],
      ["score", (a) => badge(`${a.statement.predicate.score} / ${a.statement.predicate.threshold}`,
        a.statement.predicate.score >= a.statement.predicate.threshold ? "bad" : "")],
      ["summary", (a) => a.statement.predicate.summary],
      ["subjects", (a) => a.statement.predicate.subjects.map((s) => h("div", { class: "mono" }, short(s, 12)))],
      ["evidence", (a) => (a.statement.predicate.evidence || []).slice(0, 3).map((t) => h("div", {}, txLink(t)))],
      ["detector", (a) => `${a.statement.predicate.detector.name} ${a.statement.predicate.detector.version}`],
    ], alerts, "No guard alerts in this log.", { "data-table": "alerts" }),
  ];
}

export async function oraclePage() {
  const [found, assets] = await Promise.all([api("/v1/statements", { predicate: "oracle/v1", limit: 500 }),
    api("/v1/assets", { kind: "model", limit: 500 })]);
  const steps = found.map((s) => ({ ...s, p: s.statement.predicate }));
  const decisions = steps.filter((s) => s.p.action === "decision" || s.p.action === "resolution");
  const names = new Map(assets.items.map((a) => [a.id, a.name]));
  const answer = (d) => (d === undefined || d === null ? "" : String(d));
  return [
    h("h1", {}, "Oracle decisions"),
    h("p", { class: "muted" }, "Answers of the AI oracle (oracle/v1): each request's input is in the log, so anyone can re-run the registered model; a disputed answer is re-run by the resolver, and overturned answers are slashed."),
    table([
      ["entry", (d) => entryLink(d.logIndex)],
      ["request", (d) => (d.p.requestId ? String(d.p.requestId) : "")],
      ["step", (d) => d.p.action],
      ["model", (d) => (d.p.model ? assetLink(d.p.model, names.get(d.p.model)) : "")],
      ["decision", (d) => answer(d.p.decision)],
      ["output", (d) => h("span", { class: "mono", title: d.p.output || "" }, short(d.p.output, 12))],
      ["overturned", (d) => (d.p.overturned === undefined || d.p.overturned === null ? "" : d.p.overturned ? badge("overturned", "bad") : badge("upheld", "ok"))],
      ["by", (d) => h("span", { class: "mono" }, short(d.signer, 12))],
      ["transaction", (d) => txLink(d.p.txHash)],
    ], decisions, "No oracle decisions in this log.", { "data-table": "oracle" }),
    h("h2", {}, "Every oracle step"),
    table([
      ["entry", (s) => entryLink(s.logIndex)],
      ["action", (s) => s.p.action],
      ["request", (s) => (s.p.requestId ? String(s.p.requestId) : "")],
      ["by", (s) => h("span", { class: "mono" }, short(s.signer, 12))],
      ["transaction", (s) => txLink(s.p.txHash)],
      ["time", (s) => when(s.p.time)],
    ], steps, "None."),
  ];
}

// ------------------------------------------------------------------------------------------- governance
export async function governance() {
  const g = await apiOr(null, "/v1/governance");
  if (!g) return [h("h1", {}, "Governance"), h("p", { class: "muted" }, "No Governance contract on this chain.")];
  const status = h("div", { id: "vote-result" });
  const vote = (id, support) => async (e) => {
    e.target.disabled = true;
    try {
      const { signer, source } = await signerOrExplain(status);
      if (!signer) return;
      const res = await signedPost(signer, await api("/v1/node"), `/v1/governance/proposals/${id}/votes`, { support });
      status.replaceChildren(h("div", { class: `result ${res.status === 200 ? "ok" : "bad"}`, "data-status": String(res.status) },
        res.status === 200 ? [`Vote recorded by ${source}: proposal ${id} is ${res.body.status}; statement `, entryLink(res.body.logIndex)]
          : `Refused (${res.status}): ${res.body.error}`));
    } finally {
      e.target.disabled = false;
    }
  };
  return [
    h("h1", {}, "Governance"),
    h("div", { class: "card" }, kv([
      ["contract", h("span", { class: "mono" }, g.contract)], ["chain", String(g.chainId)],
      ["quorum", g.quorum !== undefined ? String(g.quorum) : ""], ["timelock", g.timelock !== undefined ? `${g.timelock} s` : ""],
      ["voting period", g.votingPeriod !== undefined ? `${g.votingPeriod} s` : ""],
      ["marketplace gate", g.marketplaceGate === undefined ? "" : g.marketplaceGate ? "on: unapproved lineage cannot be sold" : "off"],
    ])),
    h("h2", {}, "Proposals"),
    table([
      ["#", (p) => link(`#/governance/${p.proposal_id}`, String(p.proposal_id))],
      ["decision", (p) => p.action],
      ["asset", (p) => assetLink(p.target)],
      ["votes", (p) => `${p.yes} yes / ${p.no} no`],
      ["status", (p) => badge(p.status, p.status === "executed" || p.status === "passed" ? "ok" : p.status === "rejected" ? "bad" : "")],
      ["deadline", (p) => (p.deadline ? when(p.deadline) : "")],
      ["vote", (p) => (p.status === "open" || p.status === "active"
        ? h("span", { class: "row" }, h("button", { class: "vote-yes", onclick: vote(p.proposal_id, true) }, "yes"),
          h("button", { class: "secondary", onclick: vote(p.proposal_id, false) }, "no")) : "")],
    ], g.proposals, "No proposals yet.", { "data-table": "proposals" }),
    status,
    h("p", { class: "muted" }, "A vote is a transaction from the member's account: the node sends it for members whose key it holds, once the member has signed the request."),
  ];
}

export async function proposal([id]) {
  const d = await api(`/v1/governance/proposals/${id}`);
  const p = d.proposal;
  return [
    h("h1", {}, `Proposal ${id} `, badge(p.status)),
    h("div", { class: "card" }, kv([["decision", p.action], ["asset", assetLink(p.target)], ["proposer", p.proposer],
      ["votes", `${p.yes} yes / ${p.no} no`], ["deadline", p.deadline ? when(p.deadline) : ""], ["executed", String(!!p.executed)]])),
    h("h2", {}, "Statements"),
    table([
      ["entry", (s) => entryLink(s.logIndex)],
      ["action", (s) => s.statement.predicate.action],
      ["by", (s) => h("span", { class: "mono" }, s.signer)],
      ["support", (s) => (s.statement.predicate.support === undefined ? "" : s.statement.predicate.support ? "yes" : "no")],
      ["transaction", (s) => txLink(s.statement.predicate.txHash)],
    ], d.statements, "None.", { "data-table": "proposal-statements" }),
  ];
}

// ------------------------------------------------------------------------------------------- signing
let pageSigner = null; // {signer, source}: kept for this page's life only, never stored

async function signerOrExplain(where) {
  if (!pageSigner || !pageSigner.signer) pageSigner = await findSigner();
  if (!pageSigner.signer) {
    where.replaceChildren(h("p", { class: "error" }, "No wallet in this browser: open the Submit page to use a throwaway key."));
  }
  return pageSigner;
}

export async function submit() {
  await loadSigningLibrary();
  if (!pageSigner || !pageSigner.signer) pageSigner = await findSigner();
  const who = h("div", { "data-fact": "signer" });
  const showSigner = async () => {
    who.replaceChildren(pageSigner.signer
      ? kv([["signer", h("span", { class: "mono", "data-address": await pageSigner.signer.getAddress() }, await pageSigner.signer.getAddress())],
        ["with", pageSigner.source]])
      : h("div", { class: "row" }, h("span", { class: "muted" }, "No wallet found."),
        h("button", { class: "secondary", onclick: async () => { pageSigner = await throwawaySigner(); showSigner(); } },
          "Use a throwaway key")));
  };
  await showSigner();
  const domain = h("input", { id: "ev-domain", value: "supply-chain", "aria-label": "domain" });
  const type = h("input", { id: "ev-type", value: "inspected", "aria-label": "type" });
  const data = h("textarea", { id: "ev-data", rows: 4, "aria-label": "data" }, '{"site": "Rotterdam", "ok": true}');
  const out = h("div", { id: "submit-result" });
  const send = async (e) => {
    e.target.disabled = true;
    out.replaceChildren(h("p", { class: "muted" }, "signing…"));
    try {
      if (!pageSigner.signer) throw new Error("no signer: connect a wallet or use a throwaway key");
      let parsed;
      try { parsed = JSON.parse(data.value || "{}"); } catch (err) { throw new Error(`data is not JSON: ${err.message}`); }
      const statement = await eventStatement(domain.value.trim(), type.value.trim(), parsed);
      const envelope = await signStatement(pageSigner.signer, statement);
      const res = await signedPost(pageSigner.signer, await api("/v1/node"), "/v1/statements", { envelope });
      out.replaceChildren(h("div", { class: `result ${res.status === 200 ? "ok" : "bad"}`, "data-status": String(res.status),
        "data-log-index": res.status === 200 ? String(res.body.logIndex) : null },
      res.status === 200 ? ["✓ Appended as entry ", entryLink(res.body.logIndex), ` (${predicateName(res.body.predicateType)}, signed by ${res.body.signer}).`]
        : `✗ Refused (${res.status}): ${res.body.error}`),
      h("h2", {}, "What was signed"), h("p", { class: "muted" }, "The statement (EIP-191 over its DSSE encoding):"), json(statement),
      h("p", { class: "muted" }, "The request (EIP-712 typed data):"), json(res.typedData));
    } catch (err) {
      out.replaceChildren(h("p", { class: "error" }, String(err.message || err)));
    } finally {
      e.target.disabled = false;
    }
  };
  return [
    h("h1", {}, "Submit a signed statement"),
    h("div", { class: "notice" }, "A real deployment signs with the user's wallet (window.ethereum): the key never reaches this page. ",
      "Without a wallet, a dev key given to the page by a test harness, or a throwaway key made here, signs in this tab's memory — test keys only, never a real one."),
    h("div", { class: "card" }, who),
    h("div", { class: "card" },
      h("p", {}, "Record a domain event (event/v1). The statement is signed in the browser, and the request that submits it carries an EIP-712 signature with a single-use nonce and an expiry."),
      h("div", { class: "row" }, h("label", {}, "domain ", domain), h("label", {}, "type ", type)),
      h("p", {}, h("label", {}, "data (JSON)", data)),
      h("button", { id: "sign-submit", onclick: send }, "Sign and submit")),
    out,
  ];
}

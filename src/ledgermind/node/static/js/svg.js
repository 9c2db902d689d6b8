// Hand-written SVG: line and bar plots, and the interactive lineage graph. No library, no network.

const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#2456c7", "#c2261d", "#18794e", "#a15c00", "#6a4fc2", "#0f7d8c", "#b0307a", "#55627a"];

export function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  for (const c of [].concat(children)) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return node;
}

/** Round tick values spanning [lo, hi]: about `count` of them at 1, 2 or 5 times a power of ten. */
function ticks(lo, hi, count = 5) {
  if (hi === lo) { hi = lo + 1; }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toFixed(12));
  if (!out.length || out[out.length - 1] < hi) out.push(+((out.length ? out[out.length - 1] : lo) + step).toFixed(12));
  return out;
}

function fmt(v) {
  return Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : String(+v.toFixed(3));
}

/**
 * A line plot of several series, each {name, points: [[x, y], ...]}. Options: title, xLabel, yLabel,
 * yMin/yMax (fixed range), threshold (a dashed horizontal line, e.g. an alert threshold), id.
 */
export function linePlot(series, opts = {}) {
  const W = 560, H = 300, L = 56, R = 16, T = 34, B = 46;
  const pts = series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  if (opts.threshold !== undefined) ys.push(opts.threshold);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const y0 = opts.yMin ?? Math.min(...ys), y1 = opts.yMax ?? Math.max(...ys);
  const xt = ticks(x0, x1 === x0 ? x0 + 1 : x1, Math.min(8, Math.max(1, x1 - x0)));
  const yt = ticks(y0, y1);
  const xa = xt[0], xb = Math.max(xt[xt.length - 1], x1), ya = Math.min(yt[0], y0), yb = Math.max(yt[yt.length - 1], y1);
  const PAD = 14; // keep the first and last points off the axes
  const X = (x) => L + PAD + ((x - xa) / (xb - xa || 1)) * (W - L - R - 2 * PAD);
  const Y = (y) => H - B - ((y - ya) / (yb - ya || 1)) * (H - T - B);
  const root = svg("svg", { class: "plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": opts.title || "plot", "data-plot": opts.id || "" });
  root.append(svg("text", { x: L, y: 20, "font-size": 14, "font-weight": 600 }, opts.title || ""));
  for (const t of yt) {
    root.append(svg("line", { x1: L, x2: W - R, y1: Y(t), y2: Y(t), stroke: "#e6e9ef" }));
    root.append(svg("text", { x: L - 6, y: Y(t) + 4, "font-size": 11, "text-anchor": "end", fill: "#5d6678" }, fmt(t)));
  }
  for (const t of xt) {
    root.append(svg("text", { x: X(t), y: H - B + 16, "font-size": 11, "text-anchor": "middle", fill: "#5d6678" }, fmt(t)));
  }
  root.append(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#98a1b3" }));
  root.append(svg("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#98a1b3" }));
  if (opts.xLabel) root.append(svg("text", { x: (L + W - R) / 2, y: H - 8, "font-size": 12, "text-anchor": "middle" }, opts.xLabel));
  if (opts.yLabel) root.append(svg("text", { x: 14, y: (T + H - B) / 2, "font-size": 12, "text-anchor": "middle",
    transform: `rotate(-90 14 ${(T + H - B) / 2})` }, opts.yLabel));
  if (opts.threshold !== undefined) {
    root.append(svg("line", { x1: L, x2: W - R, y1: Y(opts.threshold), y2: Y(opts.threshold), stroke: "#c2261d",
      "stroke-dasharray": "5 4" }));
    root.append(svg("text", { x: W - R, y: Y(opts.threshold) - 5, "font-size": 11, "text-anchor": "end", fill: "#c2261d" },
      `threshold ${fmt(opts.threshold)}`));
  }
  series.forEach((s, i) => {
    const color = s.color || PALETTE[i % PALETTE.length];
    const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
    if (sorted.length > 1 && !opts.pointsOnly) {
      root.append(svg("polyline", { points: sorted.map(([x, y]) => `${X(x)},${Y(y)}`).join(" "), fill: "none",
        stroke: color, "stroke-width": 2 }));
    }
    for (const [x, y, label] of sorted) {
      root.append(svg("circle", { cx: X(x), cy: Y(y), r: 4, fill: color },
        svg("title", {}, `${s.name}: ${label ? label + " " : ""}(${fmt(x)}, ${fmt(y)})`)));
    }
  });
  if (series.length > 1) { // the legend runs right to left along the title line, clear of the data
    let x = W - R;
    series.forEach((s, i) => {
      const label = svg("text", { y: 20, "font-size": 11, "text-anchor": "end", x }, s.name);
      x -= s.name.length * 6.5 + 2;
      root.append(label, svg("rect", { x: x - 10, y: 11, width: 10, height: 10, fill: s.color || PALETTE[i % PALETTE.length] }));
      x -= 22;
    });
  }
  return root;
}

/** Horizontal bars, one per {label, value, color?, note?}. Options: title, format(value) -> string, id. */
export function barPlot(items, opts = {}) {
  const W = 560, rowH = 26, L = 150, R = 90, T = 34;
  const H = T + items.length * rowH + 12;
  const max = Math.max(...items.map((d) => d.value), 0) || 1;
  const format = opts.format || fmt;
  const root = svg("svg", { class: "plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": opts.title || "plot", "data-plot": opts.id || "" });
  root.append(svg("text", { x: 8, y: 20, "font-size": 14, "font-weight": 600 }, opts.title || ""));
  items.forEach((d, i) => {
    const y = T + i * rowH;
    const w = (Math.max(d.value, 0) / max) * (W - L - R);
    root.append(svg("text", { x: L - 8, y: y + 16, "font-size": 12, "text-anchor": "end" }, d.label));
    root.append(svg("rect", { x: L, y: y + 4, width: Math.max(w, 1), height: rowH - 8, rx: 3,
      fill: d.color || PALETTE[0] }, svg("title", {}, `${d.label}: ${format(d.value)}${d.note ? " — " + d.note : ""}`)));
    root.append(svg("text", { x: L + w + 6, y: y + 16, "font-size": 12 }, format(d.value) + (d.note ? " " + d.note : "")));
  });
  return root;
}

/**
 * The lineage graph of an asset: what it was trained on or derived from to its left, layer by layer, and the
 * models made from it (edges whose parent is the root) one layer to its right. `graph` is GET /v1/assets/{id}/lineage: {root, nodes: [{id, kind, name, missing}],
 * edges: [{child, parent, relation}]}. A click on a node calls onOpen(id). Drag pans, the wheel zooms.
 */
export function lineageGraph(graph, onOpen) {
  const nodes = new Map(graph.nodes.map((n) => [n.id, { ...n, kind: n.kind || "unknown",
    name: n.name || n.id.slice(0, 12), depth: n.id === graph.root ? 0 : -Infinity }]));
  const edges = graph.edges.map((e) => [e.parent, e.child, e.relation]);
  // a node's layer is its longest distance back from the root, so every edge points rightwards; models made
  // from the root (edges into it from a node without a depth yet) sit one layer to its right
  for (let changed = true, guard = 0; changed && guard <= nodes.size; guard++) {
    changed = false;
    for (const [parent, child] of edges) {
      const c = nodes.get(child), p = nodes.get(parent);
      if (c && p && c.depth >= 0 && p.depth < c.depth + 1) { p.depth = c.depth + 1; changed = true; }
    }
  }
  for (const [parent, child] of edges) {
    if (parent === graph.root && nodes.get(child).depth === -Infinity) nodes.get(child).depth = -1;
  }
  for (const n of nodes.values()) if (n.depth === -Infinity) n.depth = 0; // not linked to the root: shown beside it
  const depthMax = Math.max(...[...nodes.values()].map((n) => n.depth));
  const layers = [];
  for (const n of nodes.values()) (layers[depthMax - n.depth] ||= []).push(n);
  const NW = 170, NH = 44, GX = 90, GY = 22;
  const tallest = Math.max(...layers.map((l) => l.length));
  const W = layers.length * (NW + GX) + GX, H = tallest * (NH + GY) + GY;
  layers.forEach((layer, li) => {
    layer.sort((a, b) => a.name.localeCompare(b.name));
    const offset = (H - layer.length * (NH + GY) + GY) / 2;
    layer.forEach((n, i) => { n.x = GX / 2 + li * (NW + GX); n.y = offset + i * (NH + GY); });
  });
  const root = svg("svg", { class: "graph", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "lineage graph",
    "data-graph": "lineage" });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#98a1b3" }))));
  const view = svg("g", { class: "view" });
  root.append(view);
  for (const [from, to, relation] of edges) {
    const a = nodes.get(from), b = nodes.get(to);
    const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2, mx = (x1 + x2) / 2;
    view.append(svg("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, fill: "none", stroke: "#98a1b3",
      "stroke-width": 1.6, "marker-end": "url(#arrow)" }, svg("title", {}, relation)));
  }
  for (const n of nodes.values()) {
    const color = n.kind === "dataset" ? "#2f8f6f" : n.kind === "model" ? "#6a4fc2" : "#98a1b3";
    const g = svg("g", { class: "node", transform: `translate(${n.x},${n.y})`, "data-id": n.id, tabindex: 0,
      role: "link", "aria-label": `${n.kind} ${n.name}` }, [
      svg("rect", { width: NW, height: NH, rx: 7, fill: n.id === graph.root ? "#eef3ff" : "#fff", stroke: color,
        "stroke-width": 2, "stroke-dasharray": n.missing ? "4 3" : null }),
      svg("text", { x: 10, y: 18, "font-size": 13, "font-weight": 600 }, n.name.length > 20 ? n.name.slice(0, 19) + "…" : n.name),
      svg("text", { x: 10, y: 35, "font-size": 11, fill: color }, `${n.missing ? "not registered" : n.kind} · ${n.id.slice(0, 10)}`),
      svg("title", {}, `${n.name}\n${n.id}`),
    ]);
    if (!n.missing) {
      g.addEventListener("click", () => onOpen(n.id));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter") onOpen(n.id); });
    }
    view.append(g);
  }
  panZoom(root, view);
  return root;
}

function panZoom(root, view) {
  let scale = 1, tx = 0, ty = 0, drag = null;
  const apply = () => view.setAttribute("transform", `translate(${tx},${ty}) scale(${scale})`);
  const local = (e) => {
    const p = root.createSVGPoint();
    p.x = e.clientX; p.y = e.clientY;
    return p.matrixTransform(root.getScreenCTM().inverse());
  };
  root.addEventListener("wheel", (e) => {
    e.preventDefault();
    const p = local(e), k = e.deltaY < 0 ? 1.15 : 1 / 1.15;
    const next = Math.min(4, Math.max(0.25, scale * k));
    tx = p.x - ((p.x - tx) * next) / scale; ty = p.y - ((p.y - ty) * next) / scale; scale = next;
    apply();
  }, { passive: false });
  root.addEventListener("pointerdown", (e) => {
    if (e.target.closest("g.node")) return; // a press on a node is a click, not a drag
    drag = { p: local(e), tx, ty };
    root.setPointerCapture(e.pointerId);
  });
  root.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const p = local(e);
    tx = drag.tx + p.x - drag.p.x; ty = drag.ty + p.y - drag.p.y;
    apply();
  });
  root.addEventListener("pointerup", () => { drag = null; });
}

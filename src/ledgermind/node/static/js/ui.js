// Small DOM, formatting and API helpers shared by the explorer's pages.

/** h("div", {class: "x", onclick: f}, child, ...) -> an HTML element; children may be strings, nodes, arrays. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET a JSON route of the node (absolute /v1/... path). Throws ApiError with the node's one-line error. */
export async function api(path, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null));
  const url = path + (q.toString() ? `?${q}` : "");
  const resp = await fetch(url, { headers: { Accept: "application/json" } });
  let body;
  try { body = await resp.json(); } catch { body = null; }
  if (!resp.ok) throw new ApiError(resp.status, (body && body.error) || `${url}: HTTP ${resp.status}`);
  return body;
}

/** Like api(), but a 404 or 503 (no such thing, or its contract is not on this chain) yields `fallback`. */
export async function apiOr(fallback, path, params) {
  try {
    return await api(path, params);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 503)) return fallback;
    throw e;
  }
}

export const short = (s, n = 10) => (s && s.length > n + 2 ? `${s.slice(0, n)}…` : s || "");

/** The part of a predicate type URI after the namespace: "market/v1". */
export const predicateName = (t) => (t || "").replace("https://ledgermind.dev/attestations/", "");

/** A decimal amount in the smallest unit (18 decimals) as a short human number: "0.01", "300". */
export function units(value, decimals = 18) {
  if (value === null || value === undefined || value === "") return "";
  let v;
  try { v = BigInt(value); } catch { return String(value); }
  const neg = v < 0n;
  if (neg) v = -v;
  const base = 10n ** BigInt(decimals);
  const whole = v / base, frac = (v % base).toString().padStart(decimals, "0").slice(0, 6).replace(/0+$/, "");
  if (v > 0n && whole === 0n && !frac) return `${neg ? "-" : ""}<0.000001`; // not zero: too small for six places
  return `${neg ? "-" : ""}${whole}${frac ? "." + frac : ""}`;
}

/** Amount with its unit: the native coin for the zero address or no token, else the token's short address. */
export function money(value, token) {
  const native = !token || /^0x0{40}$/i.test(token);
  let v;
  try { v = BigInt(value ?? 0); } catch { return String(value); }
  // below a millionth of a coin, gwei (10^-9) reads better than a row of zeros
  if (native && v > 0n && v < 10n ** 12n) return `${units(value, 9)} gwei`;
  return `${units(value)} ${native ? "ETH" : "token"}`;
}

export function when(iso) {
  if (!iso) return "";
  const d = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  return isNaN(d) ? String(iso) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export const link = (href, text, attrs = {}) => h("a", { href, ...attrs }, text);
export const assetLink = (id, name) => link(`#/assets/${id}`, name || short(id, 12), { class: "mono" });
export const entryLink = (n) => link(`#/log/${n}`, `#${n}`);
export const txLink = (tx) => (tx ? link(`#/tx/${tx}`, short(tx, 14), { class: "mono", title: tx }) : "");
export const badge = (text, cls = "") => h("span", { class: `badge ${cls}` }, text);

/** A table: columns [[header, row => cell]], rows; `empty` says what it means to have none. */
export function table(columns, rows, empty = "none yet", attrs = {}) {
  if (!rows.length) return h("p", { class: "muted", "data-empty": "1" }, empty);
  return h("table", attrs,
    h("thead", {}, h("tr", {}, columns.map(([name]) => h("th", {}, name)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(r)))))));
}

export function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export const json = (obj) => h("pre", { class: "json" }, JSON.stringify(obj, null, 2));

// The explorer's router: hash routes (#/assets/ID) so any static server can serve it; each route renders a page
// into <main>, marking it data-page and, once its data is in, data-ready (what tests and screen readers wait for).

import * as pages from "./pages.js";
import { h } from "./ui.js";

const ROUTES = [
  [/^\/$/, "overview", pages.overview],
  [/^\/assets$/, "assets", pages.assets],
  [/^\/assets\/([^/]+)$/, "asset", pages.asset],
  [/^\/log$/, "log", pages.logPage],
  [/^\/log\/(\d+)$/, "entry", pages.entryPage],
  [/^\/anchors$/, "anchors", pages.anchorsPage],
  [/^\/tx\/(0x[0-9a-fA-F]{64})$/, "tx", pages.txPage],
  [/^\/market$/, "market", pages.market],
  [/^\/federations$/, "federations", pages.federations],
  [/^\/federations\/(\d+)$/, "federation", pages.federation],
  [/^\/receipts$/, "receipts", pages.receiptsPage],
  [/^\/alerts$/, "alerts", pages.alertsPage],
  [/^\/oracle$/, "oracle", pages.oraclePage],
  [/^\/governance$/, "governance", pages.governance],
  [/^\/governance\/(\d+)$/, "proposal", pages.proposal],
  [/^\/submit$/, "submit", pages.submit],
];

let rendering = 0;

async function render() {
  const main = document.getElementById("app");
  const [path, search = ""] = (location.hash.slice(1) || "/").split("?");
  const query = new URLSearchParams(search);
  const match = ROUTES.map(([re, name, page]) => [path.match(re), name, page]).find(([m]) => m);
  const ticket = ++rendering;
  main.removeAttribute("data-ready");
  main.removeAttribute("data-error");
  for (const a of document.querySelectorAll("#nav a")) {
    const target = a.getAttribute("href").slice(1);
    a.classList.toggle("active", target === "/" ? path === "/" : path.startsWith(target));
  }
  if (!match) {
    main.dataset.page = "not-found";
    main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, `No page at ${path}. `, h("a", { href: "#/" }, "Overview")));
    main.dataset.ready = "true";
    return;
  }
  const [m, name, page] = match;
  main.dataset.page = name;
  main.replaceChildren(h("p", { class: "muted" }, "loading…"));
  try {
    const content = await page(m.slice(1).map(decodeURIComponent), query);
    if (ticket !== rendering) return; // the user moved on while this page loaded
    main.replaceChildren(...[].concat(content).filter(Boolean));
    document.title = `${name} · ledgermind explorer`;
  } catch (e) {
    if (ticket !== rendering) return;
    main.dataset.error = String(e.message || e);
    main.replaceChildren(h("h1", {}, "Could not load this page"), h("p", { class: "error" }, String(e.message || e)));
  }
  main.dataset.ready = "true";
}

window.addEventListener("hashchange", render);
render();

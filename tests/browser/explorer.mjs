// Drives the web explorer in Debian's chromium with playwright-core and reports, as one JSON object on stdout,
// what each page showed. tests/test_explorer_browser.py checks the report against the home it populated.
//
//   node tests/browser/explorer.mjs '{"url": "http://127.0.0.1:8700/explorer/", "chromium": "/usr/bin/chromium",
//     "devKey": "0x…", "asset": ID, "parentAsset": ID, "entry": N, "task": 1, "proposal": 1, "screenshots": DIR}'
//
// The dev key is a test key handed to the page as window.LEDGERMIND_DEV_KEY: there is no wallet in a headless
// browser, and a real deployment signs with one.
import { join } from "node:path";
import { chromium } from "playwright-core";

const opts = JSON.parse(process.argv[2]);
const report = { pages: {}, consoleErrors: [], pageErrors: [], failedRequests: [] };

// headless, and a fresh profile per launch (playwright makes one); no network but loopback here
const browser = await chromium.launch({
  executablePath: opts.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((key) => { window.LEDGERMIND_DEV_KEY = key; }, opts.devKey);
  const page = await context.newPage();
  page.setDefaultTimeout(30000); // generous: CI runs the rest of the suite beside it
  page.on("console", (m) => { if (m.type() === "error") report.consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => report.pageErrors.push(String(e)));
  page.on("requestfailed", (r) => report.failedRequests.push(`${r.url()} ${r.failure()?.errorText}`));

  const text = (sel) => page.locator(sel).allInnerTexts();
  const svgText = (sel) => page.locator(sel).allTextContents(); // SVG text has no innerText
  const rows = (table) => text(`table[data-table="${table}"] tbody tr`);

  /** Open #route and wait until the page says its data is in; returns {page, error, heading}. */
  async function open(route, name) {
    await page.goto(opts.url + route);
    await page.waitForSelector(`main[data-ready="true"][data-page="${name}"]`);
    return settle(name);
  }
  async function settle(name) {
    const main = page.locator("main");
    if (opts.screenshots) await page.screenshot({ path: join(opts.screenshots, `${name}.png`), fullPage: true });
    return { page: await main.getAttribute("data-page"), error: await main.getAttribute("data-error"),
      heading: (await text("main h1"))[0] || "" };
  }

  // overview: counts, latest checkpoint and anchor
  let r = await open("#/", "overview");
  const stats = {};
  for (const s of await page.locator("[data-stat]").all()) {
    stats[await s.getAttribute("data-stat")] = Number(await s.locator(".n").innerText());
  }
  report.pages.overview = { ...r, stats, checkpoint: (await text("[data-fact=checkpoint]"))[0],
    anchor: (await text("[data-fact=anchor]"))[0] };

  // assets list, then the asset page and its lineage graph: a click on a node opens that asset
  r = await open("#/assets", "assets");
  report.pages.assets = { ...r, rows: await rows("assets") };
  await page.locator(`table[data-table="assets"] a[href="#/assets/${opts.asset}"]`).click();
  await page.waitForSelector('main[data-ready="true"][data-page="asset"]');
  r = await settle("asset");
  const graph = page.locator('svg[data-graph="lineage"]');
  report.pages.asset = { ...r, name: (await text("[data-fact=asset-name]"))[0],
    graphNodes: await graph.locator("g.node").evaluateAll((gs) => gs.map((g) => g.getAttribute("data-id"))),
    graphEdges: await graph.locator("path[marker-end]").count(), statements: (await text("main table tbody tr")).length };
  await graph.locator(`g.node[data-id="${opts.parentAsset}"]`).click();
  await page.waitForFunction((id) => location.hash === `#/assets/${id}`
    && document.querySelector('main[data-ready="true"][data-page="asset"]'), opts.parentAsset);
  report.pages.asset.afterClick = { hash: await page.evaluate(() => location.hash),
    name: (await text("[data-fact=asset-name]"))[0],
    graphNodes: await graph.locator("g.node").evaluateAll((gs) => gs.map((g) => g.getAttribute("data-id"))) };

  // log, an entry, and its inclusion proof verified in the page (then a tampered one)
  r = await open("#/log", "log");
  report.pages.log = { ...r, rows: await rows("log") };
  await page.selectOption("#log-type", "market/v1");
  await page.waitForFunction(() => location.hash === "#/log?type=market/v1"
    && document.querySelector('main[data-ready="true"][data-page="log"]'));
  report.pages.log.marketRows = await rows("log");
  r = await open(`#/log/${opts.entry}`, "entry");
  await page.waitForSelector("[data-fact=signature] .badge");
  const entry = { ...r, predicate: (await text("[data-fact=predicate]"))[0],
    signature: (await text("[data-fact=signature]"))[0] };
  await page.click("#verify");
  await page.waitForSelector('#verify-result [data-verified][data-tampered="false"]');
  entry.verified = await page.getAttribute("#verify-result [data-verified]", "data-verified");
  entry.verifySteps = await text("#verify-result li");
  await settle("entry-verified");
  await page.click("#verify-tampered");
  await page.waitForSelector('#verify-result [data-verified][data-tampered="true"]');
  entry.tamperedVerified = await page.getAttribute("#verify-result [data-verified]", "data-verified");
  entry.tamperedMessage = (await text("#verify-result strong"))[0];
  report.pages.entry = entry;

  // anchors, and the anchoring transaction they link to
  // an entry past the end: the page says what the node said, on one line
  report.pages.missingEntry = await open("#/log/999999", "entry");

  r = await open("#/anchors", "anchors");
  report.pages.anchors = { ...r, rows: await rows("anchors") };
  await page.locator('table[data-table="anchors"] a[href^="#/tx/"]').first().click();
  await page.waitForSelector('main[data-ready="true"][data-page="tx"]');
  report.pages.tx = { ...(await settle("tx")), text: await page.locator("main").innerText(),
    chain: (await text("[data-fact=chain-tx]"))[0] };

  r = await open("#/market", "market");
  report.pages.market = { ...r, listings: await rows("listings"), sales: await rows("sales"),
    plots: await page.locator("svg[data-plot]").count() };

  r = await open("#/federations", "federations");
  report.pages.federations = { ...r, rows: await rows("federations") };
  r = await open(`#/federations/${opts.task}`, "federation");
  report.pages.federation = { ...r, parties: await rows("parties"), rounds: await rows("rounds"),
    accuracyPoints: await page.locator('svg[data-plot="accuracy"] circle').count(),
    rewardBars: await page.locator('svg[data-plot="rewards"] rect').count(),
    rewardLabels: await svgText('svg[data-plot="rewards"] text') };

  r = await open("#/receipts", "receipts");
  report.pages.receipts = { ...r, rows: await rows("receipts"), text: await page.locator("main").innerText() };
  r = await open("#/alerts", "alerts");
  report.pages.alerts = { ...r, rows: await rows("alerts"),
    scorePoints: await page.locator('svg[data-plot="alert-scores"] circle').count(),
    threshold: (await svgText('svg[data-plot="alert-scores"] text')).filter((t) => t.startsWith("threshold")) };
  r = await open("#/oracle", "oracle");
  report.pages.oracle = { ...r, rows: await rows("oracle"), text: await page.locator("main").innerText() };
  r = await open("#/governance", "governance");
  report.pages.governance = { ...r, rows: await rows("proposals") };

  // one action signed in the page: an event statement (EIP-191 envelope, EIP-712 request)
  r = await open("#/submit", "submit");
  const submit = { ...r, signer: await page.getAttribute("[data-address]", "data-address") };
  await page.fill("#ev-domain", "supply-chain");
  await page.fill("#ev-type", "inspected-in-browser");
  await page.fill("#ev-data", '{"site": "Rotterdam", "ok": true}');
  await page.click("#sign-submit");
  await page.waitForSelector("#submit-result [data-status]");
  submit.status = await page.getAttribute("#submit-result [data-status]", "data-status");
  submit.logIndex = await page.getAttribute("#submit-result [data-status]", "data-log-index");
  submit.result = (await text("#submit-result .result"))[0];
  await settle("submit-done");
  report.pages.submit = submit;

  // and a governance vote, signed the same way (the node holds the member's key and sends the transaction)
  await open("#/governance", "governance");
  await page.locator(`table[data-table="proposals"] tr:has(a[href="#/governance/${opts.proposal}"]) button.vote-yes`).click();
  await page.waitForSelector("#vote-result [data-status]");
  report.pages.vote = { status: await page.getAttribute("#vote-result [data-status]", "data-status"),
    result: (await text("#vote-result .result"))[0] };
  await settle("vote-done");
  await page.click(`table[data-table="proposals"] a[href="#/governance/${opts.proposal}"]`);
  await page.waitForSelector('main[data-ready="true"][data-page="proposal"]');
  report.pages.proposal = { ...(await settle("proposal")), rows: await rows("proposal-statements") };
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));

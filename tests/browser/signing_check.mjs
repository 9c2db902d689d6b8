// Runs the explorer's signing code (static/js/sign.js) under Node.js with the same ethers build the page loads,
// over cases given as JSON (argv[2]): {key, info: GET /v1/node, events: [data, ...], request: {path, body}}.
// Prints {canonical: [...], envelopes: [...], request: {headers, body}} for the Python side to verify.
import { readFileSync } from "node:fs";
import * as ethers from "ethers";

globalThis.window = { ethers }; // what vendor/ethers.umd.min.js provides in the page
const { canonicalJson, eventStatement, signRequest, signStatement } = await import("../../src/ledgermind/node/static/js/sign.js");

const c = JSON.parse(readFileSync(process.argv[2], "utf8"));
const wallet = new ethers.Wallet(c.key);
const out = { canonical: [], envelopes: [] };
for (const data of c.events) {
  out.canonical.push(canonicalJson(data));
  out.envelopes.push(await signStatement(wallet, await eventStatement("test", "signed-in-js", data)));
}
const body = new TextEncoder().encode(c.request.body);
out.request = (await signRequest(wallet, c.info, "POST", c.request.path, body)).headers;
process.stdout.write(JSON.stringify(out));

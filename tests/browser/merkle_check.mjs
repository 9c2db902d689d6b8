// Runs the explorer's in-browser inclusion verifier (static/js/merkle.js) under Node.js over cases
// given as JSON (argv[2]): [{id, leaf, index, size, proof:[hex], root}] -> prints [{id, ok, error}] as JSON.
import { readFileSync } from "node:fs";
import { verifyInclusion, hexToBytes, leafHash } from "../../src/ledgermind/node/static/js/merkle.js";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = [];
for (const c of cases) {
  try {
    // `entry` (hex of the raw leaf data) exercises leafHash too; otherwise `leaf` is the leaf hash
    const leaf = c.entry !== undefined ? await leafHash(hexToBytes(c.entry)) : hexToBytes(c.leaf);
    await verifyInclusion(leaf, c.index, c.size, c.proof.map(hexToBytes), hexToBytes(c.root));
    out.push({ id: c.id, ok: true, error: null });
  } catch (e) {
    if (e.name !== "ProofError") throw e;  // anything else is a bug in the verifier, not a rejection
    out.push({ id: c.id, ok: false, error: e.message });
  }
}
process.stdout.write(JSON.stringify(out));

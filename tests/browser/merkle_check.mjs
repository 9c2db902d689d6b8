// Runs the explorer's in-browser proof verifiers (static/js/merkle.js) under Node.js over cases given as JSON
// (argv[2]): inclusion [{id, leaf | entry, index, size, proof: [hex], root}] and consistency
// [{id, kind: "consistency", size1, size2, proof, root1, root2}] -> prints [{id, ok, error}] as JSON.
import { readFileSync } from "node:fs";
import { hexToBytes, leafHash, verifyConsistency, verifyInclusion } from "../../src/ledgermind/node/static/js/merkle.js";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = [];
for (const c of cases) {
  try {
    if (c.kind === "consistency") {
      await verifyConsistency(c.size1, c.size2, c.proof.map(hexToBytes), hexToBytes(c.root1), hexToBytes(c.root2));
    } else {
      // `entry` (hex of the raw leaf data) exercises leafHash too; otherwise `leaf` is the leaf hash
      const leaf = c.entry !== undefined ? await leafHash(hexToBytes(c.entry)) : hexToBytes(c.leaf);
      await verifyInclusion(leaf, c.index, c.size, c.proof.map(hexToBytes), hexToBytes(c.root));
    }
    out.push({ id: c.id, ok: true, error: null });
  } catch (e) {
    if (e.name !== "ProofError") throw e;  // anything else is a bug in the verifier, not a rejection
    out.push({ id: c.id, ok: false, error: e.message });
  }
}
process.stdout.write(JSON.stringify(out));

// Verifying a log entry in the browser: the page recomputes the entry's leaf hash from the envelope it shows,
// fetches an inclusion proof at the size of the latest anchored checkpoint, and checks it against the root
// that was anchored on chain (RFC 9162 §2.1.3.2, WebCrypto SHA-256); then checks that the latest signed
// checkpoint extends the anchored tree (§2.1.4.2). The node is trusted for nothing here but the anchor record;
// a proof or entry it altered fails.

import { api } from "./ui.js";
import { ProofError, base64ToBytes, bytesToHex, hexToBytes, leafHash, verifyConsistency, verifyInclusion } from "./merkle.js";
import { canonicalJson } from "./sign.js";

/** The anchored checkpoint with the largest tree that covers entry `index`, or null. */
async function anchorCovering(index) {
  const anchors = await api("/v1/anchors");
  const covering = anchors.filter((a) => a.status === "anchored" && a.treeSize > index);
  covering.sort((a, b) => b.treeSize - a.treeSize);
  return covering[0] || null;
}

/**
 * Verify `entry` (GET /v1/log/entries/{n}) against the latest anchored checkpoint covering it. With
 * `tamper`, one bit of the proof (or of the leaf, for a one-entry tree) is flipped first: the check must fail.
 * Returns {ok, steps: [text], error, anchor, treeSize, root, leaf}. Never throws for a bad proof.
 */
export async function verifyEntry(entry, { tamper = false } = {}) {
  const steps = [];
  const index = entry.logIndex;
  const anchor = await anchorCovering(index);
  if (!anchor) {
    return { ok: false, steps, error: `no anchored checkpoint covers entry ${index} yet: anchor the log first` };
  }
  steps.push(`anchored checkpoint: tree size ${anchor.treeSize}, root ${anchor.rootHash} (chain ${anchor.chainId}, `
    + `transaction ${anchor.txHash}, block ${anchor.blockNumber})`);
  const proof = await api("/v1/log/proofs/inclusion", { index, size: anchor.treeSize });
  steps.push(`inclusion proof of entry ${index} at size ${proof.treeSize}: ${proof.hashes.length} hashes`);
  // the leaf is the canonical JSON of the envelope this page shows, hashed here, not the node's leafHash
  let leaf = await leafHash(new TextEncoder().encode(canonicalJson(entry.envelope)));
  steps.push(`leaf hash computed in the browser from the envelope: ${bytesToHex(leaf)}`
    + (bytesToHex(leaf) === proof.leafHash ? " (the node's agrees)" : " (the node's differs!)"));
  let hashes = proof.hashes.map(hexToBytes);
  if (tamper) {
    if (hashes.length) {
      hashes = [Uint8Array.from(hashes[0], (b, i) => (i === 0 ? b ^ 1 : b)), ...hashes.slice(1)];
      steps.push("tampered: flipped the lowest bit of the proof's first hash");
    } else {
      leaf = Uint8Array.from(leaf, (b, i) => (i === 0 ? b ^ 1 : b));
      steps.push("tampered: flipped the lowest bit of the leaf hash (the proof is empty)");
    }
  }
  try {
    await verifyInclusion(leaf, index, anchor.treeSize, hashes, hexToBytes(anchor.rootHash));
  } catch (e) {
    if (!(e instanceof ProofError)) throw e;
    return { ok: false, steps, error: e.message, anchor };
  }
  steps.push(`recomputed root equals the anchored root ${anchor.rootHash}`);
  // and the log has not forked since: the latest signed checkpoint extends the anchored tree
  const latest = await api("/v1/log/checkpoint");
  if (latest.size > anchor.treeSize) {
    const proof2 = await api("/v1/log/proofs/consistency", { first: anchor.treeSize, second: latest.size });
    try {
      await verifyConsistency(anchor.treeSize, latest.size, proof2.hashes.map(hexToBytes), hexToBytes(anchor.rootHash),
        hexToBytes(latest.root));
    } catch (e) {
      if (!(e instanceof ProofError)) throw e;
      return { ok: false, steps, error: `the latest checkpoint does not extend the anchored one: ${e.message}`, anchor };
    }
    steps.push(`the latest signed checkpoint (size ${latest.size}, root ${latest.root}) extends the anchored tree: `
      + `consistency proof of ${proof2.hashes.length} hashes verified`);
  } else {
    steps.push("the latest signed checkpoint is the anchored one");
  }
  return { ok: true, steps, error: null, anchor, treeSize: anchor.treeSize, root: anchor.rootHash, leaf: bytesToHex(leaf) };
}

/** Check the envelope's signature with ethers (EIP-191 over the DSSE PAE): the recovered address, or throws. */
export async function recoverEnvelopeSigner(envelope, lib) {
  const payload = base64ToBytes(envelope.payload);
  const enc = new TextEncoder();
  const head = enc.encode(`DSSEv1 ${enc.encode(envelope.payloadType).length} ${envelope.payloadType} ${payload.length} `);
  const pae = new Uint8Array(head.length + payload.length);
  pae.set(head);
  pae.set(payload, head.length);
  const sig = base64ToBytes(envelope.signatures[0].sig);
  return lib.verifyMessage(pae, lib.hexlify(sig));
}

// RFC 9162 §2.1.3.2 inclusion proof verification with WebCrypto SHA-256 (browser and Node.js alike).
// Same semantics as ledgermind.log.verify: the proof must have exactly the hashes the tree shape needs,
// every hash has 32 bytes, and a failure throws a ProofError saying what was expected and what was found.
// Indices and sizes are BigInt inside, so trees past 2^32 leaves verify correctly.

const HASH_SIZE = 32;

export class ProofError extends Error {
  constructor(message) {
    super(message);
    this.name = "ProofError";
  }
}

export function hexToBytes(hex) {
  const h = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (h.length % 2 || /[^0-9a-fA-F]/.test(h)) throw new ProofError(`not a hex string: ${hex.slice(0, 20)}`);
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function base64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function sha256(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { buf.set(p, at); at += p.length; }
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", buf));
}

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

/** SHA-256(0x00 || data): the RFC 9162 hash of a log entry. */
export function leafHash(data) {
  return sha256(LEAF, data);
}

function nodeHash(left, right) {
  return sha256(NODE, left, right);
}

function bitLength(n) {
  return n === 0n ? 0 : n.toString(2).length;
}

function popCount(n) {
  return [...n.toString(2)].filter((c) => c === "1").length;
}

function checkHash(name, h) {
  if (h.length !== HASH_SIZE) throw new ProofError(`${name} has ${h.length} bytes, expected ${HASH_SIZE}`);
}

/**
 * The root that `proof` implies for the leaf with hash `leaf` at `index` in a tree of `size` leaves.
 * Requires 0 <= index < size; throws ProofError otherwise, or when the proof has the wrong length.
 */
export async function rootFromInclusionProof(leaf, index, size, proof) {
  let i = BigInt(index);
  const n = BigInt(size);
  if (i < 0n || n < 0n) throw new ProofError(`index and size must be non-negative, got index ${i}, size ${n}`);
  if (i >= n) throw new ProofError(`index ${i} is beyond the tree: expected index < size ${n}`);
  checkHash("leaf hash", leaf);
  // the path splits into `inner` levels below where the paths to index and size-1 meet, and `border`
  // left siblings on the tree's right border above it
  const inner = bitLength(i ^ (n - 1n));
  const border = popCount(i >> BigInt(inner));
  const hashes = proof || [];
  if (hashes.length !== inner + border) {
    throw new ProofError(`proof has ${hashes.length} hashes, expected ${inner + border} for index ${i} in a tree of size ${n}`);
  }
  hashes.forEach((h, k) => checkHash(`proof[${k}]`, h));
  let h = leaf;
  for (let k = 0; k < inner; k++) {
    h = (i & 1n) === 0n ? await nodeHash(h, hashes[k]) : await nodeHash(hashes[k], h);
    i >>= 1n;
  }
  for (let k = inner; k < hashes.length; k++) h = await nodeHash(hashes[k], h);
  return h;
}

/**
 * Check that the leaf with hash `leaf` sits at `index` in the tree of `size` leaves whose root is `root`.
 * Returns true or throws ProofError (never returns false). Hashes are Uint8Array.
 */
export async function verifyInclusion(leaf, index, size, proof, root) {
  checkHash("root", root);
  const calculated = await rootFromInclusionProof(leaf, index, size, proof);
  if (bytesToHex(calculated) !== bytesToHex(root)) {
    throw new ProofError(`root mismatch: expected ${bytesToHex(root)}, calculated ${bytesToHex(calculated)}`);
  }
  return true;
}

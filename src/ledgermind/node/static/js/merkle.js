// RFC 9162 §2.1.3.2 inclusion and §2.1.4.2 consistency proof verification with WebCrypto SHA-256 (browser and
// Node.js alike).
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

function checkProof(proof, want, context) {
  const hashes = proof || [];
  if (hashes.length !== want) throw new ProofError(`proof has ${hashes.length} hashes, expected ${want} for ${context}`);
  hashes.forEach((h, k) => checkHash(`proof[${k}]`, h));
  return hashes;
}

// the path from a node up: siblings on the left or right as the index's bits say
async function chainInner(seed, hashes, index) {
  for (const h of hashes) {
    seed = (index & 1n) === 0n ? await nodeHash(seed, h) : await nodeHash(h, seed);
    index >>= 1n;
  }
  return seed;
}

// only left siblings: the subtree as it was before its right siblings existed
async function chainInnerRight(seed, hashes, index) {
  for (const h of hashes) {
    if ((index & 1n) === 1n) seed = await nodeHash(h, seed);
    index >>= 1n;
  }
  return seed;
}

async function chainBorder(seed, hashes) {
  for (const h of hashes) seed = await nodeHash(h, seed);
  return seed;
}

const same = (a, b) => bytesToHex(a) === bytesToHex(b);

/**
 * The root that `proof` implies for the leaf with hash `leaf` at `index` in a tree of `size` leaves.
 * Requires 0 <= index < size; throws ProofError otherwise, or when the proof has the wrong length.
 */
export async function rootFromInclusionProof(leaf, index, size, proof) {
  const i = BigInt(index), n = BigInt(size);
  if (i < 0n || n < 0n) throw new ProofError(`index and size must be non-negative, got index ${i}, size ${n}`);
  if (i >= n) throw new ProofError(`index ${i} is beyond the tree: expected index < size ${n}`);
  checkHash("leaf hash", leaf);
  // the path splits into `inner` levels below where the paths to index and size-1 meet, and `border`
  // left siblings on the tree's right border above it
  const inner = bitLength(i ^ (n - 1n));
  const border = popCount(i >> BigInt(inner));
  const hashes = checkProof(proof, inner + border, `index ${i} in a tree of size ${n}`);
  return chainBorder(await chainInner(leaf, hashes.slice(0, inner), i), hashes.slice(inner));
}

/**
 * Check that the leaf with hash `leaf` sits at `index` in the tree of `size` leaves whose root is `root`.
 * Returns true or throws ProofError (never returns false). Hashes are Uint8Array.
 */
export async function verifyInclusion(leaf, index, size, proof, root) {
  checkHash("root", root);
  const calculated = await rootFromInclusionProof(leaf, index, size, proof);
  if (!same(calculated, root)) {
    throw new ProofError(`root mismatch: expected ${bytesToHex(root)}, calculated ${bytesToHex(calculated)}`);
  }
  return true;
}

/**
 * Check `proof` against the older `root1` (tree of `size1` leaves) and return the root it implies for the tree
 * of `size2`. Requires 0 < size1 <= size2 (equal sizes need an empty proof); throws ProofError otherwise, or
 * when the proof does not rebuild root1.
 */
export async function rootFromConsistencyProof(size1, size2, proof, root1) {
  const n1 = BigInt(size1), n2 = BigInt(size2);
  if (n1 < 0n || n2 < 0n) throw new ProofError(`sizes must be non-negative, got size1 ${n1}, size2 ${n2}`);
  if (n2 < n1) throw new ProofError(`size2 ${n2} is smaller than size1 ${n1}: expected size1 <= size2`);
  if (n1 === n2) {
    if (proof && proof.length) throw new ProofError(`proof has ${proof.length} hashes, expected 0 for equal sizes ${n1}`);
    return root1;
  }
  if (n1 === 0n) throw new ProofError("a consistency proof from the empty tree (size1 = 0) is meaningless: expected size1 > 0");
  if (!proof || !proof.length) throw new ProofError(`proof is empty, expected hashes for sizes ${n1} -> ${n2}`);
  checkHash("root1", root1);
  let inner = bitLength((n1 - 1n) ^ (n2 - 1n));
  const border = popCount((n1 - 1n) >> BigInt(inner));
  const shift = bitLength(n1 & -n1) - 1; // trailing zeros of size1
  inner -= shift;
  // a size1 that is a power of two is itself a node of the newer tree: its root seeds the chain; otherwise the
  // proof starts with the root of the last perfect subtree of the older tree
  const powerOfTwo = n1 === 1n << BigInt(shift);
  const all = checkProof(proof, (powerOfTwo ? 0 : 1) + inner + border, `sizes ${n1} -> ${n2}`);
  const seed = powerOfTwo ? root1 : all[0];
  const hashes = powerOfTwo ? all : all.slice(1);
  const mask = (n1 - 1n) >> BigInt(shift);
  const hash1 = await chainBorder(await chainInnerRight(seed, hashes.slice(0, inner), mask), hashes.slice(inner));
  if (!same(hash1, root1)) {
    throw new ProofError(`root1 mismatch: expected ${bytesToHex(root1)}, calculated ${bytesToHex(hash1)}`);
  }
  return chainBorder(await chainInner(seed, hashes.slice(0, inner), mask), hashes.slice(inner));
}

/**
 * Check that the tree of `size2` leaves with `root2` extends the tree of `size1` with `root1`. Returns true or
 * throws ProofError. Equal sizes need an empty proof and equal roots.
 */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  const calculated = await rootFromConsistencyProof(size1, size2, proof, root1);
  if (BigInt(size1) !== BigInt(size2)) checkHash("root2", root2);
  if (!same(calculated, root2)) {
    throw new ProofError(`root2 mismatch: expected ${bytesToHex(root2)}, calculated ${bytesToHex(calculated)}`);
  }
  return true;
}

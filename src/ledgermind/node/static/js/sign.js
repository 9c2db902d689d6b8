// Signing in the browser, byte-compatible with ledgermind.statements and ledgermind.node.signing:
// - a statement is an in-toto Statement v1 in RFC 8785 canonical JSON, wrapped in a DSSE envelope signed
//   with EIP-191 personal_sign over the DSSE pre-authentication encoding (any Ethereum wallet can do it);
// - the HTTP request that submits it carries an EIP-712 NodeRequest signature (node, action, body digest,
//   nonce, expiry), the scheme GET /v1/node describes.
// The signer is a wallet (window.ethereum) in a real deployment. Without one, a key given to the page
// (a test harness's deterministic dev key, or a throwaway key made here) signs in memory; it is never stored.

const PREDICATES = "https://ledgermind.dev/attestations/";
const IN_TOTO = "application/vnd.in-toto+json";
const enc = new TextEncoder();

function ethers() {
  if (!window.ethers) throw new Error("the signing library (vendor/ethers.umd.min.js) did not load");
  return window.ethers;
}

/** Load the vendored ethers UMD build once (only pages that sign need it). */
export function loadSigningLibrary() {
  if (window.ethers) return Promise.resolve(window.ethers);
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "vendor/ethers.umd.min.js";
    s.onload = () => resolve(window.ethers);
    s.onerror = () => reject(new Error("could not load vendor/ethers.umd.min.js"));
    document.head.append(s);
  });
}

/** RFC 8785 canonical JSON for the values statements hold (strings, integers, booleans, null, arrays, objects). */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    // RFC 8785 orders keys by UTF-16 code units, which is what the default sort compares
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  if (typeof value === "number" && !Number.isFinite(value)) throw new Error("JSON has no NaN or Infinity");
  return JSON.stringify(value); // ES number and string serialisation is the one RFC 8785 specifies
}

async function sha256Hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function b64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** RFC 3339 UTC with second precision, the form every predicate uses. */
function utcNow() {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

/** An event/v1 statement; the subject defaults to (domain/type, SHA-256 of the data's canonical JSON). */
export async function eventStatement(domain, type, data = {}, related = []) {
  const digest = await sha256Hex(enc.encode(canonicalJson(data)));
  return {
    _type: "https://in-toto.io/Statement/v1",
    subject: [{ name: `${domain}/${type}`, digest: { sha256: digest } }],
    predicateType: PREDICATES + "event/v1",
    predicate: { domain, type, time: utcNow(), data, related },
  };
}

function pae(payloadType, payload) {
  const t = enc.encode(payloadType);
  const head = enc.encode(`DSSEv1 ${t.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** The DSSE envelope (JSON form) of `statement`, signed by `signer` (an ethers Signer or Wallet). */
export async function signStatement(signer, statement) {
  const payload = enc.encode(canonicalJson(statement));
  const signature = await signer.signMessage(pae(IN_TOTO, payload));
  return {
    payload: b64(payload),
    payloadType: IN_TOTO,
    signatures: [{ keyid: await signer.getAddress(), sig: b64(ethers().getBytes(signature)) }],
  };
}

function randomNonce() {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return ((BigInt(words[0] & 0x7fffffff) << 32n) | BigInt(words[1])).toString();
}

/**
 * The EIP-712 headers that make `method path` with the exact `body` bytes a request signed by `signer`, for the
 * node GET /v1/node describes (`info`). Returns {headers, typedData} (what was signed, for the page to show).
 */
export async function signRequest(signer, info, method, path, body, ttl = 300) {
  const s = info.signing;
  const message = {
    node: info.node, action: `${method} ${path}`, body: "0x" + (await sha256Hex(body)),
    nonce: randomNonce(), expiry: String(Math.floor(Date.now() / 1000) + Math.min(ttl, s.maxTtl)),
  };
  const types = { ...s.types };
  delete types.EIP712Domain; // ethers derives the domain type itself
  const signature = await signer.signTypedData(s.domain, types, message);
  const headers = {};
  headers[s.headers.signer] = await signer.getAddress();
  headers[s.headers.nonce] = message.nonce;
  headers[s.headers.expiry] = message.expiry;
  headers[s.headers.signature] = signature;
  return { headers, typedData: { domain: s.domain, primaryType: s.primaryType, message } };
}

/** POST `payload` as JSON to `path`, signed (signRequest). Returns {status, body, typedData}. */
export async function signedPost(signer, info, path, payload) {
  const body = enc.encode(JSON.stringify(payload));
  const { headers, typedData } = await signRequest(signer, info, "POST", path, body);
  const resp = await fetch(path, { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body });
  let out;
  try { out = await resp.json(); } catch { out = { error: `HTTP ${resp.status}` }; }
  return { status: resp.status, body: out, typedData };
}

/**
 * The signer the page uses: a wallet if the browser has one, else a key handed to the page
 * (window.LEDGERMIND_DEV_KEY, set by a test harness), else null. {signer, source} either way.
 */
export async function findSigner() {
  const lib = await loadSigningLibrary();
  if (window.ethereum) {
    const provider = new lib.BrowserProvider(window.ethereum);
    return { signer: await provider.getSigner(), source: "wallet" };
  }
  if (window.LEDGERMIND_DEV_KEY) return { signer: new lib.Wallet(window.LEDGERMIND_DEV_KEY), source: "dev key" };
  return { signer: null, source: null };
}

/** A fresh random key held in this page's memory only: for trying the explorer on a local node. */
export async function throwawaySigner() {
  const lib = await loadSigningLibrary();
  return { signer: lib.Wallet.createRandom(), source: "throwaway key" };
}

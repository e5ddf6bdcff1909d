/**
 * Requests signed by the stock Ollama client with `OLLAMA_AUTH=1` (api/client.go, auth/auth.go): the client signs
 * `METHOD,PATH?ts=<unix seconds>` with the user's ed25519 key (~/.ollama/id_ed25519), adds `ts` to the query and
 * sends `Authorization: <public key>:<signature>` — the public key as the base64 SSH wire blob (the middle field
 * of its `.pub` line), the signature as the base64 of the raw 64 bytes. Some of its callers put `Bearer ` in front.
 *
 * The edge verifies the signature with WebCrypto Ed25519 over the path it was asked for, accepts a timestamp at
 * most SIGNATURE_WINDOW_S away from its clock, and refuses a signature it has accepted before (a replay) for as
 * long as its timestamp is inside the window; outside it, the timestamp alone refuses it.
 */
import { ApiError } from "@corral/protocol";
import { recordSignature, resolveSigningKey } from "./db/signing-keys";
import type { KeyIdentity } from "./db/tenants";

export const SIGNATURE_WINDOW_S = 300;

const KEY_TYPE = "ssh-ed25519";
const unauthorized = () => new ApiError(401, "unauthorized");

function base64Bytes(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** The raw 32-byte key inside an SSH wire blob: string "ssh-ed25519", then string key (uint32 lengths). */
export function ed25519KeyOfBlob(blob: Uint8Array): Uint8Array | null {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob.byteLength !== 4 + KEY_TYPE.length + 4 + 32) return null;
  if (view.getUint32(0) !== KEY_TYPE.length) return null;
  if (new TextDecoder().decode(blob.subarray(4, 4 + KEY_TYPE.length)) !== KEY_TYPE) return null;
  if (view.getUint32(4 + KEY_TYPE.length) !== 32) return null;
  return blob.slice(blob.byteLength - 32);
}

/**
 * A key as an operator pastes it: the `.pub` line (`ssh-ed25519 AAAA… comment`) or its base64 blob alone; the
 * canonical form stored and matched is the blob. Anything else is a 400.
 */
export function canonicalPublicKey(text: string): string {
  const fields = text.trim().split(/\s+/);
  const blob = fields[0] === KEY_TYPE ? fields[1] : fields.length === 1 ? fields[0] : undefined;
  const bytes = blob ? base64Bytes(blob) : null;
  if (!blob || !bytes || !ed25519KeyOfBlob(bytes)) {
    throw new ApiError(400, "invalid public key: expected an ssh-ed25519 key as in ~/.ollama/id_ed25519.pub");
  }
  return blob;
}

export interface SignedAuthorization {
  publicKey: string;
  rawKey: Uint8Array;
  signature: Uint8Array;
  signatureText: string;
}

/** The header as the Go client writes it, or null when it is not one (an API key, say). */
export function parseSignedAuthorization(header: string | undefined): SignedAuthorization | null {
  const value = header?.trim().replace(/^Bearer\s+/i, "");
  const match = value ? /^([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/.exec(value) : null;
  if (!match) return null;
  const [, publicKey = "", signatureText = ""] = match;
  const blob = base64Bytes(publicKey);
  const rawKey = blob && ed25519KeyOfBlob(blob);
  const signature = base64Bytes(signatureText);
  if (!rawKey || !signature || signature.byteLength !== 64) return null;
  return { publicKey, rawKey, signature, signatureText };
}

/** What the client signed: `METHOD,PATH?ts=TS` (api/client.go). */
export const challengeOf = (method: string, path: string, ts: string) => `${method},${path}?ts=${ts}`;

async function signatureValid(signed: SignedAuthorization, challenge: string): Promise<boolean> {
  const key = await crypto.subtle.importKey("raw", signed.rawKey, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signed.signature, new TextEncoder().encode(challenge));
}

/**
 * The tenant of a signed request, or a 401: a signature over this method, path and timestamp by a registered,
 * unrevoked key, with the timestamp inside the window, never seen before.
 */
export async function verifySignedRequest(
  db: D1Database,
  request: Request,
  signed: SignedAuthorization,
  now = Date.now(),
): Promise<KeyIdentity> {
  const url = new URL(request.url);
  const ts = url.searchParams.get("ts") ?? "";
  if (!/^\d{1,12}$/.test(ts)) throw unauthorized();
  const seconds = Number(ts);
  if (Math.abs(now / 1000 - seconds) > SIGNATURE_WINDOW_S) throw unauthorized();
  if (!(await signatureValid(signed, challengeOf(request.method, url.pathname, ts)))) throw unauthorized();
  const identity = await resolveSigningKey(db, signed.publicKey);
  if (!identity) throw unauthorized();
  // Recorded last: only a signature that would have been accepted can use up its one use.
  if (!(await recordSignature(db, signed.signatureText, (seconds + SIGNATURE_WINDOW_S) * 1000, now))) {
    throw unauthorized();
  }
  return identity;
}

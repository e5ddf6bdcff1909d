/**
 * Registry credentials per tenant and registry host, used for the token dance (or Basic auth) on pull and push.
 *
 * The password is encrypted with AES-256-GCM under a key derived (HKDF-SHA-256) from the Worker secret
 * CREDENTIALS_KEY; the tenant id and registry host are the additional authenticated data, so a ciphertext copied
 * to another row does not decrypt. Passwords are never returned by the API; listing shows host and username only.
 */
import { ApiError } from "@corral/protocol";
import { getCredentialRow, putCredentialRow } from "../db/credentials";
import type { BasicCredentials } from "./auth";

const encoder = new TextEncoder();

async function deriveKey(secret: string): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: encoder.encode("corral"), info: encoder.encode("registry-credentials/v1") },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

const aad = (tenantId: string, registry: string) => encoder.encode(`${tenantId}\n${registry}`);

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** `v1.<base64 iv>.<base64 ciphertext+tag>` */
export async function encryptSecret(
  secret: string,
  tenantId: string,
  registry: string,
  plaintext: string,
): Promise<string> {
  const key = await deriveKey(secret);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: aad(tenantId, registry) },
    key,
    encoder.encode(plaintext),
  );
  return `v1.${toBase64(iv)}.${toBase64(new Uint8Array(sealed))}`;
}

export async function decryptSecret(
  secret: string,
  tenantId: string,
  registry: string,
  sealed: string,
): Promise<string> {
  const [version, iv, body] = sealed.split(".");
  if (version !== "v1" || !iv || !body) throw new ApiError(500, "stored registry credentials are corrupt");
  const key = await deriveKey(secret);
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: fromBase64(iv), additionalData: aad(tenantId, registry) },
      key,
      fromBase64(body),
    );
    return new TextDecoder().decode(plain);
  } catch {
    throw new ApiError(500, "stored registry credentials cannot be decrypted (was CREDENTIALS_KEY changed?)");
  }
}

/** Registry hosts are compared as URL hosts: lower-case, with the port when not the default. */
export function normalizeRegistryHost(input: string): string | null {
  try {
    const url = new URL(`https://${input}`);
    if (url.pathname !== "/" || url.search || url.hash || url.username || url.password) return null;
    return url.host.toLowerCase();
  } catch {
    return null;
  }
}

export async function saveCredentials(
  db: D1Database,
  secret: string,
  tenantId: string,
  registry: string,
  credentials: BasicCredentials,
  now = Date.now(),
): Promise<void> {
  const sealed = await encryptSecret(secret, tenantId, registry, credentials.password);
  await putCredentialRow(db, { tenantId, registry, username: credentials.username, sealed, now });
}

/** The tenant's credentials for a registry host, or undefined; needs CREDENTIALS_KEY only when some are stored. */
export async function loadCredentials(
  db: D1Database,
  secret: string | undefined,
  tenantId: string,
  registry: string,
): Promise<BasicCredentials | undefined> {
  const row = await getCredentialRow(db, tenantId, registry);
  if (!row) return undefined;
  if (!secret) throw new ApiError(500, "registry credentials are stored but CREDENTIALS_KEY is not set");
  return { username: row.username, password: await decryptSecret(secret, tenantId, registry, row.secret) };
}

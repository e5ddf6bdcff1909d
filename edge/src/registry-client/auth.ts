/**
 * Registry authentication: the `WWW-Authenticate` challenge of a 401 and the Docker token dance.
 *
 * A Bearer challenge names a token endpoint (`realm`). The realm is chosen by whoever answers the registry's
 * URL, so it is held to the same rules as the registry (SSRF guard) and, like Ollama's getAuthorizationToken,
 * must be on the registry's own host (host and port): tenant credentials are never sent to a foreign realm, and
 * no request at all goes to one.
 */
import { ApiError } from "@corral/protocol";
import { readLimitedText } from "./http";
import { assertRegistryUrl, type RegistryUrlPolicy } from "./ssrf";

export interface Challenge {
  scheme: "bearer" | "basic";
  realm: string;
  service?: string;
  scope?: string;
}

export interface BasicCredentials {
  username: string;
  password: string;
}

/**
 * Parses a challenge header (RFC 7235 auth-params, quoted values may contain commas: `scope="repo:a:pull,push"`).
 * Only the first challenge is read; null when it is neither Bearer nor Basic.
 */
export function parseChallenge(header: string | null): Challenge | null {
  if (!header) return null;
  const m = /^\s*(bearer|basic)\b\s*(.*)$/is.exec(header);
  if (!m) return null;
  const params = new Map<string, string>();
  const re = /\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)/gy;
  const rest = m[2]!;
  for (let match = re.exec(rest); match && match[0] !== ""; match = re.exec(rest)) {
    const value = match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : (match[3] ?? "");
    const key = match[1]!.toLowerCase();
    if (!params.has(key)) params.set(key, value);
  }
  const challenge: Challenge = {
    scheme: m[1]!.toLowerCase() === "bearer" ? "bearer" : "basic",
    realm: params.get("realm") ?? "",
  };
  const service = params.get("service");
  const scope = params.get("scope");
  if (service !== undefined) challenge.service = service;
  if (scope !== undefined) challenge.scope = scope;
  return challenge;
}

/**
 * The token endpoint URL for a Bearer challenge, or an ApiError when the realm may not be contacted: not a URL,
 * refused by the SSRF guard, or on another host than the registry.
 */
export function tokenUrl(challenge: Challenge, registry: URL, policy: RegistryUrlPolicy): URL {
  let realm: URL;
  try {
    realm = new URL(challenge.realm);
  } catch {
    throw new ApiError(502, `registry ${registry.host} sent an invalid auth realm`);
  }
  if (realm.host.toLowerCase() !== registry.host.toLowerCase()) {
    throw new ApiError(
      502,
      `realm host ${JSON.stringify(realm.host)} does not match original host ${JSON.stringify(registry.host)}`,
    );
  }
  assertRegistryUrl(realm, policy);
  if (challenge.service !== undefined) realm.searchParams.append("service", challenge.service);
  for (const scope of (challenge.scope ?? "").split(" ")) {
    if (scope !== "") realm.searchParams.append("scope", scope);
  }
  return realm;
}

export function basicAuthorization(credentials: BasicCredentials): string {
  const bytes = new TextEncoder().encode(`${credentials.username}:${credentials.password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** A token endpoint answer is small; anything bigger is not one. */
const MAX_TOKEN_RESPONSE = 64 * 1024;

/** Asks the realm for a token (with Basic credentials when the tenant configured some for this registry). */
export async function fetchToken(
  fetcher: typeof fetch,
  url: URL,
  credentials: BasicCredentials | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (credentials) headers.authorization = basicAuthorization(credentials);
  const init: RequestInit = { headers, redirect: "manual" };
  if (signal) init.signal = signal;
  const res = await fetcher(url.toString(), init);
  const text = await readLimitedText(res, MAX_TOKEN_RESPONSE);
  if (res.status === 401 || res.status === 403) throw new ApiError(401, "unauthorized: access denied");
  if (!res.ok) throw new ApiError(502, `token endpoint answered ${res.status}: ${text.slice(0, 200)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(502, "token endpoint answered with invalid JSON");
  }
  const token =
    (body as { token?: unknown; access_token?: unknown }).token ?? (body as { access_token?: unknown }).access_token;
  if (typeof token !== "string" || token === "" || /[\r\n]/.test(token)) {
    throw new ApiError(502, "token endpoint answered without a token");
  }
  return token;
}

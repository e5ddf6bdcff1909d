/**
 * The edge's one door to a registry: every request passes a DNS check (against rebinding), carries a timeout for
 * the response headers, and a failure that workerd reports opaquely (`internal error; reference = …` for DNS and
 * TLS failures, `Network connection lost.` for a refused connection) is diagnosed and named the way Ollama's Go
 * client names it: `Get "https://…": dial tcp: lookup host: no such host`.
 *
 * What a Worker can and cannot do about DNS rebinding (see edge/PULL_PUSH.md):
 * - It can resolve the name itself before each request (DNS-over-HTTPS, JSON API) and refuse private answers,
 *   failing closed when the resolver does not answer. That is done here.
 * - It cannot make `fetch` connect to the address it checked: fetch takes a URL and resolves again, and raw
 *   sockets (`cloudflare:sockets`) cannot reach Cloudflare-fronted registries (registry.ollama.ai is one) and would
 *   mean a hand-written HTTP/1.1 client. A name whose TTL-0 answers alternate between public and private could pass
 *   the check and then be fetched privately. On Cloudflare the platform itself refuses subrequests to private
 *   addresses; the remaining window matters for self-hosted workerd only.
 */
import { connect } from "cloudflare:sockets";
import { ApiError } from "@corral/protocol";
import { readLimitedText } from "./http";
import { parseIpv4, privateHostReason, type RegistryUrlPolicy } from "./ssrf";

export const DEFAULT_DNS_RESOLVER = "https://cloudflare-dns.com/dns-query";

export interface NetworkSettings {
  /** A DNS-over-HTTPS endpoint speaking the JSON API (`?name=…&type=A`, `application/dns-json`). */
  resolverUrl: string;
  /** How long a registry may take to send response headers (pulled blob bodies have their own stall timer; push
   * chunks are not timed). */
  timeoutMs: number;
}

/** A registry could not be reached at all (DNS, connect, TLS, timeout): retryable, unlike a refusal. */
export class RegistryNetworkError extends ApiError {
  constructor(message: string) {
    super(502, message);
  }
}

export type Lookup =
  | { kind: "addresses"; addresses: string[] }
  | { kind: "nxdomain" }
  | { kind: "failed"; reason: string };

const MAX_DNS_ANSWER_BYTES = 64 * 1024;
/** DNS-over-HTTPS answer record types for A and AAAA. */
const RECORD_TYPES = { A: 1, AAAA: 28 } as const;

const isIpLiteral = (host: string) => host.startsWith("[") || parseIpv4(host) !== null;

async function queryDoh(
  fetcher: typeof fetch,
  resolverUrl: string,
  host: string,
  type: keyof typeof RECORD_TYPES,
  signal: AbortSignal,
): Promise<Lookup> {
  const url = new URL(resolverUrl);
  url.searchParams.set("name", host);
  url.searchParams.set("type", type);
  let text: string;
  try {
    const res = await fetcher(url.toString(), { headers: { accept: "application/dns-json" }, signal });
    text = await readLimitedText(res, MAX_DNS_ANSWER_BYTES);
    if (!res.ok) return { kind: "failed", reason: `resolver ${url.host} answered ${res.status}` };
  } catch {
    // workerd's text for a failed fetch is opaque (`internal error; reference = …`): the host says more.
    return { kind: "failed", reason: `resolver ${url.host} unreachable` };
  }
  let answer: { Status?: unknown; Answer?: { type?: unknown; data?: unknown }[] };
  try {
    answer = JSON.parse(text);
  } catch {
    return { kind: "failed", reason: `resolver ${url.host} sent invalid JSON` };
  }
  if (answer.Status === 3) return { kind: "nxdomain" };
  if (answer.Status !== 0)
    return { kind: "failed", reason: `resolver ${url.host} answered DNS status ${answer.Status}` };
  const addresses = (Array.isArray(answer.Answer) ? answer.Answer : [])
    .filter((r) => r.type === RECORD_TYPES[type] && typeof r.data === "string")
    .map((r) => r.data as string);
  return { kind: "addresses", addresses };
}

/** A and AAAA answers for `host` (`URL.hostname` spelling); an IP literal is its own answer. */
export async function lookupHost(
  fetcher: typeof fetch,
  resolverUrl: string,
  host: string,
  signal: AbortSignal,
): Promise<Lookup> {
  if (isIpLiteral(host)) return { kind: "addresses", addresses: [host.replace(/^\[|\]$/g, "")] };
  const answers = await Promise.all(
    (["A", "AAAA"] as const).map((t) => queryDoh(fetcher, resolverUrl, host, t, signal)),
  );
  const addresses = answers.flatMap((a) => (a.kind === "addresses" ? a.addresses : []));
  if (addresses.length > 0) return { kind: "addresses", addresses };
  return answers.find((a) => a.kind === "failed") ?? { kind: "nxdomain" };
}

/** Throws unless every address `host` resolves to is public: a name may not lead where its literal could not. */
export async function assertPublicAddresses(
  fetcher: typeof fetch,
  settings: NetworkSettings,
  url: URL,
  signal: AbortSignal,
): Promise<void> {
  const lookup = await lookupHost(fetcher, settings.resolverUrl, url.hostname, signal);
  if (lookup.kind === "nxdomain") throw new RegistryNetworkError(`dial tcp: lookup ${url.hostname}: no such host`);
  if (lookup.kind === "failed") {
    throw new RegistryNetworkError(`dial tcp: lookup ${url.hostname}: ${lookup.reason}`);
  }
  for (const address of lookup.addresses) {
    const reason = privateHostReason(address.includes(":") ? `[${address}]` : address);
    if (reason) {
      throw new ApiError(
        400,
        `registry host ${url.host} refused: it resolves to ${address}, a ${reason} address (ALLOW_PRIVATE_REGISTRIES is off)`,
      );
    }
  }
}

/** Requests with bigger bodies (push chunks) get no headers timeout. */
const UNTIMED_BODY_BYTES = 1024 * 1024;

/** `Get`, `Head`, `Patch`: how Go's url.Error names the operation. */
const goMethod = (method: string) => method.charAt(0).toUpperCase() + method.slice(1).toLowerCase();
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Sends one request to a registry. The caller's signal aborts it as before; the headers timeout and network
 * failures become a RegistryNetworkError naming the method, the URL and the cause.
 */
export async function registryFetch(
  fetcher: typeof fetch,
  url: URL,
  init: RequestInit,
  settings: NetworkSettings,
  policy: RegistryUrlPolicy,
  resolved: Set<string>,
): Promise<Response> {
  const timeout = new AbortController();
  // A registry answers a PATCH only once the chunk (up to 95 MiB) is in, which a slow link may take longer than
  // the timeout to send, and fetch does not say when the body is out: a request carrying a chunk is not timed.
  const body = init.body;
  const bodyBytes = typeof body === "string" ? body.length : body instanceof Uint8Array ? body.byteLength : 0;
  const timer =
    bodyBytes <= UNTIMED_BODY_BYTES
      ? setTimeout(() => timeout.abort(new Error("timeout")), settings.timeoutMs)
      : undefined;
  const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;
  const op = `${goMethod(init.method ?? "GET")} ${JSON.stringify(url.toString())}`;
  try {
    if (!policy.allowPrivate && !resolved.has(url.hostname)) {
      await assertPublicAddresses(fetcher, settings, url, signal);
      resolved.add(url.hostname);
    }
    return await fetcher(url.toString(), { ...init, signal });
  } catch (err) {
    if (init.signal?.aborted) throw init.signal.reason;
    if (timeout.signal.aborted) {
      throw new RegistryNetworkError(
        `${op}: net/http: timeout awaiting response headers (none within ${settings.timeoutMs} ms)`,
      );
    }
    if (err instanceof RegistryNetworkError) throw new RegistryNetworkError(`${op}: ${err.message}`);
    if (err instanceof ApiError) throw err;
    throw new RegistryNetworkError(`${op}: ${await diagnose(fetcher, settings, url, err)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** What a short TCP probe of the registry's address saw. */
type Probe = { kind: "unreachable" } | { kind: "timeout" } | { kind: "answered"; head: string };

/** Connects to host:port in the clear and sends a plain HTTP request, to tell a TLS fault from a dead host. */
async function probe(host: string, port: number, ms: number): Promise<Probe> {
  const hostname = host.replace(/^\[|\]$/g, "");
  const socket = connect({ hostname, port });
  // A failed connect also rejects `closed`; nobody else waits on it.
  socket.closed.catch(() => {});
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), ms);
  const expired = new Promise<"timeout">((resolve) =>
    deadline.signal.addEventListener("abort", () => resolve("timeout")),
  );
  try {
    const opened = await Promise.race([socket.opened.then(() => "open" as const), expired]).catch(() => null);
    if (opened === null) return { kind: "unreachable" };
    if (opened === "timeout") return { kind: "timeout" };
    const writer = socket.writable.getWriter();
    await writer.write(new TextEncoder().encode(`HEAD / HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
    const read = socket.readable.getReader().read();
    const first = await Promise.race([read, expired]).catch(() => null);
    const bytes = first && first !== "timeout" && first.value ? first.value : new Uint8Array(0);
    return { kind: "answered", head: new TextDecoder().decode(bytes.subarray(0, 64)) };
  } finally {
    clearTimeout(timer);
    socket.close().catch(() => {});
  }
}

const PROBE_MS = 5_000;

/** The cause of a fetch that threw, in Go's words where there is an equivalent. */
async function diagnose(fetcher: typeof fetch, settings: NetworkSettings, url: URL, err: unknown): Promise<string> {
  const host = url.hostname;
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const ms = Math.min(PROBE_MS, settings.timeoutMs);
  const lookup = await lookupHost(fetcher, settings.resolverUrl, host, AbortSignal.timeout(ms));
  if (lookup.kind === "nxdomain") return `dial tcp: lookup ${host}: no such host`;
  const seen = await probe(host, port, ms);
  if (seen.kind === "timeout") return `dial tcp ${host}:${port}: i/o timeout`;
  if (seen.kind === "unreachable") {
    if (lookup.kind === "failed") {
      return `dial tcp: lookup ${host}: cannot resolve or connect (${lookup.reason}; is this machine offline?)`;
    }
    return `dial tcp ${host}:${port}: connect: connection refused (or host unreachable)`;
  }
  const speaksHttp = seen.head.startsWith("HTTP/");
  if (url.protocol === "https:") {
    return speaksHttp
      ? "http: server gave HTTP response to HTTPS client"
      : `tls: handshake with ${host}:${port} failed (certificate not trusted, expired or not issued for ${host})`;
  }
  if (!speaksHttp) return `net/http: malformed HTTP response ${JSON.stringify(seen.head.slice(0, 32))}`;
  return `connection to ${host}:${port} lost (${errorText(err)})`;
}

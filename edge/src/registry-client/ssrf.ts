/**
 * Which registry URLs the edge may talk to. Registries are named by tenants (model names, token realms, upload
 * and redirect Locations all come from outside), so every URL is checked before a request leaves:
 *
 * - https only; http only when the client asked for `insecure: true` (Ollama's rule);
 * - no user-info in the URL (credentials travel only in headers we add);
 * - no loopback, private, link-local, CGNAT, multicast or reserved addresses, no `localhost`/`.local`/`.internal`
 *   names and no single-label names (they resolve through search domains to internal hosts), unless the deployment
 *   sets ALLOW_PRIVATE_REGISTRIES=true (the local stack and its tests do).
 *
 * IP literals are checked after WHATWG URL parsing, which already folds `2130706433`, `0x7f.1` and `0177.0.0.1`
 * into dotted IPv4 and IPv6 into its compressed form. Host names are not resolved here: on Cloudflare, a Worker's
 * outbound fetch cannot reach the deployment's private networks anyway; this guard stops the literal cases.
 */
import { ApiError } from "@corral/protocol";

export interface RegistryUrlPolicy {
  /** The client sent `insecure: true`: plain http is allowed. */
  insecure: boolean;
  /** ALLOW_PRIVATE_REGISTRIES=true: loopback and private ranges are allowed. */
  allowPrivate: boolean;
}

const PRIVATE_NAME_SUFFIXES = [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet"];

/** Throws ApiError 400 explaining why `url` may not be contacted; returns normally when it may. */
export function assertRegistryUrl(url: URL, policy: RegistryUrlPolicy): void {
  if (url.protocol !== "https:" && !(policy.insecure && url.protocol === "http:")) {
    const hint = url.protocol === "http:" ? " (set insecure: true to allow http)" : "";
    throw new ApiError(400, `registry URL ${url.origin} refused: only https is allowed${hint}`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new ApiError(400, "registry URL refused: credentials in URLs are not allowed");
  }
  if (policy.allowPrivate) return;
  const reason = privateHostReason(url.hostname);
  if (reason) {
    throw new ApiError(
      400,
      `registry host ${url.host} refused: ${reason} addresses are not allowed (ALLOW_PRIVATE_REGISTRIES is off)`,
    );
  }
}

/** Why a URL hostname (as `URL.hostname` spells it) is private, or null when it is a public name or address. */
export function privateHostReason(hostname: string): string | null {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[") && host.endsWith("]")) return ipv6Reason(host.slice(1, -1));
  const v4 = parseIpv4(host);
  if (v4 !== null) return ipv4Reason(v4);
  if (host === "" || host === "localhost" || PRIVATE_NAME_SUFFIXES.some((s) => host.endsWith(s))) return "local";
  if (!host.includes(".")) return "single-label (intranet)";
  return null;
}

/** Dotted-quad only: URL parsing has already normalised every other IPv4 spelling into it. */
export function parseIpv4(host: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return null;
  return ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
}

const V4_RANGES: [base: string, bits: number, reason: string][] = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared (CGNAT)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "reserved"],
  ["192.0.2.0", 24, "reserved"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "reserved"],
  ["203.0.113.0", 24, "reserved"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];

function ipv4Reason(address: number): string | null {
  for (const [base, bits, reason] of V4_RANGES) {
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if ((address & mask) >>> 0 === (parseIpv4(base)! & mask) >>> 0) return reason;
  }
  return null;
}

/** Eight 16-bit groups of an IPv6 literal (as URL prints it: compressed, lower-case, maybe with a dotted tail). */
export function parseIpv6(text: string): number[] | null {
  let s = text;
  let tail: number[] = [];
  const dotted = /:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (dotted) {
    const v4 = parseIpv4(dotted[1]!);
    if (v4 === null) return null;
    tail = [v4 >>> 16, v4 & 0xffff];
    // Keep a `::` that ends right before the IPv4 part (`::1.2.3.4`); drop a single separating colon.
    const prefix = s.slice(0, dotted.index + 1);
    s = prefix.endsWith("::") ? prefix : prefix.slice(0, -1);
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) =>
    part === "" ? [] : part.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? Number.parseInt(g, 16) : Number.NaN));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const groups = [...head, ...rest, ...tail];
  if (groups.some(Number.isNaN)) return null;
  if (halves.length === 2) {
    if (groups.length > 7) return null;
    return [...head, ...new Array<number>(8 - groups.length).fill(0), ...rest, ...tail];
  }
  return groups.length === 8 ? groups : null;
}

function ipv6Reason(text: string): string | null {
  const g = parseIpv6(text);
  if (!g) return "unparseable IPv6";
  const [a, b, c, d, e, f, h0, h1] = g as [number, number, number, number, number, number, number, number];
  const embeddedV4 = ((h0 << 16) | h1) >>> 0;
  const zeroPrefix = a === 0 && b === 0 && c === 0 && d === 0 && e === 0;
  if (zeroPrefix && f === 0 && h0 === 0 && h1 <= 1) return h1 === 1 ? "loopback" : "unspecified";
  // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d) forms reach the IPv4 address.
  if (zeroPrefix && (f === 0xffff || f === 0)) return ipv4Reason(embeddedV4);
  // NAT64 (64:ff9b::/96) also carries an IPv4 address that a gateway would reach.
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) return ipv4Reason(embeddedV4);
  // 6to4 (2002::/16) embeds the IPv4 address in bits 16..47.
  if (a === 0x2002) return ipv4Reason(((b << 16) | c) >>> 0);
  if ((a & 0xfe00) === 0xfc00) return "unique local (private)";
  if ((a & 0xffc0) === 0xfe80) return "link-local";
  if ((a & 0xffc0) === 0xfec0) return "site-local";
  if ((a & 0xff00) === 0xff00) return "multicast";
  return null;
}

/**
 * API key → tenant resolutions kept in isolate memory for a few seconds, so a tenant's requests skip the D1 round
 * trip of authentication (and of the quota lookup: the tenant's quotas travel with the identity).
 *
 * Bounds, as operators see them:
 *   - a revoked key or a changed quota takes effect at once in the isolate that served the admin call, and within
 *     KEY_CACHE_TTL_MS everywhere else (each entry lives that long from the D1 read that made it, never longer);
 *   - only keys D1 accepted are kept — an unknown key is looked up again every time, so a key issued a moment ago
 *     works at once;
 *   - entries are keyed by the key's SHA-256, never the key itself.
 */
import type { RequestLimits } from "../bounds";
import type { Quotas } from "./tenants";

/** How long a resolution is trusted: the revocation delay across isolates. */
export const KEY_CACHE_TTL_MS = 5_000;
/** Enough for every active key of a large deployment in one isolate; the oldest go first beyond it. */
export const KEY_CACHE_MAX_ENTRIES = 10_000;

export interface KeyIdentity {
  tenantId: string;
  keyId: string;
  quotas: Quotas;
  limits: RequestLimits;
}

interface Entry {
  identity: KeyIdentity;
  expiresAt: number;
}

export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  /** Injectable for tests; the Workers clock advances on I/O, which is all a TTL needs. */
  clock: () => number = () => Date.now();

  constructor(
    private readonly ttlMs = KEY_CACHE_TTL_MS,
    private readonly maxEntries = KEY_CACHE_MAX_ENTRIES,
  ) {}

  get(keyHash: string): KeyIdentity | undefined {
    const entry = this.entries.get(keyHash);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock()) {
      this.entries.delete(keyHash);
      return undefined;
    }
    return entry.identity;
  }

  set(keyHash: string, identity: KeyIdentity): void {
    this.entries.delete(keyHash);
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: the first entry is the oldest read.
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(keyHash, { identity, expiresAt: this.clock() + this.ttlMs });
  }

  /** A key was revoked: this isolate stops accepting it now. */
  forgetKey(keyId: string): void {
    for (const [hash, entry] of this.entries) if (entry.identity.keyId === keyId) this.entries.delete(hash);
  }

  /** A tenant changed (quotas): its keys are read again on their next use. */
  forgetTenant(tenantId: string): void {
    for (const [hash, entry] of this.entries) if (entry.identity.tenantId === tenantId) this.entries.delete(hash);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The isolate's cache: module state lives as long as the isolate. */
export const keyCache = new KeyCache();

/**
 * A client for one repository of an OCI / Docker v2 registry: manifests, blob HEAD and ranged GET, chunked blob
 * upload and manifest PUT, with the token dance on 401 and manually followed redirects (every hop passes the SSRF
 * guard; credentials go only to the registry's own origin, never to a CDN it redirects to).
 */
import { ApiError } from "@corral/protocol";
import { type BasicCredentials, basicAuthorization, fetchToken, parseChallenge, tokenUrl } from "./auth";
import { discard, errorExcerpt, readLimitedBytes } from "./http";
import { DEFAULT_DNS_RESOLVER, type NetworkSettings, RegistryNetworkError, registryFetch } from "./network";
import { assertRegistryUrl, type RegistryUrlPolicy } from "./ssrf";

export const DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";
export const OCI_MANIFEST_V1 = "application/vnd.oci.image.manifest.v1+json";
/** Docker's own limit on manifest bodies; a bigger "manifest" is not one. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_REDIRECTS = 5;

/** Ollama's text for every authorization failure against a registry. */
export const UNAUTHORIZED = "unauthorized: access denied";

/** Everything needed to reach a repository; plain data, so it can be handed to the blob fetcher. */
export interface RegistryRef {
  /** `scheme://host[:port]` */
  base: string;
  /** `namespace/model` */
  repository: string;
  insecure: boolean;
  allowPrivate: boolean;
  credentials?: BasicCredentials;
  /** A bearer token from an earlier dance, reused until the registry refuses it. */
  token?: string;
  /** DNS check and headers timeout (REGISTRY_DNS_RESOLVER, REGISTRY_TIMEOUT_MS); defaults when absent. */
  network?: NetworkSettings;
}

const DEFAULT_NETWORK: NetworkSettings = { resolverUrl: DEFAULT_DNS_RESOLVER, timeoutMs: 30_000 };

type Body = Uint8Array | string | null;

export interface RegistryRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** Replayable bodies only: a request may be sent again after a 401 or a 307. */
  body?: Body;
  signal?: AbortSignal;
}

export class RegistryClient {
  readonly baseUrl: URL;
  private token: string | undefined;
  private basic = false;
  /** Host names whose addresses passed the DNS check during this client's life. */
  private readonly resolved = new Set<string>();

  constructor(
    readonly ref: RegistryRef,
    private readonly fetcher: typeof fetch = (input, init) => fetch(input, init),
  ) {
    this.baseUrl = new URL(ref.base);
    assertRegistryUrl(this.baseUrl, this.policy);
    this.token = ref.token;
  }

  get policy(): RegistryUrlPolicy {
    return { insecure: this.ref.insecure, allowPrivate: this.ref.allowPrivate };
  }

  /** The ref with the token learned so far (for handing the work to another isolate). */
  snapshot(): RegistryRef {
    return this.token ? { ...this.ref, token: this.token } : { ...this.ref };
  }

  url(path: string): URL {
    return new URL(`/v2/${this.ref.repository}/${path}`, this.baseUrl);
  }

  /** Sends a request, doing the token dance once on 401 and following redirects. */
  async send(req: RegistryRequest): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.follow(req);
      if (res.status !== 401) return res;
      const challenge = parseChallenge(res.headers.get("www-authenticate"));
      await discard(res);
      if (attempt > 0 || !challenge) throw new ApiError(403, UNAUTHORIZED);
      if (challenge.scheme === "basic") {
        if (!this.ref.credentials) throw new ApiError(403, UNAUTHORIZED);
        this.basic = true;
        this.token = undefined;
      } else {
        const url = tokenUrl(challenge, this.baseUrl, this.policy);
        this.token = await fetchToken(this.request, url, this.ref.credentials, req.signal);
      }
    }
  }

  /** The network as registry code sees it: the DNS check, headers timeout and named failures of network.ts. */
  private readonly request = (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> =>
    registryFetch(
      this.fetcher,
      new URL(String(input)),
      init,
      this.ref.network ?? DEFAULT_NETWORK,
      this.policy,
      this.resolved,
    );

  private authorization(): string | undefined {
    if (this.token) return `Bearer ${this.token}`;
    if (this.basic && this.ref.credentials) return basicAuthorization(this.ref.credentials);
    return undefined;
  }

  private async follow(req: RegistryRequest): Promise<Response> {
    let url = req.url;
    let method = req.method;
    let body = req.body ?? null;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      assertRegistryUrl(url, this.policy);
      const headers: Record<string, string> = { "user-agent": "corral (ollama-compatible)", ...req.headers };
      const auth = url.origin === this.baseUrl.origin ? this.authorization() : undefined;
      if (auth) headers.authorization = auth;
      const init: RequestInit = { method, headers, redirect: "manual" };
      if (body !== null) init.body = body;
      if (req.signal) init.signal = req.signal;
      const res = await this.request(url, init);
      const location = res.headers.get("location");
      if (![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
      await discard(res);
      url = new URL(location, url);
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
        method = "GET";
        body = null;
      }
    }
    throw new ApiError(502, `registry ${this.baseUrl.host} redirected more than ${MAX_REDIRECTS} times`);
  }

  /** The manifest's exact bytes (its digest is the model's digest) and the digest the registry claims for it. */
  async getManifest(tag: string, signal?: AbortSignal): Promise<{ bytes: Uint8Array; claimedDigest: string | null }> {
    const res = await this.send({
      method: "GET",
      url: this.url(`manifests/${encodeURIComponent(tag)}`),
      headers: { accept: `${DOCKER_MANIFEST_V2}, ${OCI_MANIFEST_V1}` },
      ...(signal ? { signal } : {}),
    }).catch((err) => {
      throw err instanceof RegistryNetworkError ? new RegistryNetworkError(`pull model manifest: ${err.message}`) : err;
    });
    if (res.status === 404) {
      await discard(res);
      throw new ApiError(404, "pull model manifest: file does not exist");
    }
    if (!res.ok) throw new ApiError(502, `pull model manifest: ${res.status}: ${await errorExcerpt(res)}`);
    const bytes = await readLimitedBytes(res, MAX_MANIFEST_BYTES);
    return { bytes, claimedDigest: res.headers.get("docker-content-digest") };
  }

  async blobExists(digest: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.send({ method: "HEAD", url: this.url(`blobs/${digest}`), ...(signal ? { signal } : {}) });
    await discard(res);
    if (res.status === 404) return false;
    if (res.ok) return true;
    throw new ApiError(502, `registry answered ${res.status} to HEAD of blob ${digest}`);
  }

  /**
   * Bytes `start..end` (inclusive) of a blob. The caller reads and checks the body; a registry that ignores the
   * Range header is accepted only when the range is the whole blob.
   */
  async getBlobRange(
    digest: string,
    start: number,
    end: number,
    size: number,
    signal?: AbortSignal,
  ): Promise<Response> {
    const whole = start === 0 && end === size - 1;
    const res = await this.send({
      method: "GET",
      url: this.url(`blobs/${digest}`),
      headers: whole ? {} : { range: `bytes=${start}-${end}` },
      ...(signal ? { signal } : {}),
    });
    if (res.status === 206 || (res.status === 200 && whole)) return res;
    const detail = res.status === 200 ? "the registry ignored the Range header" : await errorExcerpt(res);
    if (res.status === 200) await discard(res);
    throw new RegistryHttpError(res.status, `registry answered ${res.status} for blob ${digest}: ${detail}`);
  }

  /** Starts a blob upload; returns where to send the bytes. */
  async startUpload(signal?: AbortSignal): Promise<URL> {
    const url = this.url("blobs/uploads/");
    const res = await this.send({ method: "POST", url, ...(signal ? { signal } : {}) });
    if (res.status !== 202) {
      throw new ApiError(502, `registry refused to start an upload: ${res.status}: ${await errorExcerpt(res)}`);
    }
    await discard(res);
    return this.uploadLocation(res, url);
  }

  /** Sends one chunk at `offset`; returns the Location for the next request. */
  async uploadChunk(location: URL, bytes: Uint8Array, offset: number, signal?: AbortSignal): Promise<URL> {
    const res = await this.send({
      method: "PATCH",
      url: location,
      headers: {
        "content-type": "application/octet-stream",
        "content-range": `${offset}-${offset + bytes.byteLength - 1}`,
      },
      body: bytes,
      ...(signal ? { signal } : {}),
    });
    if (res.status !== 202)
      throw new RegistryHttpError(res.status, `upload chunk refused: ${res.status}: ${await errorExcerpt(res)}`);
    await discard(res);
    return this.uploadLocation(res, location);
  }

  /** Commits an upload under its digest. */
  async finishUpload(location: URL, digest: string, signal?: AbortSignal): Promise<void> {
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const res = await this.send({
      method: "PUT",
      url,
      headers: { "content-type": "application/octet-stream" },
      body: new Uint8Array(0),
      ...(signal ? { signal } : {}),
    });
    if (res.status !== 201 && res.status !== 204) {
      throw new ApiError(502, `registry refused blob ${digest}: ${res.status}: ${await errorExcerpt(res)}`);
    }
    await discard(res);
  }

  async putManifest(tag: string, text: string, mediaType: string, signal?: AbortSignal): Promise<void> {
    const res = await this.send({
      method: "PUT",
      url: this.url(`manifests/${encodeURIComponent(tag)}`),
      headers: { "content-type": mediaType },
      body: text,
      ...(signal ? { signal } : {}),
    });
    if (res.status !== 201 && res.status !== 200) {
      throw new ApiError(502, `registry responded with code ${res.status}: ${await errorExcerpt(res)}`);
    }
    await discard(res);
  }

  private uploadLocation(res: Response, requested: URL): URL {
    const location = res.headers.get("docker-upload-location") ?? res.headers.get("location");
    if (!location) throw new ApiError(502, "registry sent no upload location");
    const url = new URL(location, requested);
    assertRegistryUrl(url, this.policy);
    return url;
  }
}

/** A registry answer with its status, so callers can tell retryable failures (5xx, 429) from final ones. */
export class RegistryHttpError extends ApiError {
  constructor(
    readonly upstreamStatus: number,
    message: string,
  ) {
    super(502, message);
  }
}

export const isRetryableStatus = (status: number) => status === 408 || status === 429 || status >= 500;

/** Worth another attempt: a 5xx/429/408 answer, the network failing, or anything else that is not a refusal. */
export function isRetryableFailure(err: unknown): boolean {
  if (err instanceof RegistryHttpError) return isRetryableStatus(err.upstreamStatus);
  return err instanceof RegistryNetworkError || !(err instanceof ApiError);
}

/**
 * An in-memory OCI registry behind a `fetch` function, for Worker tests of pull and push: manifests, blobs with
 * Range support, chunked uploads with Content-Range checks. It counts the blob bytes it serves and can be told to
 * fail or lie, which a real registry cannot be made to do on demand.
 */
import { digestOf } from "@corral/protocol/digest";

export interface FakeRegistryFaults {
  /** Ranged GETs of this digest starting at or after this offset answer 503. */
  failRangesFrom?: { digest: string; offset: number };
  /** This digest is served with its first byte flipped (same length, wrong bytes). */
  corrupt?: string;
}

export class FakeRegistry {
  /** What the DNS-over-HTTPS resolver answers for the registry's name (a private one to play a rebinding name). */
  addresses = ["93.184.215.14"];
  readonly blobs = new Map<string, Uint8Array>();
  readonly manifests = new Map<string, { bytes: Uint8Array; mediaType: string }>();
  readonly served = new Map<string, number>();
  readonly requests: string[] = [];
  faults: FakeRegistryFaults = {};
  private uploads = new Map<string, Uint8Array[]>();
  private nextUpload = 1;

  constructor(readonly host = "registry.example.com") {}

  putBlob(bytes: Uint8Array): string {
    const digest = digestOf(bytes);
    this.blobs.set(digest, bytes);
    return digest;
  }

  putManifest(
    repository: string,
    tag: string,
    text: string,
    mediaType = "application/vnd.docker.distribution.manifest.v2+json",
  ) {
    this.manifests.set(`${repository}:${tag}`, { bytes: new TextEncoder().encode(text), mediaType });
  }

  servedBytes(digest: string): number {
    return this.served.get(digest) ?? 0;
  }

  readonly fetch = (async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const method = init?.method ?? "GET";
    const headers = new Headers(init?.headers);
    if (url.host === "cloudflare-dns.com") return this.dns(url);
    this.requests.push(`${method} ${url.pathname}`);
    if (url.host !== this.host) return new Response("wrong host", { status: 502 });
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (!m) return new Response("not found", { status: 404 });
    const [, repository, kind, ref] = m as unknown as [string, string, string, string];
    if (kind === "manifests") return this.manifest(method, repository, ref, init?.body);
    if (ref === "uploads/" && method === "POST") {
      const id = String(this.nextUpload++);
      this.uploads.set(id, []);
      return new Response(null, { status: 202, headers: { location: `/v2/${repository}/blobs/uploads/${id}` } });
    }
    const upload = /^uploads\/(\d+)$/.exec(ref);
    if (upload) return this.upload(method, repository, upload[1]!, url, headers, init?.body);
    return this.blob(method, ref, headers);
  }) as typeof fetch;

  /** The JSON DNS-over-HTTPS API for the registry's own name; every other name does not exist. */
  private dns(url: URL): Response {
    const name = url.searchParams.get("name");
    const type = url.searchParams.get("type") === "AAAA" ? 28 : 1;
    if (name !== new URL(`https://${this.host}`).hostname) return Response.json({ Status: 3 });
    const answer = this.addresses.filter((a) => a.includes(":") === (type === 28)).map((data) => ({ type, data }));
    return Response.json({ Status: 0, Answer: answer });
  }

  private manifest(method: string, repository: string, tag: string, body: unknown): Response {
    const key = `${repository}:${tag}`;
    if (method === "PUT") {
      this.manifests.set(key, {
        bytes: typeof body === "string" ? new TextEncoder().encode(body) : (body as Uint8Array),
        mediaType: "application/vnd.docker.distribution.manifest.v2+json",
      });
      return new Response(null, { status: 201 });
    }
    const found = this.manifests.get(key);
    if (!found) return Response.json({ errors: [{ code: "MANIFEST_UNKNOWN" }] }, { status: 404 });
    return new Response(method === "HEAD" ? null : found.bytes, {
      headers: { "content-type": found.mediaType, "docker-content-digest": digestOf(found.bytes) },
    });
  }

  private blob(method: string, digest: string, headers: Headers): Response {
    let bytes = this.blobs.get(digest);
    if (!bytes) return new Response(null, { status: 404 });
    if (method === "HEAD")
      return new Response(null, { status: 200, headers: { "content-length": String(bytes.length) } });
    if (this.faults.corrupt === digest) {
      bytes = bytes.slice();
      bytes[0] = bytes[0]! ^ 0xff;
    }
    const range = /^bytes=(\d+)-(\d+)$/.exec(headers.get("range") ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range ? Number(range[2]) : bytes.length - 1;
    const fail = this.faults.failRangesFrom;
    if (fail && fail.digest === digest && start >= fail.offset) return new Response("busy", { status: 503 });
    const slice = bytes.slice(start, end + 1);
    this.served.set(digest, this.servedBytes(digest) + slice.length);
    return new Response(slice, {
      status: range ? 206 : 200,
      headers: range ? { "content-range": `bytes ${start}-${end}/${bytes.length}` } : {},
    });
  }

  private upload(method: string, repository: string, id: string, url: URL, headers: Headers, body: unknown): Response {
    const chunks = this.uploads.get(id);
    if (!chunks) return new Response(null, { status: 404 });
    const received = chunks.reduce((n, c) => n + c.length, 0);
    if (method === "PATCH") {
      const bytes = body as Uint8Array;
      const range = /^(\d+)-(\d+)$/.exec(headers.get("content-range") ?? "");
      if (!range || Number(range[1]) !== received || Number(range[2]) !== received + bytes.length - 1) {
        return new Response("bad range", { status: 416 });
      }
      chunks.push(bytes.slice());
      return new Response(null, { status: 202, headers: { location: `/v2/${repository}/blobs/uploads/${id}` } });
    }
    if (method === "PUT") {
      const all = new Uint8Array(received);
      let offset = 0;
      for (const c of chunks) {
        all.set(c, offset);
        offset += c.length;
      }
      if (digestOf(all) !== url.searchParams.get("digest")) return new Response("digest invalid", { status: 400 });
      this.blobs.set(digestOf(all), all);
      this.uploads.delete(id);
      return new Response(null, { status: 201 });
    }
    return new Response(null, { status: 405 });
  }
}

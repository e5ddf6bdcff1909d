/**
 * The checks that stand between a tenant-named registry and the edge: SSRF guard, manifest validation, the auth
 * challenge and the realm rule of the token dance, progress formatting, credential encryption.
 */
import { ApiError } from "@corral/protocol";
import { describe, expect, it } from "vitest";
import { parseChallenge, tokenUrl } from "../src/registry-client/auth";
import { RegistryClient } from "../src/registry-client/client";
import { decryptSecret, encryptSecret, normalizeRegistryHost } from "../src/registry-client/credentials";
import { MAX_BLOB_SIZE, manifestBlobs, validateRegistryManifest } from "../src/registry-client/manifest";
import { blobProgress, shortDigest } from "../src/registry-client/progress";
import { assertRegistryUrl, parseIpv6, privateHostReason } from "../src/registry-client/ssrf";
import { Latest } from "../src/registry-client/watch";
import { MANIFEST_MEDIA_TYPE, MediaType } from "../src/store/manifest";

const hex = (c: string) => c.repeat(64);
const D1 = `sha256:${hex("a")}`;
const D2 = `sha256:${hex("b")}`;
const CONFIG = `sha256:${hex("c")}`;

describe("SSRF guard", () => {
  const blocked = (url: string, allowPrivate = false, insecure = true) => {
    try {
      assertRegistryUrl(new URL(url), { allowPrivate, insecure });
      return false;
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      return true;
    }
  };

  it.each([
    ["https://registry.ollama.ai/", false],
    ["https://example.com:5000/", false],
    ["http://127.0.0.1:5000/", true],
    ["http://127.8.9.10/", true],
    ["http://2130706433/", true], // decimal 127.0.0.1
    ["http://0x7f.1/", true], // hex short form
    ["http://0177.0.0.1/", true], // octal
    ["http://[::1]/", true],
    ["http://[::]/", true],
    ["http://0.0.0.0/", true],
    ["http://10.0.0.1/", true],
    ["http://10.255.255.255/", true],
    ["http://172.16.0.1/", true],
    ["http://172.31.255.254/", true],
    ["http://172.15.0.1/", false],
    ["http://172.32.0.1/", false],
    ["http://192.168.1.1/", true],
    ["http://192.169.0.1/", false],
    ["http://169.254.169.254/", true], // cloud metadata
    ["http://100.64.0.1/", true],
    ["http://224.0.0.1/", true],
    ["http://[fc00::1]/", true],
    ["http://[fd12:3456::1]/", true],
    ["http://[fe80::1]/", true],
    ["http://[::ffff:127.0.0.1]/", true], // IPv4-mapped loopback
    ["http://[::ffff:10.1.2.3]/", true],
    ["http://[64:ff9b::a00:1]/", true], // NAT64 of 10.0.0.1
    ["http://[2002:7f00:1::]/", true], // 6to4 of 127.0.0.1
    ["http://[2606:4700::1111]/", false],
    ["http://localhost:5000/", true],
    ["http://LOCALHOST./", true],
    ["http://registry.localhost/", true],
    ["http://printer.local/", true],
    ["http://metadata.google.internal/", true],
    ["http://registry:5000/", true], // single-label intranet name
    ["http://8.8.8.8/", false],
  ])("%s blocked=%s", (url, expected) => {
    expect(blocked(url)).toBe(expected);
  });

  it("allows private addresses only when the deployment opts in", () => {
    expect(blocked("http://127.0.0.1:5000/", true)).toBe(false);
    expect(blocked("http://[::1]:5000/", true)).toBe(false);
  });

  it.each([
    ["http://example.com/", false, true],
    ["http://example.com/", true, false],
    ["https://example.com/", false, false],
    ["ftp://example.com/", true, true],
    ["file:///etc/passwd", true, true],
  ])("%s with insecure=%s blocked=%s (https only unless insecure)", (url, insecure, expected) => {
    expect(blocked(url, true, insecure)).toBe(expected);
  });

  it("refuses credentials in the URL", () => {
    expect(blocked("https://user:pw@example.com/")).toBe(true);
  });

  it("parses IPv6 the way the guard needs", () => {
    expect(parseIpv6("::1")).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6("::ffff:1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(parseIpv6("::1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0, 0x0102, 0x0304]);
    expect(parseIpv6("1:2:3:4:5:6:7:8")).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseIpv6("1::2::3")).toBeNull();
    expect(privateHostReason("[zz::1]")).not.toBeNull();
  });
});

const manifest = (overrides: Record<string, unknown> = {}, layers?: unknown[]) =>
  new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_MEDIA_TYPE,
      config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: CONFIG, size: 100 },
      layers: layers ?? [
        { mediaType: MediaType.model, digest: D1, size: 1000 },
        { mediaType: MediaType.template, digest: D2, size: 10 },
      ],
      ...overrides,
    }),
  );

describe("registry manifest validation", () => {
  it("accepts an Ollama manifest and lists its blobs layers-first, each once", () => {
    const m = validateRegistryManifest(
      manifest({}, [
        { mediaType: MediaType.model, digest: D1, size: 1000 },
        { mediaType: MediaType.license, digest: D1, size: 1000 },
      ]),
    );
    expect(manifestBlobs(m).map((l) => l.digest)).toEqual([D1, CONFIG]);
  });

  it.each([
    ["not JSON", new TextEncoder().encode("{nope"), /not JSON/],
    ["schemaVersion 1", manifest({ schemaVersion: 1 }), /schemaVersion/],
    [
      "a manifest list",
      manifest({ mediaType: "application/vnd.docker.distribution.manifest.list.v2+json" }),
      /media type/,
    ],
    [
      "path traversal digest",
      manifest({}, [{ mediaType: MediaType.model, digest: "sha256:../../x", size: 1 }]),
      /invalid digest/,
    ],
    [
      "dash digest",
      manifest({}, [{ mediaType: MediaType.model, digest: `sha256-${hex("a")}`, size: 1 }]),
      /invalid digest/,
    ],
    [
      "upper-case digest",
      manifest({}, [{ mediaType: MediaType.model, digest: `sha256:${hex("A")}`, size: 1 }]),
      /invalid digest/,
    ],
    [
      "md5 digest",
      manifest({}, [{ mediaType: MediaType.model, digest: `md5:${"a".repeat(32)}`, size: 1 }]),
      /invalid digest/,
    ],
    ["negative size", manifest({}, [{ mediaType: MediaType.model, digest: D1, size: -1 }]), /invalid size/],
    ["fractional size", manifest({}, [{ mediaType: MediaType.model, digest: D1, size: 1.5 }]), /invalid size/],
    [
      "absurd size",
      manifest({}, [{ mediaType: MediaType.model, digest: D1, size: MAX_BLOB_SIZE + 1 }]),
      /invalid size/,
    ],
    ["string size", manifest({}, [{ mediaType: MediaType.model, digest: D1, size: "10" }]), /invalid size/],
    [
      "unknown media type",
      manifest({}, [{ mediaType: "application/x-sh", digest: D1, size: 1 }]),
      /unsupported media type/,
    ],
    [
      "MLX tensor layer",
      manifest({}, [{ mediaType: "application/vnd.ollama.image.tensor", digest: D1, size: 1 }]),
      /unsupported/,
    ],
    ["no layers", manifest({}, []), /no layers/],
    ["layers not a list", manifest({ layers: {} }), /not a list/],
    ["missing config", manifest({ config: undefined }), /config/],
    [
      "huge config",
      manifest({
        config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: CONFIG, size: 2 ** 30 },
      }),
      /invalid size/,
    ],
    [
      "one digest, two sizes",
      manifest({}, [
        { mediaType: MediaType.model, digest: D1, size: 1 },
        { mediaType: MediaType.license, digest: D1, size: 2 },
      ]),
      /two sizes/,
    ],
    [
      "too many layers",
      manifest(
        {},
        Array.from({ length: 65 }, () => ({ mediaType: MediaType.model, digest: D1, size: 1 })),
      ),
      /more than/,
    ],
  ])("refuses %s", (_label, bytes, message) => {
    let error: unknown;
    try {
      validateRegistryManifest(bytes);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(400);
    expect((error as ApiError).message).toMatch(/^invalid manifest: /);
    expect((error as ApiError).message).toMatch(message);
  });
});

describe("auth challenge and realm", () => {
  it("parses Bearer challenges with quoted commas", () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"',
      ),
    ).toEqual({
      scheme: "bearer",
      realm: "https://auth.example.com/token",
      service: "registry.example.com",
      scope: "repository:a/b:pull,push",
    });
    expect(parseChallenge('Basic realm="basic-realm"')).toEqual({ scheme: "basic", realm: "basic-realm" });
    expect(parseChallenge("Negotiate abc")).toBeNull();
    expect(parseChallenge(null)).toBeNull();
  });

  const registry = new URL("https://registry.example.com:5000");
  const policy = { insecure: false, allowPrivate: false };

  it.each([
    ["https://registry.example.com:5000/token", true],
    ["https://REGISTRY.example.com:5000/token", true],
    ["https://registry.example.com/token", false], // other port
    ["https://auth.example.com:5000/token", false], // other host
    ["https://registry.example.com:5000.evil.com/token", false],
    ["http://registry.example.com:5000/token", false], // https registry, http realm, not insecure
    ["not a url", false],
  ])("realm %s accepted=%s", (realm, ok) => {
    const run = () =>
      tokenUrl({ scheme: "bearer", realm, service: "svc", scope: "repository:a/b:pull" }, registry, policy);
    if (ok) {
      const url = run();
      expect(url.searchParams.get("service")).toBe("svc");
      expect(url.searchParams.getAll("scope")).toEqual(["repository:a/b:pull"]);
    } else {
      expect(run).toThrow(ApiError);
    }
  });

  function fakeRegistry(realm: string) {
    const calls: { url: string; authorization: string | null }[] = [];
    const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(String(input));
      // The DNS check before each request: a public address for every name.
      if (url.host === "cloudflare-dns.com")
        return Response.json({ Status: 0, Answer: [{ type: 1, data: "93.184.215.14" }] });
      const authorization = new Headers(init?.headers).get("authorization");
      calls.push({ url: url.toString(), authorization });
      if (url.pathname === "/token") return Response.json({ token: "tok-123" });
      if (authorization !== "Bearer tok-123") {
        return new Response("{}", {
          status: 401,
          headers: { "www-authenticate": `Bearer realm="${realm}",service="reg",scope="repository:ns/m:pull"` },
        });
      }
      return new Response("{}", { status: 200 });
    }) as typeof fetch;
    const client = new RegistryClient(
      {
        base: "https://registry.example.com",
        repository: "ns/m",
        insecure: false,
        allowPrivate: false,
        credentials: { username: "alice", password: "s3cret" },
      },
      fetcher,
    );
    return { calls, client };
  }

  it("does the dance on the registry's own host, sending credentials only to it", async () => {
    const { calls, client } = fakeRegistry("https://registry.example.com/token");
    const res = await client.send({ method: "GET", url: client.url("manifests/latest") });
    expect(res.status).toBe(200);
    expect(calls.map((c) => new URL(c.url).pathname)).toEqual([
      "/v2/ns/m/manifests/latest",
      "/token",
      "/v2/ns/m/manifests/latest",
    ]);
    expect(calls[1]!.authorization).toBe(`Basic ${btoa("alice:s3cret")}`);
    expect(new URL(calls[1]!.url).searchParams.get("scope")).toBe("repository:ns/m:pull");
    expect(calls[2]!.authorization).toBe("Bearer tok-123");
  });

  it("sends nothing to a foreign realm", async () => {
    const { calls, client } = fakeRegistry("https://evil.example.net/token");
    await expect(client.send({ method: "GET", url: client.url("manifests/latest") })).rejects.toThrow(/realm host/);
    expect(calls.map((c) => new URL(c.url).host)).toEqual(["registry.example.com"]);
  });
});

describe("progress and credentials", () => {
  it("formats blob progress as Ollama does", () => {
    expect(shortDigest(D1)).toBe("aaaaaaaaaaaa");
    expect(blobProgress("pulling", D1, 10, 4)).toEqual({
      status: "pulling aaaaaaaaaaaa",
      digest: D1,
      total: 10,
      completed: 4,
    });
    expect(blobProgress("pushing", D2, 0, 0).status).toBe("pushing bbbbbbbbbbbb");
  });

  it("normalises registry hosts", () => {
    expect(normalizeRegistryHost("Registry.Example.com:5000")).toBe("registry.example.com:5000");
    expect(normalizeRegistryHost("example.com:443")).toBe("example.com");
    expect(normalizeRegistryHost("example.com/path")).toBeNull();
    expect(normalizeRegistryHost("user@example.com")).toBeNull();
  });

  it("encrypts passwords bound to their tenant and registry", async () => {
    const sealed = await encryptSecret("key-1", "t_a", "reg.example.com", "hunter2");
    expect(sealed).not.toContain("hunter2");
    expect(await decryptSecret("key-1", "t_a", "reg.example.com", sealed)).toBe("hunter2");
    await expect(decryptSecret("key-1", "t_b", "reg.example.com", sealed)).rejects.toThrow(ApiError);
    await expect(decryptSecret("key-1", "t_a", "other.example.com", sealed)).rejects.toThrow(ApiError);
    await expect(decryptSecret("key-2", "t_a", "reg.example.com", sealed)).rejects.toThrow(ApiError);
  });
});

describe("latest-value progress", () => {
  it("yields only values that were set, the newest each time, and ends or fails with the producer", async () => {
    const latest = new Latest(0);
    const seen: number[] = [];
    const reading = (async () => {
      for await (const v of latest.changes(1)) seen.push(v);
    })();
    latest.set(5);
    await new Promise((r) => setTimeout(r, 20));
    latest.set(6);
    latest.set(7);
    latest.end();
    await reading;
    expect(seen[0]).toBe(5);
    expect(seen.at(-1)).toBe(7);
    expect(seen).not.toContain(0);

    const failing = new Latest(0);
    failing.fail(new Error("boom"));
    await expect(
      (async () => {
        for await (const _ of failing.changes(1)) {
          // nothing
        }
      })(),
    ).rejects.toThrow("boom");
  });
});

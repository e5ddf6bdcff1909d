/**
 * Pull and push across processes: the stack as `npm start` runs it (with loopback registries allowed), Debian's
 * docker-registry on loopback, a counting proxy in front of it, and scripted servers for the faults a real
 * registry cannot be made to commit.
 */
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningStack, startStack } from "./harness";
import { TestTenant } from "./harness-tenant";
import {
  type CountingProxy,
  type DockerRegistry,
  flipByte,
  relay,
  type ScriptedServer,
  startCountingProxy,
  startDockerRegistry,
  startScriptedServer,
} from "./registry-server";

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const CREDENTIALS_KEY = "e2e-credentials-key";

interface Line {
  status?: string;
  digest?: string;
  total?: number;
  completed?: number;
  error?: string;
}

let stack: RunningStack;
let registry: DockerRegistry;
let proxy: CountingProxy;
const servers: ScriptedServer[] = [];
let tenantB: TestTenant;

const auth = (key: string) => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });

async function api(key: string, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${stack.url}${path}`, {
    method,
    headers: auth(key),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function lines(res: Response): Promise<Line[]> {
  return (await res.text())
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Line);
}

async function pull(key: string, model: string): Promise<Line[]> {
  return lines(await api(key, "POST", "/api/pull", { model, insecure: true }));
}

async function push(key: string, model: string): Promise<Line[]> {
  return lines(await api(key, "POST", "/api/push", { model, insecure: true }));
}

async function copy(key: string, source: string, destination: string) {
  const res = await api(key, "POST", "/api/copy", { source, destination });
  expect(res.status, await res.clone().text()).toBe(200);
}

async function models(key: string): Promise<{ name: string; digest: string }[]> {
  return ((await (await api(key, "GET", "/api/tags")).json()) as { models: { name: string; digest: string }[] }).models;
}

async function registryManifest(
  repository: string,
): Promise<{ layers: { mediaType: string; digest: string; size: number }[] }> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/latest`, {
    headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { layers: { mediaType: string; digest: string; size: number }[] };
}

async function until(what: string, check: () => boolean, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  registry = await startDockerRegistry();
  proxy = await startCountingProxy(Number(registry.host.split(":")[1]));
  stack = await startStack({
    env: {
      ALLOW_PRIVATE_REGISTRIES: "true",
      CREDENTIALS_KEY,
      PULL_PART_SIZE: String(PART),
      PULL_CONCURRENCY: "2",
    },
  });
  tenantB = await TestTenant.create(stack, "b");
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  await Promise.all(servers.map((s) => s.stop()));
  await proxy?.stop();
  await registry?.stop();
});

describe("pull and push against docker-registry", () => {
  it("pushes tiny from tenant A and pulls it into tenant B with the same digest", async () => {
    const pushed = `${registry.host}/corral/tiny:latest`;
    await copy(stack.key, "tiny", pushed);
    const pushLines = await push(stack.key, pushed);
    expect(pushLines.at(-1), JSON.stringify(pushLines)).toEqual({ status: "success" });
    expect(pushLines[0]).toEqual({ status: "retrieving manifest" });
    const starts = pushLines.filter((l) => l.status === "starting upload");
    expect(starts.length).toBeGreaterThan(0);
    for (const s of starts) {
      expect(s.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(pushLines).toContainEqual({
        status: `pushing ${s.digest!.slice(7, 19)}`,
        digest: s.digest,
        total: s.total,
        completed: s.total,
      });
    }
    expect(pushLines.at(-2)).toEqual({ status: "pushing manifest" });
    const tinyDigest = (await models(stack.key)).find((m) => m.name === "tiny:latest")!.digest;
    const head = await fetch(`${registry.url}/v2/corral/tiny/manifests/latest`, {
      method: "HEAD",
      headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    expect(head.headers.get("docker-content-digest")).toBe(`sha256:${tinyDigest}`);

    // Tenant B pulls it through the proxy, i.e. under another name, with the official client.
    const name = `${proxy.host}/corral/tiny:latest`;
    const ollama = tenantB.ollama;
    const statuses: string[] = [];
    for await (const p of await ollama.pull({ model: name, insecure: true, stream: true })) statuses.push(p.status);
    expect(statuses[0]).toBe("pulling manifest");
    expect(statuses.filter((s) => /^pulling [0-9a-f]{12}$/.test(s)).length).toBeGreaterThan(0);
    expect(statuses.slice(-3)).toEqual(["verifying sha256 digest", "writing manifest", "success"]);
    expect((await models(tenantB.key)).find((m) => m.name === name)?.digest).toBe(tinyDigest);

    // A second pull finds everything in place and fetches no blob byte; stream:false answers the last object.
    proxy.reset();
    expect(await ollama.pull({ model: name, insecure: true, stream: false })).toEqual({ status: "success" });
    const manifest = await registryManifest("corral/tiny");
    for (const l of manifest.layers) expect(proxy.served(l.digest)).toBe(0);

    // Chat on the pulled model, once the inference path works (probed on tenant A's original, with a deadline).
    const chat = async (key: string, model: string) => {
      const res = await fetch(`${stack.url}/api/chat`, {
        method: "POST",
        headers: auth(key),
        body: JSON.stringify({
          model,
          messages: [{ role: "user", content: "hi" }],
          stream: false,
          options: { num_predict: 4, seed: 1, temperature: 0 },
        }),
        signal: AbortSignal.timeout(60_000),
      });
      return res.ok ? ((await res.json()) as { done: boolean; message: { content: string } }) : null;
    };
    const reference = await chat(stack.key, "tiny").catch(() => null);
    if (reference) {
      const reply = await chat(tenantB.key, name);
      expect(reply?.done).toBe(true);
      expect(reply?.message.content).toBe(reference.message.content);
    } else {
      console.warn("inference on tiny failed for tenant A; skipping the chat-on-pulled-model assertion");
    }
  });

  it("resumes an interrupted pull, downloading only what is missing", async () => {
    // A model with one layer big enough for four parts: tiny plus a 16 MiB license.
    const license = "corral license line for the resumable pull test\n"
      .repeat(Math.ceil((16 * MiB) / 48))
      .slice(0, 16 * MiB);
    const create = await api(stack.key, "POST", "/api/create", { model: "big", from: "tiny", license, stream: false });
    expect(create.status, await create.clone().text()).toBe(200);
    const pushedName = `${registry.host}/corral/big:latest`;
    await copy(stack.key, "big", pushedName);
    expect((await push(stack.key, pushedName)).at(-1)).toEqual({ status: "success" });
    const big = (await registryManifest("corral/big")).layers.find(
      (l) => l.mediaType === "application/vnd.ollama.image.license",
    )!;
    expect(big.size).toBe(16 * MiB);

    // Parts 1-2 flow; parts 3+ are held. With two parts in flight, parts 3 and 4 are requested only once
    // parts 1 and 2 are stored, so two held requests mean exactly two parts are durable.
    proxy.reset();
    proxy.hold(big.digest, 2 * PART);
    const name = `${proxy.host}/corral/big:latest`;
    const abort = new AbortController();
    const res = await fetch(`${stack.url}/api/pull`, {
      method: "POST",
      headers: auth(tenantB.key),
      body: JSON.stringify({ model: name, insecure: true }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    void (async () => {
      for (;;) if ((await reader.read()).done) break;
    })().catch(() => {});
    await until("two held part requests", () => proxy.held().length === 2);
    const firstRun = proxy.served(big.digest);
    expect(firstRun).toBe(2 * PART);
    abort.abort();
    // The edge notices the client left and drops its registry requests.
    await until("the held requests to be dropped by the edge", () => proxy.held().every((h) => h.closedByClient));
    proxy.releaseHeld();
    expect((await models(tenantB.key)).some((m) => m.name === name)).toBe(false);

    proxy.reset();
    // Progress reports the latest count, so a reader that comes late (a loaded machine) would first see bytes of
    // the next part. The blob's bytes are held until the pull has reported the blob: its first line is then exactly
    // where it resumes.
    proxy.hold(big.digest, 0);
    const res2 = await api(tenantB.key, "POST", "/api/pull", { model: name, insecure: true });
    const reader2 = res2.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const readMore = async () => {
      const { done, value } = await reader2.read();
      text += decoder.decode(value, { stream: !done });
      return !done;
    };
    while (!text.includes(`"digest":"${big.digest}"`) && (await readMore())) {}
    proxy.passHeld();
    while (await readMore()) {}
    const again = text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as Line);
    expect(again.at(-1), JSON.stringify(again.filter((l) => l.error))).toEqual({ status: "success" });
    const bigLines = again.filter((l) => l.digest === big.digest);
    // At least the two durable parts are kept; a part the edge finished between the abort and noticing it may be
    // kept too. Whatever was kept is not fetched again: the registry serves exactly the rest.
    const resumedFrom = bigLines[0]?.completed ?? 0;
    expect(resumedFrom).toBeGreaterThanOrEqual(2 * PART);
    expect(resumedFrom % PART).toBe(0);
    expect(resumedFrom).toBeLessThan(big.size);
    expect(bigLines.at(-1)?.completed).toBe(big.size);
    expect(proxy.served(big.digest)).toBe(big.size - resumedFrom);
    const bigDigest = (await models(stack.key)).find((m) => m.name === "big:latest")!.digest;
    expect((await models(tenantB.key)).find((m) => m.name === name)?.digest).toBe(bigDigest);
  });

  // The deployed stack binds the BlobFetcher Durable Object (wrangler.toml): a config without it must fail here.
  it("shares one download between two pulls of the same blob", async () => {
    const license = "shared download test line, padded to a round length.\n"
      .repeat(Math.ceil((11 * MiB) / 52))
      .slice(0, 11 * MiB);
    const create = await api(stack.key, "POST", "/api/create", {
      model: "shared",
      from: "tiny",
      license,
      stream: false,
    });
    expect(create.status, await create.clone().text()).toBe(200);
    const pushedName = `${registry.host}/corral/shared:latest`;
    await copy(stack.key, "shared", pushedName);
    expect((await push(stack.key, pushedName)).at(-1)).toEqual({ status: "success" });
    const big = (await registryManifest("corral/shared")).layers.find(
      (l) => l.mediaType === "application/vnd.ollama.image.license",
    )!;

    proxy.reset();
    proxy.hold(big.digest, PART);
    const name = `${proxy.host}/corral/shared:latest`;
    const first = pull(tenantB.key, name);
    await until("the first pull to be mid-download", () => proxy.held().length > 0);
    // The second pull attaches to the running download: it reports the same blob without asking the registry.
    const res = await api(tenantB.key, "POST", "/api/pull", { model: name, insecure: true });
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes(`"digest":"${big.digest}"`)) {
      const { done, value } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    const heldBefore = proxy.held().length;
    proxy.passHeld();
    const rest = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return seen;
        seen += new TextDecoder().decode(value);
      }
    })();
    const [firstLines, secondText] = await Promise.all([first, rest]);
    expect(firstLines.at(-1)).toEqual({ status: "success" });
    expect(
      secondText
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Line)
        .at(-1),
    ).toEqual({ status: "success" });
    expect(heldBefore).toBeLessThanOrEqual(2);
    expect(proxy.served(big.digest)).toBe(big.size);
  });

  it("fails verification of a blob corrupted inside the registry and writes nothing", async () => {
    const pushedName = `${registry.host}/corral/scripted:latest`;
    await copy(stack.key, "scripted", pushedName);
    expect((await push(stack.key, pushedName)).at(-1)).toEqual({ status: "success" });
    const weights = (await registryManifest("corral/scripted")).layers.find(
      (l) => l.mediaType === "application/vnd.ollama.image.model",
    )!;
    const file = registry.blobPath(weights.digest);
    flipByte(file, Math.floor(weights.size / 2));
    try {
      const result = await pull(tenantB.key, pushedName);
      expect(result.map((l) => l.status)).toContain("verifying sha256 digest");
      expect(result.at(-1)?.error).toMatch(
        new RegExp(`digest mismatch, file must be downloaded again: want ${weights.digest}`),
      );
      expect((await models(tenantB.key)).some((m) => m.name === pushedName)).toBe(false);
      const head = await fetch(`${stack.url}/api/blobs/${weights.digest}`, {
        method: "HEAD",
        headers: auth(tenantB.key),
      });
      expect(head.status).toBe(404);
    } finally {
      flipByte(file, Math.floor(weights.size / 2));
    }
  });

  it("refuses a manifest whose layer digest is sha256:../../x", async () => {
    const evil = await startScriptedServer((req, res) => {
      if (req.url === "/v2/evil/model/manifests/latest") {
        res.writeHead(200, { "content-type": "application/vnd.docker.distribution.manifest.v2+json" });
        res.end(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.docker.distribution.manifest.v2+json",
            config: {
              mediaType: "application/vnd.docker.container.image.v1+json",
              digest: `sha256:${"0".repeat(64)}`,
              size: 2,
            },
            layers: [{ mediaType: "application/vnd.ollama.image.model", digest: "sha256:../../x", size: 10 }],
          }),
        );
        return;
      }
      res.writeHead(404).end();
    });
    servers.push(evil);
    const result = await pull(tenantB.key, `${evil.host}/evil/model:latest`);
    expect(result.map((l) => l.status).filter(Boolean)).toEqual(["pulling manifest"]);
    expect(result.at(-1)?.error).toBe('invalid manifest: layer 0 has an invalid digest "sha256:../../x"');
    expect(evil.requests.map((r) => r.url)).toEqual(["/v2/evil/model/manifests/latest"]);
    expect((await models(tenantB.key)).some((m) => m.name.startsWith(evil.host))).toBe(false);
  });

  it("sends no token request to a foreign auth realm", async () => {
    const foreign = await startScriptedServer((_req, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end('{"token":"x"}'),
    );
    const registryWithForeignRealm = await startScriptedServer((_req, res) => {
      res.writeHead(401, {
        "www-authenticate": `Bearer realm="http://${foreign.host}/token",service="evil",scope="repository:corral/tiny:pull"`,
      });
      res.end();
    });
    servers.push(foreign, registryWithForeignRealm);
    await api(tenantB.key, "PUT", `/api/registry-credentials/${registryWithForeignRealm.host}`, {
      username: "bob",
      password: "do-not-leak",
    });
    const result = await pull(tenantB.key, `${registryWithForeignRealm.host}/corral/tiny:latest`);
    expect(result.at(-1)?.error).toMatch(/realm host .* does not match/);
    expect(foreign.requests).toEqual([]);
    expect(registryWithForeignRealm.requests.every((r) => r.authorization === undefined)).toBe(true);
  });

  it("does the token dance with the tenant's stored credentials on the registry's own host", async () => {
    const registryPort = Number(registry.host.split(":")[1]);
    const basic = `Basic ${Buffer.from("alice:wonderland").toString("base64")}`;
    const guarded = await startScriptedServer((req, res, self) => {
      if (req.url?.startsWith("/token")) {
        if (req.headers.authorization !== basic) return void res.writeHead(401).end();
        return void res.writeHead(200, { "content-type": "application/json" }).end('{"token":"t0ken"}');
      }
      if (req.headers.authorization !== "Bearer t0ken") {
        res.writeHead(401, {
          "www-authenticate": `Bearer realm="http://${self.host}/token",service="corral-test",scope="repository:corral/tiny:pull"`,
        });
        return void res.end();
      }
      relay(req, res, registryPort);
    });
    servers.push(guarded);
    const name = `${guarded.host}/corral/tiny:latest`;
    expect((await pull(tenantB.key, name)).at(-1)?.error).toBe("unauthorized: access denied");

    const put = await api(tenantB.key, "PUT", `/api/registry-credentials/${guarded.host}`, {
      username: "alice",
      password: "wonderland",
    });
    expect(put.status).toBe(200);
    const listed = await (await api(tenantB.key, "GET", "/api/registry-credentials")).text();
    expect(listed).toContain("alice");
    expect(listed).not.toContain("wonderland");

    expect((await pull(tenantB.key, name)).at(-1)).toEqual({ status: "success" });
    const tokenRequests = guarded.requests.filter((r) => r.url.startsWith("/token"));
    expect(tokenRequests.at(-1)?.authorization).toBe(basic);
    expect(new URL(`http://x${tokenRequests.at(-1)!.url}`).searchParams.get("scope")).toBe(
      "repository:corral/tiny:pull",
    );
  });
});

describe("a registry that cannot be reached, through npm start", () => {
  // On a machine without a network the diagnosis cannot reach the DNS-over-HTTPS resolver either.
  const lookupFailed = (host: string) =>
    new RegExp(
      `dial tcp: lookup ${host.replaceAll(".", "\\.")}: (no such host|cannot resolve or connect \\(resolver cloudflare-dns\\.com unreachable; is this machine offline\\?\\))$`,
    );

  it("names the host and the cause of a failed pull, streamed and not", async () => {
    const model = "no-such-host.invalid/library/llama3.2";
    const prefix = 'pull model manifest: Get "https://no-such-host.invalid/v2/library/llama3.2/manifests/latest": ';
    const res = await api(stack.key, "POST", "/api/pull", { model, stream: false });
    expect(res.status).toBe(502);
    const { error } = (await res.json()) as { error: string };
    expect(error.startsWith(prefix), error).toBe(true);
    expect(error.slice(prefix.length)).toMatch(lookupFailed("no-such-host.invalid"));

    const ollama = new Ollama({ host: stack.url, headers: { Authorization: `Bearer ${stack.key}` } });
    const statuses: string[] = [];
    const streamed = async () => {
      for await (const p of await ollama.pull({ model, stream: true })) statuses.push(p.status);
    };
    await expect(streamed()).rejects.toThrow(error);
    expect(statuses).toEqual(["pulling manifest"]);
    expect((await models(stack.key)).some((m) => m.name.startsWith("no-such-host.invalid"))).toBe(false);
  });

  it("names a refused connection on push", async () => {
    const closed = await startScriptedServer(() => {});
    const port = Number(closed.host.split(":")[1]);
    await closed.stop();
    const name = `127.0.0.1:${port}/corral/tiny:latest`;
    await copy(stack.key, "tiny", name);
    const lines = await push(stack.key, name);
    expect(lines[0]).toEqual({ status: "retrieving manifest" });
    expect(lines.at(-1)?.error).toMatch(
      new RegExp(
        `^Head "http://127\\.0\\.0\\.1:${port}/v2/corral/tiny/blobs/sha256:[0-9a-f]{64}": dial tcp 127\\.0\\.0\\.1:${port}: connect: connection refused \\(or host unreachable\\)$`,
      ),
    );
  });
});

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import {
  consoleProgress,
  describeParts,
  type Fetch,
  parseArgs,
  progressBar,
  silentProgress,
  UploadInterrupted,
  type UploadOptions,
  uploadFile,
} from "./upload-lib";

const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** An in-memory corral speaking the blob APIs, strict about order and sizes like the real edge. */
class FakeCorral {
  blobs = new Map<string, Uint8Array>();
  uploads = new Map<string, { digest: string; size: number; partSize: number; parts: Uint8Array[] }>();
  log: string[] = [];
  /** Called before a request is answered; may throw to simulate a dropped connection. */
  fault: (method: string, path: string, phase: "before" | "after") => void = () => {};

  fetch: Fetch = async (url, init = {}) => {
    const method = init.method ?? "GET";
    const path = new URL(url).pathname;
    this.fault(method, path, "before");
    const body = init.body
      ? new Uint8Array(await new Response(init.body as ConstructorParameters<typeof Response>[0]).arrayBuffer())
      : undefined;
    const res = this.handle(method, path, body, init.headers as Record<string, string>);
    this.log.push(`${method} ${path.replace(/sha256:[0-9a-f]{64}/, "D")} ${res.status}`);
    this.fault(method, path, "after");
    return res;
  };

  private status(id: string) {
    const u = this.uploads.get(id)!;
    const count = Math.ceil(u.size / u.partSize);
    return {
      upload_id: id,
      part_size: u.partSize,
      part_count: count,
      parts_done: u.parts.map((_, i) => i + 1),
      next_part: u.parts.length < count ? u.parts.length + 1 : null,
    };
  }

  private handle(
    method: string,
    path: string,
    body: Uint8Array | undefined,
    headers: Record<string, string>,
  ): Response {
    const json = (v: unknown, status = 200) => Response.json(v, { status });
    let m = /^\/api\/blobs\/([^/]+)$/.exec(path);
    if (m && method === "HEAD") return new Response(null, { status: this.blobs.has(m[1]!) ? 200 : 404 });
    if (m && method === "POST") {
      expect(headers["content-length"]).toBe(String(body!.length));
      if (sha(body!) !== m[1]) return json({ error: "digest mismatch" }, 400);
      this.blobs.set(m[1]!, body!);
      return new Response(null, { status: 201 });
    }
    m = /^\/api\/blobs\/([^/]+)\/uploads$/.exec(path);
    if (m && method === "POST") {
      const { size, part_size } = JSON.parse(new TextDecoder().decode(body)) as { size: number; part_size: number };
      const id = `up${this.uploads.size + 1}`;
      this.uploads.set(id, { digest: m[1]!, size, partSize: part_size, parts: [] });
      return json(this.status(id), 201);
    }
    m = /^\/api\/blobs\/[^/]+\/uploads\/([^/]+)(\/parts\/(\d+)|\/complete)?$/.exec(path);
    const u = m ? this.uploads.get(m[1]!) : undefined;
    if (!m || !u) return json({ error: "upload not found" }, 404);
    if (method === "GET") return json(this.status(m[1]!));
    if (m[3]) {
      const n = Number(m[3]);
      if (n !== u.parts.length + 1) return json({ error: "out of order" }, 409);
      expect(headers["content-length"]).toBe(String(body!.length));
      u.parts.push(body!);
      return json(this.status(m[1]!));
    }
    const whole = Buffer.concat(u.parts);
    if (sha(whole) !== u.digest) return json({ error: "digest mismatch" }, 400);
    this.blobs.set(u.digest, new Uint8Array(whole));
    this.uploads.delete(m[1]!);
    return json({ status: "success" }, 201);
  }
}

let dir = "";
let file = "";
const data = Uint8Array.from({ length: 350 }, (_, i) => (i * 31) & 0xff);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-upload-"));
  file = join(dir, "model.gguf");
  await writeFile(file, data);
});

function options(extra: Partial<UploadOptions> = {}): UploadOptions {
  return {
    host: "http://corral.test",
    key: "k",
    file,
    multipartThreshold: 0,
    partSize: 100,
    stateDir: join(dir, "state"),
    retries: 0,
    ...extra,
  };
}

describe("upload CLI logic", () => {
  it("parses arguments, sizes and environment defaults", () => {
    const o = parseArgs(
      ["--part-size", "8MiB", "--multipart-threshold", "1g", "f.gguf"],
      { CORRAL_API_KEY: "x" },
      "/h",
    );
    expect(o).toMatchObject({
      host: "http://127.0.0.1:11434",
      key: "x",
      file: "f.gguf",
      partSize: 8 * 1024 * 1024,
      multipartThreshold: 1024 ** 3,
      stateDir: "/h/.corral/uploads",
    });
    expect(() => parseArgs(["f.gguf"], {}, "/h")).toThrow(/API key/);
    expect(() => parseArgs(["--key", "k"], {}, "/h")).toThrow(/usage/);
    expect(() => parseArgs(["--key", "k", "--part-size", "lots", "f"], {}, "/h")).toThrow(/not a size/);
    expect(parseArgs(["--key", "k", "--stop-after-parts", "2", "f"], {}, "/h").stopAfterParts).toBe(2);
    expect(() => parseArgs(["--key", "k", "--stop-after-parts", "x", "f"], {}, "/h")).toThrow(/not a count/);
  });

  it("sends a small file in one POST, and nothing when the server has it", async () => {
    const server = new FakeCorral();
    const first = await uploadFile(options({ multipartThreshold: 1000 }), server.fetch, silentProgress);
    expect(first).toMatchObject({ method: "simple", digest: sha(data) });
    expect(server.blobs.get(sha(data))).toEqual(data);
    server.log = [];
    const again = await uploadFile(options({ multipartThreshold: 1000 }), server.fetch, silentProgress);
    expect(again.method).toBe("exists");
    expect(server.log).toEqual(["HEAD /api/blobs/D 200"]);
  });

  it("uploads part by part above the threshold", async () => {
    const server = new FakeCorral();
    const result = await uploadFile(options(), server.fetch, silentProgress);
    expect(result).toMatchObject({ method: "multipart", partsSent: 4, resumed: false });
    expect(server.blobs.get(sha(data))).toEqual(data);
    expect(existsSync(join(dir, "state", `${sha(data).replace(":", "-")}.json`))).toBe(false);
  });

  it("resumes after an interruption by asking which parts are done", async () => {
    const server = new FakeCorral();
    server.fault = (method, path, phase) => {
      if (method === "PUT" && path.endsWith("/parts/3") && phase === "before") throw new Error("connection reset");
    };
    await expect(uploadFile(options(), server.fetch, silentProgress)).rejects.toThrow(/connection reset/);
    expect(server.blobs.size).toBe(0);

    server.fault = () => {};
    server.log = [];
    const result = await uploadFile(options(), server.fetch, silentProgress);
    expect(result).toMatchObject({ resumed: true, partsSent: 2 });
    expect(server.log.filter((l) => l.startsWith("PUT"))).toEqual([
      "PUT /api/blobs/D/uploads/up1/parts/3 200",
      "PUT /api/blobs/D/uploads/up1/parts/4 200",
    ]);
    expect(server.blobs.get(sha(data))).toEqual(data);
  });

  it("stops after N parts when asked, then resumes saying what it skips", async () => {
    const server = new FakeCorral();
    await expect(uploadFile(options({ stopAfterParts: 2 }), server.fetch, silentProgress)).rejects.toBeInstanceOf(
      UploadInterrupted,
    );
    expect(server.log.filter((l) => l.startsWith("PUT"))).toHaveLength(2);
    expect(server.blobs.size).toBe(0);

    const notes: string[] = [];
    const result = await uploadFile(options(), server.fetch, { ...silentProgress, note: (m) => notes.push(m) });
    expect(result).toMatchObject({ resumed: true, partsSkipped: 2, partsSent: 2 });
    expect(notes).toEqual([expect.stringMatching(/^resuming upload up1: the server has parts 1-2 of 4 \(200 bytes\)/)]);
    expect(server.blobs.get(sha(data))).toEqual(data);
  });

  it.each([
    [[], "no parts"],
    [[1], "part 1"],
    [[1, 2, 3], "parts 1-3"],
    [[1, 2, 4, 6, 7], "parts 1-2, 4, 6-7"],
  ])("describes parts %j as %s", (parts, text) => {
    expect(describeParts(parts)).toBe(text);
  });

  it("recovers when a part landed but its answer was lost", async () => {
    const server = new FakeCorral();
    let dropped = false;
    server.fault = (method, path, phase) => {
      if (!dropped && method === "PUT" && path.endsWith("/parts/2") && phase === "after") {
        dropped = true;
        throw new Error("socket hang up");
      }
    };
    const result = await uploadFile(options({ retries: 2 }), server.fetch, silentProgress);
    expect(result.method).toBe("multipart");
    expect(server.log).toContain("PUT /api/blobs/D/uploads/up1/parts/2 409");
    expect(server.blobs.get(sha(data))).toEqual(data);
  });

  it("stops on a final error such as a refused key", async () => {
    const server = new FakeCorral();
    const fetch401: Fetch = async () => new Response(null, { status: 401 });
    await expect(uploadFile(options(), fetch401, silentProgress)).rejects.toThrow(/unauthorized/);
    expect(server.blobs.size).toBe(0);
  });

  it("draws a bar on a terminal and plain lines elsewhere", () => {
    expect(progressBar(0, 100, 10)).toBe("[..........]   0% 0.00/0.00 GiB");
    expect(progressBar(50, 100, 10)).toBe("[#####.....]  50% 0.00/0.00 GiB");
    expect(progressBar(2 * 1024 ** 3, 2 * 1024 ** 3, 4)).toBe("[####] 100% 2.00/2.00 GiB");
    const lines: string[] = [];
    const plain = consoleProgress({ write: (s: string) => lines.push(s), isTTY: false });
    plain.phase("uploading", 100);
    for (let i = 0; i < 20; i++) plain.advance(5);
    expect(lines).toHaveLength(11); // 0%, 10%, ... 100%
    expect(lines.at(-1)).toBe("uploading 100% (100/100 bytes)\n");
    const tty: string[] = [];
    const bar = consoleProgress({ write: (s: string) => tty.push(s), isTTY: true });
    bar.phase("hashing", 10);
    bar.advance(10);
    expect(tty.at(-1)).toMatch(/^\rhashing +\[#+\] 100%/);
  });
});

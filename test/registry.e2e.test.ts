/**
 * The model registry across processes: the stack as `npm start` runs it, driven the way Ollama's clients drive
 * Ollama — blobs POSTed chunked without a length (the Go CLI's `ollama create`, the Python client) or with one,
 * then the official `ollama` npm client's create/show/copy/list/delete — and the operator's upload CLI
 * (scripts/upload.ts) interrupted and resumed as a child process.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgmlType, kv, writeGguf } from "@corral/protocol";
import type { CreateRequest, Ollama, ProgressResponse } from "ollama";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { writeTinyModel } from "../gpu-runner/src/tiny-model/index";
import { repoRoot } from "./harness";
import { blobDigest, TestTenant } from "./harness-tenant";

const { url, adminKey } = inject("stack");
const MiB = 1024 * 1024;

/** As the Go and Python clients send a file: a stream, chunked, no Content-Length. */
function chunkedBody(bytes: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunk));
      offset += chunk;
    },
  });
}

async function postBlob(tenant: TestTenant, digest: string, bytes: Uint8Array, how: "chunked" | "length") {
  const auth = { authorization: `Bearer ${tenant.key}` };
  const init =
    how === "chunked"
      ? { method: "POST", headers: auth, body: chunkedBody(bytes), duplex: "half" }
      : { method: "POST", headers: { ...auth, "content-length": String(bytes.length) }, body: bytes };
  return fetch(`${url}/api/blobs/${digest}`, init as RequestInit);
}

async function headBlob(tenant: TestTenant, digest: string): Promise<number> {
  return (
    await fetch(`${url}/api/blobs/${digest}`, { method: "HEAD", headers: { authorization: `Bearer ${tenant.key}` } })
  ).status;
}

/** ollama-js 0.6 types `create` without `files`, but sends whatever it is given. */
type CreateWithFiles = CreateRequest & { files: Record<string, string> };

function createQuietly(ollama: Ollama, request: CreateWithFiles): Promise<ProgressResponse> {
  return ollama.create({ ...request, stream: false } as CreateRequest & { stream: false });
}

let a: TestTenant;
let b: TestTenant;
let workDir = "";

beforeAll(async () => {
  a = await TestTenant.create({ url, adminKey }, "registry-a");
  b = await TestTenant.create({ url, adminKey }, "registry-b");
  workDir = mkdtempSync(join(tmpdir(), "corral-registry-e2e-"));
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe("the registry through Ollama's client flow", () => {
  const tiny = writeTinyModel({ seed: 7 });
  const digest = blobDigest(tiny);

  it("uploads the tiny GGUF chunked and with a length, refusing bytes that do not match", async () => {
    expect(await headBlob(a, digest)).toBe(404);
    const wrong = await postBlob(a, blobDigest(new Uint8Array([1, 2, 3])), tiny, "chunked");
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { error: string }).error).toMatch(/^digest mismatch/);

    expect((await postBlob(a, digest, tiny, "chunked")).status).toBe(201);
    expect(await headBlob(a, digest)).toBe(200);
    expect((await postBlob(a, digest, tiny, "length")).status).toBe(200);
    // Tenant B has not uploaded it: it does not exist for B, whatever A did.
    expect(await headBlob(b, digest)).toBe(404);
    expect((await postBlob(b, digest, tiny, "length")).status).toBe(201);
    expect(await headBlob(b, digest)).toBe(200);
  });

  it.each(["length", "chunked"] as const)(
    "answers 200 to a re-upload of a blob of a few MB it has (%s), as Ollama does (issue #9)",
    async (how) => {
      const bytes = randomBytes(6 * MiB);
      const blob = blobDigest(bytes);
      expect((await postBlob(a, blob, bytes, how)).status).toBe(201);
      // wrangler dev's proxy answered `503 Your worker restarted mid-request` when the Worker left the body unread.
      for (let attempt = 0; attempt < 3; attempt++) {
        const again = await postBlob(a, blob, bytes, how);
        expect(`${again.status} ${await again.text()}`).toBe("200 ");
      }
    },
  );

  it("creates with files, streaming progress, then shows, copies, lists and deletes", async () => {
    const template = "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ .Prompt }}";
    const request: CreateWithFiles = {
      model: "e2e-tiny",
      files: { "tiny.gguf": digest },
      template,
      system: "You are a tiny model.",
      parameters: { temperature: 0.5, stop: ["<|im_end|>"] },
      stream: true,
    };
    const progress = await a.ollama.create(request as CreateRequest & { stream: true });
    const statuses: string[] = [];
    for await (const line of progress as AsyncIterable<ProgressResponse>) statuses.push(line.status);
    expect(statuses[0]).toBe("parsing GGUF");
    expect(statuses).toContain(`using existing layer ${digest}`);
    expect(statuses.filter((s) => /^creating new layer sha256:[0-9a-f]{64}$/.test(s)).length).toBeGreaterThanOrEqual(3);
    expect(statuses.slice(-2)).toEqual(["writing manifest", "success"]);

    const show = await a.ollama.show({ model: "e2e-tiny" });
    expect(show.details).toMatchObject({ format: "gguf", family: "llama", families: ["llama"] });
    const info = show.model_info as unknown as Record<string, unknown>;
    expect(info["general.architecture"]).toBe("llama");
    expect(info["llama.context_length"]).toBeGreaterThanOrEqual(4096);
    expect(show.template).toBe(template);
    expect(show.system).toBe("You are a tiny model.");
    expect(show.parameters).toMatch(/^stop +"<\|im_end\|>"\ntemperature +0\.5$/);
    expect(show.modelfile).toContain(`FROM ${digest}`);
    expect(show.modelfile).toContain("PARAMETER temperature 0.5");
    expect(show.capabilities).toContain("completion");

    // The blob the runner fetches is the one uploaded: the model answers.
    const generated = await a.ollama.generate({
      model: "e2e-tiny",
      prompt: "hi",
      options: { num_predict: 3, seed: 1 },
    });
    expect(generated.done).toBe(true);
    expect(generated.eval_count).toBeGreaterThan(0);

    await a.ollama.copy({ source: "e2e-tiny", destination: "e2e/copy:v1" });
    const listed = (await a.ollama.list()).models;
    expect(listed.map((m) => m.name).sort()).toEqual(["e2e-tiny:latest", "e2e/copy:v1"]);
    expect(new Set(listed.map((m) => m.digest)).size).toBe(1);
    expect((await b.ollama.list()).models.map((m) => m.name)).not.toContain("e2e-tiny:latest");
    await expect(b.ollama.show({ model: "e2e-tiny" })).rejects.toMatchObject({ status_code: 404 });

    await a.ollama.delete({ model: "e2e/copy:v1" });
    await expect(a.ollama.show({ model: "e2e/copy:v1" })).rejects.toMatchObject({ status_code: 404 });
    await expect(a.ollama.delete({ model: "e2e/copy:v1" })).rejects.toMatchObject({ status_code: 404 });
    expect((await a.ollama.list()).models.map((m) => m.name)).toEqual(["e2e-tiny:latest"]);
  });

  it("creates from a Modelfile (seed form) FROM an existing model", async () => {
    const modelfile = [
      "FROM e2e-tiny",
      'SYSTEM """You are Mario,',
      'a plumber."""',
      "PARAMETER temperature 0.25",
      "PARAMETER stop <end>",
      'TEMPLATE "{{ .System }}|{{ .Prompt }}"',
      "MESSAGE user hi",
      "MESSAGE assistant it's-a me",
    ].join("\n");
    const res = await fetch(`${url}/api/create`, {
      method: "POST",
      headers: { authorization: `Bearer ${a.key}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "e2e-mario", modelfile, stream: false }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "success" });

    const show = await a.ollama.show({ model: "e2e-mario" });
    expect(show.system).toBe("You are Mario,\na plumber.");
    expect(show.template).toBe("{{ .System }}|{{ .Prompt }}");
    expect(show.parameters).toMatch(/^stop +"<end>"\ntemperature +0\.25$/);
    expect(show.messages).toEqual([
      { role: "user", content: "hi" },
      { role: "assistant", content: "it's-a me" },
    ]);
    expect(show.details.parent_model).toBe("e2e-tiny:latest");
    await a.ollama.delete({ model: "e2e-mario" });
  });
});

/** A valid GGUF big enough to need three 5 MiB parts. */
function bigGguf(): Uint8Array {
  const dims = [1024, 2600];
  const data = new Uint8Array(dims[0]! * dims[1]! * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  return writeGguf({
    metadata: [
      kv.str("general.architecture", "llama"),
      kv.u32("general.file_type", 0),
      kv.u32("llama.context_length", 4096),
      kv.u32("llama.embedding_length", 1024),
      kv.u32("llama.block_count", 1),
    ],
    tensors: [{ name: "token_embd.weight", dims, type: GgmlType.F32, data }],
  });
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runUploadCli(args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot, "node_modules/.bin/tsx"), ["scripts/upload.ts", ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CORRAL_API_KEY: "" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the upload CLI (npm run upload)", () => {
  it("resumes an interrupted multipart upload, sending only the missing parts", async () => {
    const bytes = bigGguf();
    expect(bytes.length).toBeGreaterThan(10 * MiB);
    const digest = blobDigest(bytes);
    const file = join(workDir, "big.gguf");
    writeFileSync(file, bytes);
    const stateDir = join(workDir, "state");
    const common = ["--host", url, "--key", a.key, "--state-dir", stateDir, "--multipart-threshold", "1"];

    const first = await runUploadCli([...common, "--part-size", "5MiB", "--stop-after-parts", "1", file]);
    expect(first.code, first.stderr).toBe(2);
    expect(first.stderr).toMatch(/upload interrupted: stopped after 1 part/);
    expect(await headBlob(a, digest)).toBe(404);

    const second = await runUploadCli([...common, "--part-size", "5MiB", file]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(
      /resuming upload up_[0-9a-f]+: the server has part 1 of 3 \(5242880 bytes\), skipping them/,
    );
    expect(JSON.parse(second.stdout)).toEqual({
      digest,
      size: bytes.length,
      method: "multipart, resumed",
      parts_sent: 2,
      parts_skipped: 1,
    });
    expect(await headBlob(a, digest)).toBe(200);

    const created = await createQuietly(a.ollama, { model: "e2e-big", files: { "big.gguf": digest } });
    expect(created.status).toBe("success");
    expect((await a.ollama.show({ model: "e2e-big" })).details.family).toBe("llama");

    // Another tenant cannot see it, nor create from it, until it sends the bytes itself (chunked, several parts).
    expect(await headBlob(b, digest)).toBe(404);
    await expect(createQuietly(b.ollama, { model: "e2e-big", files: { "big.gguf": digest } })).rejects.toMatchObject({
      status_code: 400,
      error: expect.stringMatching(/^blob sha256:[0-9a-f]+ not found/),
    });
    expect((await postBlob(b, digest, bytes, "chunked")).status).toBe(201);
    expect(await headBlob(b, digest)).toBe(200);
    const again = await runUploadCli(["--host", url, "--key", b.key, "--state-dir", stateDir, file]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ method: "exists", parts_sent: 0 });
  });
});

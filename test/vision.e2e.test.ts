/**
 * Vision: the tiny CLIP projector (gpu-runner/src/tiny-model/clip-projector.ts) with the tiny text model, first
 * in llama.cpp's own llama-server alone (the fixture is a projector llama.cpp loads and whose output depends on
 * the pixels), then through the stack with the official `ollama` client: create from `files`, show, generate and
 * chat with images, bad images. The llama-server binary is built once per machine (scripts/llama-ref.ts).
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyProjector } from "../gpu-runner/src/tiny-model/clip-projector";
import { writeTinyModel } from "../gpu-runner/src/tiny-model/index";
import { encodePng, noisePng, pngHeader } from "../gpu-runner/src/tiny-model/png";
import { MAX_IMAGES_PER_REQUEST } from "../gpu-runner/src/vision/image-check";
import { LlamaServerProcess, MEDIA_MARKER } from "../gpu-runner/src/vision/llama-server";
import { llamaRefBinary } from "../scripts/llama-ref";
import { type RunningStack, startStack } from "./harness";
import { api, client, eventually } from "./inference-support";
import { type DockerRegistry, startDockerRegistry } from "./registry-server";

const model = writeTinyModel();
const projector = writeTinyProjector();
const imageA = noisePng(1).toString("base64");
const imageB = noisePng(2).toString("base64");
const greedy = { temperature: 0, seed: 1, num_predict: 12 };
const digestOf = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** The llama-server processes of this stack's runners: their command line names a blob in the stack's state dir. */
function llamaServersOf(stack: RunningStack): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (args[0]?.endsWith("llama-server") && args.some((a) => a.startsWith(stack.stateDir))) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

let binary: string;
beforeAll(() => {
  binary = llamaRefBinary("llama-server");
}, 1_800_000);

describe("the tiny vision fixture in llama-server alone", () => {
  let dir: string;
  let server: LlamaServerProcess;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "corral-vision-"));
    writeFileSync(join(dir, "model.gguf"), model);
    writeFileSync(join(dir, "mmproj.gguf"), projector);
    server = await LlamaServerProcess.start({
      binary,
      modelPath: join(dir, "model.gguf"),
      projectorPath: join(dir, "mmproj.gguf"),
      contextSize: 512,
      parallel: 1,
      threads: 1,
    });
  });
  afterAll(async () => {
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const describeImage = async (image: string) => {
    let text = "";
    let final: Record<string, unknown> = {};
    const body = {
      prompt: { prompt_string: "<__corral_image__>What is this?", multimodal_data: [image] },
      n_predict: 12,
      temperature: 0,
      seed: 1,
      cache_prompt: false,
    };
    for await (const event of server.completion(body, AbortSignal.timeout(60_000))) {
      text += String(event.content ?? "");
      if (event.stop === true) final = event;
    }
    return { text, promptTokens: Number(final.tokens_evaluated) };
  };

  it("turns two images into two answers, and one image twice into the same answer", async () => {
    const a = await describeImage(imageA);
    const b = await describeImage(imageB);
    const again = await describeImage(imageA);
    expect(a.text.length).toBeGreaterThan(0);
    expect(b.text).not.toBe(a.text);
    expect(again.text).toBe(a.text);
    // 16 image positions (a 32×32 picture in 8×8 patches) plus the text.
    expect(a.promptTokens).toBeGreaterThan(16);
  });
});

describe("a projector of the wrong width in llama-server alone (the runner's second line behind create's check)", () => {
  it("fails to start, naming llama.cpp's mismatch line without file paths", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-vision-narrow-"));
    writeFileSync(join(dir, "model.gguf"), model);
    writeFileSync(join(dir, "mmproj.gguf"), writeTinyProjector({ textEmbedding: 32 }));
    try {
      const start = LlamaServerProcess.start({
        binary,
        modelPath: join(dir, "model.gguf"),
        projectorPath: join(dir, "mmproj.gguf"),
        contextSize: 512,
        parallel: 1,
        threads: 1,
      });
      await expect(start).rejects.toThrow(/mismatch/);
      await expect(start).rejects.not.toThrow(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("cancel", () => {
  it("an aborted image request stops llama-server's generation (the slot goes idle long before its budget)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-vision-cancel-"));
    writeFileSync(join(dir, "model.gguf"), model);
    writeFileSync(join(dir, "mmproj.gguf"), projector);
    const server = await LlamaServerProcess.start({
      binary,
      modelPath: join(dir, "model.gguf"),
      projectorPath: join(dir, "mmproj.gguf"),
      contextSize: 8192,
      parallel: 1,
      threads: 1,
    });
    try {
      const budget = 8000;
      const controller = new AbortController();
      const body = {
        prompt: { prompt_string: `${MEDIA_MARKER}Go on.`, multimodal_data: [imageA] },
        n_predict: budget,
        ignore_eos: true,
        temperature: 0,
      };
      const events = server.completion(body, controller.signal);
      for (let i = 0; i < 5; i++) expect((await events.next()).done).toBe(false);
      controller.abort();
      await expect(events.next()).rejects.toThrow();
      type Slot = { is_processing: boolean; n_prompt_tokens?: number };
      let slot: Slot | undefined;
      const idle = await eventually(async () => {
        slot = ((await (await fetch(`${server.url}/slots`)).json()) as Slot[])[0];
        return slot?.is_processing === false;
      }, 60_000);
      expect(idle).toBe(true);
      // The slot's cache holds the prompt (16 image positions + text) and what was generated before the cancel:
      // at least the 5 tokens read, far fewer than the budget it would have filled.
      expect(slot?.n_prompt_tokens).toBeGreaterThan(16 + 5);
      expect(slot?.n_prompt_tokens).toBeLessThan(budget);
    } finally {
      await server.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("vision through the stack", () => {
  let stack: RunningStack;
  let registry: DockerRegistry;
  let ollama: ReturnType<typeof client>;
  const name = "tiny-vision";
  /**
   * Uploads unless the tenant has it (the built-in tiny model's weights): a POST the edge answers 200 without
   * reading the body leaves wrangler's local dev worker restarting under the next request.
   */
  const uploadBlob = async (bytes: Uint8Array) => {
    const url = `${stack.url}/api/blobs/${digestOf(bytes)}`;
    const auth = { authorization: `Bearer ${stack.key}` };
    if ((await fetch(url, { method: "HEAD", headers: auth })).status === 200) return;
    const res = await fetch(url, { method: "POST", headers: auth, body: bytes });
    expect(res.status, await res.text()).toBe(201);
  };

  beforeAll(async () => {
    registry = await startDockerRegistry();
    stack = await startStack({ env: { LLAMA_SERVER: binary, ALLOW_PRIVATE_REGISTRIES: "true" } });
    ollama = client(stack.url, stack.key);
    for (const bytes of [model, projector]) await uploadBlob(bytes);
    const created = await api(stack.url, stack.key, "POST", "/api/create", {
      model: name,
      files: { "model.gguf": digestOf(model), "mmproj.gguf": digestOf(projector) },
      stream: false,
    });
    expect(created).toMatchObject({ status: 200, body: { status: "success" } });
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
    await registry?.stop();
    if (stack) expect(llamaServersOf(stack)).toEqual([]);
  });

  it("shows the vision capability and the projector's info; tags lists the same capabilities", async () => {
    const shown = await ollama.show({ model: name });
    expect(shown.capabilities).toContain("vision");
    expect(shown.projector_info).toMatchObject({ "general.architecture": "clip" });
    const text = await ollama.show({ model: "tiny" });
    expect(text.capabilities).not.toContain("vision");
    const listed = (await api(stack.url, stack.key, "GET", "/api/tags")).body as {
      models: { name: string; capabilities: string[] }[];
    };
    expect(listed.models.find((m) => m.name === `${name}:latest`)?.capabilities).toEqual(shown.capabilities);
    expect(listed.models.find((m) => m.name === "tiny:latest")?.capabilities).toEqual(text.capabilities);
  });

  it("generate: different images give different answers, the same image the same answer", async () => {
    const ask = async (image: string) =>
      ollama.generate({ model: name, prompt: "What is in the picture?", images: [image], options: greedy });
    const a = await ask(imageA);
    const b = await ask(imageB);
    const again = await ask(imageA);
    expect(a.response).not.toBe("");
    expect(b.response).not.toBe(a.response);
    expect(again.response).toBe(a.response);
    expect(a.prompt_eval_count).toBeGreaterThan(16);
    expect(a.eval_count).toBeGreaterThan(0);
    expect(a.done_reason).toBe("length");
  });

  it("chat: images on a message reach the model; the model shows in ps", async () => {
    const ask = async (image: string) =>
      (
        await ollama.chat({
          model: name,
          messages: [{ role: "user", content: "Describe it.", images: [image] }],
          options: greedy,
        })
      ).message.content;
    const a = await ask(imageA);
    expect(await ask(imageB)).not.toBe(a);
    expect(await ask(imageA)).toBe(a);
    const running = await ollama.ps();
    expect(running.models.map((m) => m.name)).toContain(`${name}:latest`);
  });

  it("OpenAI chat completions: image_url data-URL parts reach the model", async () => {
    const openai = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: stack.key, maxRetries: 0 });
    const ask = async (image: string) => {
      const res = await openai.chat.completions.create({
        model: name,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Describe it." },
              { type: "image_url", image_url: { url: `data:image/png;base64,${image}` } },
            ],
          },
        ],
        temperature: 0,
        seed: 1,
        max_tokens: 12,
      });
      expect(res.usage?.prompt_tokens).toBeGreaterThan(16);
      return res.choices[0]?.message.content;
    };
    const a = await ask(imageA);
    expect(await ask(imageB)).not.toBe(a);
    expect(await ask(imageA)).toBe(a);
  });

  it("format (a JSON schema) constrains an answer about an image", async () => {
    const format = { type: "string", enum: ["cat", "dog"] };
    for (const image of [imageA, imageB]) {
      const res = await ollama.generate({ model: name, prompt: "Which?", images: [image], format, options: greedy });
      expect(["cat", "dog"]).toContain(JSON.parse(res.response ?? ""));
    }
  });

  it("resizes a 1×1 and a 1024×1024 image as llama.cpp does (to the projector's 32×32)", async () => {
    const grey = (side: number) => encodePng(side, side, new Uint8Array(side * side * 3).fill(128)).toString("base64");
    for (const image of [grey(1), grey(1024)]) {
      const res = await ollama.generate({ model: name, prompt: "x", images: [image], options: greedy });
      expect(res.done).toBe(true);
      expect(res.prompt_eval_count).toBeGreaterThan(16);
    }
  });

  it.each([
    ["bytes that are not an image", [Buffer.from("definitely not a picture").toString("base64")], /unsupported/],
    ["a decompression bomb", [pngHeader(60_000, 60_000).toString("base64")], /too large/],
    // The edge's per-tenant bound (16 by default, the runner's own limit too) answers first.
    ["too many images", Array(MAX_IMAGES_PER_REQUEST + 1).fill(imageA), /images exceeds this tenant's limit/],
  ])("refuses %s with a 400 and stays healthy", async (_, images, message) => {
    await expect(ollama.generate({ model: name, prompt: "x", images, options: greedy })).rejects.toMatchObject({
      status_code: 400,
      error: expect.stringMatching(message),
    });
    const ok = await ollama.generate({ model: name, prompt: "x", images: [imageA], options: greedy });
    expect(ok.done).toBe(true);
  });

  it("refuses more images than the context holds with a 400 naming the context, and stays healthy", async () => {
    // llama.cpp pads a sequence's context to 256 cells: 16 images of ~16.5 positions each (264) cannot fit.
    const images = Array.from({ length: 16 }, (_, i) => noisePng(100 + i).toString("base64"));
    await expect(
      ollama.generate({ model: name, prompt: "x", images, options: { ...greedy, num_ctx: 64 } }),
    ).rejects.toMatchObject({ status_code: 400, error: expect.stringMatching(/exceeds the available context size/) });
    // Unloads the small-context instance (and its llama-server): later tests count the servers.
    await ollama.generate({ model: name, prompt: "", keep_alive: 0, options: { num_ctx: 64 } });
    const ok = await ollama.generate({ model: name, prompt: "x", images: [imageA], options: greedy });
    expect(ok.done).toBe(true);
  });

  it("copy, push and pull carry the projector layer; the pulled model sees", async () => {
    const remote = `${registry.host}/corral/tiny-vision:latest`;
    await ollama.copy({ source: name, destination: remote });
    const pushed = await api(stack.url, stack.key, "POST", "/api/push", {
      model: remote,
      insecure: true,
      stream: false,
    });
    expect(pushed).toMatchObject({ status: 200, body: { status: "success" } });
    const manifest = (await (
      await fetch(`${registry.url}/v2/corral/tiny-vision/manifests/latest`, {
        headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
      })
    ).json()) as { layers: { mediaType: string; digest: string }[] };
    expect(manifest.layers).toContainEqual(
      expect.objectContaining({ mediaType: "application/vnd.ollama.image.projector", digest: digestOf(projector) }),
    );
    await ollama.delete({ model: remote });
    const pulled = await api(stack.url, stack.key, "POST", "/api/pull", {
      model: remote,
      insecure: true,
      stream: false,
    });
    expect(pulled).toMatchObject({ status: 200, body: { status: "success" } });
    expect((await ollama.show({ model: remote })).capabilities).toContain("vision");
    const [original, copy] = await Promise.all(
      [name, remote].map((model) => ollama.generate({ model, prompt: "x", images: [imageB], options: greedy })),
    );
    expect(copy!.response).toBe(original!.response);
  });

  it("a llama-server that dies is replaced by the next request; none outlives the stack", async () => {
    const [pid] = llamaServersOf(stack);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, "SIGKILL");
    const answer = await ollama.generate({ model: name, prompt: "x", images: [imageA], options: greedy });
    expect(answer.done).toBe(true);
    expect(llamaServersOf(stack)).not.toContain(pid);
    expect(llamaServersOf(stack)).toHaveLength(1);
  });

  it("a projector whose embedding size is not the model's is refused at create, and nothing is stored", async () => {
    const narrow = writeTinyProjector({ textEmbedding: 32 });
    await uploadBlob(narrow);
    const created = await api(stack.url, stack.key, "POST", "/api/create", {
      model: "tiny-vision-mismatch",
      files: { "model.gguf": digestOf(model), "mmproj.gguf": digestOf(narrow) },
      stream: false,
    });
    expect(created.status).toBe(400);
    expect(created.body).toMatchObject({ error: expect.stringMatching(/projector mismatch: .*32.*64/) });
    const { models } = await ollama.list();
    expect(models.map((m) => m.name)).not.toContain("tiny-vision-mismatch:latest");
    const ok = await ollama.generate({ model: name, prompt: "x", images: [imageA], options: greedy });
    expect(ok.done).toBe(true);
  });

  it("a model without a projector still answers 400 to images", async () => {
    await expect(ollama.generate({ model: "tiny", prompt: "x", images: [imageA] })).rejects.toMatchObject({
      status_code: 400,
      error: expect.stringMatching(/does not support images/),
    });
  });
});

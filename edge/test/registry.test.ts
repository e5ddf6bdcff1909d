import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, newTenant } from "./helpers";
import { createFromGguf, digest, ggufModel, json, ndjsonLines, r2Keys, upload } from "./registry-fixtures";
import { seedModel } from "./relay-fixtures";

const digestOfText = (text: string) => digest(new TextEncoder().encode(text));

const CHATML =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}{% if tools %}{% endif %}";

describe("create, tags, show, copy, delete", () => {
  it("creates from an uploaded GGUF with Ollama's progress lines and lists it", async () => {
    const { key } = await newTenant("reg-create");
    const bytes = ggufModel({ salt: 10, chatTemplate: CHATML, fileType: 2 });
    expect((await upload(key, bytes)).status).toBe(201);
    const res = await call("POST", "/api/create", {
      key,
      body: { model: "mario", files: { "model.gguf": digest(bytes) }, system: "You are Mario." },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    const statuses = (await ndjsonLines(res)).map((l) => l.status as string);
    expect(statuses[0]).toBe("parsing GGUF");
    expect(statuses).toContain(`using existing layer ${digest(bytes)}`);
    expect(statuses.some((s) => /^creating new layer sha256:[0-9a-f]{64}$/.test(s))).toBe(true);
    expect(statuses.slice(-2)).toEqual(["writing manifest", "success"]);

    const tags = await json<{ models: Record<string, unknown>[] }>(await call("GET", "/api/tags", { key }));
    expect(tags.models).toHaveLength(1);
    const [m] = tags.models;
    expect(m).toMatchObject({
      name: "mario:latest",
      model: "mario:latest",
      details: {
        format: "gguf",
        family: "llama",
        families: ["llama"],
        parameter_size: "32",
        quantization_level: "Q4_0",
      },
    });
    expect(m!.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(m!.size).toBeGreaterThan(bytes.length);
    expect(m!.capabilities).toEqual(["completion", "tools"]);
    expect((await call("HEAD", "/api/tags", { key })).status).toBe(200);
  });

  it("stores Ollama's manifest layout and config blob", async () => {
    const { id, key } = await newTenant("reg-manifest");
    const bytes = ggufModel({ salt: 11 });
    await createFromGguf(key, "layout", bytes, {
      template: "{{ .Prompt }}",
      parameters: { temperature: 0.5, stop: ["x"] },
    });
    const row = await env.DB.prepare("SELECT manifest, digest FROM models WHERE tenant_id = ?").bind(id).first<{
      manifest: string;
      digest: string;
    }>();
    const manifest = JSON.parse(row!.manifest);
    expect(manifest.schemaVersion).toBe(2);
    expect(manifest.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(manifest.config.mediaType).toBe("application/vnd.docker.container.image.v1+json");
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([
      "application/vnd.ollama.image.model",
      "application/vnd.ollama.image.template",
      "application/vnd.ollama.image.params",
    ]);
    expect(manifest.layers[0]).toEqual({
      mediaType: "application/vnd.ollama.image.model",
      digest: digest(bytes),
      size: bytes.length,
      from: "model.gguf",
    });
    const config = await env.BLOBS.get(`blobs/${manifest.config.digest.replace(":", "-")}`);
    expect(await config!.text()).toBe(
      '{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"32","file_type":"F32","architecture":"amd64","os":"linux"}\n',
    );
    const params = await env.BLOBS.get(`blobs/${manifest.layers[2].digest.replace(":", "-")}`);
    expect(await params!.text()).toBe('{"stop":["x"],"temperature":0.5}\n');
    // The manifest digest is the sha256 of the stored manifest text, as Ollama computes it.
    const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(row!.manifest));
    expect(row!.digest).toBe(
      `sha256:${[...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("")}`,
    );
    // Every referenced blob is in the bucket.
    const keys = await r2Keys();
    for (const l of [manifest.config, ...manifest.layers])
      expect(keys).toContain(`blobs/${l.digest.replace(":", "-")}`);
  });

  it("answers stream:false with the last progress object", async () => {
    const { key } = await newTenant("reg-nostream");
    expect(await createFromGguf(key, "quiet", ggufModel({ salt: 12 }))).toEqual({ status: "success" });
  });

  it("creates from a Modelfile (seed form) naming another model, reusing its layers", async () => {
    const { key } = await newTenant("reg-modelfile");
    await createFromGguf(key, "base", ggufModel({ salt: 13 }), { template: "{{ .System }} {{ .Prompt }}" });
    const modelfile = [
      "# comment",
      "FROM base",
      'SYSTEM """You are',
      'a plumber."""',
      "PARAMETER temperature 0.25",
      "PARAMETER stop <end>",
      "PARAMETER stop <eot>",
      "MESSAGE user hi",
      "MESSAGE assistant hello there",
      "LICENSE MIT",
    ].join("\n");
    const res = await call("POST", "/api/create", { key, body: { name: "mario2", modelfile, stream: false } });
    expect(res.status).toBe(200);
    const show = await json(await call("POST", "/api/show", { key, body: { name: "mario2" } }));
    expect(show.system).toBe("You are\na plumber.");
    expect(show.template).toBe("{{ .System }} {{ .Prompt }}");
    expect(show.license).toBe("MIT");
    expect(show.messages).toEqual([
      { role: "user", content: "hi" },
      { role: "assistant", content: "hello there" },
    ]);
    expect(show.parameters).toBe(
      [
        'stop                           "<end>"',
        'stop                           "<eot>"',
        "temperature                    0.25",
      ].join("\n"),
    );
    expect((show.details as Record<string, unknown>).parent_model).toBe("base:latest");
    const modelfileOut = show.modelfile as string;
    expect(modelfileOut).toMatch(/^# Modelfile generated by "ollama show"\n/);
    expect(modelfileOut).toContain("# FROM mario2:latest");
    expect(modelfileOut).toMatch(/\nFROM sha256:[0-9a-f]{64}\n/);
    expect(modelfileOut).toContain('SYSTEM "You are\na plumber."');
    expect(modelfileOut).toContain("PARAMETER stop <end>\nPARAMETER stop <eot>\n");
    expect(modelfileOut).toContain("MESSAGE user hi\nMESSAGE assistant hello there\n");
  });

  it("creates FROM a blob digest in a Modelfile", async () => {
    const { key } = await newTenant("reg-fromdigest");
    const bytes = ggufModel({ salt: 14 });
    await upload(key, bytes);
    const res = await call("POST", "/api/create", {
      key,
      body: { model: "bydigest", modelfile: `FROM @${digest(bytes)}\nSYSTEM hi`, stream: false },
    });
    expect(res.status).toBe(200);
    expect((await call("POST", "/api/show", { key, body: { model: "bydigest" } })).status).toBe(200);
  });

  it("shows model_info from the GGUF header, arrays shortened unless verbose, and capabilities", async () => {
    const { key } = await newTenant("reg-show");
    await createFromGguf(key, "info", ggufModel({ salt: 15, chatTemplate: CHATML }));
    const show = await json(await call("POST", "/api/show", { key, body: { model: "info" } }));
    const info = show.model_info as Record<string, unknown>;
    expect(info["general.architecture"]).toBe("llama");
    expect(info["llama.context_length"]).toBe(4096);
    expect(info["tokenizer.ggml.tokens"]).toBeNull();
    expect(info).not.toHaveProperty("general.name");
    expect(info).not.toHaveProperty("tokenizer.chat_template");
    expect(show.capabilities).toEqual(["completion", "tools"]);
    expect(show.template).toBe(CHATML);
    expect(show.modified_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(show).not.toHaveProperty("tensors");
    const verbose = await json(await call("POST", "/api/show", { key, body: { model: "info", verbose: true } }));
    expect((verbose.model_info as Record<string, unknown>)["tokenizer.ggml.tokens"]).toEqual(["a", "b", "c"]);
    expect(verbose.tensors).toEqual([{ name: "token_embd.weight", type: "F32", shape: [8, 4] }]);
  });

  it.each([
    [{ pooling: true }, undefined, ["embedding"]],
    [{}, "{{ .Prompt }}{{ if .Tools }}{{ end }}{{ .Suffix }}", ["completion", "tools", "insert"]],
    [{}, "{{ if .Think }}<think>{{ end }}{{ .Prompt }}", ["completion", "thinking"]],
  ])("derives capabilities, the same in show and tags %#", async (gguf, template, expected) => {
    const { key } = await newTenant(`reg-caps-${expected.join("")}`);
    await createFromGguf(key, "caps", ggufModel({ salt: 16, ...gguf }), template ? { template } : {});
    const show = await json(await call("POST", "/api/show", { key, body: { model: "caps" } }));
    expect(show.capabilities).toEqual(expected);
    const tags = await json<{ models: { capabilities: string[] }[] }>(await call("GET", "/api/tags", { key }));
    expect(tags.models.map((m) => m.capabilities)).toEqual([expected]);
  });

  it("lists a model whose weights cannot be read, without capabilities, beside the others", async () => {
    const tenant = await newTenant("reg-caps-unreadable");
    await createFromGguf(tenant.key, "fine", ggufModel({ salt: 19 }));
    await seedModel(tenant.id, "unreadable"); // its weights blob is not a GGUF
    const res = await call("GET", "/api/tags", { key: tenant.key });
    expect(res.status).toBe(200);
    const { models } = await json<{ models: { name: string; capabilities?: string[] }[] }>(res);
    expect(Object.fromEntries(models.map((m) => [m.name, m.capabilities]))).toEqual({
      "fine:latest": ["completion"],
      "unreadable:latest": undefined,
    });
  });

  it("takes a clip GGUF beside the weights as the projector: vision capability and projector_info", async () => {
    const { key } = await newTenant("reg-vision");
    const projector = ggufModel({ arch: "clip", salt: 318 });
    expect((await upload(key, projector)).status).toBe(201);
    await createFromGguf(key, "seeing", ggufModel({ salt: 317 }), {
      files: { "model.gguf": digest(ggufModel({ salt: 317 })), "mmproj.gguf": digest(projector) },
    });
    const show = await json(await call("POST", "/api/show", { key, body: { model: "seeing" } }));
    expect(show.capabilities).toEqual(["completion", "vision"]);
    expect(show.projector_info).toMatchObject({ "general.architecture": "clip", "clip.block_count": 1 });
    expect((show.model_info as Record<string, unknown>)["general.architecture"]).toBe("llama");
    const tags = await json<{ models: { capabilities: string[] }[] }>(await call("GET", "/api/tags", { key }));
    expect(tags.models.map((m) => m.capabilities)).toEqual([["completion", "vision"]]);
  });

  it("takes a second Modelfile FROM naming a projector blob as the projector layer, and show's Modelfile recreates it", async () => {
    const { key } = await newTenant("reg-vision-modelfile");
    const weights = ggufModel({ salt: 322 });
    const projector = ggufModel({ arch: "clip", salt: 323, projectionDim: 8 });
    for (const bytes of [weights, projector]) expect((await upload(key, bytes)).status).toBe(201);
    const modelfile = `FROM ${digest(weights)}\nFROM ${digest(projector)}\nSYSTEM look`;
    const res = await call("POST", "/api/create", { key, body: { model: "eyes", modelfile, stream: false } });
    expect(res.status).toBe(200);
    const show = await json(await call("POST", "/api/show", { key, body: { model: "eyes" } }));
    expect(show.capabilities).toEqual(["completion", "vision"]);
    expect(show.projector_info).toMatchObject({ "general.architecture": "clip" });
    const shown = show.modelfile as string;
    expect(shown).toContain(`FROM ${digest(weights)}\nFROM ${digest(projector)}\n`);
    const again = await call("POST", "/api/create", { key, body: { model: "eyes2", modelfile: shown, stream: false } });
    expect(again.status).toBe(200);
    const copy = await json(await call("POST", "/api/show", { key, body: { model: "eyes2" } }));
    expect(copy.capabilities).toEqual(["completion", "vision"]);
    const projectorFirst = `FROM ${digest(projector)}\nFROM ${digest(weights)}`;
    const reversed = await call("POST", "/api/create", {
      key,
      body: { model: "eyes3", modelfile: projectorFirst, stream: false },
    });
    expect(reversed.status).toBe(200);
    const third = await json(await call("POST", "/api/show", { key, body: { model: "eyes3" } }));
    expect(third.capabilities).toEqual(["completion", "vision"]);

    const narrow = ggufModel({ arch: "clip", salt: 324, projectionDim: 16 });
    expect((await upload(key, narrow)).status).toBe(201);
    const refused = await call("POST", "/api/create", {
      key,
      body: { model: "squint", modelfile: `FROM ${digest(weights)}\nFROM ${digest(narrow)}`, stream: false },
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: expect.stringMatching(/^vision projector mismatch/) });
  });

  it("refuses a projector whose embeddings are not the model's width, storing nothing", async () => {
    const { id, key } = await newTenant("reg-vision-mismatch");
    const weights = ggufModel({ salt: 319 });
    const narrow = ggufModel({ arch: "clip", salt: 320, projectionDim: 4 });
    expect((await upload(key, narrow)).status).toBe(201);
    expect((await upload(key, weights)).status).toBe(201);
    const files = { "model.gguf": digest(weights), "mmproj.gguf": digest(narrow) };
    const res = await call("POST", "/api/create", { key, body: { model: "squint", files, stream: false } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "vision projector mismatch: the projector produces 4-wide embeddings, the model's embedding_length is 8",
    });
    expect(await env.DB.prepare("SELECT 1 FROM models WHERE tenant_id = ?").bind(id).first()).toBeNull();
    const fits = ggufModel({ arch: "clip", salt: 321, projectionDim: 8 });
    expect((await upload(key, fits)).status).toBe(201);
    await createFromGguf(key, "clear", weights, {
      files: { "model.gguf": digest(weights), "mmproj.gguf": digest(fits) },
    });
  });

  it("copies (same manifest digest) and deletes, collecting unreferenced blobs", async () => {
    const { id, key } = await newTenant("reg-copy");
    const bytes = ggufModel({ salt: 17 });
    await createFromGguf(key, "orig", bytes, { system: "copy me" });
    const { results: layerRows } = await env.DB.prepare("SELECT digest FROM model_layers WHERE tenant_id = ?")
      .bind(id)
      .all<{ digest: string }>();
    const used = layerRows.map((r) => r.digest);
    expect(used).toHaveLength(3);
    expect(
      (await call("POST", "/api/copy", { key, body: { source: "orig", destination: "me/backup:v1" } })).status,
    ).toBe(200);
    const tags = await json<{ models: { name: string; digest: string }[] }>(await call("GET", "/api/tags", { key }));
    expect(tags.models.map((m) => m.name).sort()).toEqual(["me/backup:v1", "orig:latest"]);
    expect(new Set(tags.models.map((m) => m.digest)).size).toBe(1);

    expect((await call("DELETE", "/api/delete", { key, body: { model: "orig" } })).status).toBe(200);
    // Still used by the copy: nothing collected.
    expect(await r2Keys()).toContain(`blobs/${digest(bytes).replace(":", "-")}`);
    expect((await call("DELETE", "/api/delete", { key, body: { name: "me/backup:v1" } })).status).toBe(200);
    // Gone, except what other tenants' models of this file share (the config blob of identical fixtures).
    const { results: shared } = await env.DB.prepare("SELECT DISTINCT digest FROM model_layers").all<{
      digest: string;
    }>();
    const keys = await r2Keys();
    const collected = used.filter((d) => !shared.some((r) => r.digest === d));
    expect(collected.length).toBeGreaterThanOrEqual(2);
    for (const d of collected) {
      expect(keys).not.toContain(`blobs/${d.replace(":", "-")}`);
      expect(await env.DB.prepare("SELECT 1 FROM blobs WHERE digest = ?").bind(d).first()).toBeNull();
    }
    expect((await call("HEAD", `/api/blobs/${digest(bytes)}`, { key })).status).toBe(404);
  });

  it("copying over an existing model releases the layers only the replaced version used", async () => {
    const { key } = await newTenant("reg-copy-over");
    const bytes = ggufModel({ salt: 20 });
    await createFromGguf(key, "keep", bytes, { system: "kept system" });
    await createFromGguf(key, "target", bytes, { system: "system only target had" });
    const show = await json(await call("POST", "/api/show", { key, body: { model: "target", verbose: true } }));
    expect(show.system).toBe("system only target had");
    const uniqueDigest = digestOfText("system only target had");
    expect(await r2Keys()).toContain(`blobs/${uniqueDigest.replace(":", "-")}`);
    expect((await call("POST", "/api/copy", { key, body: { source: "keep", destination: "target" } })).status).toBe(
      200,
    );
    expect(await r2Keys()).not.toContain(`blobs/${uniqueDigest.replace(":", "-")}`);
    const copied = await json(await call("POST", "/api/show", { key, body: { model: "target" } }));
    expect(copied.system).toBe("kept system");
  });

  it("answers copy/delete/show of a missing model with Ollama's 404s", async () => {
    const { key } = await newTenant("reg-missing");
    const copy = await call("POST", "/api/copy", { key, body: { source: "nope", destination: "x" } });
    expect(copy.status).toBe(404);
    expect(await copy.json()).toEqual({ error: 'model "nope" not found' });
    const del = await call("DELETE", "/api/delete", { key, body: { model: "nope" } });
    expect(del.status).toBe(404);
    expect(await del.json()).toEqual({ error: "model 'nope' not found" });
    const show = await call("POST", "/api/show", { key, body: { model: "nope" } });
    expect(show.status).toBe(404);
    expect(await show.json()).toEqual({ error: "model 'nope:latest' not found" });
  });

  it("replacing a model releases the layers only the old version used", async () => {
    const { key } = await newTenant("reg-replace");
    const bytes = ggufModel({ salt: 18 });
    await createFromGguf(key, "same", bytes, { system: "first" });
    const before = await r2Keys();
    await createFromGguf(key, "same", bytes, { system: "second" });
    const after = await r2Keys();
    expect(after.length).toBe(before.length);
    expect(after).not.toEqual(before);
    const show = await json(await call("POST", "/api/show", { key, body: { model: "same" } }));
    expect(show.system).toBe("second");
  });
});

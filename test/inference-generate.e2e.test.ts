/**
 * /api/generate and /api/chat through the running stack with the official `ollama` client: the scripted model
 * shows exact text through real llama.cpp inference; the gibberish `tiny` model, decoded greedily or with a seed,
 * shows that prompts are formatted as they should be (a chat and the same ChatML sent raw give the same reply).
 */
import { describe, expect, inject, it } from "vitest";
import { chatml, client, collect, QWEN_STYLE_TEMPLATE, SCRIPTED_SENTENCE, uniqueName } from "./inference-support";

const { url, key } = inject("stack");
const ollama = client(url, key);
const greedy = (numPredict: number) => ({ temperature: 0, num_predict: numPredict });

describe("generate", () => {
  it("answers the scripted sentence in one object (stream: false)", async () => {
    const res = await ollama.generate({ model: "scripted", prompt: "Say it.", stream: false, options: greedy(32) });
    expect(res.response).toBe(SCRIPTED_SENTENCE);
    expect(res.done).toBe(true);
    expect(res.done_reason).toBe("stop");
    expect(res.model).toBe("scripted");
    expect(res.context.length).toBeGreaterThan(res.eval_count);
  });

  it("streams the sentence token by token, the done chunk last with every stat > 0", async () => {
    const stream = await ollama.generate({ model: "scripted", prompt: "Say it.", stream: true, options: greedy(32) });
    const { chunks, last } = await collect(stream);
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.slice(0, -1).every((c) => !c.done)).toBe(true);
    expect(chunks.map((c) => c.response).join("")).toBe(SCRIPTED_SENTENCE);
    expect(last).toMatchObject({ done: true, done_reason: "stop" });
    for (const stat of [
      "total_duration",
      "load_duration",
      "prompt_eval_count",
      "prompt_eval_duration",
      "eval_count",
      "eval_duration",
    ] as const) {
      expect(last[stat], stat).toBeGreaterThan(0);
    }
    expect(last.total_duration).toBeGreaterThanOrEqual(last.eval_duration);
    expect(last.context.length).toBeGreaterThan(0);
  });

  it("stops at a stop string without emitting it", async () => {
    const stream = await ollama.generate({
      model: "scripted",
      prompt: "Say it.",
      stream: true,
      options: { ...greedy(32), stop: ["fox"] },
    });
    const { chunks, last } = await collect(stream);
    expect(chunks.map((c) => c.response).join("")).toBe("The quick brown ");
    expect(last.done_reason).toBe("stop");
    const whole = await ollama.generate({
      model: "scripted",
      prompt: "Say it.",
      options: { ...greedy(32), stop: ["lazy"] },
    });
    expect(whole.response).toBe("The quick brown fox jumps over the ");
  });

  it("ends with done_reason length after num_predict tokens", async () => {
    const res = await ollama.generate({ model: "tiny", prompt: "Tell me a story.", options: greedy(5) });
    expect(res.done_reason).toBe("length");
    expect(res.eval_count).toBe(5);
    const scripted = await ollama.generate({ model: "scripted", prompt: "Say it.", options: greedy(3) });
    expect(scripted).toMatchObject({ response: "The quick brown", done_reason: "length", eval_count: 3 });
  });

  it("is deterministic for a seed and varies with it", async () => {
    const sample = async (seed: number) =>
      (await ollama.generate({ model: "tiny", prompt: "Hello", options: { seed, temperature: 0.9, num_predict: 16 } }))
        .response ?? "";
    const first = await sample(7);
    expect(first.length).toBeGreaterThan(0);
    expect(await sample(7)).toBe(first);
    expect(await sample(8)).not.toBe(first);
  });

  it("writes the request's system prompt into the template", async () => {
    const system = "You are a terse assistant.";
    const withSystem = await ollama.generate({ model: "tiny", prompt: "Hello", system, options: greedy(12) });
    const sentRaw = await ollama.generate({
      model: "tiny",
      prompt: chatml([
        { role: "system", content: system },
        { role: "user", content: "Hello" },
      ]),
      raw: true,
      options: greedy(12),
    });
    const without = await ollama.generate({ model: "tiny", prompt: "Hello", options: greedy(12) });
    expect(withSystem.response).toBe(sentRaw.response);
    expect(withSystem.prompt_eval_count).toBe(sentRaw.prompt_eval_count);
    expect(withSystem.prompt_eval_count).toBeGreaterThan(without.prompt_eval_count);
  });

  it("passes a raw prompt through unformatted and returns no context", async () => {
    const prompt = "Once upon a time";
    const raw = await ollama.generate({ model: "tiny", prompt, raw: true, options: greedy(10) });
    const templated = await ollama.generate({ model: "tiny", prompt, options: greedy(10) });
    expect(raw.response?.length).toBeGreaterThan(0);
    expect(raw.context).toBeUndefined();
    expect(raw.prompt_eval_count).toBeLessThan(templated.prompt_eval_count);
    const conflict = await fetch(`${url}/api/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "tiny", prompt, raw: true, system: "x", stream: false }),
    });
    expect(conflict.status).toBe(400);
    expect(await conflict.json()).toEqual({ error: "raw mode does not support template, system, or context" });
  });

  it("formats with a template from the request instead of the model's", async () => {
    const prompt = "Once upon a time";
    const overridden = await ollama.generate({
      model: "tiny",
      prompt,
      system: "SYS",
      template: "[{{ .System }}] {{ .Prompt }} =>",
      options: greedy(10),
    });
    const raw = await ollama.generate({ model: "tiny", prompt: `[SYS] ${prompt} =>`, raw: true, options: greedy(10) });
    expect(overridden.response).toBe(raw.response);
    expect(overridden.prompt_eval_count).toBe(raw.prompt_eval_count);
    expect(overridden.context.length).toBeGreaterThan(0);
  });

  it("continues from a returned context", async () => {
    const first = await ollama.generate({ model: "tiny", prompt: "My name is Ada.", options: greedy(6) });
    expect(first.context.length).toBeGreaterThan(first.prompt_eval_count);
    const next = await ollama.generate({
      model: "tiny",
      prompt: "What is my name?",
      context: first.context,
      options: greedy(6),
    });
    const fresh = await ollama.generate({ model: "tiny", prompt: "What is my name?", options: greedy(6) });
    // The old conversation is evaluated again in front of the new prompt, and the new context carries both.
    expect(next.prompt_eval_count).toBeGreaterThanOrEqual(fresh.prompt_eval_count + first.context.length - 1);
    expect(next.context.length).toBeGreaterThan(first.context.length + fresh.prompt_eval_count - 1);
    // Sending the earlier exchange raw in front of the new prompt gives the same continuation.
    const firstText = chatml([{ role: "user", content: "My name is Ada." }]) + first.response;
    const asRaw = await ollama.generate({
      model: "tiny",
      prompt: firstText + chatml([{ role: "user", content: "What is my name?" }]),
      raw: true,
      options: greedy(6),
    });
    expect(next.response).toBe(asRaw.response);
  });

  it("refuses a suffix on a model whose template has no .Suffix", async () => {
    await expect(
      ollama.generate({ model: "tiny", prompt: "def add(a, b):", suffix: "    return c" }),
    ).rejects.toMatchObject({ status_code: 400, error: '"tiny" does not support insert' });
  });

  it("fills in the middle on a model created with a .Suffix template", async () => {
    const name = uniqueName("fim");
    const template = "{{ if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>{{ else }}{{ .Prompt }}{{ end }}";
    const created = await ollama.create({ model: name, from: "tiny", template, stream: false });
    expect(created.status).toBe("success");
    try {
      const res = await ollama.generate({
        model: name,
        prompt: "def add(a, b):",
        suffix: "    return c",
        options: greedy(8),
      });
      expect(res.done).toBe(true);
      const raw = await ollama.generate({
        model: "tiny",
        prompt: "<PRE> def add(a, b): <SUF>    return c <MID>",
        raw: true,
        options: greedy(8),
      });
      expect(res.response).toBe(raw.response);
      expect(res.prompt_eval_count).toBe(raw.prompt_eval_count);
    } finally {
      await ollama.delete({ model: name });
    }
  });

  it("takes a created model's system and parameters as defaults that the request overrides", async () => {
    const name = uniqueName("defaults");
    await ollama.create({
      model: name,
      from: "tiny",
      system: "MODEL-SYS",
      template: "[{{ .System }}] {{ .Prompt }} =>",
      parameters: { num_predict: 3, temperature: 0, stop: ["zzz-never"] },
    });
    try {
      const byModel = await ollama.generate({ model: name, prompt: "x" });
      const rawModel = await ollama.generate({
        model: "tiny",
        prompt: "[MODEL-SYS] x =>",
        raw: true,
        options: greedy(3),
      });
      expect(byModel).toMatchObject({ done_reason: "length", eval_count: 3, response: rawModel.response });
      const byRequest = await ollama.generate({ model: name, prompt: "x", system: "REQ", options: { num_predict: 5 } });
      const rawRequest = await ollama.generate({ model: "tiny", prompt: "[REQ] x =>", raw: true, options: greedy(5) });
      expect(byRequest).toMatchObject({ done_reason: "length", eval_count: 5, response: rawRequest.response });
    } finally {
      await ollama.delete({ model: name });
    }
  });

  it("answers Ollama's errors for a missing model and a wrongly typed option", async () => {
    await expect(ollama.generate({ model: "no-such-model", prompt: "hi" })).rejects.toMatchObject({
      status_code: 404,
      error: 'model "no-such-model" not found, try pulling it first',
    });
    const res = await fetch(`${url}/api/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "tiny", prompt: "hi", options: { num_predict: "ten", not_an_option: 1 } }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'option "num_predict" must be of type integer' });
  });

  it("refuses images with a 400 that names the limitation", async () => {
    const image = Buffer.from("not really a png").toString("base64");
    const err = await ollama.generate({ model: "tiny", prompt: "What is this?", images: [image] }).catch((e) => e);
    expect(err).toMatchObject({ status_code: 400 });
    expect(String(err.error)).toMatch(/does not support images/);
    expect(String(err.error)).toMatch(/vision/);
  });

  it("refuses think on a model without thinking", async () => {
    await expect(ollama.generate({ model: "tiny", prompt: "Hi", think: true })).rejects.toMatchObject({
      status_code: 400,
      error: '"tiny" does not support thinking',
    });
  });
});

describe("chat", () => {
  const ask = [{ role: "user", content: "Say the sentence." }];

  it("answers the scripted sentence as the assistant (stream: false)", async () => {
    const res = await ollama.chat({ model: "scripted", messages: ask, stream: false, options: greedy(32) });
    expect(res.message).toMatchObject({ role: "assistant", content: SCRIPTED_SENTENCE });
    expect(res.done_reason).toBe("stop");
    expect(res.eval_count).toBeGreaterThan(0);
    expect(res.prompt_eval_count).toBeGreaterThan(0);
  });

  it("streams the sentence, the done chunk last with every stat > 0", async () => {
    const stream = await ollama.chat({ model: "scripted", messages: ask, stream: true, options: greedy(32) });
    const { chunks, last } = await collect(stream);
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.every((c) => c.message.role === "assistant")).toBe(true);
    expect(chunks.map((c) => c.message.content).join("")).toBe(SCRIPTED_SENTENCE);
    expect(last).toMatchObject({ done: true, done_reason: "stop" });
    for (const stat of [
      "total_duration",
      "load_duration",
      "prompt_eval_count",
      "prompt_eval_duration",
      "eval_count",
      "eval_duration",
    ] as const) {
      expect(last[stat], stat).toBeGreaterThan(0);
    }
  });

  it("renders system and history exactly like the same ChatML sent raw", async () => {
    const messages = [
      { role: "system", content: "You are a pirate." },
      { role: "user", content: "Hello!" },
      { role: "assistant", content: "Ahoy." },
      { role: "user", content: "Where is the treasure?" },
    ];
    const chat = await ollama.chat({ model: "tiny", messages, options: greedy(12) });
    const raw = await ollama.generate({ model: "tiny", prompt: chatml(messages), raw: true, options: greedy(12) });
    expect(chat.message.content).toBe(raw.response);
    expect(chat.prompt_eval_count).toBe(raw.prompt_eval_count);
    const lastOnly = await ollama.chat({ model: "tiny", messages: messages.slice(-1), options: greedy(12) });
    expect(chat.prompt_eval_count).toBeGreaterThan(lastOnly.prompt_eval_count);
  });

  it("renders a model's Go template (Ollama's qwen style) like the same ChatML sent raw", async () => {
    const name = uniqueName("qwen-style");
    await ollama.create({ model: name, from: "tiny", template: QWEN_STYLE_TEMPLATE });
    try {
      const messages = [
        { role: "system", content: "You are a pirate." },
        { role: "user", content: "Hello!" },
        { role: "assistant", content: "Ahoy." },
        { role: "user", content: "Where is the treasure?" },
      ];
      const chat = await ollama.chat({ model: name, messages, options: greedy(12) });
      const raw = await ollama.generate({ model: "tiny", prompt: chatml(messages), raw: true, options: greedy(12) });
      expect(chat.message.content).toBe(raw.response);
      expect(chat.prompt_eval_count).toBe(raw.prompt_eval_count);
      // /api/generate goes through the template's .Prompt branch.
      const generated = await ollama.generate({
        model: name,
        prompt: "Hello!",
        system: "Be brief.",
        options: greedy(12),
      });
      const rawGenerate = await ollama.generate({
        model: "tiny",
        prompt: chatml([
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hello!" },
        ]),
        raw: true,
        options: greedy(12),
      });
      expect(generated.response).toBe(rawGenerate.response);
    } finally {
      await ollama.delete({ model: name });
    }
  });

  it("stops at a stop string and at num_predict", async () => {
    const stopped = await ollama.chat({ model: "scripted", messages: ask, options: { ...greedy(32), stop: ["fox"] } });
    expect(stopped.message.content).toBe("The quick brown ");
    expect(stopped.done_reason).toBe("stop");
    const cut = await ollama.chat({ model: "scripted", messages: ask, options: greedy(2) });
    expect(cut).toMatchObject({ message: { content: "The quick" }, done_reason: "length", eval_count: 2 });
  });

  it("refuses images in a message and think on a model without thinking", async () => {
    const image = Buffer.from("not really a png").toString("base64");
    const err = await ollama
      .chat({ model: "tiny", messages: [{ role: "user", content: "What is this?", images: [image] }] })
      .catch((e) => e);
    expect(err).toMatchObject({ status_code: 400 });
    expect(String(err.error)).toMatch(/does not support images/);
    await expect(ollama.chat({ model: "tiny", messages: ask, think: true })).rejects.toMatchObject({
      status_code: 400,
      error: '"tiny" does not support thinking',
    });
  });
});

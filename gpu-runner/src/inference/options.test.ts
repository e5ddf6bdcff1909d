import { describe, expect, it } from "vitest";
import { mergeModelAndRequestOptions, requestedNumCtx, resolveSettings } from "./options";

const settingsFor = (request: Record<string, unknown>, params: Record<string, unknown> = {}, numCtx = 2048) =>
  resolveSettings(mergeModelAndRequestOptions(params, request), numCtx);

describe("options mapping", () => {
  it("uses Ollama's defaults, not node-llama-cpp's", () => {
    const s = settingsFor({});
    expect(s).toMatchObject({ temperature: 0.8, topK: 40, topP: 0.9, minP: 0, repeatPenalty: false, stop: [] });
    expect(s.maxTokens).toBeUndefined();
    expect(s.seed).toBeUndefined();
    expect(s.fillContext).toBe(false);
  });

  it.each([
    ["temperature", { temperature: 0 }, { temperature: 0 }],
    ["top_k", { top_k: 5 }, { topK: 5 }],
    ["top_p", { top_p: 0.5 }, { topP: 0.5 }],
    ["min_p", { min_p: 0.05 }, { minP: 0.05 }],
    ["seed", { seed: 42 }, { seed: 42 }],
    ["seed -1 is random", { seed: -1 }, { seed: undefined }],
    ["num_predict", { num_predict: 7 }, { maxTokens: 7, fillContext: false }],
    ["num_predict -1 is unlimited", { num_predict: -1 }, { maxTokens: undefined, fillContext: false }],
    ["num_predict 0 is unlimited", { num_predict: 0 }, { maxTokens: undefined }],
    ["num_predict -2 fills the context", { num_predict: -2 }, { maxTokens: undefined, fillContext: true }],
    ["stop", { stop: ["\n", "END", ""] }, { stop: ["\n", "END"] }],
    ["num_batch", { num_batch: 64 }, { numBatch: 64 }],
    ["integers given as floats are truncated", { top_k: 3.9 }, { topK: 3 }],
  ])("%s", (_name, request, expected) => {
    expect(settingsFor(request)).toMatchObject(expected);
  });

  it.each([
    [{ repeat_penalty: 1.1 }, { lastTokens: 64, penalty: 1.1, presencePenalty: 0, frequencyPenalty: 0 }],
    [
      { repeat_penalty: 1.2, repeat_last_n: -1 },
      { lastTokens: 2048, penalty: 1.2 },
    ],
    [{ presence_penalty: 0.5 }, { presencePenalty: 0.5, penalty: 1 }],
    [
      { frequency_penalty: 0.3, repeat_last_n: 16 },
      { frequencyPenalty: 0.3, lastTokens: 16 },
    ],
    [{ frequency_penalty: 0.3, penalize_newline: false }, { penalizeNewLine: false }],
  ])("repeat penalties %j", (request, expected) => {
    expect(settingsFor(request).repeatPenalty).toMatchObject(expected);
  });

  it("disables the penalty when repeat_last_n is 0", () => {
    expect(settingsFor({ repeat_penalty: 1.3, repeat_last_n: 0 }).repeatPenalty).toBe(false);
  });

  it("takes model parameters as defaults that request options override", () => {
    const s = settingsFor({ temperature: 0.1 }, { temperature: 0.7, top_k: 10, stop: ["<|im_end|>"] });
    expect(s).toMatchObject({ temperature: 0.1, topK: 10, stop: ["<|im_end|>"] });
  });

  it("ignores unknown options and reports the ones it cannot apply", () => {
    const s = settingsFor({ bogus: 1, typical_p: 0.5, num_thread: 8, num_keep: 5, mirostat: 2 });
    expect(s.ignored.sort()).toEqual(["mirostat", "num_keep", "num_thread", "typical_p"]);
  });

  it.each([
    [{ temperature: "hot" }, 'option "temperature" must be of type float32'],
    [{ num_predict: "10" }, 'option "num_predict" must be of type integer'],
    [{ stop: "END" }, 'option "stop" must be of type array'],
    [{ penalize_newline: 1 }, 'option "penalize_newline" must be of type boolean'],
  ])("rejects wrongly typed %j with Ollama's text", (request, message) => {
    expect(() => settingsFor(request)).toThrow(message);
    try {
      settingsFor(request);
    } catch (err) {
      expect((err as { status: number }).status).toBe(400);
    }
  });

  it("asks for num_ctx only when one is set", () => {
    expect(requestedNumCtx(mergeModelAndRequestOptions({}, {}))).toBeUndefined();
    expect(requestedNumCtx(mergeModelAndRequestOptions({ num_ctx: 1024 }, {}))).toBe(1024);
    expect(requestedNumCtx(mergeModelAndRequestOptions({ num_ctx: 1024 }, { num_ctx: 512 }))).toBe(512);
  });
});

import { describe, expect, it } from "vitest";
import { ApiError } from "./errors";
import {
  formatParameters,
  mergeOptions,
  OPTION_KINDS,
  parametersToOptions,
  parseParameterValue,
  validateOptions,
} from "./options";

describe("validateOptions", () => {
  it("keeps known options with their types and ignores unknown keys and nulls", () => {
    expect(
      validateOptions({
        temperature: 0.7,
        seed: 42,
        num_ctx: 4096,
        top_p: 1,
        use_mmap: false,
        stop: ["\n", "user:"],
        main_gpu: 0,
        mirostat: 2,
        not_an_option: "whatever",
        num_predict: null,
      }),
    ).toEqual({
      temperature: 0.7,
      seed: 42,
      num_ctx: 4096,
      top_p: 1,
      use_mmap: false,
      stop: ["\n", "user:"],
      main_gpu: 0,
      mirostat: 2,
    });
  });

  it("truncates numbers given for integer options, as Go's int64(float64) does", () => {
    expect(validateOptions({ num_predict: 12.9, seed: -3.7, top_k: -0.5 })).toEqual({
      num_predict: 12,
      seed: -3,
      top_k: 0,
    });
  });

  it.each<[Record<string, unknown>, string]>([
    [{ temperature: "0.7" }, 'option "temperature" must be of type float32'],
    [{ seed: "42" }, 'option "seed" must be of type integer'],
    [{ num_ctx: true }, 'option "num_ctx" must be of type integer'],
    [{ main_gpu: "0" }, 'option "main_gpu" must be of type integer'],
    [{ use_mmap: "true" }, 'option "use_mmap" must be of type boolean'],
    [{ numa: 1 }, 'option "numa" must be of type boolean'],
    [{ stop: "\n" }, 'option "stop" must be of type array'],
    [{ stop: ["a", 1] }, 'option "stop" must be of an array of strings'],
    [{ top_p: [0.9] }, 'option "top_p" must be of type float32'],
    [{ top_k: {} }, 'option "top_k" must be of type integer'],
  ])("refuses %j", (raw, message) => {
    expect(() => validateOptions(raw)).toThrow(new ApiError(400, message));
  });

  it("mergeOptions lets later layers win key by key", () => {
    expect(mergeOptions({ temperature: 0.1, stop: ["a"] }, undefined, { temperature: 0.9 })).toEqual({
      temperature: 0.9,
      stop: ["a"],
    });
  });
});

describe("parseParameterValue", () => {
  it.each<[string, string, unknown]>([
    ["temperature", "0.7", 0.7],
    ["temperature", "1", 1],
    ["temperature", "-1.5e-3", -0.0015],
    ["top_p", ".9", 0.9],
    ["num_ctx", "4096", 4096],
    ["seed", "-1", -1],
    ["seed", "+7", 7],
    ["use_mmap", "true", true],
    ["use_mmap", "F", false],
    ["use_mmap", "0", false],
    ["stop", "<|im_end|>", ["<|im_end|>"]],
    ["mirostat", "2", undefined], // deprecated in Ollama: skipped with a warning
    ["penalize_newline", "true", undefined],
  ])("PARAMETER %s %s → %j", (name, text, value) => {
    expect(parseParameterValue(name, text)).toEqual(value);
  });

  it.each([
    ["foo", "1", "unknown parameter 'foo'"],
    ["Temperature", "1", "unknown parameter 'Temperature'"],
    ["temperature", "hot", "invalid float value [hot]"],
    ["temperature", "1e39", "invalid float value [1e39]"],
    ["temperature", "NaN", "invalid float value [NaN]"],
    ["num_ctx", "4096.5", "invalid int value [4096.5]"],
    ["num_ctx", "", "invalid int value []"],
    ["num_ctx", "99999999999999999999", "invalid int value [99999999999999999999]"],
    ["use_mmap", "yes", "invalid bool value [yes]"],
  ])("PARAMETER %s %j is refused", (name, text, message) => {
    expect(() => parseParameterValue(name, text)).toThrow(new ApiError(400, message));
  });

  it("parametersToOptions accumulates repeated stop lines", () => {
    expect(
      parametersToOptions([
        ["stop", "<|im_start|>"],
        ["temperature", "0.2"],
        ["stop", "<|im_end|>"],
        ["mirostat", "1"],
      ]),
    ).toEqual({ stop: ["<|im_start|>", "<|im_end|>"], temperature: 0.2 });
  });
});

describe("formatParameters", () => {
  it("renders /api/show's parameters text", () => {
    expect(formatParameters({ stop: ["<|im_end|>", "user:"], temperature: 0.7, use_mmap: true })).toBe(
      [
        `${"stop".padEnd(30)} "<|im_end|>"`,
        `${"stop".padEnd(30)} "user:"`,
        `${"temperature".padEnd(30)} 0.7`,
        `${"use_mmap".padEnd(30)} true`,
      ].join("\n"),
    );
  });
});

describe("OPTION_KINDS", () => {
  it("covers the options in Ollama's docs/api.md example", () => {
    const documented = [
      "num_keep",
      "seed",
      "num_predict",
      "top_k",
      "top_p",
      "min_p",
      "typical_p",
      "repeat_last_n",
      "temperature",
      "repeat_penalty",
      "presence_penalty",
      "frequency_penalty",
      "penalize_newline",
      "stop",
      "numa",
      "num_ctx",
      "num_batch",
      "num_gpu",
      "main_gpu",
      "use_mmap",
      "num_thread",
    ];
    for (const name of documented) expect(OPTION_KINDS).toHaveProperty(name);
  });
});

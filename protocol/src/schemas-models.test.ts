import { describe, expect, it } from "vitest";
import { ApiError } from "./errors";
import {
  parseCopyRequest,
  parseCreateRequest,
  parseDeleteRequest,
  parsePullRequest,
  parsePushRequest,
  parseShowRequest,
} from "./schemas";
import { isValidRelativePath } from "./schemas-models";

const HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

function expect400(fn: () => unknown, message: string) {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ApiError);
  expect({ status: (caught as ApiError).status, message: (caught as ApiError).message }).toEqual({
    status: 400,
    message,
  });
}

describe("create", () => {
  it("accepts the current form (files by digest) and canonicalises digests", () => {
    expect(parseCreateRequest({ model: "llama-2-7b-chat", files: { "test.gguf": `sha256-${HEX}` } })).toEqual({
      model: "llama-2-7b-chat",
      stream: true,
      files: { "test.gguf": `sha256:${HEX}` },
    });
  });

  it("accepts quantize-from-model with every optional field", () => {
    expect(
      parseCreateRequest({
        model: "llama3.1:quantized",
        from: "llama3.1:8b-instruct-fp16",
        quantize: "q4_K_M",
        stream: false,
        adapters: { "lora.gguf": `sha256:${HEX}` },
        template: "{{ .Prompt }}",
        system: "You are mario",
        license: "MIT",
        parameters: { temperature: 0.5, stop: ["</s>"], ignored_unknown: 1 },
        messages: [{ role: "USER", content: "hi" }],
      }),
    ).toEqual({
      model: "llama3.1:quantized",
      from: "llama3.1:8b-instruct-fp16",
      quantize: "q4_K_M",
      stream: false,
      adapters: { "lora.gguf": `sha256:${HEX}` },
      template: "{{ .Prompt }}",
      system: "You are mario",
      license: ["MIT"],
      parameters: { temperature: 0.5, stop: ["</s>"] },
      messages: [{ role: "user", content: "hi" }],
    });
  });

  it("accepts the seed's form: name + modelfile text", () => {
    expect(
      parseCreateRequest({ name: "mario", modelfile: "FROM llama3\nSYSTEM You are mario from Super Mario Bros." }),
    ).toEqual({ model: "mario", stream: true, modelfile: "FROM llama3\nSYSTEM You are mario from Super Mario Bros." });
  });

  it("prefers model over the deprecated name, and quantize over quantization", () => {
    const request = parseCreateRequest({ model: "a", name: "b", from: "x", quantization: "q8_0" });
    expect(request.model).toBe("a");
    expect(request.quantize).toBe("q8_0");
    expect(parseCreateRequest({ model: "a", from: "x", quantize: "q4_0", quantization: "q8_0" }).quantize).toBe("q4_0");
    expect(parseCreateRequest({ model: "a", from: "x", license: ["A", "B"] }).license).toEqual(["A", "B"]);
  });

  it.each<[unknown, string]>([
    [{ from: "llama3" }, "invalid model name"],
    [{ model: "bad name!", from: "llama3" }, "invalid model name"],
    [{ model: "../evil", from: "llama3" }, "invalid model name"],
    [{ model: "m" }, "neither 'from' or 'files' was specified"],
    [{ model: "m", quantize: "q4_0" }, "neither 'from' or 'files' was specified"],
    [
      { model: "m", path: "/home/me/Modelfile" },
      'reading a Modelfile from a server path is not supported; send its text as "modelfile"',
    ],
    [{ model: "m", files: { "/etc/passwd": `sha256:${HEX}` } }, "file path must be relative"],
    [{ model: "m", files: { "../x.gguf": `sha256:${HEX}` } }, "file path must be relative"],
    [{ model: "m", files: { "a.gguf": "" } }, "invalid digest format"],
    [{ model: "m", files: { "a.gguf": `sha256:${HEX.toUpperCase()}` } }, "invalid digest format"],
    [{ model: "m", adapters: { "a.gguf": "sha256:abc" } }, "invalid digest format"],
    [
      { model: "m", files: { "a.gguf": 5 } },
      "json: cannot unmarshal number into Go struct field CreateRequest.files of type string",
    ],
    [{ model: "m", from: "x", license: 3 }, "license must be a string or an array of strings"],
    [{ model: "m", from: "x", parameters: { num_ctx: "big" } }, 'option "num_ctx" must be of type integer'],
    [
      { model: "m", from: "x", messages: "hi" },
      "json: cannot unmarshal string into Go struct field CreateRequest.messages of type []api.Message",
    ],
  ])("refuses %j", (body, message) => {
    expect400(() => parseCreateRequest(body), message);
  });
});

describe("isValidRelativePath (Go's fs.ValidPath)", () => {
  it.each([
    ["model.gguf", true],
    ["sub/dir/model.safetensors", true],
    [".", true],
    ["", false],
    ["/abs", false],
    ["a//b", false],
    ["a/./b", false],
    ["a/../b", false],
    ["..", false],
    ["a/", false],
  ])("%j → %s", (path, valid) => {
    expect(isValidRelativePath(path)).toBe(valid);
  });
});

describe("copy", () => {
  it("keeps source and destination", () => {
    expect(parseCopyRequest({ source: "llama3.1", destination: "llama3-backup" })).toEqual({
      source: "llama3.1",
      destination: "llama3-backup",
    });
  });

  it.each<[unknown, string]>([
    [{}, 'source "" is invalid'],
    [{ destination: "b" }, 'source "" is invalid'],
    [{ source: "a" }, 'destination "" is invalid'],
    [{ source: "a/b/c/d", destination: "b" }, 'source "a/b/c/d" is invalid'],
    [{ source: "a", destination: "x y" }, 'destination "x y" is invalid'],
    [
      { source: 1, destination: "b" },
      "json: cannot unmarshal number into Go struct field CopyRequest.source of type string",
    ],
  ])("refuses %j", (body, message) => {
    expect400(() => parseCopyRequest(body), message);
  });
});

describe("delete", () => {
  it("accepts model or the seed's name", () => {
    expect(parseDeleteRequest({ name: "llama3.1" })).toEqual({ model: "llama3.1" });
    expect(parseDeleteRequest({ model: "llama3.1:8b" })).toEqual({ model: "llama3.1:8b" });
  });

  it.each<[unknown, string]>([
    [{}, 'name "" is invalid'],
    [{ model: "bad:" }, 'name "bad:" is invalid'],
  ])("refuses %j", (body, message) => {
    expect400(() => parseDeleteRequest(body), message);
  });
});

describe("show", () => {
  it("accepts model or name, verbose defaulting to false", () => {
    expect(parseShowRequest({ name: "llama3.1" })).toEqual({ model: "llama3.1", verbose: false });
    expect(parseShowRequest({ model: "m", verbose: true, options: { num_ctx: 8192 } })).toEqual({
      model: "m",
      verbose: true,
      options: { num_ctx: 8192 },
    });
  });

  it("requires a model", () => {
    expect400(() => parseShowRequest({}), "model is required");
    expect400(() => parseShowRequest({ model: "", name: "" }), "model is required");
  });
});

describe("pull / push", () => {
  it("accept model or name; stream defaults to true, insecure to false; credentials are dropped", () => {
    expect(parsePullRequest({ name: "llama3.1", username: "u", password: "p" })).toEqual({
      model: "llama3.1",
      insecure: false,
      stream: true,
    });
    expect(parsePushRequest({ name: "mattw/pygmalion:latest", insecure: true, stream: false })).toEqual({
      model: "mattw/pygmalion:latest",
      insecure: true,
      stream: false,
    });
  });

  it("pull refuses invalid names with Ollama's text, push requires a model", () => {
    expect400(() => parsePullRequest({}), "invalid model name");
    expect400(() => parsePullRequest({ model: "../../x" }), "invalid model name");
    expect400(() => parsePushRequest({}), "model is required");
    expect400(
      () => parsePullRequest({ model: "m", insecure: "yes" }),
      "json: cannot unmarshal string into Go struct field PullRequest.insecure of type bool",
    );
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { displayShortest, equalFold, formatModelName, fullName, isValidNamespace, parseModelName } from "./names";

const part80 = "8".repeat(80);
const part350 = "3".repeat(350);

describe("parseModelName", () => {
  it.each([
    ["llama3.2", { host: "registry.ollama.ai", namespace: "library", model: "llama3.2", tag: "latest" }],
    ["llama3.2:1b", { host: "registry.ollama.ai", namespace: "library", model: "llama3.2", tag: "1b" }],
    ["me/model", { host: "registry.ollama.ai", namespace: "me", model: "model", tag: "latest" }],
    [
      "registry.ollama.ai/library/dolphin-mistral:7b-v2.6-dpo-laser-q6_K",
      { host: "registry.ollama.ai", namespace: "library", model: "dolphin-mistral", tag: "7b-v2.6-dpo-laser-q6_K" },
    ],
    ["host/namespace/model:tag", { host: "host", namespace: "namespace", model: "model", tag: "tag" }],
    ["host:5000/namespace/model:tag", { host: "host:5000", namespace: "namespace", model: "model", tag: "tag" }],
    ["host:5000/namespace/model", { host: "host:5000", namespace: "namespace", model: "model", tag: "latest" }],
    ["host:https/namespace/model:tag", { host: "host:https", namespace: "namespace", model: "model", tag: "tag" }],
    ["h/nn/mm:t", { host: "h", namespace: "nn", model: "mm", tag: "t" }],
    ["_why/_the/_lucky:_stiff", { host: "_why", namespace: "_the", model: "_lucky", tag: "_stiff" }],
    ["Llama3:Latest", { host: "registry.ollama.ai", namespace: "library", model: "Llama3", tag: "Latest" }],
    [
      "https://example.com/ns/model:tag",
      { host: "example.com", namespace: "ns", model: "model", tag: "tag", scheme: "https" },
    ],
    [
      "http://localhost:5000/ns/model",
      { host: "localhost:5000", namespace: "ns", model: "model", tag: "latest", scheme: "http" },
    ],
    [`${part80}/${part80}/${part80}:${part80}`, { host: part80, namespace: part80, model: part80, tag: part80 }],
    [`${part350}/${part80}/${part80}:${part80}`, { host: part350, namespace: part80, model: part80, tag: part80 }],
  ])("parses %j", (input, expected) => {
    expect(parseModelName(input)).toEqual(expected);
  });

  it.each([
    ["", "empty"],
    ["^", "bad character"],
    ["mm:", "empty tag"],
    ["n/m:", "empty tag after namespace"],
    ["/nn/mm", "empty host"],
    ["//", "all parts empty"],
    ["//mm", "empty host and namespace"],
    ["hh//", "empty model"],
    ["//mm:@", "empty parts and bad tag"],
    ["ns//model", "empty namespace"],
    ["00@", "@ in model"],
    ["@", "bare @"],
    ["m@d", "digest suffix"],
    [`model@sha256-${"a".repeat(64)}`, "digest suffix with sha"],
    [`@sha256-${"a".repeat(64)}`, "digest as name"],
    ["-hh/nn/mm:tt", "host starts with -"],
    ["hh/-nn/mm:tt", "namespace starts with -"],
    ["hh/nn/-mm:tt", "model starts with -"],
    ["hh/nn/mm:-tt", "tag starts with -"],
    [".hidden", "model starts with ."],
    ["host/name:space/model:tag", "colon in namespace"],
    ["host/name.space/model:tag", "dot in namespace"],
    ["../model", "path traversal"],
    ["../../etc/passwd", "deeper traversal"],
    ["ns/..:latest", "dot-dot model"],
    ["ns/model:..", "dot-dot tag"],
    ["/etc/passwd", "absolute path"],
    ["a/b/c/d", "too many parts"],
    ["ns\\model", "backslash"],
    ["mödel", "unicode"],
    ["模型", "CJK"],
    ["model name", "space"],
    ["model:tag:extra", "colon in model"],
    [`${"m".repeat(81)}`, "model over 80"],
    [`ns/model:${"t".repeat(81)}`, "tag over 80"],
    [`${"n".repeat(81)}/model`, "namespace over 80"],
    [`${"h".repeat(351)}/ns/model`, "host over 350"],
    ["ftp://host/ns/model", "scheme other than http(s)"],
    ["https://ns/model", "scheme without host"],
  ])("refuses %j (%s)", (input) => {
    expect(parseModelName(input)).toBeNull();
  });

  it("reads `sha256:<hex>` as model `sha256` with a hex tag, as Ollama's grammar does (no digest part exists)", () => {
    expect(parseModelName(`sha256:${"a".repeat(64)}`)).toMatchObject({ model: "sha256", tag: "a".repeat(64) });
  });
});

describe("isValidNamespace", () => {
  it.each([
    ["", false],
    ["a", true],
    ["a:b", false],
    ["a/b", false],
    ["a.b", false],
    ["himynameisreallyreallyreallyreallylongbutitshouldstillbevalid", true],
  ])("%j → %s", (input, valid) => {
    expect(isValidNamespace(input)).toBe(valid);
  });
});

describe("displayShortest", () => {
  it.each([
    ["registry.ollama.ai/library/model:latest", "model:latest"],
    ["registry.ollama.ai/library/model:tag", "model:tag"],
    ["registry.ollama.ai/namespace/model:tag", "namespace/model:tag"],
    ["host/namespace/model:tag", "host/namespace/model:tag"],
    ["host/library/model:tag", "host/library/model:tag"],
    ["REGISTRY.OLLAMA.AI/Library/Model:Tag", "Model:Tag"],
    ["llama3.2", "llama3.2:latest"],
  ])("%j → %j", (input, expected) => {
    expect(displayShortest(parseModelName(input)!)).toBe(expected);
  });
});

describe("fullName / equalFold / formatModelName", () => {
  it("treats names differing only in case as one model", () => {
    const a = parseModelName("Llama3.2:Latest")!;
    const b = parseModelName("registry.ollama.ai/library/llama3.2")!;
    expect(fullName(a)).toBe("registry.ollama.ai/library/llama3.2:latest");
    expect(fullName(a)).toBe(fullName(b));
    expect(equalFold(a, b)).toBe(true);
    expect(equalFold(a, parseModelName("llama3.2:1b")!)).toBe(false);
    expect(formatModelName(a)).toBe("registry.ollama.ai/library/Llama3.2:Latest");
  });
});

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
const partArb = (rest: string, max: number) =>
  fc
    .tuple(
      fc.constantFrom(...alnum),
      fc.array(fc.constantFrom(...(alnum + rest)), { maxLength: Math.min(max - 1, 20) }),
    )
    .map(([first, more]) => first + more.join(""));

const nameArb = fc.record({
  host: fc.option(partArb("-_.:", 350), { nil: undefined }),
  namespace: fc.option(partArb("-_", 80), { nil: undefined }),
  model: partArb("-_.", 80),
  tag: fc.option(partArb("-_.", 80), { nil: undefined }),
});

describe("properties", () => {
  it("every name built from valid parts parses to those parts", () => {
    fc.assert(
      fc.property(nameArb, ({ host, namespace, model, tag }) => {
        const ns = host !== undefined ? (namespace ?? "ns") : namespace;
        const text = `${host !== undefined ? `${host}/` : ""}${ns !== undefined ? `${ns}/` : ""}${model}${tag !== undefined ? `:${tag}` : ""}`;
        expect(parseModelName(text)).toEqual({
          host: host ?? "registry.ollama.ai",
          namespace: ns ?? "library",
          model,
          tag: tag ?? "latest",
        });
      }),
      { numRuns: 300 },
    );
  });

  it("parse(displayShortest(parse(x))) is parse(x), up to case", () => {
    const anyText = fc.oneof(
      nameArb.map((n) => `${n.host ? `${n.host}/${n.namespace ?? "x"}/` : ""}${n.model}${n.tag ? `:${n.tag}` : ""}`),
      fc.string({ maxLength: 40 }),
      fc.stringMatching(/^[a-zA-Z0-9_.:/-]{0,30}$/),
    );
    fc.assert(
      fc.property(anyText, (text) => {
        const parsed = parseModelName(text);
        if (!parsed) return;
        const again = parseModelName(displayShortest(parsed));
        expect(again).not.toBeNull();
        expect(equalFold(again!, parsed)).toBe(true);
        expect(fullName(parseModelName(formatModelName(parsed))!)).toBe(fullName(parsed));
      }),
      { numRuns: 500 },
    );
  });

  it("no valid name has a part that could walk a path", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z./:\\-]{0,20}$/), (text) => {
        const parsed = parseModelName(text);
        if (!parsed) return;
        for (const part of [parsed.namespace, parsed.model, parsed.tag]) {
          expect(part).not.toMatch(/^\.|\/|\\/);
        }
        expect(parsed.host).not.toMatch(/^[.:]|\/|\\/);
      }),
      { numRuns: 500 },
    );
  });
});

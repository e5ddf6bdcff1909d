import { describe, expect, it } from "vitest";
import { outputTokens, parseAnswer } from "./client";

const ndjson = (...lines: object[]) => lines.map((l) => JSON.stringify(l)).join("\n");
const sse = (...events: (object | string)[]) =>
  events.map((e) => `data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`).join("");

describe("parseAnswer", () => {
  it.each([
    [
      "an Ollama generate stream to its done line",
      ndjson({ response: "a" }, { response: "b" }, { response: "", done: true, eval_count: 2 }),
      false,
      { text: "ab", complete: true },
    ],
    [
      "an Ollama chat stream cut before done",
      ndjson({ message: { content: "a" } }, { message: { content: "b" } }),
      false,
      { text: "ab", complete: false },
    ],
    [
      "a stream ending in an error line",
      ndjson({ response: "a" }, { error: "runner lost" }),
      false,
      { complete: false },
    ],
    [
      "a pull's progress stream",
      ndjson({ status: "pulling manifest" }, { status: "success" }),
      false,
      { complete: true },
    ],
    [
      "an OpenAI SSE stream to [DONE]",
      sse({ choices: [{ delta: { content: "x" } }] }, { choices: [], usage: { completion_tokens: 1 } }, "[DONE]"),
      true,
      { text: "x", complete: true },
    ],
    ["an OpenAI SSE stream without [DONE]", sse({ choices: [{ delta: { content: "x" } }] }), true, { complete: false }],
  ])("%s", (_, body, isSse, want) => expect(parseAnswer(body, isSse)).toMatchObject(want));
});

describe("outputTokens", () => {
  it.each([
    [{ eval_count: 3 }, 3],
    [{ usage: { completion_tokens: 4 } }, 4],
    [{ status: "success" }, undefined],
    [undefined, undefined],
  ])("%j → %j", (final, want) => expect(outputTokens(final)).toBe(want));
});

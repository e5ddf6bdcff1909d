import { describe, expect, it } from "vitest";
import { inferThinkingTags, ThinkingParser } from "./thinking";

const tags = { open: "<think>", close: "</think>" };

function run(chunks: string[], startsInside = false) {
  const parser = new ThinkingParser(tags, startsInside);
  let thinking = "";
  let content = "";
  for (const chunk of [...chunks.map((c) => parser.add(c)), parser.finish()]) {
    thinking += chunk.thinking;
    content += chunk.content;
  }
  return { thinking, content };
}

describe("ThinkingParser", () => {
  it.each([
    ["whole", ["<think>plan</think>\n\nanswer"], { thinking: "plan", content: "answer" }],
    ["split tags", ["<th", "ink>pl", "an</th", "ink> ans", "wer"], { thinking: "plan", content: "answer" }],
    ["no thinking", ["just an answer"], { thinking: "", content: "just an answer" }],
    ["leading whitespace", ["  \n<think>x</think>y"], { thinking: "x", content: "y" }],
    ["unclosed", ["<think>still going"], { thinking: "still going", content: "" }],
  ])("%s", (_name, chunks, expected) => {
    expect(run(chunks)).toEqual(expected);
  });

  it("starts inside when the prompt ended with the opening tag", () => {
    expect(run(["reasoning</think>done"], true)).toEqual({ thinking: "reasoning", content: "done" });
  });

  it("infers tags from a template", () => {
    expect(inferThinkingTags("{{ if .Think }}<think>{{ .Thinking }}</think>{{ end }}")).toEqual(tags);
    expect(inferThinkingTags("{{ .Prompt }}")).toBeUndefined();
  });
});

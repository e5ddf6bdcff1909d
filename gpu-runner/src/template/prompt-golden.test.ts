// Golden tests against Ollama's own template fixtures (testdata/README.md says where each file comes from).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { executeTemplate, parseOllamaTemplate, type TemplateMessageInput, type TemplateToolInput } from "./go-prompt";

const testdata = join(import.meta.dirname, "testdata");
const read = (...parts: string[]) => readFileSync(join(testdata, ...parts), "utf8");

/** The conversations of Ollama's TestTemplate, keyed like its golden files. */
const CONVERSATIONS: Record<string, TemplateMessageInput[]> = {
  user: [{ role: "user", content: "Hello, how are you?" }],
  "user-assistant-user": [
    { role: "user", content: "Hello, how are you?" },
    { role: "assistant", content: "I'm doing great. How can I help you today?" },
    { role: "user", content: "I'd like to show off how chat templating works!" },
  ],
  "system-user-assistant-user": [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "Hello, how are you?" },
    { role: "assistant", content: "I'm doing great. How can I help you today?" },
    { role: "user", content: "I'd like to show off how chat templating works!" },
  ],
};

const GET_WEATHER: TemplateToolInput = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get current weather information for a location",
    parameters: {
      type: "object",
      properties: {
        location: { type: "string", description: "The city and state, e.g. San Francisco, CA" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"], description: "The unit of temperature to use" },
      },
      required: ["location"],
    },
  },
};

/** The cases of Ollama's TestTools (template_test.go on the tools branch). */
const TOOL_CASES: Record<string, { tools?: TemplateToolInput[]; messages: TemplateMessageInput[] }> = {
  "tools-single": { tools: [GET_WEATHER], messages: [] },
  "tools-single-call": {
    messages: [
      {
        role: "assistant",
        tool_calls: [{ function: { name: "get_weather", arguments: { location: "San Francisco, CA" } } }],
      },
    ],
  },
  "tools-single-result": {
    messages: [
      { role: "tool", content: `{"temperature": 22, "condition": "Sunny", "humidity": 45, "wind_speed": 10}` },
    ],
  },
};

// Ollama's test strips one trailing space from these templates' output before comparing.
const TRAILING_SPACE_TRIMMED = [
  "chatqa.gotmpl",
  "llama2-chat.gotmpl",
  "mistral-instruct.gotmpl",
  "openchat.gotmpl",
  "vicuna.gotmpl",
];

const goldenCases = readdirSync(join(testdata, "expected")).flatMap((name) =>
  readdirSync(join(testdata, "expected", name)).map((testCase) => ({ name, testCase })),
);

describe("Ollama template fixtures", () => {
  it.each(goldenCases)("$name / $testCase", ({ name, testCase }) => {
    const template = parseOllamaTemplate(read("templates", name));
    const toolCase = TOOL_CASES[testCase];
    const conversation = CONVERSATIONS[testCase];
    let actual: string;
    if (toolCase) actual = executeTemplate(template, { messages: toolCase.messages, tools: toolCase.tools });
    else if (conversation) actual = executeTemplate(template, { messages: conversation });
    else throw new Error(`no inputs for ${testCase}`);
    if (TRAILING_SPACE_TRIMMED.includes(name) && actual.endsWith(" ")) actual = actual.slice(0, -1);
    expect(actual).toBe(read("expected", name, testCase));
  });

  it("covers every stored template", () => {
    const withGoldens = new Set(goldenCases.map((c) => c.name));
    expect(readdirSync(join(testdata, "templates")).filter((t) => !withGoldens.has(t))).toEqual([]);
  });
});

describe("Ollama tool-calling fixtures (server/testdata/tools)", () => {
  const messages = JSON.parse(read("tools", "messages.json")) as TemplateMessageInput[];
  const tools = JSON.parse(read("tools", "tools.json")) as TemplateToolInput[];
  const names = readdirSync(join(testdata, "tools"))
    .filter((f) => f.endsWith(".gotmpl"))
    .map((f) => f.replace(/\.gotmpl$/, ""));

  it.each(names)("%s", (name) => {
    const template = parseOllamaTemplate(read("tools", `${name}.gotmpl`));
    expect(executeTemplate(template, { messages, tools })).toBe(read("tools", `${name}.out`));
  });
});

describe("library templates (outputs generated with Go's text/template, see testdata/README.md)", () => {
  const scenarios = JSON.parse(read("library", "scenarios.json")) as Record<
    string,
    { messages: TemplateMessageInput[]; tools?: TemplateToolInput[]; think?: boolean | string }
  >;
  const cases = readdirSync(join(testdata, "library", "expected")).flatMap((name) =>
    readdirSync(join(testdata, "library", "expected", name)).map((scenario) => ({ name, scenario })),
  );
  // currentDate/yesterdayDate were rendered for 2024-03-05.
  const now = () => new Date(2024, 2, 5, 12, 0, 0);

  it.each(cases)("$name / $scenario", ({ name, scenario }) => {
    const template = parseOllamaTemplate(read("library", name), { now });
    const s = scenarios[scenario]!;
    const actual = executeTemplate(template, { messages: s.messages, tools: s.tools, think: s.think });
    expect(actual).toBe(read("library", "expected", name, scenario));
  });
});

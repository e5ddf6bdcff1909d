import { messageSchema, toolSchema } from "@corral/protocol/schema-fields";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { TemplateError } from "./errors";
import {
  buildChatPrompt,
  buildGeneratePrompt,
  executeTemplate,
  parseOllamaTemplate,
  renderChat,
  renderGenerate,
  type TemplateMessageInput,
  templateCapabilities,
} from "./go-prompt";
import { parseTemplate } from "./gotemplate";
import { inferThinkingTags } from "./tree-walk";

const user = (content: string): TemplateMessageInput => ({ role: "user", content });
const assistant = (content: string): TemplateMessageInput => ({ role: "assistant", content });
const system = (content: string): TemplateMessageInput => ({ role: "system", content });

// The mistral and chatml cases of Ollama's TestExecuteWithMessages: legacy Prompt/Response templates must render
// a conversation exactly like their .Messages counterparts.
const MISTRAL_LEGACY = `[INST] {{ if .System }}{{ .System }}

{{ end }}{{ .Prompt }}[/INST] `;
const MISTRAL_LEGACY_RESPONSE = `${MISTRAL_LEGACY}{{ .Response }}`;
const MISTRAL_MESSAGES = `[INST] {{ if .System }}{{ .System }}

{{ end }}
{{- range .Messages }}
{{- if eq .Role "user" }}{{ .Content }}[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}[INST] {{ end }}
{{- end }}`;

describe("executeTemplate (template.Execute)", () => {
  it.each([
    {
      name: "mistral",
      templates: [MISTRAL_LEGACY, MISTRAL_LEGACY_RESPONSE, MISTRAL_MESSAGES],
      messages: [user("Hello friend!"), assistant("Hello human!"), user("What is your name?")],
      expected: "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] ",
    },
    {
      name: "mistral system",
      templates: [MISTRAL_LEGACY, MISTRAL_LEGACY_RESPONSE, MISTRAL_MESSAGES],
      messages: [
        system("You are a helpful assistant!"),
        user("Hello friend!"),
        assistant("Hello human!"),
        user("What is your name?"),
      ],
      expected:
        "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] What is your name?[/INST] ",
    },
    {
      name: "mistral assistant (response prefill)",
      templates: [
        "[INST] {{ .Prompt }}[/INST] ",
        "[INST] {{ .Prompt }}[/INST] {{ .Response }}",
        `
{{- range $i, $m := .Messages }}
{{- if eq .Role "user" }}[INST] {{ .Content }}[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}{{ end }}
{{- end }}`,
      ],
      messages: [
        user("Hello friend!"),
        assistant("Hello human!"),
        user("What is your name?"),
        assistant("My name is Ollama and I"),
      ],
      expected: "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama and I",
    },
    {
      name: "chatml",
      templates: [
        `{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ .Response }}<|im_end|>
`,
        `
{{- range $index, $_ := .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
`,
      ],
      messages: [
        system("You are a helpful assistant!"),
        user("Hello friend!"),
        assistant("Hello human!"),
        user("What is your name?"),
      ],
      expected:
        "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n<|im_start|>user\nHello friend!<|im_end|>\n<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nWhat is your name?<|im_end|>\n<|im_start|>assistant\n",
    },
  ])("$name", ({ templates, messages, expected }) => {
    for (const t of templates) expect(executeTemplate(t, { messages })).toBe(expected);
  });

  it("renders fill-in-the-middle with Prompt and Suffix (TestExecuteWithSuffix)", () => {
    const t = parseOllamaTemplate(`{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>
{{- else }}{{ .Prompt }}
{{- end }}`);
    expect(executeTemplate(t, { messages: [user("hello")] })).toBe("hello");
    expect(executeTemplate(t, { prompt: "def add(", suffix: "return x" })).toBe("<PRE> def add( <SUF>return x <MID>");
  });

  it("merges consecutive same-role messages but keeps tool results apart (collate)", () => {
    const t =
      "{{ .System }}|{{ range .Messages }}[{{ .Role }}:{{ .Content }}{{ with .ToolName }}@{{ . }}{{ end }}]{{ end }}";
    const out = executeTemplate(t, {
      messages: [
        system("s1"),
        system("s2"),
        user("a"),
        user("b"),
        { role: "tool", content: "sunny", tool_name: "get_weather" },
        { role: "tool", content: "72F", tool_name: "get_temperature" },
      ],
    });
    expect(out).toBe("s1\n\ns2|[system:s1\n\ns2][user:a\n\nb][tool:sunny@get_weather][tool:72F@get_temperature]");
  });

  it("maps think values onto Think, ThinkLevel and IsThinkSet", () => {
    const t = "{{ range .Messages }}{{ end }}{{ .Think }}/{{ .ThinkLevel }}/{{ .IsThinkSet }}";
    expect(executeTemplate(t, { messages: [user("x")] })).toBe("false//false");
    expect(executeTemplate(t, { messages: [user("x")], think: true })).toBe("true/medium/true");
    expect(executeTemplate(t, { messages: [user("x")], think: false })).toBe("false//true");
    expect(executeTemplate(t, { messages: [user("x")], think: "low" })).toBe("true/low/true");
  });

  it("gives templates Go-struct views: unknown fields are errors, zero fields are falsy", () => {
    const t = parseOllamaTemplate("{{ range .Messages }}{{ if .Thinking }}T{{ else }}-{{ end }}{{ .Nope }}{{ end }}");
    expect(() => executeTemplate(t, { messages: [user("x")] })).toThrow(
      'template: :1:63: executing "" at <.Nope>: can\'t evaluate field Nope in type *template.templateMessage',
    );
  });

  it("sees missing top-level keys as zero values (missingkey=zero)", () => {
    expect(
      executeTemplate("{{ range .Messages }}{{ end }}[{{ .Prompt }}]{{ if .Suffix }}x{{ end }}", {
        messages: [user("x")],
      }),
    ).toBe("[<no value>]");
  });

  it("prints nil and empty tool lists as JSON null and []", () => {
    const t = "{{ range .Messages }}{{ end }}{{ .Tools }} {{ json .Tools }} {{ if .Tools }}yes{{ else }}no{{ end }}";
    expect(executeTemplate(t, { messages: [user("x")] })).toBe("null null no");
    expect(executeTemplate(t, { messages: [user("x")], tools: [] })).toBe("[] [] no");
  });

  it("renders the cut legacy tree without Ollama's extra functions, like Go's fresh AddParseTree template", () => {
    expect(() => executeTemplate("{{ json .Prompt }}{{ .Response }}", { messages: [user("x")] })).toThrow(
      '"json" is not a defined function',
    );
  });

  it("injects the clock behind currentDate and yesterdayDate", () => {
    const t = parseOllamaTemplate("{{ range .Messages }}{{ end }}{{ currentDate }} {{ yesterdayDate }}", {
      now: () => new Date(2024, 2, 1, 9),
    });
    expect(executeTemplate(t, { messages: [user("x")] })).toBe("2024-03-01 2024-02-29");
  });
});

describe("parseOllamaTemplate", () => {
  it.each([
    ["{{ .Prompt }}", ["prompt", "response"]],
    ["{{ .System }} {{ .Prompt }} {{ .Response }}", ["prompt", "response", "system"]],
    ["{{ with .Tools }}{{ . }}{{ end }} {{ .System }} {{ .Prompt }}", ["prompt", "response", "system", "tools"]],
    ["{{ range .Messages }}{{ .Role }} {{ .Content }}{{ end }}", ["content", "messages", "role"]],
    [
      '{{ range .Messages }}{{ if eq .Role "tool" }}Tool Result: {{ .ToolName }} {{ .Content }}{{ end }}{{ end }}',
      ["content", "messages", "role", "toolname"],
    ],
    ['{{ $x := .A }}{{ $.Tools }}{{ (.B).C }}{{ define "d" }}{{ .D }}{{ end }}', ["$", "a", "d", "response", "tools"]],
  ])("finds the variables of %j", (source, vars) => {
    expect(parseOllamaTemplate(source).vars).toEqual(vars);
  });

  it.each([
    ["{{ .Prompt ", "template: :1: unclosed action"],
    ['{{define "x"}}{{template "x"}}{{end}}{{template "x"}}', "undefined template specified"],
    ["{{ if .Prompt }}", "template: :1: unexpected EOF"],
    ["{{ .Prompt | nosuchfunc }}", 'template: :1: function "nosuchfunc" not defined'],
  ])("rejects %j", (source, message) => {
    expect(() => parseOllamaTemplate(source)).toThrow(TemplateError);
    expect(() => parseOllamaTemplate(source)).toThrow(message);
  });
});

describe("templateCapabilities", () => {
  const QWEN3 = `{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{ if and $last .Thinking }}
<think>{{ .Thinking }}</think>
{{ end }}{{ .Content }}{{ end }}`;

  it.each([
    ["{{ .System }} {{ .Prompt }}", { tools: false, insert: false, thinking: false }],
    [
      "{{ range .Messages }}{{ end }}{{ if .Tools }}{{ json .Tools }}{{ end }}",
      { tools: true, insert: false, thinking: false },
    ],
    [
      "{{ if .Suffix }}<PRE>{{ .Prompt }}<SUF>{{ .Suffix }}<MID>{{ end }}",
      { tools: false, insert: true, thinking: false },
    ],
    [
      "{{ if .Think }}/think{{ end }}{{ range .Messages }}{{ .Content }}{{ end }}",
      { tools: false, insert: false, thinking: false },
    ],
    [QWEN3, { tools: false, insert: false, thinking: true }],
  ])("of %j", (source, expected) => {
    expect(templateCapabilities(source)).toMatchObject(expected);
  });

  // thinking.InferTags cases from Ollama's thinking/template_test.go.
  it.each([
    [
      `{{ if .Thinking}}
				/think
			{{ end }}
			{{- range $i, $_ := .Messages }}
				{{- $last := eq (len (slice $.Messages $i)) 1 -}}
				{{ if and $last .Thinking }}
					<think>{{ .Thinking }}</think>
				{{ end }}
			{{ end }}`,
      { opening: "<think>", closing: "</think>" },
    ],
    [
      `{{- range $i, $_ := .Messages }}
				{{- range $j, $_ := .NotMessages }}
					{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}
				{{ end }}
			{{ end }}`,
      { opening: "", closing: "" },
    ],
    [
      `{{- range $i, $_ := .Messages }}
				{{ if .Thinking }}
					Some text before   {{ .Thinking }}    Some text after
				{{ end }}
			{{ end }}`,
      { opening: "Some text before", closing: "Some text after" },
    ],
  ])("infers thinking tags of %#", (source, tags) => {
    expect(inferThinkingTags(parseTemplate(source).root)).toEqual(tags);
  });
});

describe("renderChat (ChatHandler + chatPrompt)", () => {
  const CHATML = "{{ range .Messages }}<{{ .Role }}>{{ .Content }}</{{ .Role }}>{{ end }}<assistant>";
  /** One token per character keeps the arithmetic readable. */
  const countTokens = (prompt: string) => prompt.length;

  it("prepends the model's system prompt unless the conversation starts with one", () => {
    expect(renderChat({ template: CHATML, messages: [user("hi")], modelSystem: "S" })).toBe(
      "<system>S</system><user>hi</user><assistant>",
    );
    expect(renderChat({ template: CHATML, messages: [system("mine"), user("hi")], modelSystem: "S" })).toBe(
      "<system>mine</system><user>hi</user><assistant>",
    );
    expect(renderChat({ template: CHATML, messages: [user("hi")], modelMessages: [user("m"), assistant("n")] })).toBe(
      "<user>m</user><assistant>n</assistant><user>hi</user><assistant>",
    );
  });

  it("drops the oldest messages to fit num_ctx, keeping system messages and the last message", () => {
    const messages = [system("sys"), user("one"), assistant("two"), user("three")];
    const full = renderChat({ template: CHATML, messages });
    expect(renderChat({ template: CHATML, messages, truncate: { numCtx: full.length, countTokens } })).toBe(full);

    const truncated = buildChatPrompt({
      template: CHATML,
      messages,
      truncate: { numCtx: full.length - 1, countTokens },
    });
    expect(truncated.prompt).toBe("<system>sys</system><assistant>two</assistant><user>three</user><assistant>");
    expect(truncated.firstMessage).toBe(2);

    const tiny = buildChatPrompt({ template: CHATML, messages, truncate: { numCtx: 1, countTokens } });
    expect(tiny.prompt).toBe("<system>sys</system><user>three</user><assistant>");
    expect(tiny.firstMessage).toBe(3);
  });

  it("charges images against the context when the model has a projector", () => {
    const messages = [user("old"), { role: "user", content: "new", images: ["aW1n"] }, assistant("ok"), user("q")];
    const kept = buildChatPrompt({
      template: CHATML,
      messages,
      truncate: { numCtx: 100, countTokens, imageTokens: 768 },
    });
    expect(kept.firstMessage).toBe(2);
    expect(kept.images).toEqual([]);
  });

  it("tags images as [img-N], replacing [img] placeholders in order", () => {
    const result = buildChatPrompt({
      template: CHATML,
      messages: [
        { role: "user", content: "compare", images: ["a", "b"] },
        { role: "user", content: "left [img] right [img] end", images: ["c", "d"] },
      ],
    });
    expect(result.prompt).toBe("<user>[img-0][img-1]compare\n\nleft [img-2] right [img-3] end</user><assistant>");
    expect(result.images).toEqual(["a", "b", "c", "d"]);
  });

  it("renders tool definitions, calls and results through the template", () => {
    const prompt = renderChat({
      template:
        '{{ range .Tools }}{{ .Function.Name }}({{ range $k, $v := .Function.Parameters.Properties }}{{ $k }}:{{ $v.Type }} {{ end }}){{ end }}|{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Name }}{{ .Function.Arguments }}{{ end }}{{ if eq .Role "tool" }}{{ .ToolName }}={{ .Content }}{{ end }}{{ end }}',
      tools: [
        {
          type: "function",
          function: {
            name: "f",
            parameters: { type: "object", properties: { b: { type: "string" }, a: { type: ["number", "null"] } } },
          },
        },
      ],
      messages: [
        user("go"),
        { role: "assistant", content: "", tool_calls: [{ function: { name: "f", arguments: { b: "<x>", a: 1 } } }] },
        { role: "tool", content: "42", tool_name: "f" },
      ],
    });
    expect(prompt).toBe('f(a:[number null] b:string )|f{"a":1,"b":"\\u003cx\\u003e"}f=42');
  });
});

describe("renderGenerate (GenerateHandler)", () => {
  const T = "{{ if .System }}S:{{ .System }}|{{ end }}{{ if .Prompt }}P:{{ .Prompt }}|{{ end }}R:{{ .Response }}";

  it("builds system + user messages and renders them with the legacy template", () => {
    expect(renderGenerate({ template: T, prompt: "hi", system: "be nice" })).toBe("S:be nice|P:hi|R:");
    expect(renderGenerate({ template: T, prompt: "hi", modelSystem: "model sys" })).toBe("S:model sys|P:hi|R:");
  });

  it("uses Prompt and Suffix for fill-in-the-middle", () => {
    const fim = "{{ if .Suffix }}<PRE>{{ .Prompt }}<SUF>{{ .Suffix }}<MID>{{ else }}{{ .Prompt }}{{ end }}";
    expect(renderGenerate({ template: fim, prompt: "def f(", suffix: "return 1", system: "ignored" })).toBe(
      "<PRE>def f(<SUF>return 1<MID>",
    );
  });

  it("returns raw prompts untouched and prefixes the detokenized context", () => {
    expect(renderGenerate({ template: T, prompt: "{{ raw }}", raw: true })).toBe("{{ raw }}");
    expect(renderGenerate({ template: T, prompt: "next", context: "S:x|P:prev|R:answer" })).toBe(
      "S:x|P:prev|R:answerP:next|R:",
    );
  });

  it("passes an empty tool list and tags images on the chat-like path only", () => {
    const t = "{{ range .Messages }}{{ .Content }}{{ end }}|{{ .Tools }}";
    const chatLike = buildGeneratePrompt({ template: t, prompt: "look", images: ["aW1n"] });
    expect(chatLike.prompt).toBe("[img-0]look|[]");
    expect(chatLike.images).toEqual(["aW1n"]);
    expect(renderGenerate({ template: t, prompt: "look", images: ["aW1n"], templateFromRequest: true })).toBe(
      "look|null",
    );
  });

  it("skips the model's messages when a context is given", () => {
    const t = "{{ range .Messages }}[{{ .Content }}]{{ end }}";
    const modelMessages = [user("m"), assistant("n")];
    expect(renderGenerate({ template: t, prompt: "p", modelMessages })).toBe("[m][n][p]");
    expect(renderGenerate({ template: t, prompt: "p", modelMessages, context: "" })).toBe("[p]");
  });
});

describe("with messages and tools as @corral/protocol parses them", () => {
  it("renders a tool round trip", () => {
    const messages = z.array(messageSchema).parse([
      { role: "User", content: "weather?" },
      { role: "assistant", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Oslo" } } }] },
      { role: "tool", content: "-3", tool_name: "get_weather" },
    ]);
    const tools = z.array(toolSchema).parse([
      {
        type: "function",
        function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
      },
    ]);
    const template =
      "{{ range .Tools }}{{ .Function }}{{ end }}|{{ range .Messages }}{{ .Role }}:{{ .Content }}{{ range .ToolCalls }}{{ .Function.Name }}{{ .Function.Arguments }}{{ end }}{{ with .ToolName }}({{ . }}){{ end }};{{ end }}";
    expect(renderChat({ template, messages, tools })).toBe(
      '{"name":"get_weather","description":"","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}|user:weather?;assistant:get_weather{"city":"Oslo"};tool:-3(get_weather);',
    );
  });
});

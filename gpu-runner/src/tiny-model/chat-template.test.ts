import { Template } from "@huggingface/jinja";
import { JinjaTemplateChatWrapper } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { TINY_CHAT_TEMPLATE } from "./chat-template";
import { SCRIPTED_TOOL_CALL, SCRIPTED_TOOL_CALL_FUNCTION } from "./scripts";

// The same Jinja engine node-llama-cpp renders GGUF chat templates with.
const template = new Template(TINY_CHAT_TEMPLATE);
const render = (context: Record<string, unknown>) => template.render({ add_generation_prompt: true, ...context });

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

describe("TINY_CHAT_TEMPLATE", () => {
  it.each([
    [[{ role: "user", content: "hi" }], "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"],
    [
      [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "bye" },
      ],
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n" +
        "<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nbye<|im_end|>\n<|im_start|>assistant\n",
    ],
  ])("renders plain ChatML (%#)", (messages, expected) => {
    expect(render({ messages })).toBe(expected);
  });

  it("leaves the generation prompt off when not asked for", () => {
    expect(template.render({ messages: [{ role: "user", content: "hi" }] })).toBe("<|im_start|>user\nhi<|im_end|>\n");
  });

  it("puts tool signatures into the system turn", () => {
    const text = render({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Weather in Paris?" },
      ],
      tools: [weatherTool],
    });
    expect(text.startsWith("<|im_start|>system\nBe brief.\n\n# Tools\n")).toBe(true);
    expect(text).toContain(`<tools>\n{"type": "function", "function": {"name": "get_weather", "description"`);
    expect(text).toContain("</tools>");
    expect(text.endsWith("<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n")).toBe(true);
    // The system message is rendered once, inside the tools block.
    expect(text.match(/Be brief\./g)).toHaveLength(1);
  });

  it.each([
    ["an object (Ollama)", SCRIPTED_TOOL_CALL_FUNCTION.arguments],
    ["a JSON string (OpenAI)", JSON.stringify(SCRIPTED_TOOL_CALL_FUNCTION.arguments).replace(":", ": ")],
  ])("renders an assistant tool call whose arguments are %s exactly as the tool model emits it", (_, args) => {
    const text = render({
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: "",
          tool_calls: [{ type: "function", function: { name: SCRIPTED_TOOL_CALL_FUNCTION.name, arguments: args } }],
        },
        { role: "tool", content: '{"temperature": 21}' },
      ],
      tools: [weatherTool],
    });
    expect(text).toContain(`<|im_start|>assistant\n${SCRIPTED_TOOL_CALL}<|im_end|>\n`);
    expect(text).toContain('<|im_start|>user\n<tool_response>\n{"temperature": 21}\n</tool_response><|im_end|>\n');
  });

  it("is understood by node-llama-cpp, which finds the Hermes tool-call syntax in it", () => {
    const wrapper = new JinjaTemplateChatWrapper({ template: TINY_CHAT_TEMPLATE });
    expect(wrapper.usingJinjaFunctionCallTemplate).toBe(true);
    const call = wrapper.settings.functions.call;
    expect(String(call.prefix)).toContain('<tool_call>\n{"name": "');
    const state = wrapper.generateContextState({
      chatHistory: [
        { type: "user", text: "hi" },
        { type: "model", response: [] },
      ],
    });
    expect(state.contextText.toString()).toBe("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  });
});

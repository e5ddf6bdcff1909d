/**
 * The fallback prompt format: a model without a template layer is rendered with its GGUF's own
 * `tokenizer.chat_template` (a Hugging Face Jinja template) by @huggingface/jinja, the engine node-llama-cpp
 * itself uses for such templates. Messages are given in the Hugging Face / OpenAI shape those templates expect.
 */

import { ApiError, errorText } from "@corral/protocol/errors";
import type { Message as ChatMessage, Tool as ChatTool } from "@corral/protocol/schema-fields";
import { Template } from "@huggingface/jinja";

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let template = compiled.get(source);
  if (!template) {
    try {
      template = new Template(source);
    } catch (err) {
      throw new ApiError(500, `model chat template is invalid: ${errorText(err)}`);
    }
    if (compiled.size >= 16) compiled.delete(compiled.keys().next().value as string);
    compiled.set(source, template);
  }
  return template;
}

function toHuggingFaceMessage(message: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: message.role, content: message.content };
  if (message.tool_calls?.length) {
    out.tool_calls = message.tool_calls.map((call) => ({
      type: "function",
      id: call.id,
      function: { name: call.function.name, arguments: call.function.arguments },
    }));
  }
  if (message.tool_name) out.name = message.tool_name;
  if (message.tool_call_id) out.tool_call_id = message.tool_call_id;
  if (message.thinking) out.reasoning_content = message.thinking;
  return out;
}

export interface JinjaRenderInput {
  chatTemplate: string;
  messages: readonly ChatMessage[];
  tools?: readonly ChatTool[];
  bosToken: string;
  eosToken: string;
  think?: boolean;
}

export function renderJinjaChat(input: JinjaRenderInput): string {
  const template = compile(input.chatTemplate);
  try {
    return template.render({
      messages: input.messages.map(toHuggingFaceMessage),
      tools: input.tools?.length ? input.tools : undefined,
      add_generation_prompt: true,
      bos_token: input.bosToken,
      eos_token: input.eosToken,
      enable_thinking: input.think,
    });
  } catch (err) {
    throw new ApiError(500, `model chat template failed: ${errorText(err)}`);
  }
}

/**
 * POST /v1/chat: Ollama's /api/chat on a resolved model. The model's messages layer goes before the history,
 * its system prompt first unless the client sent one; tools go into the template and the model's tool-call
 * output comes back as `message.tool_calls`; `think` splits thinking from content for models that have it.
 */
import { parseKeepAlive } from "@corral/protocol/duration";
import { ApiError } from "@corral/protocol/errors";
import type { Message } from "@corral/protocol/schema-fields";
import { parseChatRequest } from "@corral/protocol/schemas";
import type { ChatResponse } from "@corral/protocol/types";
import { checkImages } from "../vision/image-check";
import { withImageMarkers } from "../vision/vision-completion";
import { answer } from "./answer";
import {
  acquireModel,
  envelope,
  finalStats,
  type InferenceCall,
  type InferenceDeps,
  NO_USAGE,
  quoteName,
  type Usage,
} from "./call";
import { NO_PROJECTOR_MESSAGE, NO_VISION_MESSAGE } from "./generate";
import { grammarForFormat } from "./grammar";
import { type Logprob, PendingLogprobs } from "./logprobs";
import { mergeModelAndRequestOptions, resolveSettings } from "./options";
import { formatChatPrompt, promptFormat, resolveThink, thinkingParserFor } from "./prompt";
import { type ToolCall, ToolCallParser } from "./tools";

const emptyAssistant: ChatResponse["message"] = { role: "assistant", content: "" };

export async function handleChat(deps: InferenceDeps, call: InferenceCall): Promise<Usage> {
  const { pool, clock } = deps;
  const request = parseChatRequest(call.body);
  const keepAliveMs = parseKeepAlive(request.keep_alive);

  if (request.messages.length === 0 && keepAliveMs === 0) {
    await pool.expireModel(call.model.model_blob);
    await deps.announceModels?.();
    call.sink.json({ ...envelope(call, clock), message: emptyAssistant, done: true, done_reason: "unload" });
    return NO_USAGE;
  }
  const requestImages = request.messages.flatMap((message) => message.images ?? []);
  if (requestImages.length && !call.model.projector) {
    throw new ApiError(400, `${quoteName(call)} does not support images: ${NO_PROJECTOR_MESSAGE}`);
  }
  const images = checkImages(requestImages);

  const options = mergeModelAndRequestOptions(call.model.params, request.options);
  const lease = await acquireModel(deps, call, options, keepAliveMs);
  try {
    const { instance } = lease;
    const format = promptFormat(instance, call.model.template);
    const tools = request.tools;
    if (tools?.length && !format.capabilities.tools) {
      throw new ApiError(400, `${quoteName(call)} does not support tools`);
    }
    const think = resolveThink(call, format, request.think);
    if (images.length && !instance.vision) {
      throw new ApiError(400, `${quoteName(call)} does not support images: ${NO_VISION_MESSAGE}`);
    }

    if (request.messages.length === 0) {
      await deps.announceModels?.();
      call.sink.json({ ...envelope(call, clock), message: emptyAssistant, done: true, done_reason: "load" });
      return NO_USAGE;
    }

    const layer = call.model.messages as unknown as Message[];
    let imageIndex = 0;
    const withImages = request.messages.map((message) => {
      const count = message.images?.length ?? 0;
      if (count === 0) return message;
      const content = withImageMarkers(message.content ?? "", imageIndex, count);
      imageIndex += count;
      return { ...message, content };
    });
    let messages: Message[] = [...layer, ...withImages];
    if (request.messages[0]?.role !== "system" && call.model.system) {
      messages = [{ role: "system", content: call.model.system }, ...messages];
    }

    const settings = resolveSettings(options, instance.spec.numCtx);
    const grammar = await grammarForFormat(deps.llama, request.format);
    const prompt = await formatChatPrompt({
      instance,
      format,
      messages,
      tools,
      think,
      truncate: request.truncate,
    });

    const thinking = thinkingParserFor(think, format, prompt);
    const toolParser = tools?.length
      ? new ToolCallParser(
          format.toolCallTag,
          tools.map((tool) => tool.function.name),
        )
      : undefined;

    const logprobs = new PendingLogprobs();
    const emit = (content: string, thinkingText: string, calls: ToolCall[]) => {
      if (content === "" && thinkingText === "" && calls.length === 0) return;
      const message: ChatResponse["message"] = { role: "assistant", content };
      if (thinkingText) message.thinking = thinkingText;
      if (calls.length) message.tool_calls = calls;
      call.sink.chunk({ ...envelope(call, clock), message, ...logprobs.take(), done: false });
    };
    const route = (content: string, thinkingText: string, final: boolean) => {
      if (!toolParser) return emit(content, thinkingText, []);
      const parsed = toolParser.add(content);
      const rest = final ? toolParser.finish() : { content: "", calls: [] };
      emit(parsed.content + rest.content, thinkingText, [...parsed.calls, ...rest.calls]);
    };

    const onText = (text: string, entries?: Logprob[]) => {
      logprobs.add(entries);
      if (!thinking) return route(text, "", false);
      const split = thinking.add(text);
      route(split.content, split.thinking, false);
    };
    const result = await answer({
      instance,
      prompt,
      images,
      settings,
      request,
      grammar,
      signal: call.signal,
      clock,
      onText,
    });
    const rest = thinking?.finish() ?? { content: "", thinking: "" };
    route(rest.content, rest.thinking, true);

    call.sink.end({
      ...envelope(call, clock),
      message: emptyAssistant,
      done: true,
      done_reason: result.doneReason,
      ...logprobs.take(),
      ...finalStats(call, clock, lease.loadDurationNs, result),
    });
    return { promptTokens: result.promptEvalCount, generatedTokens: result.evalCount };
  } finally {
    lease.release();
  }
}

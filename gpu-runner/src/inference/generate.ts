/**
 * POST /v1/generate: Ollama's /api/generate on a resolved model. Order of checks follows Ollama's
 * GenerateHandler: unload (empty prompt, keep_alive 0), raw conflicts (in the schema), images, capabilities
 * (insert for suffix, thinking), load, empty prompt → "load", then formatting and generation.
 */
import { parseKeepAlive } from "@corral/protocol/duration";
import { ApiError } from "@corral/protocol/errors";
import type { Message } from "@corral/protocol/schema-fields";
import { parseGenerateRequest } from "@corral/protocol/schemas";
import type { Token } from "node-llama-cpp";
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
import { grammarForFormat } from "./grammar";
import { type Logprob, PendingLogprobs } from "./logprobs";
import { mergeModelAndRequestOptions, resolveSettings } from "./options";
import { formatGeneratePrompt, promptFormat, resolveThink, thinkingParserFor } from "./prompt";

export const NO_PROJECTOR_MESSAGE = "the model has no vision projector";
export const NO_VISION_MESSAGE = "this runner has no vision backend (llama-server is not configured)";

export async function handleGenerate(deps: InferenceDeps, call: InferenceCall): Promise<Usage> {
  const { pool, clock } = deps;
  const request = parseGenerateRequest(call.body);
  const keepAliveMs = parseKeepAlive(request.keep_alive);

  if (request.prompt === "" && keepAliveMs === 0) {
    await pool.expireModel(call.model.model_blob);
    await deps.announceModels?.();
    call.sink.json({ ...envelope(call, clock), response: "", done: true, done_reason: "unload" });
    return NO_USAGE;
  }
  if (request.images?.length && !call.model.projector) {
    throw new ApiError(400, `${quoteName(call)} does not support images: ${NO_PROJECTOR_MESSAGE}`);
  }
  const images = checkImages(request.images ?? []);

  const options = mergeModelAndRequestOptions(call.model.params, request.options);
  const lease = await acquireModel(deps, call, options, keepAliveMs);
  try {
    const { instance } = lease;
    const fromRequest = Boolean(request.template);
    const format = promptFormat(instance, request.template || call.model.template, fromRequest);
    if (request.suffix && !format.capabilities.insert) {
      throw new ApiError(400, `${quoteName(call)} does not support insert`);
    }
    const think = resolveThink(call, format, request.think);
    if (images.length && !instance.vision) {
      throw new ApiError(400, `${quoteName(call)} does not support images: ${NO_VISION_MESSAGE}`);
    }

    if (request.prompt === "") {
      await deps.announceModels?.();
      call.sink.json({ ...envelope(call, clock), response: "", done: true, done_reason: "load" });
      return NO_USAGE;
    }

    const settings = resolveSettings(options, instance.spec.numCtx);
    const grammar = await grammarForFormat(deps.llama, request.format);
    const prompt = await formatGeneratePrompt({
      instance,
      format,
      raw: request.raw ?? false,
      system: request.system,
      modelSystem: call.model.system,
      modelMessages: call.model.messages as unknown as Message[],
      prompt: images.length ? withImageMarkers(request.prompt, 0, images.length) : request.prompt,
      suffix: request.suffix,
      context: request.context as Token[] | undefined,
      think,
    });

    const thinking = thinkingParserFor(think, format, prompt);
    const logprobs = new PendingLogprobs();
    const emit = (response: string, thinkingText: string) => {
      if (response === "" && thinkingText === "") return;
      call.sink.chunk({
        ...envelope(call, clock),
        response,
        ...(thinkingText ? { thinking: thinkingText } : {}),
        ...logprobs.take(),
        done: false,
      });
    };

    const onText = (text: string, entries?: Logprob[]) => {
      logprobs.add(entries);
      if (!thinking) return emit(text, "");
      const split = thinking.add(text);
      emit(split.content, split.thinking);
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
    if (thinking) {
      const rest = thinking.finish();
      emit(rest.content, rest.thinking);
    }

    // A context is token ids; image embeddings have none, so a prompt with images gives no context to continue.
    const context = request.raw || images.length ? undefined : await instance.tokenize(prompt.text + result.text, true);
    call.sink.end({
      ...envelope(call, clock),
      response: "",
      done: true,
      done_reason: result.doneReason,
      ...(context ? { context } : {}),
      ...logprobs.take(),
      ...finalStats(call, clock, lease.loadDurationNs, result),
    });
    return { promptTokens: result.promptEvalCount, generatedTokens: result.evalCount };
  } finally {
    lease.release();
  }
}

/**
 * One zod schema per Ollama request body. Parsing through `parseRequest` (or the `parse*Request` helpers)
 * yields a normalised object: the deprecated `name` folded into `model`, null fields dropped, defaults filled
 * (`stream: true`), options typed, digests canonical. Texts of the errors follow Ollama's handlers
 * (server/routes.go, server/create.go) and its JSON decoding.
 */
import { z } from "zod";
import { ApiError, OllamaError } from "./errors";
import { formatField, keepAliveField, messageSchema, optionsField, thinkField, toolSchema } from "./schema-fields";
import { base64Image, def, opt, parseRequest, refineWith } from "./schema-helpers";
import {
  type CopyRequest,
  type CreateRequest,
  copyRequestSchema,
  createRequestSchema,
  type DeleteRequest,
  deleteRequestSchema,
  type PullRequest,
  type PushRequest,
  pullRequestSchema,
  pushRequestSchema,
  type ShowRequest,
  showRequestSchema,
} from "./schemas-models";

export * from "./schema-fields";
export { parseBody, parseRequest } from "./schema-helpers";
export * from "./schemas-models";

const topLogprobsField = opt(
  z
    .number()
    .int()
    .transform(
      refineWith((n: number) => {
        if (n < 0 || n > 20) throw new ApiError(400, "top_logprobs must be between 0 and 20");
        return n;
      }),
    ),
);

/** Fields generate and chat share. */
const inferenceFields = {
  model: def(z.string(), ""),
  stream: def(z.boolean(), true),
  format: formatField,
  keep_alive: keepAliveField,
  options: optionsField,
  think: thinkField,
  truncate: opt(z.boolean()),
  shift: opt(z.boolean()),
  logprobs: opt(z.boolean()),
  top_logprobs: topLogprobsField,
};

function requireModel<T extends { model: string }>(request: T): T {
  if (request.model === "") throw new ApiError(400, OllamaError.modelRequired);
  return request;
}

export const generateRequestSchema = z
  .object({
    ...inferenceFields,
    prompt: def(z.string(), ""),
    suffix: opt(z.string()),
    system: opt(z.string()),
    template: opt(z.string()),
    context: opt(z.array(z.number().int())),
    raw: opt(z.boolean()),
    images: opt(z.array(base64Image)),
  })
  .transform(
    refineWith((request) => {
      requireModel(request);
      if (request.raw && (request.template || request.system || (request.context?.length ?? 0) > 0)) {
        throw new ApiError(400, "raw mode does not support template, system, or context");
      }
      return request;
    }),
  )
  .describe("GenerateRequest");

export const chatRequestSchema = z
  .object({
    ...inferenceFields,
    messages: def(z.array(messageSchema), []),
    tools: opt(z.array(toolSchema)),
  })
  .transform(refineWith(requireModel))
  .describe("ChatRequest");

export const embedRequestSchema = z
  .object({
    model: def(z.string(), ""),
    // Normalised to a list; an empty string means no input at all, as in Ollama.
    input: opt(
      z.unknown().transform(
        refineWith((input: unknown): string[] => {
          if (typeof input === "string") return input === "" ? [] : [input];
          if (Array.isArray(input) && input.every((item) => typeof item === "string")) return [...input];
          throw new ApiError(400, "invalid input type");
        }),
      ),
    ).transform((input) => input ?? []),
    truncate: opt(z.boolean()),
    dimensions: opt(z.number().int()),
    keep_alive: keepAliveField,
    options: optionsField,
  })
  .transform(refineWith(requireModel))
  .describe("EmbedRequest");

/** The legacy single-prompt `/api/embeddings`. */
export const embeddingRequestSchema = z
  .object({
    model: def(z.string(), ""),
    prompt: def(z.string(), ""),
    keep_alive: keepAliveField,
    options: optionsField,
  })
  .transform(refineWith(requireModel))
  .describe("EmbeddingRequest");

export type GenerateRequest = z.output<typeof generateRequestSchema>;
export type ChatRequest = z.output<typeof chatRequestSchema>;
export type EmbedRequest = z.output<typeof embedRequestSchema>;
export type EmbeddingRequest = z.output<typeof embeddingRequestSchema>;

/** Every request schema by endpoint (path under /api/), for routers that validate generically. */
export const requestSchemas = {
  generate: generateRequestSchema,
  chat: chatRequestSchema,
  embed: embedRequestSchema,
  embeddings: embeddingRequestSchema,
  create: createRequestSchema,
  copy: copyRequestSchema,
  delete: deleteRequestSchema,
  show: showRequestSchema,
  pull: pullRequestSchema,
  push: pushRequestSchema,
} as const;

export const parseGenerateRequest = (body: unknown): GenerateRequest => parseRequest(generateRequestSchema, body);
export const parseChatRequest = (body: unknown): ChatRequest => parseRequest(chatRequestSchema, body);
export const parseEmbedRequest = (body: unknown): EmbedRequest => parseRequest(embedRequestSchema, body);
export const parseEmbeddingRequest = (body: unknown): EmbeddingRequest => parseRequest(embeddingRequestSchema, body);
export const parseCreateRequest = (body: unknown): CreateRequest => parseRequest(createRequestSchema, body);
export const parseCopyRequest = (body: unknown): CopyRequest => parseRequest(copyRequestSchema, body);
export const parseDeleteRequest = (body: unknown): DeleteRequest => parseRequest(deleteRequestSchema, body);
export const parseShowRequest = (body: unknown): ShowRequest => parseRequest(showRequestSchema, body);
export const parsePullRequest = (body: unknown): PullRequest => parseRequest(pullRequestSchema, body);
export const parsePushRequest = (body: unknown): PushRequest => parseRequest(pushRequestSchema, body);

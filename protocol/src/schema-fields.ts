/**
 * Field schemas shared by several request bodies (inference and create).
 */
import { z } from "zod";
import { parseKeepAlive } from "./duration";
import { ApiError } from "./errors";
import { validateOptions } from "./options";
import { base64Image, def, opt, refineWith } from "./schema-helpers";

const THINK_LEVELS = ["high", "medium", "low", "max"] as const;
export type ThinkLevel = (typeof THINK_LEVELS)[number];

/** `think`: a boolean or a level (current Ollama also has "max"); texts from api.ThinkValue.UnmarshalJSON. */
export const thinkField = opt(
  z.unknown().transform(
    refineWith((value: unknown): boolean | ThinkLevel => {
      if (typeof value === "boolean") return value;
      const allowed = '("high", "medium", "low", "max", true, or false)';
      if (typeof value !== "string") throw new ApiError(400, `think must be a boolean or string ${allowed}`);
      if (!(THINK_LEVELS as readonly string[]).includes(value)) {
        throw new ApiError(400, `invalid think value: ${JSON.stringify(value)} (must be ${allowed.slice(1, -1)})`);
      }
      return value as ThinkLevel;
    }),
  ),
);

/** `format`: "json" or a JSON schema object; null and "" mean unset, as in Ollama's runner. */
export const formatField = opt(
  z.unknown().transform(
    refineWith((value: unknown): "json" | Record<string, unknown> | undefined => {
      if (value === "") return undefined;
      if (value === "json") return value;
      if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
      const raw = JSON.stringify(JSON.stringify(value));
      throw new ApiError(400, `invalid format: ${raw}; expected "json" or a valid JSON Schema object`);
    }),
  ),
);

/** `keep_alive` is checked here but kept as sent, so it can be forwarded; parseKeepAlive turns it into ms. */
export const keepAliveField = opt(
  z.unknown().transform(
    refineWith((value: unknown) => {
      parseKeepAlive(value);
      return value as number | string;
    }),
  ),
);

export const optionsField = opt(z.record(z.unknown()).transform(refineWith(validateOptions)));

export const toolCallSchema = z
  .object({
    id: opt(z.string()),
    function: def(
      z
        .object({
          index: opt(z.number().int()),
          name: def(z.string(), ""),
          arguments: def(z.record(z.unknown()), {}),
        })
        .passthrough(),
      {},
    ),
  })
  .describe("ToolCall");

export const messageSchema = z.object({
  // Ollama lower-cases roles on decode (Message.UnmarshalJSON).
  role: def(z.string(), "").transform((role) => role.toLowerCase()),
  content: def(z.string(), ""),
  thinking: opt(z.string()),
  images: opt(z.array(base64Image)),
  tool_calls: opt(z.array(toolCallSchema)),
  tool_name: opt(z.string()),
  tool_call_id: opt(z.string()),
});

/** Tools are kept whole (passthrough): their JSON schema goes to the chat template and grammar unchanged. */
export const toolSchema = z
  .object({
    type: def(z.string(), "function"),
    function: z
      .object({
        name: z.string(),
        description: opt(z.string()),
        parameters: opt(z.record(z.unknown())),
      })
      .passthrough(),
  })
  .passthrough();

export type Message = z.output<typeof messageSchema>;
export type ToolCall = z.output<typeof toolCallSchema>;
export type Tool = z.output<typeof toolSchema>;

/**
 * `format` → a grammar that constrains sampling: "json" uses node-llama-cpp's JSON grammar, a JSON schema
 * object its schema-to-GBNF converter. Grammars are cached per schema text (building one parses GBNF in C++).
 */
import { ApiError, errorText } from "@corral/protocol/errors";
import type { Llama, LlamaGrammar } from "node-llama-cpp";

const MAX_CACHED = 32;
const cache = new WeakMap<Llama, Map<string, Promise<LlamaGrammar>>>();

export type ResponseFormat = "json" | Record<string, unknown>;

export async function grammarForFormat(
  llama: Llama,
  format: ResponseFormat | undefined,
): Promise<LlamaGrammar | undefined> {
  if (format === undefined) return undefined;
  const key = format === "json" ? "json" : JSON.stringify(format);
  let perLlama = cache.get(llama);
  if (!perLlama) {
    perLlama = new Map();
    cache.set(llama, perLlama);
  }
  let grammar = perLlama.get(key);
  if (grammar) {
    // Map order doubles as recency order.
    perLlama.delete(key);
    perLlama.set(key, grammar);
    return grammar;
  }
  grammar = build(llama, format);
  perLlama.set(key, grammar);
  grammar.catch(() => perLlama.delete(key));
  if (perLlama.size > MAX_CACHED) perLlama.delete(perLlama.keys().next().value as string);
  return grammar;
}

async function build(llama: Llama, format: ResponseFormat): Promise<LlamaGrammar> {
  if (format === "json") return llama.getGrammarFor("json");
  try {
    // The client's schema is checked by node-llama-cpp at run time; its static types cannot describe it.
    return await llama.createGrammarForJsonSchema(format as never);
  } catch (err) {
    const detail = errorText(err);
    throw new ApiError(400, `invalid JSON schema in format: ${detail}`);
  }
}

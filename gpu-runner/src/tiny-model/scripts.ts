/**
 * What the scripted models say. A script is a list of pieces; each piece is one token of the built-in vocabulary
 * and every piece is distinct, because the scripted model's next token depends only on the current one (a bigram
 * successor table). The pieces of the sentence are exactly how the tokenizer splits it; the tool-call pieces are
 * multi-character tokens the tokenizer itself never produces (they cross its pre-tokenizer boundaries), needed
 * because the text repeats `"` and `": "`.
 */
export interface ModelScript {
  readonly name: string;
  readonly pieces: readonly string[];
}

export const SCRIPTED_SENTENCE = "The quick brown fox jumps over the lazy dog.";

export const SENTENCE_SCRIPT: ModelScript = {
  name: "sentence",
  pieces: ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."],
};

/** The function call the tool model makes, as Ollama reports it in `message.tool_calls[0].function`. */
export const SCRIPTED_TOOL_CALL_FUNCTION = { name: "get_weather", arguments: { city: "Paris" } } as const;

/** Hermes/Qwen style, as Ollama's qwen templates and parsers expect it. */
export const SCRIPTED_TOOL_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

export const TOOL_CALL_SCRIPT: ModelScript = {
  name: "tool",
  pieces: [
    "<tool_call>\n",
    '{"name": "',
    "get_weather",
    '", "arguments": ',
    '{"city": "',
    "Paris",
    '"}}',
    "\n</tool_call>",
  ],
};

export type ScriptName = "sentence" | "tool";

export const MODEL_SCRIPTS: Readonly<Record<ScriptName, ModelScript>> = {
  sentence: SENTENCE_SCRIPT,
  tool: TOOL_CALL_SCRIPT,
};

export function scriptText(script: ModelScript): string {
  return script.pieces.join("");
}

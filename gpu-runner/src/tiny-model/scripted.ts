import {
  elementCount,
  type LlamaLayerWeights,
  llamaTensorShapes,
  TINY_MODEL_HYPERPARAMETERS,
  writeLlamaGguf,
} from "./llama-gguf";
import { MODEL_SCRIPTS, type ModelScript, type ScriptName, scriptText } from "./scripts";
import { TOKEN_TYPE_NORMAL, tinyVocabulary } from "./tokenizer";

/**
 * Scripted models: real `llama` GGUFs whose greedy output is known in advance, so tests can assert exact text and
 * tool calls through real llama.cpp inference.
 *
 * Construction (a bigram successor table):
 * - every token's embedding is a one-hot direction: script piece i owns direction i+1, every other token shares
 *   direction 0 (so any prompt, in particular one ending with the ChatML assistant header's "\n", starts the script);
 * - attention output and FFN down projections are zero, so each layer adds nothing and the residual stream stays
 *   the current token's embedding; RMSNorm with weight 1 keeps its direction (scaled to sqrt(embedding));
 * - the output matrix maps direction 0 to the first piece, direction i+1 to piece i+1, and the last piece to
 *   `<|im_end|>`, which is the EOS token, so generation stops with reason "stop".
 * The next token thus depends only on the last one; pieces must be distinct for the chain to be well defined.
 * One file holds one script; the sentence and tool-call models are separate files.
 */

/** Logit weight of a successor. After RMSNorm the hidden value is 8 (sqrt 64), so the winner leads by 32. */
export const SCRIPT_LOGIT = 4;

export const SCRIPTED_MODEL_NAMES: Readonly<Record<ScriptName, string>> = {
  sentence: "corral-scripted-sentence",
  tool: "corral-scripted-tool",
};

export function writeScriptedModel(script: ScriptName | ModelScript = "sentence"): Uint8Array {
  const resolved = typeof script === "string" ? MODEL_SCRIPTS[script] : script;
  const hp = TINY_MODEL_HYPERPARAMETERS;
  const vocab = tinyVocabulary();
  const pieceIds = scriptTokenIds(resolved);
  if (pieceIds.length + 1 > hp.embedding) throw new Error(`script longer than ${hp.embedding - 1} pieces`);

  const width = hp.embedding;
  const shapes = llamaTensorShapes(hp, vocab.tokens.length);
  const tokenEmbedding = new Float32Array(elementCount(shapes.tokenEmbedding));
  const output = new Float32Array(elementCount(shapes.output));
  const directionOf = new Map(pieceIds.map((id, i) => [id, i + 1]));
  for (let token = 0; token < vocab.tokens.length; token++) {
    tokenEmbedding[token * width + (directionOf.get(token) ?? 0)] = 1;
  }
  const successors = [...pieceIds, vocab.imEndId];
  successors.forEach((next, direction) => {
    output[next * width + direction] = SCRIPT_LOGIT;
  });

  const zeros = (dims: number[]) => new Float32Array(elementCount(dims));
  const ones = (dims: number[]) => zeros(dims).fill(1);
  const s = shapes.layer;
  const layers: LlamaLayerWeights[] = Array.from({ length: hp.layers }, () => ({
    attnNorm: ones(s.attnNorm),
    q: zeros(s.q),
    k: zeros(s.k),
    v: zeros(s.v),
    o: zeros(s.o),
    ffnNorm: ones(s.ffnNorm),
    gate: zeros(s.gate),
    up: zeros(s.up),
    down: zeros(s.down),
  }));

  const name = typeof script === "string" ? SCRIPTED_MODEL_NAMES[script] : `corral-scripted-${resolved.name}`;
  return writeLlamaGguf({
    name,
    description: `corral built-in scripted model: greedy decoding answers ${JSON.stringify(scriptText(resolved))}`,
    hyperparameters: hp,
    weights: { tokenEmbedding, outputNorm: ones(shapes.outputNorm), output, layers },
    // Every value (0, 1, SCRIPT_LOGIT) is exact in F16.
    weightType: "f16",
  });
}

/** Token ids of a script's pieces; throws if a piece is not one token of the vocabulary or repeats. */
export function scriptTokenIds(script: ModelScript): number[] {
  const vocab = tinyVocabulary();
  const ids = script.pieces.map((piece) => {
    const id = vocab.idOfText(piece);
    if (id === undefined || vocab.tokenTypes[id] !== TOKEN_TYPE_NORMAL) {
      throw new Error(`script piece ${JSON.stringify(piece)} is not a normal token of the vocabulary`);
    }
    return id;
  });
  if (new Set(ids).size !== ids.length) throw new Error("script pieces must be distinct tokens");
  return ids;
}

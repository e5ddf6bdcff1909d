export { TINY_CHAT_TEMPLATE } from "./chat-template";
export { TINY_MODEL_DEFAULT_SEED, TINY_MODEL_NAME, type TinyModelOptions, writeTinyModel } from "./generate";
export { type LlamaHyperparameters, TINY_MODEL_HYPERPARAMETERS } from "./llama-gguf";
export { SCRIPT_LOGIT, SCRIPTED_MODEL_NAMES, scriptTokenIds, writeScriptedModel } from "./scripted";
export {
  MODEL_SCRIPTS,
  type ModelScript,
  SCRIPTED_SENTENCE,
  SCRIPTED_TOOL_CALL,
  SCRIPTED_TOOL_CALL_FUNCTION,
  type ScriptName,
  SENTENCE_SCRIPT,
  scriptText,
  TOOL_CALL_SCRIPT,
} from "./scripts";
export type { WeightType } from "./tensor-data";
export { END_OF_TEXT, IM_END, IM_START, type TinyVocabulary, tinyVocabulary } from "./tokenizer";

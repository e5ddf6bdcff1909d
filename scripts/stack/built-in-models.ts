import { TINY_MODEL_DEFAULT_SEED, writeScriptedModel, writeTinyModel } from "../../gpu-runner/src/tiny-model/index";

export interface BuiltInModel {
  name: string;
  gguf: Uint8Array;
}

/**
 * The models every local stack has, written on the fly (no weights can be downloaded): `tiny`, gibberish from seeded
 * weights, and the scripted models whose greedy output is a known sentence or a known tool call.
 */
export function builtInModels(): BuiltInModel[] {
  return [
    { name: "tiny", gguf: writeTinyModel({ seed: TINY_MODEL_DEFAULT_SEED }) },
    { name: "scripted", gguf: writeScriptedModel("sentence") },
    { name: "scripted-tools", gguf: writeScriptedModel("tool") },
  ];
}

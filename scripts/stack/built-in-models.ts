import { writeTinyModel } from "../../gpu-runner/src/tiny-model/index";

export interface BuiltInModel {
  name: string;
  gguf: Uint8Array;
}

/** The models every local stack has, written on the fly: no weights can be downloaded. */
export function builtInModels(): BuiltInModel[] {
  return [{ name: "tiny", gguf: writeTinyModel({ seed: 42 }) }];
}

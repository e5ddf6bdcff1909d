/**
 * The running hash of a multipart upload survives between part requests as text in D1: protocol's Sha256 exports
 * and restores its state at block boundaries (parts are multiples of 64 bytes). Blob bytes are hashed by the
 * WebAssembly block function (sha256-wasm.ts): the hash is most of a pull's CPU time, and the Worker's CPU limit
 * sets the largest blob one pull can take (edge/PULL_PUSH.md).
 */
import { Sha256 } from "@corral/protocol/sha256";
import sha256Module from "./sha256.wasm";
import { type Sha256WasmExports, WasmSha256Core } from "./sha256-wasm";

const wasmCore = () =>
  new WasmSha256Core(new WebAssembly.Instance(sha256Module).exports as unknown as Sha256WasmExports);

export class ResumableSha256 extends Sha256 {
  constructor() {
    super(wasmCore());
  }

  /** Restores a state exported by either core; null when the text is not a state. */
  static override fromState(text: string): Sha256 | null {
    return Sha256.fromState(text, wasmCore());
  }
}

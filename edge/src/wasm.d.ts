/** wrangler (and the Worker tests) import `.wasm` files as compiled modules (the CompiledWasm module rule). */
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}

// The tokenizer thread (see tokenizer.ts): loads each model's vocabulary only (no weights) and tokenises on request,
// so a long prompt's seconds of llama.cpp tokenisation never run on the runner's event loop. Plain JavaScript: a
// worker thread does not inherit the tsx loader that runs the rest of the runner.
import { parentPort } from "node:worker_threads";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

/** Vocabularies kept loaded, most recently used last; a few MB each at most. */
const MAX_VOCABS = 8;
/** @type {Map<string, Promise<import("node-llama-cpp").LlamaModel>>} */
const vocabs = new Map();
const llama = getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, logger: () => {} });

/** @param {string} path */
function vocabOf(path) {
  let model = vocabs.get(path);
  if (model) vocabs.delete(path);
  else model = llama.then((l) => l.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 }));
  vocabs.set(path, model);
  model.catch(() => vocabs.delete(path));
  for (const [oldest, stale] of vocabs) {
    if (vocabs.size <= MAX_VOCABS) break;
    vocabs.delete(oldest);
    stale.then((m) => m.dispose()).catch(() => {});
  }
  return model;
}

parentPort?.on("message", async (/** @type {import("./tokenizer").TokenizeRequest} */ request) => {
  try {
    const model = await vocabOf(request.modelPath);
    const tokens = Uint32Array.from(model.tokenize(request.text, request.special));
    parentPort?.postMessage({ id: request.id, tokens }, [tokens.buffer]);
  } catch (err) {
    parentPort?.postMessage({ id: request.id, error: err instanceof Error ? err.message : String(err) });
  }
});

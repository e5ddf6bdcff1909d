import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobOf, resolvedModel, startTestRunner, type TestRunner } from "./test-support";
import { writeTinyModel } from "./tiny-model";

/** A llama-style model whose tokenizer prepends BOS: the sequence holds [BOS, …prompt], the prompt has no BOS. */
const bosModel = blobOf(writeTinyModel({ seed: 7, addBos: true }));
const model = resolvedModel(bosModel, "bos");
const words = (tag: string) => Array.from({ length: 60 }, (_, i) => `${tag}${i}`).join(" ");
const generate = (runner: TestRunner, prompt: string) =>
  runner.json("/v1/generate", model, { prompt, raw: true, options: { num_predict: 4, temperature: 0 } });

describe("prompt cache on a model that prepends BOS", () => {
  let runner: TestRunner;
  beforeAll(async () => {
    runner = await startTestRunner({ blobs: [bosModel] });
  });
  afterAll(() => runner?.stop());

  it("a follow-up goes back to the sequence that holds its prefix and reports what it did not evaluate", async () => {
    const first = await generate(runner, words("a"));
    const other = await generate(runner, words("b"));
    expect(first.status).toBe(200);
    expect(first.body.prompt_cached_count).toBeUndefined();
    expect(other.body.prompt_cached_count).toBeUndefined();
    // Both sequences are used; "b" is the most recent. A follow-up of "b" must find it, not take the LRU slot
    // (which holds "a" and shares only BOS with it).
    const followUp = await generate(runner, `${words("b")} and then some more words`);
    expect(followUp.status).toBe(200);
    const { prompt_eval_count: total, prompt_cached_count: cached } = followUp.body;
    expect(cached).toBeGreaterThanOrEqual(other.body.prompt_eval_count - 1);
    expect(cached).toBeLessThan(total);
  });

  it("an unrelated prompt reuses at most the BOS the sequences share", async () => {
    const fresh = await generate(runner, words("c"));
    expect(fresh.status).toBe(200);
    expect(fresh.body.prompt_cached_count ?? 0).toBeLessThanOrEqual(1);
  });
});

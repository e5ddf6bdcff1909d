import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { call, newTenant } from "./helpers";
import { heartbeat, loaded, resetFleet, runnerStatus, seedModel } from "./relay-fixtures";

const ps = async (key: string) => {
  const res = await call("GET", "/api/ps", { key });
  expect(res.status).toBe(200);
  return (await res.json()) as { models: Record<string, unknown>[] };
};

beforeEach(resetFleet);
afterEach(resetFleet);

describe("GET /api/ps", () => {
  it("lists the tenant's models loaded anywhere in the fleet, in Ollama's shape", async () => {
    const a = await newTenant(`ps-a-${crypto.randomUUID().slice(0, 8)}`);
    const tiny = await seedModel(a.id, "tiny");
    await seedModel(a.id, "idle");
    const expires = new Date(Date.now() + 60_000).toISOString();
    await heartbeat(
      runnerStatus("r1", {
        loaded: [loaded(tiny.modelBlob, { size: 4_321, size_vram: 1_234, context_length: 8192, expires_at: expires })],
      }),
    );
    expect(await ps(a.key)).toEqual({
      models: [
        {
          name: "tiny:latest",
          model: "tiny:latest",
          size: 4_321,
          digest: tiny.manifestDigest.replace("sha256:", ""),
          details: {
            parent_model: "",
            format: "gguf",
            family: "llama",
            families: ["llama"],
            parameter_size: "136M",
            quantization_level: "Q4_0",
          },
          expires_at: expires,
          size_vram: 1_234,
          context_length: 8192,
        },
      ],
    });
  });

  it("never shows another tenant's names, even for shared weights", async () => {
    const a = await newTenant(`ps-b-${crypto.randomUUID().slice(0, 8)}`);
    const b = await newTenant(`ps-c-${crypto.randomUUID().slice(0, 8)}`);
    const c = await newTenant(`ps-d-${crypto.randomUUID().slice(0, 8)}`);
    const shared = await seedModel(a.id, "secret-name", "shared-weights");
    await seedModel(b.id, "my-copy", "shared-weights");
    await heartbeat(runnerStatus("r1", { loaded: [loaded(shared.modelBlob)] }));
    expect((await ps(b.key)).models.map((m) => m.name)).toEqual(["my-copy:latest"]);
    expect(await ps(c.key)).toEqual({ models: [] });
  });

  it("merges runners holding the same model and lists the longest-staying model first", async () => {
    const a = await newTenant(`ps-e-${crypto.randomUUID().slice(0, 8)}`);
    const one = await seedModel(a.id, "one");
    const two = await seedModel(a.id, "two");
    const soon = new Date(Date.now() + 10_000).toISOString();
    const later = new Date(Date.now() + 90_000).toISOString();
    await heartbeat(runnerStatus("r1", { loaded: [loaded(one.modelBlob, { expires_at: soon })] }));
    await heartbeat(
      runnerStatus("r2", {
        loaded: [loaded(one.modelBlob, { expires_at: soon }), loaded(two.modelBlob, { expires_at: later })],
      }),
    );
    const { models } = await ps(a.key);
    expect(models.map((m) => [m.name, m.expires_at])).toEqual([
      ["two:latest", later],
      ["one:latest", soon],
    ]);
  });
});

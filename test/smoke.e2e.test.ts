import { Ollama } from "ollama";
import { describe, expect, inject, it } from "vitest";

const { url, key } = inject("stack");
const ollama = new Ollama({ host: url, headers: { Authorization: `Bearer ${key}` } });

describe("the local stack, as npm start runs it", () => {
  it("answers the probes without a key", async () => {
    const root = await fetch(`${url}/`);
    expect(await root.text()).toBe("Ollama is running");
    const { version } = await new Ollama({ host: url }).version();
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("lists the built-in tiny model for the dev key", async () => {
    const { models } = await ollama.list();
    const tiny = models.find((m) => m.name === "tiny:latest" || m.name === "tiny");
    expect(tiny).toBeDefined();
    expect(tiny?.size).toBeGreaterThan(1000);
    expect(tiny?.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses the API without a valid key", async () => {
    const anonymous = new Ollama({ host: url });
    await expect(anonymous.list()).rejects.toMatchObject({ status_code: 401, error: "unauthorized" });
    const wrong = new Ollama({ host: url, headers: { Authorization: "Bearer nope-nope-nope" } });
    await expect(wrong.list()).rejects.toMatchObject({ status_code: 401 });
  });
});

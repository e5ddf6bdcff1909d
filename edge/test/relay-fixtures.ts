/**
 * Fixtures for the scheduler, relay, ps, usage and limits tests: typed bindings, a fleet reset, heartbeats over the
 * real internal route, models seeded with the registry's own encoders, and an in-test runner for faults a real
 * runner process cannot be made to produce on cue (dying before or after the first byte).
 */

import { abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { digestOf } from "@corral/protocol/digest";
import type { LoadedModel, RunnerStatus } from "@corral/protocol/runner";
import { vi } from "vitest";
import { recordBlobStatements } from "../src/db/blobs";
import { putModelStatements } from "../src/db/models";
import type { Env } from "../src/env";
import { SCHEDULER_NAME } from "../src/scheduler/client";
import { CONFIG_MEDIA_TYPE, configJson, encodeManifest, MediaType } from "../src/store/manifest";
import { tenantModelName } from "../src/store/names";
import { call } from "./helpers";

export const RUNNER_SECRET = "test-runner-secret";
export const bindings = env as unknown as Env;

/** A scheduler instance of its own, so unit tests never see each other's runners. */
export const isolatedScheduler = (name: string) => bindings.SCHEDULER.get(bindings.SCHEDULER.idFromName(name));
export const globalScheduler = () => isolatedScheduler(SCHEDULER_NAME);

/**
 * Replaces a Durable Object's clock (Scheduler and TenantLimiter read `clock()`). The cast is needed because the
 * test pool's constraint wants the test Env, not the Worker's.
 */
export async function useClock(stub: { id: DurableObjectId }, now: () => number): Promise<void> {
  await runInDurableObject(stub as unknown as DurableObjectStub, (instance) => {
    (instance as unknown as { clock: () => number }).clock = now;
  });
}

/** Empties the fleet the relay uses (storage and the live instance). */
export async function resetFleet(): Promise<void> {
  await runInDurableObject(globalScheduler(), async (_instance, state) => {
    await state.storage.deleteAlarm();
    state.storage.sql.exec("DELETE FROM runners");
    state.storage.sql.exec("DELETE FROM leases");
    state.storage.sql.exec("DELETE FROM meta");
  });
  await abortAllDurableObjects();
}

export function loaded(model_blob: string, over: Partial<LoadedModel> = {}): LoadedModel {
  return {
    model_blob,
    size: 1_000,
    size_vram: 0,
    context_length: 4096,
    expires_at: new Date(Date.now() + 300_000).toISOString(),
    busy_sequences: 0,
    sequences: 4,
    ...over,
  };
}

export function runnerStatus(id: string, over: Partial<RunnerStatus> = {}): RunnerStatus {
  return {
    id,
    url: `http://${id}.runner.test`,
    slots: 4,
    busy_slots: 0,
    memory_total: 1_000_000,
    memory_free: 1_000_000,
    loaded: [],
    draining: false,
    ...over,
  };
}

/** A heartbeat through the real route, as a runner sends it. */
export async function heartbeat(status: RunnerStatus): Promise<{ ok: boolean; draining: boolean }> {
  const res = await call("POST", "/internal/runners/heartbeat", { key: RUNNER_SECRET, body: status });
  if (res.status !== 200) throw new Error(`heartbeat: ${res.status} ${await res.text()}`);
  return res.json();
}

export interface SeededModel {
  name: string;
  manifestDigest: string;
  modelBlob: string;
}

/** Puts a model in a tenant's namespace the way create does: config + weights blobs, manifest, layer rows. */
export async function seedModel(tenantId: string, name: string, weightsSeed = name): Promise<SeededModel> {
  const parsed = tenantModelName(name);
  if (!parsed) throw new Error(`bad name ${name}`);
  const weights = new TextEncoder().encode(`weights of ${weightsSeed}`);
  const modelBlob = digestOf(weights);
  const config = configJson({
    model_format: "gguf",
    model_family: "llama",
    model_families: ["llama"],
    model_type: "136M",
    file_type: "Q4_0",
    architecture: "amd64",
    os: "linux",
  });
  const configBytes = new TextEncoder().encode(config);
  const configLayer = { mediaType: CONFIG_MEDIA_TYPE, digest: digestOf(configBytes), size: configBytes.byteLength };
  const modelLayer = { mediaType: MediaType.model, digest: modelBlob, size: weights.byteLength };
  const encoded = encodeManifest(configLayer, [modelLayer]);
  const now = Date.now();
  await bindings.BLOBS.put(`blobs/${modelBlob.replace(":", "-")}`, weights);
  await bindings.DB.batch([
    ...recordBlobStatements(
      bindings.DB,
      { digest: configLayer.digest, size: configLayer.size, content: config },
      tenantId,
      now,
    ),
    ...recordBlobStatements(bindings.DB, { digest: modelBlob, size: modelLayer.size }, tenantId, now),
    ...putModelStatements(
      bindings.DB,
      {
        tenant_id: tenantId,
        name: parsed.key,
        display_name: parsed.display,
        manifest: encoded.text,
        digest: encoded.digest,
        size: encoded.size,
        modified_at: now,
      },
      [configLayer.digest, modelBlob],
    ),
  ]);
  return { name: parsed.display, manifestDigest: encoded.digest, modelBlob };
}

export type RunnerHandler = (request: Request) => Response | Promise<Response>;

/**
 * Routes the edge's fetches to in-test runners by host (`http://<id>.runner.test`); anything else is refused.
 * Returns the requests each runner received.
 */
export function fakeRunners(handlers: Record<string, RunnerHandler>) {
  const received: { runner: string; path: string; headers: Headers; body: unknown }[] = [];
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input as RequestInfo, init as RequestInit);
    const host = new URL(request.url).hostname;
    const id = host.endsWith(".runner.test") ? host.slice(0, -".runner.test".length) : "";
    const handler = handlers[id];
    if (!handler) throw new TypeError(`fetch failed: connection refused (${request.url})`);
    received.push({
      runner: id,
      path: new URL(request.url).pathname,
      headers: request.headers,
      body: await request.clone().json(),
    });
    return handler(request);
  });
  return { received, restore: () => spy.mockRestore() };
}

const encoder = new TextEncoder();
export const ndjsonLine = (value: unknown) => encoder.encode(`${JSON.stringify(value)}\n`);

export const finalChunk = (model: string, over: Record<string, unknown> = {}) => ({
  model,
  created_at: new Date().toISOString(),
  response: "",
  done: true,
  done_reason: "stop",
  total_duration: 5_000_000,
  load_duration: 1_000_000,
  prompt_eval_count: 7,
  prompt_eval_duration: 2_000_000,
  eval_count: 3,
  eval_duration: 2_000_000,
  ...over,
});

/** A runner answering generate with `tokens` chunks and Ollama's final chunk. */
export function streamingRunner(tokens: string[], over: Record<string, unknown> = {}): RunnerHandler {
  return async (request) => {
    const body = (await request.json()) as { model: { name: string }; request: { stream?: boolean } };
    const model = body.model.name;
    if (body.request.stream === false) {
      return Response.json({ ...finalChunk(model, over), response: tokens.join("") });
    }
    const lines = [
      ...tokens.map((t) => ndjsonLine({ model, created_at: new Date().toISOString(), response: t, done: false })),
      ndjsonLine(finalChunk(model, over)),
    ];
    return new Response(
      new ReadableStream({
        start: (c) => {
          for (const l of lines) c.enqueue(l);
          c.close();
        },
      }),
      {
        headers: { "content-type": "application/x-ndjson" },
      },
    );
  };
}

export const usageRows = async (tenantId: string) =>
  (
    await bindings.DB.prepare("SELECT * FROM usage WHERE tenant_id = ? ORDER BY created_at")
      .bind(tenantId)
      .all<Record<string, unknown>>()
  ).results;

/**
 * Waits until `check` passes: usage and releases are written in waitUntil, after the response. Bounded by time, not
 * by a number of tries: a loaded CI machine runs the writes late, and each try's round trip is slower too.
 */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * The relay over the production transport: runners registered at private addresses, reached only through the
 * RUNNER_NETWORK binding (here a real service binding to edge/test/fake-runner-network.js standing in for the Workers
 * VPC network binding). Streaming, cancellation and failover must behave as over plain fetch, and quantize jobs take
 * the same path.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../src/app";
import type { Env } from "../src/env";
import { newTenant } from "./helpers";
import { digest, ggufModel, upload } from "./registry-fixtures";
import {
  bindings,
  eventually,
  globalScheduler,
  heartbeat,
  loaded,
  resetFleet,
  runnerStatus,
  type SeededModel,
  seedModel,
  usageRows,
} from "./relay-fixtures";

const network = (env as unknown as { TEST_RUNNER_NETWORK: Fetcher }).TEST_RUNNER_NETWORK;
const withNetwork: Env = { ...bindings, RUNNER_NETWORK: network };

type Behaviour = { kind: "stream"; tokens: string[] } | { kind: "endless" } | { kind: "unreachable" };
interface Received {
  host: string;
  path: string;
  authorization: string | null;
  cancelled: boolean;
}

const R1 = "10.0.1.11:11435";
const R2 = "10.0.2.12:11435";

async function place(host: string, behaviour: Behaviour): Promise<void> {
  await network.fetch(`http://control/runners/${host}`, { method: "PUT", body: JSON.stringify(behaviour) });
}
const received = async () => (await (await network.fetch("http://control/log")).json()) as Received[];

let tenant: { id: string; key: string };
let model: SeededModel;
const publicFetch = vi.spyOn(globalThis, "fetch");

beforeEach(async () => {
  await resetFleet();
  await network.fetch("http://control/", { method: "DELETE" });
  tenant = await newTenant(`private-${crypto.randomUUID().slice(0, 8)}`);
  model = await seedModel(tenant.id, "tiny");
  publicFetch.mockClear();
});
afterAll(() => publicFetch.mockRestore());
afterEach(() => {
  // Nothing of the runner traffic may leave through the Worker's public fetch while the binding is there.
  expect(publicFetch.mock.calls.filter(([input]) => String(input).includes(":11435"))).toEqual([]);
});

function generate(signal?: AbortSignal) {
  const request = new Request("http://corral.test/api/generate", {
    method: "POST",
    headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "tiny", prompt: "hi" }),
    ...(signal ? { signal } : {}),
  });
  const ctx = createExecutionContext();
  return { response: createApp().fetch(request, withNetwork, ctx), ctx };
}

const responses = (text: string) =>
  text
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { response: string }).response);

describe("relay through the private network binding", () => {
  it("streams from a runner at its private address, with the runner secret as second factor", async () => {
    await heartbeat(runnerStatus("r1", { url: `http://${R1}`, loaded: [loaded(model.modelBlob)] }));
    await place(R1, { kind: "stream", tokens: ["Hel", "lo"] });
    const { response, ctx } = generate();
    const res = await response;
    expect(res.status).toBe(200);
    expect(responses(await res.text())).toEqual(["Hel", "lo", ""]);
    await waitOnExecutionContext(ctx);
    expect(await received()).toEqual([
      { host: R1, path: "/v1/generate", authorization: "Bearer test-runner-secret", cancelled: false },
    ]);
    expect(await usageRows(tenant.id)).toMatchObject([{ status: "ok", runner_id: "r1", output_tokens: 2 }]);
  });

  it("fails over to another runner when the tunnel answers 502 for the first", async () => {
    await heartbeat(runnerStatus("r1", { url: `http://${R1}`, loaded: [loaded(model.modelBlob)] }));
    await heartbeat(runnerStatus("r2", { url: `http://${R2}` }));
    await place(R1, { kind: "unreachable" });
    await place(R2, { kind: "stream", tokens: ["ok"] });
    const { response, ctx } = generate();
    expect(responses(await (await response).text())).toEqual(["ok", ""]);
    await waitOnExecutionContext(ctx);
    expect((await received()).map((r) => r.host)).toEqual([R1, R2]);
    expect(await usageRows(tenant.id)).toMatchObject([{ status: "ok", runner_id: "r2" }]);
  });

  it("closes the runner's stream across the binding when the client goes away", async () => {
    await heartbeat(runnerStatus("r1", { url: `http://${R1}`, loaded: [loaded(model.modelBlob)] }));
    await place(R1, { kind: "endless" });
    const client = new AbortController();
    const { response, ctx } = generate(client.signal);
    const reader = (await response).body!.getReader();
    expect((await reader.read()).done).toBe(false);
    client.abort();
    await eventually(async () => expect((await reader.read()).done).toBe(true));
    await waitOnExecutionContext(ctx);
    await eventually(async () => expect(await received()).toMatchObject([{ host: R1, cancelled: true }]));
    expect(await usageRows(tenant.id)).toMatchObject([{ status: "cancelled" }]);
    expect((await globalScheduler().stats()).totals.busy_sequences).toBe(0);
  });

  it("sends quantize jobs through the binding too", async () => {
    const source = ggufModel({ salt: 51, fileType: 0 });
    expect((await upload(tenant.key, source)).status).toBe(201);
    await heartbeat(runnerStatus("r1", { url: `http://${R1}` }));
    await place(R1, { kind: "unreachable" });
    const request = new Request("http://corral.test/api/create", {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "q", files: { "m.gguf": digest(source) }, quantize: "q8_0", stream: false }),
    });
    const ctx = createExecutionContext();
    const res = await createApp().fetch(request, withNetwork, ctx);
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(await received()).toEqual([
      { host: R1, path: "/v1/quantize", authorization: "Bearer test-runner-secret", cancelled: false },
    ]);
  });
});

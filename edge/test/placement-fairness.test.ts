/**
 * The fair-share rule of placement (edge/src/scheduler/placement.ts): one tenant's big loads unload its own idle
 * models first and other tenants' only up to an equal split of the runner; loads in progress per tenant bounded.
 */
import type { LoadedModel } from "@corral/protocol/runner";
import { describe, expect, it } from "vitest";
import { chooseRunner, type FairnessPolicy, LeaseIndex } from "../src/scheduler/placement";
import type { Lease, RunnerState } from "../src/scheduler/types";
import { eventually, isolatedScheduler, runnerStatus } from "./relay-fixtures";

const blob = (name: string) => `sha256:${name.padEnd(64, "0")}`;
const model = (name: string, size: number): LoadedModel => ({
  model_blob: blob(name),
  size,
  size_vram: 0,
  context_length: 4096,
  expires_at: "2030-01-01T00:00:00.000Z",
  busy_sequences: 0,
  sequences: 1,
});
const runner = (id: string, memory_free: number, loaded: LoadedModel[]): RunnerState => ({
  id,
  url: `http://${id}.test`,
  slots: loaded.length,
  busy_slots: 0,
  memory_total: 1000,
  memory_free,
  loaded,
  draining_self: false,
  draining_operator: false,
  last_seen: 0,
  unhealthy_until: 0,
  registered_at: 0,
});
const lease = (runnerId: string, model_blob: string, tenant_id: string): Lease => ({
  id: crypto.randomUUID(),
  runner_id: runnerId,
  model_blob,
  tenant_id,
  request_id: crypto.randomUUID(),
  bytes: 100,
  created_at: 0,
});
const policy = (users: Record<string, string>): FairnessPolicy => ({
  userOf: (_runner, modelBlob) => users[modelBlob],
  maxLoadsPerTenant: 2,
});

// A full runner split evenly: tenant a's idle model and tenant b's idle model, 500 bytes each.
const full = runner("r1", 0, [model("a", 500), model("b", 500)]);
const owners = { [blob("a")]: "a", [blob("b")]: "b" };

describe("fair-share placement", () => {
  it.each([
    ["a tenant past its share (its own 500 + 600 > 1000/2) waits", "a", 600, owners, null],
    ["a tenant unloading only its own idle model is placed", "a", 400, owners, "r1"],
    ["a new tenant within its share (300 <= 1000/3) may unload others", "c", 300, owners, "r1"],
    ["a new tenant past its share (400 > 1000/3) waits", "c", 400, owners, null],
    ["models whose user is unknown (a restart) are anyone's", "a", 600, {}, "r1"],
  ])("%s", (_label, tenant, bytes, users, expected) => {
    const request = { model_blob: blob("new"), estimated_bytes: bytes, tenant_id: tenant };
    const chosen = chooseRunner(request, [full], new LeaseIndex([]), 0, 4, policy(users));
    expect(chosen?.id ?? null).toBe(expected);
    // Without the policy, keep_alive order alone decides: everything idle is reclaimable.
    expect(chooseRunner(request, [full], new LeaseIndex([]), 0, 4)?.id).toBe("r1");
  });

  it("bounds a tenant's loads in progress, not its requests to loaded models, nor other tenants", () => {
    // Four sequences per model: a model being loaded has room for more requests, which are not new loads.
    const roomy = runner("r1", 1000, [{ ...model("loaded", 10), sequences: 4 }]);
    const loading = new LeaseIndex([lease("r1", blob("x"), "a"), lease("r1", blob("y"), "a")]);
    const ask = (tenant: string, name: string) =>
      chooseRunner(
        { model_blob: blob(name), estimated_bytes: 10, tenant_id: tenant },
        [roomy],
        loading,
        0,
        4,
        policy({}),
      )?.id ?? null;
    expect(ask("a", "z")).toBeNull();
    expect(ask("a", "loaded")).toBe("r1");
    expect(ask("a", "x")).toBe("r1");
    expect(ask("b", "z")).toBe("r1");
  });

  // A scheduler that never placed anything here (a fresh instance, as after a restart) knows each model's last
  // user only from the runner's heartbeat.
  it.each([
    ["waits when the heartbeat names the users (its own 500 + 600 > 1000/2)", { a: "a", b: "b" }, false],
    ["is placed when the heartbeat names none (anyone's)", {}, true],
  ])("after a restart, a tenant past its share %s", async (_label, tenants: Record<string, string>, placed) => {
    const stub = isolatedScheduler(`fairness-${crypto.randomUUID()}`);
    const loaded = ["a", "b"].map((name) => ({
      ...model(name, 500),
      ...(tenants[name] ? { tenant: tenants[name] } : {}),
    }));
    await stub.heartbeat(runnerStatus("r1", { memory_total: 1000, memory_free: 0, loaded }));
    const request_id = crypto.randomUUID();
    const result = stub.acquire({ model_blob: blob("new"), estimated_bytes: 600, tenant_id: "a", request_id });
    if (placed) {
      expect((await result).ok).toBe(true);
      return;
    }
    await eventually(async () => expect((await stub.stats()).totals.queue_depth).toBe(1));
    await stub.cancel(request_id);
    expect(await result).toEqual({ ok: false, reason: "cancelled" });
  });
});

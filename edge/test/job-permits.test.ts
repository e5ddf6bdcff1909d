/**
 * Concurrent pulls, pushes, creates and quantize jobs per tenant (edge/src/job-permits.ts): a tenant at its bound
 * gets a 429 naming it before anything starts; a released permit lets the next job in; other tenants are untouched.
 */
import { describe, expect, it } from "vitest";
import { REQUEST_LIMIT_DEFAULTS } from "../src/bounds";
import { acquireJobPermits, type JobKind } from "../src/job-permits";
import { ADMIN, call, newTenant } from "./helpers";
import { bindings } from "./relay-fixtures";

const limits = {
  ...REQUEST_LIMIT_DEFAULTS,
  concurrent_pulls: 1,
  concurrent_pushes: 1,
  concurrent_creates: 1,
  concurrent_quantize: 1,
};
const hold = (tenantId: string, kinds: JobKind[]) => acquireJobPermits(bindings, tenantId, kinds, limits, () => {});

async function limitedTenant() {
  const tenant = await newTenant(`jobs-${crypto.randomUUID().slice(0, 8)}`);
  const body = { concurrent_pulls: 1, concurrent_pushes: 1, concurrent_creates: 1, concurrent_quantize: 1 };
  expect((await call("PUT", `/admin/tenants/${tenant.id}/limits`, { key: ADMIN, body })).status).toBe(200);
  return tenant;
}

describe("job permits", () => {
  it("counts each kind up to its bound and lets the next in once released", async () => {
    const tenant = await limitedTenant();
    const first = await hold(tenant.id, ["create", "quantize"]);
    await expect(hold(tenant.id, ["create"])).rejects.toThrow(
      "too many concurrent create jobs: this tenant may run 1 at a time",
    );
    // A refused second kind gives back the first it took.
    const pull = await hold(tenant.id, ["pull"]);
    await expect(hold(tenant.id, ["push", "quantize"])).rejects.toThrow(/concurrent quantize jobs/);
    (await hold(tenant.id, ["push"])).release();
    first.release();
    first.release();
    pull.release();
    (await hold(tenant.id, ["create", "quantize"])).release();
    // Another tenant has its own count.
    const other = await limitedTenant();
    const busy = await hold(tenant.id, ["pull"]);
    (await hold(other.id, ["pull"])).release();
    busy.release();
  });

  it.each([
    ["/api/pull", ["pull"], { model: "registry.invalid/ns/model:tag" }, "pull"],
    ["/api/push", ["push"], { model: "registry.invalid/ns/model:tag" }, "push"],
    ["/api/create", ["create"], { model: "m", from: "nothing" }, "create"],
    ["/api/create", ["quantize"], { model: "m", from: "nothing", quantize: "q8_0" }, "quantize"],
  ] as const)("%s answers 429 naming the bound while the tenant is at it (%s)", async (path, kinds, body, kind) => {
    const tenant = await limitedTenant();
    const held = await hold(tenant.id, [...kinds]);
    const refused = await call("POST", path, { key: tenant.key, body: { ...body, stream: false } });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({
      error: `too many concurrent ${kind} jobs: this tenant may run 1 at a time`,
    });
    held.release();
    const admitted = await call("POST", path, { key: tenant.key, body: { ...body, stream: false } });
    expect(admitted.status).not.toBe(429);
    await admitted.body?.cancel();
  });
});

/**
 * A short soak (scripts/soak) as part of `npm test`: 2 runners, 3 tenants, the full mix of requests and faults
 * (a runner stopped and resumed, the edge restarted, a runner killed) for SOAK_SECONDS (40 by default here; `npm run
 * soak` runs 120). It fails on any broken invariant; it asserts no timing, only counts, so a loaded 2-core machine
 * completes fewer requests but passes or fails alike.
 */
import { describe, expect, it } from "vitest";
import { runSoak } from "../scripts/soak/soak";

const seconds = Number(process.env.SOAK_SECONDS ?? 40);

describe("soak", () => {
  it(`keeps every invariant for ${seconds} s of mixed load under faults`, async () => {
    const report = await runSoak({ seconds, runners: 2, tenants: 3, clientsPerTenant: 2, seed: 1, log: () => {} });
    console.log(JSON.stringify(report));
    expect(report.chaos.filter((e) => !e.ok)).toEqual([]);
    // Every fault ran (the soak was long enough for the schedule).
    expect(report.chaos.map((e) => e.what.split(" ")[0])).toEqual(["SIGSTOP", "SIGCONT", "edge", "SIGKILL"]);
    const broken = Object.entries(report.invariants).filter(([, check]) => !check.ok);
    expect(broken.map(([name, check]) => ({ name, ...check.detail }))).toEqual([]);
    // Something completed for every tenant: an all-failing run must not pass as "nothing broke".
    const perTenant = report.invariants.no_tenant_starved!.detail.per_tenant as Record<string, number[]>;
    const completed = Object.values(perTenant).map((windows) => windows.reduce((a, b) => a + b, 0));
    expect(completed.every((n) => n > 0)).toBe(true);
  }, 900_000);
});

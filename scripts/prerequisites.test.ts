import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureRegistry, findOnPath, type Plan, planRegistry, registryBinary } from "./prerequisites";

const dir = mkdtempSync(join(tmpdir(), "corral-prereq-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bin = join(dir, "bin");
const empty = join(dir, "empty");
for (const d of [bin, empty]) mkdirSync(d);

describe("planRegistry", () => {
  const machine: Parameters<typeof planRegistry>[0] = {
    binary: undefined,
    isRoot: false,
    hasAptGet: true,
    passwordlessSudo: false,
  };
  const cases: [string, Partial<typeof machine>, Plan][] = [
    ["present", { binary: "/usr/bin/docker-registry" }, { action: "ready", binary: "/usr/bin/docker-registry" }],
    [
      "absent, root with apt-get: installs as CI does",
      { isRoot: true },
      {
        action: "install",
        commands: [
          ["apt-get", "update", "-qq"],
          ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker-registry"],
        ],
      },
    ],
    [
      "absent, sudo without a password: installs through sudo",
      { passwordlessSudo: true },
      {
        action: "install",
        commands: [
          ["sudo", "apt-get", "update", "-qq"],
          ["sudo", "apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker-registry"],
        ],
      },
    ],
    [
      "absent, sudo would ask for a password: stops with the command",
      {},
      { action: "stop", fix: "sudo apt-get install -y -qq --no-install-recommends docker-registry" },
    ],
  ];
  it.each(cases)("%s", (_, given, plan) => {
    expect(planRegistry({ ...machine, ...given })).toEqual(plan);
  });

  it("without apt-get, says what to install and how to point the tests at it", () => {
    const plan = planRegistry({ ...machine, hasAptGet: false });
    expect(plan.action).toBe("stop");
    expect(plan.action === "stop" && plan.fix).toContain("DOCKER_REGISTRY_BIN=");
  });
});

describe("finding the registry", () => {
  it("finds an executable on PATH and skips a file that is not executable", () => {
    writeFileSync(join(bin, "docker-registry"), "#!/bin/sh\n");
    chmodSync(join(bin, "docker-registry"), 0o644);
    expect(findOnPath("docker-registry", bin)).toBeUndefined();
    chmodSync(join(bin, "docker-registry"), 0o755);
    expect(findOnPath("docker-registry", [empty, bin].join(delimiter))).toBe(join(bin, "docker-registry"));
    expect(registryBinary({ PATH: empty, DOCKER_REGISTRY_BIN: "/opt/registry" })).toBe("/opt/registry");
  });

  it("on a machine without it and without apt-get, stops at once with the fix (nothing installed)", () => {
    expect(() => ensureRegistry({ PATH: empty })).toThrow(/npm test needs docker-registry.*\n.*DOCKER_REGISTRY_BIN/);
  });
});

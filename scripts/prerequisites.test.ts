import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  chromiumBinary,
  ensureRegistry,
  findOnPath,
  type Plan,
  planInstall,
  registryBinary,
  TEST_PACKAGES,
} from "./prerequisites";

const dir = mkdtempSync(join(tmpdir(), "corral-prereq-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bin = join(dir, "bin");
const empty = join(dir, "empty");
for (const d of [bin, empty]) mkdirSync(d);

describe("planInstall", () => {
  const [registry, chromium] = TEST_PACKAGES as [(typeof TEST_PACKAGES)[0], (typeof TEST_PACKAGES)[0]];
  const machine: Parameters<typeof planInstall>[0] = {
    missing: [registry],
    isRoot: false,
    hasAptGet: true,
    passwordlessSudo: false,
  };
  const apt = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
  const cases: [string, Partial<typeof machine>, Plan][] = [
    ["nothing missing", { missing: [] }, { action: "ready" }],
    [
      "missing, root with apt-get: installs as CI does",
      { isRoot: true },
      {
        action: "install",
        commands: [
          ["apt-get", "update", "-qq"],
          [...apt, "docker-registry"],
        ],
      },
    ],
    [
      "both missing: one apt-get run",
      { isRoot: true, missing: [registry, chromium] },
      {
        action: "install",
        commands: [
          ["apt-get", "update", "-qq"],
          [...apt, "docker-registry", "chromium"],
        ],
      },
    ],
    [
      "missing, sudo without a password: installs through sudo",
      { passwordlessSudo: true },
      {
        action: "install",
        commands: [
          ["sudo", "apt-get", "update", "-qq"],
          ["sudo", ...apt, "docker-registry"],
        ],
      },
    ],
    [
      "missing, sudo would ask for a password: stops with the command",
      { missing: [chromium] },
      { action: "stop", fix: `sudo ${[...apt, "chromium"].join(" ")}` },
    ],
  ];
  it.each(cases)("%s", (_, given, plan) => {
    expect(planInstall({ ...machine, ...given })).toEqual(plan);
  });

  it("without apt-get, says what to install and how to point the tests at it", () => {
    const plan = planInstall({ ...machine, missing: [registry, chromium], hasAptGet: false });
    expect(plan.action).toBe("stop");
    expect(plan.action === "stop" && plan.fix).toContain("DOCKER_REGISTRY_BIN=");
    expect(plan.action === "stop" && plan.fix).toContain("CHROMIUM_BIN=");
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
    expect(chromiumBinary({ PATH: empty, CHROMIUM_BIN: "/opt/chromium" })).toBe("/opt/chromium");
  });

  it("on a machine without it and without apt-get, stops at once with the fix (nothing installed)", () => {
    expect(() => ensureRegistry({ PATH: empty })).toThrow(/npm test needs docker-registry.*\n.*DOCKER_REGISTRY_BIN/);
  });
});

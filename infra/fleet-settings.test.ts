import { describe, expect, it } from "vitest";
import { defaultFleetSettings, fleetEnabled, fleetSettingsFromEnv, runnerStartCommand } from "./fleet-settings";

describe("fleetEnabled", () => {
  it.each([
    [undefined, false],
    ["", false],
    ["0", false],
    ["no", false],
    ["1", true],
    ["true", true],
    [" YES ", true],
  ])("GPU_FLEET=%j → %j", (value, expected) => {
    expect(fleetEnabled({ GPU_FLEET: value })).toBe(expected);
  });
});

describe("fleetSettingsFromEnv", () => {
  it("uses the defaults when nothing is set", () => {
    expect(fleetSettingsFromEnv({})).toEqual(defaultFleetSettings);
  });

  it("reads every knob", () => {
    const s = fleetSettingsFromEnv({
      GPU_FLEET_INSTANCE_TYPES: "g5.2xlarge, g6.2xlarge",
      GPU_FLEET_MIN: "0",
      GPU_FLEET_MAX: "10",
      GPU_FLEET_IMAGE_TAG: "cuda-1.2.3",
      GPU_FLEET_TARGET_DEMAND_PER_RUNNER: "2.5",
      GPU_FLEET_PARALLEL: "8",
      GPU_FLEET_ROOT_VOLUME_GIB: "500",
      GPU_FLEET_CACHE_MAX_GIB: "400",
      GPU_FLEET_SPOT: "true",
      GPU_FLEET_CONNECTORS: "3",
      GPU_FLEET_LOG_RETENTION_DAYS: "30",
      GPU_FLEET_RUNNER_PORT: "8080",
    });
    expect(s).toEqual({
      instanceTypes: ["g5.2xlarge", "g6.2xlarge"],
      minRunners: 0,
      maxRunners: 10,
      imageTag: "cuda-1.2.3",
      targetDemandPerRunner: 2.5,
      parallel: 8,
      rootVolumeGiB: 500,
      cacheMaxBytes: 400 * 1024 ** 3,
      spot: true,
      connectorReplicas: 3,
      logRetentionDays: 30,
      runnerPort: 8080,
    });
  });

  it.each([
    [{ GPU_FLEET_MIN: "-1" }, /GPU_FLEET_MIN/],
    [{ GPU_FLEET_MAX: "two" }, /GPU_FLEET_MAX/],
    [{ GPU_FLEET_MIN: "5", GPU_FLEET_MAX: "2" }, /GPU_FLEET_MAX \(2\) < GPU_FLEET_MIN \(5\)/],
    [{ GPU_FLEET_TARGET_DEMAND_PER_RUNNER: "0" }, /TARGET_DEMAND/],
    [{ GPU_FLEET_INSTANCE_TYPES: " , " }, /at least one/],
    [{ GPU_FLEET_INSTANCE_TYPES: "g5 xlarge" }, /not an EC2 instance type/],
    [{ GPU_FLEET_CONNECTORS: "0" }, /GPU_FLEET_CONNECTORS must be an integer ≥ 1/],
    [{ GPU_FLEET_RUNNER_PORT: "80" }, /GPU_FLEET_RUNNER_PORT must be an integer ≥ 1024/],
    [{ GPU_FLEET_RUNNER_PORT: "70000" }, /≤ 65535/],
    [{ GPU_FLEET_ROOT_VOLUME_GIB: "100", GPU_FLEET_CACHE_MAX_GIB: "90" }, /CACHE_MAX_GIB must be ≤/],
  ])("rejects %j", (env, message) => {
    expect(() => fleetSettingsFromEnv(env)).toThrow(message);
  });
});

describe("runnerStartCommand", () => {
  it("sets RUNNER_URL from the private IPv4 on the runner port and RUNNER_ID from the instance id, then execs", () => {
    const [shell, flag, script] = runnerStartCommand(11435);
    expect([shell, flag]).toEqual(["sh", "-c"]);
    expect(script).toContain("X-aws-ec2-metadata-token-ttl-seconds");
    expect(script).toContain('export RUNNER_URL="http://$(md local-ipv4):11435"');
    expect(script).toContain('export RUNNER_ID="$(md instance-id)"');
    expect(script?.trim().split("\n").at(-1)).toBe("exec npx --no tsx gpu-runner/src/main.ts");
  });
});

/**
 * The GPU fleet's knobs, read from the deploying shell's environment (`GPU_FLEET_*`), checked once so a typo fails
 * `sst deploy` with a clear message. Pure (no Pulumi, no SST globals): unit tested in fleet-settings.test.ts.
 */

export interface GpuFleetSettings {
  /** EC2 instance types for the Auto Scaling group (first one preferred); each must have exactly one GPU. */
  instanceTypes: string[];
  /** Runner tasks (= GPU instances); 0 lets an idle fleet cost nothing but makes the first request wait minutes. */
  minRunners: number;
  maxRunners: number;
  /** Tag of the runner image in the fleet's ECR repository (see infra/README.md for building and pushing). */
  imageTag: string;
  /** Target of the target-tracking policy: busy + waiting sequences per ready runner. */
  targetDemandPerRunner: number;
  /** Parallel sequences per loaded model on each runner (the runner's PARALLEL). */
  parallel: number;
  /** Root EBS volume (GiB): holds the image and the runner's blob cache. */
  rootVolumeGiB: number;
  /** Runner blob cache cap (bytes); must fit the root volume beside the image. */
  cacheMaxBytes: number;
  /** Spot instances for the GPU fleet (cheaper, may be reclaimed with 2 minutes' notice). */
  spot: boolean;
  /** `cloudflared` replicas connecting the runners' VPC to the edge (one per AZ survives an AZ or task loss). */
  connectorReplicas: number;
  logRetentionDays: number;
  /** Port the runner listens on at the instance's private IP (host networking); ≥ 1024: the image runs as `node`. */
  runnerPort: number;
}

const GiB = 1024 ** 3;

export const defaultFleetSettings: GpuFleetSettings = {
  instanceTypes: ["g6.xlarge", "g5.xlarge"],
  minRunners: 1,
  maxRunners: 4,
  imageTag: "cuda",
  targetDemandPerRunner: 3,
  parallel: 4,
  rootVolumeGiB: 200,
  cacheMaxBytes: 150 * GiB,
  spot: false,
  connectorReplicas: 2,
  logRetentionDays: 14,
  runnerPort: 11435,
};

type Env = Record<string, string | undefined>;

/** The fleet is deployed only when asked: the Cloudflare-only deploy must keep working without AWS credentials. */
export function fleetEnabled(env: Env): boolean {
  return ["1", "true", "yes"].includes(env.GPU_FLEET?.trim().toLowerCase() ?? "");
}

function integer(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return value;
}

function positive(env: Env, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a number > 0, got "${raw}"`);
  return value;
}

function list(env: Env, name: string, fallback: string[]): string[] {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;

export function fleetSettingsFromEnv(env: Env): GpuFleetSettings {
  const d = defaultFleetSettings;
  const s: GpuFleetSettings = {
    instanceTypes: list(env, "GPU_FLEET_INSTANCE_TYPES", d.instanceTypes),
    minRunners: integer(env, "GPU_FLEET_MIN", d.minRunners, 0),
    maxRunners: integer(env, "GPU_FLEET_MAX", d.maxRunners, 1),
    imageTag: env.GPU_FLEET_IMAGE_TAG?.trim() || d.imageTag,
    targetDemandPerRunner: positive(env, "GPU_FLEET_TARGET_DEMAND_PER_RUNNER", d.targetDemandPerRunner),
    parallel: integer(env, "GPU_FLEET_PARALLEL", d.parallel, 1),
    rootVolumeGiB: integer(env, "GPU_FLEET_ROOT_VOLUME_GIB", d.rootVolumeGiB, 60),
    cacheMaxBytes: integer(env, "GPU_FLEET_CACHE_MAX_GIB", d.cacheMaxBytes / GiB, 1) * GiB,
    spot: ["1", "true", "yes"].includes(env.GPU_FLEET_SPOT?.trim().toLowerCase() ?? ""),
    connectorReplicas: integer(env, "GPU_FLEET_CONNECTORS", d.connectorReplicas, 1),
    logRetentionDays: integer(env, "GPU_FLEET_LOG_RETENTION_DAYS", d.logRetentionDays, 1),
    runnerPort: integer(env, "GPU_FLEET_RUNNER_PORT", d.runnerPort, 1024),
  };
  if (s.runnerPort > 65535) throw new Error(`GPU_FLEET_RUNNER_PORT must be ≤ 65535, got ${s.runnerPort}`);
  if (s.instanceTypes.length === 0) throw new Error("GPU_FLEET_INSTANCE_TYPES must name at least one instance type");
  for (const t of s.instanceTypes) {
    if (!INSTANCE_TYPE.test(t)) throw new Error(`GPU_FLEET_INSTANCE_TYPES: "${t}" is not an EC2 instance type`);
  }
  if (s.maxRunners < s.minRunners) throw new Error(`GPU_FLEET_MAX (${s.maxRunners}) < GPU_FLEET_MIN (${s.minRunners})`);
  // The image (CUDA runtime + node_modules) takes ~20 GiB; the cache must leave room for it.
  if (s.cacheMaxBytes > (s.rootVolumeGiB - 30) * GiB) {
    throw new Error(`GPU_FLEET_CACHE_MAX_GIB must be ≤ GPU_FLEET_ROOT_VOLUME_GIB - 30 (${s.rootVolumeGiB - 30})`);
  }
  return s;
}

/**
 * The runner container's command: each runner registers the address the edge reaches it at, which is only known on
 * the instance. With host networking the container asks the instance metadata service (IMDSv2) for its private IPv4
 * (reached through the tunnel, infra/fleet/tunnel.ts) and instance id, then starts the runner with RUNNER_URL /
 * RUNNER_ID set from them.
 */
export function runnerStartCommand(port: number): string[] {
  const imds = "http://169.254.169.254/latest";
  const script = [
    "set -eu",
    `TOKEN=$(curl -fsS -X PUT ${imds}/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')`,
    `md() { curl -fsS -H "X-aws-ec2-metadata-token: $TOKEN" ${imds}/meta-data/$1; }`,
    `export RUNNER_URL="http://$(md local-ipv4):${port}"`,
    `export RUNNER_ID="$(md instance-id)"`,
    "exec npx --no tsx gpu-runner/src/main.ts",
  ].join("\n");
  return ["sh", "-c", script];
}

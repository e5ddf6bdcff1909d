/**
 * The runner as an ECS service on the GPU capacity: one task per GPU instance, host networking, the blob cache on a
 * Docker volume, secrets from SSM, logs to CloudWatch with a retention.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type GpuFleetSettings, runnerStartCommand } from "../fleet-settings";
import type { GpuCapacity } from "./capacity";
import { type FleetNames, prefixOf } from "./names";
import { containerSecrets, type SecretParameters, secureParameters, taskExecutionRole } from "./secrets";

/** What runners are told to reach: the edge (registration, heartbeats) and the blob store. */
export interface RunnerEndpoints {
  /** The edge Worker's public URL: runners register and heartbeat there (out through the NAT gateway). */
  edgeUrl: pulumi.Input<string>;
  runnerSecret: pulumi.Input<string>;
  /** R2 bucket the runners read blobs from, through R2's S3 API at `s3Endpoint` (`https://<account>.r2.cloudflarestorage.com`). */
  blobBucket: pulumi.Input<string>;
  s3Endpoint: pulumi.Input<string>;
  s3AccessKeyId: pulumi.Input<string>;
  s3SecretAccessKey: pulumi.Input<string>;
}

export interface RunnerServiceArgs extends RunnerEndpoints {
  names: FleetNames;
  fleetName: string;
  settings: GpuFleetSettings;
  capacity: GpuCapacity;
}

export interface RunnerService {
  service: aws.ecs.Service;
  repository: aws.ecr.Repository;
  logGroup: aws.cloudwatch.LogGroup;
}

export function runnerService(args: RunnerServiceArgs): RunnerService {
  const s = args.settings;
  const repository = new aws.ecr.Repository("RunnerImage", {
    name: `${prefixOf(args.names)}-runner`,
    imageTagMutability: "MUTABLE",
    imageScanningConfiguration: { scanOnPush: true },
    forceDelete: args.names.stage !== "prod",
  });
  const secrets = secureParameters(args.names, "gpu-runner", {
    RUNNER_SECRET: { name: "RunnerSecret", value: args.runnerSecret },
    S3_ACCESS_KEY_ID: { name: "S3AccessKeyId", value: args.s3AccessKeyId },
    S3_SECRET_ACCESS_KEY: { name: "S3SecretAccessKey", value: args.s3SecretAccessKey },
  });
  const executionRole = taskExecutionRole("GpuTaskExecutionRole", secrets);
  const logGroup = new aws.cloudwatch.LogGroup("GpuRunnerLogs", {
    name: `/corral/${args.names.stage}/gpu-runner`,
    retentionInDays: s.logRetentionDays,
  });
  const taskDefinition = runnerTaskDefinition(args, repository, secrets, executionRole, logGroup);

  const service = new aws.ecs.Service(
    "GpuRunnerService",
    {
      name: "gpu-runner",
      cluster: args.capacity.cluster.arn,
      taskDefinition: taskDefinition.arn,
      desiredCount: s.minRunners,
      capacityProviderStrategies: [{ capacityProvider: args.capacity.capacityProvider.name, weight: 1, base: 0 }],
      // One task per GPU: a rolling deploy replaces runners in place instead of buying a second fleet for minutes.
      deploymentMinimumHealthyPercent: 50,
      deploymentMaximumPercent: 100,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      orderedPlacementStrategies: [{ type: "binpack", field: "memory" }],
    },
    // Application Auto Scaling owns the desired count after the first deploy.
    { ignoreChanges: ["desiredCount"], dependsOn: [args.capacity.capacityProvider] },
  );
  return { service, repository, logGroup };
}

/** One container asking for one GPU, on the instance's network, secrets from SSM. */
function runnerTaskDefinition(
  args: RunnerServiceArgs,
  repository: aws.ecr.Repository,
  secrets: SecretParameters,
  executionRole: aws.iam.Role,
  logGroup: aws.cloudwatch.LogGroup,
): aws.ecs.TaskDefinition {
  const s = args.settings;
  const region = aws.getRegionOutput().name;
  return new aws.ecs.TaskDefinition("GpuRunnerTask", {
    family: `${args.fleetName}-runner`,
    requiresCompatibilities: ["EC2"],
    // Host networking: the runner listens on the instance's private address, which it registers (RUNNER_URL).
    networkMode: "host",
    executionRoleArn: executionRole.arn,
    volumes: [
      // A Docker volume (not a bind mount) keeps the image's node-owned cache directory writable by USER node.
      { name: "blob-cache", dockerVolumeConfiguration: { scope: "shared", autoprovision: true, driver: "local" } },
    ],
    containerDefinitions: pulumi.jsonStringify([
      {
        name: "gpu-runner",
        image: pulumi.interpolate`${repository.repositoryUrl}:${s.imageTag}`,
        essential: true,
        command: runnerStartCommand(s.runnerPort),
        // Leaves the instance some memory; the runner's models live in VRAM (MEMORY_BUDGET_BYTES defaults to 90%).
        memoryReservation: 8192,
        resourceRequirements: [{ type: "GPU", value: "1" }],
        portMappings: [{ containerPort: s.runnerPort, hostPort: s.runnerPort, protocol: "tcp" }],
        mountPoints: [{ sourceVolume: "blob-cache", containerPath: "/var/cache/corral" }],
        stopTimeout: 120,
        environment: [
          { name: "HOST", value: "0.0.0.0" },
          { name: "PORT", value: String(s.runnerPort) },
          { name: "EDGE_URL", value: args.edgeUrl },
          { name: "GPU", value: "cuda" },
          { name: "PARALLEL", value: String(s.parallel) },
          { name: "CACHE_DIR", value: "/var/cache/corral" },
          { name: "CACHE_MAX_BYTES", value: String(s.cacheMaxBytes) },
          { name: "BLOB_SOURCE", value: "s3" },
          { name: "S3_BUCKET", value: args.blobBucket },
          { name: "S3_ENDPOINT", value: args.s3Endpoint },
          { name: "S3_REGION", value: "auto" },
        ],
        secrets: containerSecrets(secrets),
        logConfiguration: {
          logDriver: "awslogs",
          options: { "awslogs-group": logGroup.name, "awslogs-region": region, "awslogs-stream-prefix": "runner" },
        },
      },
    ]),
  });
}

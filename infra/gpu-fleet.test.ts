/**
 * The fleet's resource graph, built offline with Pulumi's mocks: every resource the program declares is recorded with
 * its inputs, and the properties that keep the fleet private, GPU-backed, secret-safe and scalable are checked on
 * them. The settings table is round-tripped: each GPU_FLEET_* knob must show up where it belongs.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { METRIC_NAMESPACE, MetricName } from "./autoscaling/metrics";
import { defaultFleetSettings, fleetSettingsFromEnv, type GpuFleetSettings } from "./fleet-settings";

interface Declared {
  type: string;
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: resource inputs are whatever each provider's schema says.
  inputs: Record<string, any>;
}

const TUNNEL_TOKEN = "mock-tunnel-token";
const SECRETS = {
  runnerSecret: "mock-runner-secret",
  s3AccessKeyId: "mock-r2-key-id",
  s3SecretAccessKey: "mock-r2-secret",
};

let declared: Declared[] = [];

const idOf = (name: string) => `${name}-id`;
const arnOf = (type: string, name: string) => `arn:mock:${type}:${name}`;

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        declared.push({ type: args.type, name: args.name, inputs: args.inputs });
        return { id: idOf(args.name), state: { ...args.inputs, arn: arnOf(args.type, args.name) } };
      },
      call: (args) => {
        switch (args.token) {
          case "aws:index/getAvailabilityZones:getAvailabilityZones":
            return { names: ["us-east-1a", "us-east-1b", "us-east-1c"] };
          case "aws:index/getRegion:getRegion":
            return { name: "us-east-1" };
          case "aws:ssm/getParameter:getParameter":
            return { value: "ami-0123456789" };
          case "cloudflare:index/getZeroTrustTunnelCloudflaredToken:getZeroTrustTunnelCloudflaredToken":
            return { token: TUNNEL_TOKEN };
          default:
            return args.inputs;
        }
      },
    },
    "corral",
    "test",
  );
});

/** Declares the tunnel and the fleet as sst.config.ts does, and waits until every resource is registered. */
async function deploy(settings: GpuFleetSettings): Promise<Declared[]> {
  declared = [];
  const { runnerTunnel } = await import("./fleet/tunnel");
  const { gpuRunnerFleet } = await import("./gpu-fleet");
  const names = { app: "corral", stage: "test" };
  const tunnel = runnerTunnel(names, "account");
  gpuRunnerFleet({
    names,
    accountId: "account",
    tunnel,
    edgeUrl: "https://edge.example",
    blobBucket: "corral-blobs",
    s3Endpoint: "https://account.r2.cloudflarestorage.com",
    settings,
    ...SECRETS,
  });
  // Pulumi's own "all registrations done" (internal, pinned with @pulumi/pulumi): resolves once no RPC is pending.
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  return declared;
}

const ofType = (graph: Declared[], type: string) => graph.filter((r) => r.type === type);
function one(graph: Declared[], type: string, name?: string): Declared {
  const found = ofType(graph, type).filter((r) => name === undefined || r.name === name);
  expect(found, `${type} ${name ?? ""}`).toHaveLength(1);
  return found[0]!;
}
// biome-ignore lint/suspicious/noExplicitAny: container definitions are free-form JSON.
const containers = (taskDefinition: Declared): any[] => JSON.parse(taskDefinition.inputs.containerDefinitions);
const envOf = (container: { environment?: { name: string; value: string }[] }) =>
  Object.fromEntries((container.environment ?? []).map((e) => [e.name, e.value]));

const T = {
  sg: "aws:ec2/securityGroup:SecurityGroup",
  subnet: "aws:ec2/subnet:Subnet",
  routeTable: "aws:ec2/routeTable:RouteTable",
  association: "aws:ec2/routeTableAssociation:RouteTableAssociation",
  asg: "aws:autoscaling/group:Group",
  launchTemplate: "aws:ec2/launchTemplate:LaunchTemplate",
  taskDefinition: "aws:ecs/taskDefinition:TaskDefinition",
  service: "aws:ecs/service:Service",
  parameter: "aws:ssm/parameter:Parameter",
  role: "aws:iam/role:Role",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  target: "aws:appautoscaling/target:Target",
  policy: "aws:appautoscaling/policy:Policy",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  tunnel: "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared",
};

describe("the default fleet", () => {
  let graph: Declared[];
  beforeAll(async () => {
    graph = await deploy(defaultFleetSettings);
  });

  it("opens no security group to the internet; the runner port admits the tunnel connector only", () => {
    for (const sg of ofType(graph, T.sg)) {
      for (const rule of sg.inputs.ingress ?? []) {
        expect(rule.cidrBlocks ?? []).toEqual([]);
        expect(rule.ipv6CidrBlocks ?? []).toEqual([]);
      }
    }
    const runnerSg = one(graph, T.sg, "GpuRunnerSg");
    expect(runnerSg.inputs.ingress).toEqual([
      expect.objectContaining({
        protocol: "tcp",
        fromPort: defaultFleetSettings.runnerPort,
        toPort: defaultFleetSettings.runnerPort,
        securityGroups: [idOf("GpuTunnelConnectorSg")],
      }),
    ]);
    expect(one(graph, T.sg, "GpuTunnelConnectorSg").inputs.ingress ?? []).toEqual([]);
    // No rule added beside the groups either.
    expect(graph.filter((r) => /securityGroupRule|SecurityGroupIngressRule/.test(r.type))).toEqual([]);
  });

  it("puts runners and connectors in private subnets, routed out through the NAT gateway only", () => {
    const privateIds = ["GpuFleetPrivate0", "GpuFleetPrivate1"].map(idOf);
    for (const name of ["GpuFleetPrivate0", "GpuFleetPrivate1"]) {
      expect(one(graph, T.subnet, name).inputs.mapPublicIpOnLaunch).toBe(false);
      expect(one(graph, T.association, `${name}Routes`).inputs.routeTableId).toBe(idOf("GpuFleetPrivateRoutes"));
    }
    expect(one(graph, T.routeTable, "GpuFleetPrivateRoutes").inputs.routes).toEqual([
      expect.objectContaining({ cidrBlock: "0.0.0.0/0", natGatewayId: idOf("GpuFleetNat") }),
    ]);
    expect(one(graph, T.asg).inputs.vpcZoneIdentifiers).toEqual(privateIds);
    const nic = one(graph, T.launchTemplate).inputs.networkInterfaces[0];
    expect(nic).toMatchObject({ associatePublicIpAddress: "false", securityGroups: [idOf("GpuRunnerSg")] });
    const connector = one(graph, T.service, "GpuTunnelConnector").inputs.networkConfiguration;
    expect(connector).toMatchObject({ subnets: privateIds, assignPublicIp: false });
  });

  it("asks ECS for one GPU per runner task, on the GPU instances", () => {
    const task = one(graph, T.taskDefinition, "GpuRunnerTask");
    expect(task.inputs.requiresCompatibilities).toEqual(["EC2"]);
    expect(containers(task)[0].resourceRequirements).toEqual([{ type: "GPU", value: "1" }]);
    expect(containers(task)[0].command.join(" ")).toContain("md local-ipv4");
  });

  it("passes secrets only as SSM SecureString references, read by the execution role alone", () => {
    const secretValues = [...Object.values(SECRETS), TUNNEL_TOKEN];
    const parameters = ofType(graph, T.parameter);
    expect(parameters.map((p) => p.inputs.type)).toEqual(parameters.map(() => "SecureString"));
    // Each value is a Pulumi secret (encrypted in the state), wrapped as the engine wraps secrets.
    for (const p of parameters) {
      expect(p.inputs.value[pulumi.runtime.specialSigKey]).toBe(pulumi.runtime.specialSecretSig);
    }
    expect(parameters.map((p) => p.inputs.value.value).sort()).toEqual([...secretValues].sort());
    const parameterArns = parameters.map((p) => arnOf(T.parameter, p.name));
    for (const task of ofType(graph, T.taskDefinition)) {
      for (const container of containers(task)) {
        const plain = JSON.stringify(container.environment ?? []);
        for (const value of secretValues) expect(plain).not.toContain(value);
        for (const secret of container.secrets ?? []) expect(parameterArns).toContain(secret.valueFrom);
      }
      const role = one(
        graph,
        T.role,
        task.name === "GpuRunnerTask" ? "GpuTaskExecutionRole" : "GpuTunnelExecutionRole",
      );
      const policy = JSON.parse(role.inputs.inlinePolicies[0].policy);
      const granted = policy.Statement[0].Resource as string[];
      expect(granted.sort()).toEqual(
        containers(task)[0]
          .secrets.map((s: { valueFrom: string }) => s.valueFrom)
          .sort(),
      );
    }
    expect(
      containers(one(graph, T.taskDefinition, "GpuRunnerTask"))[0].secrets.map((s: { name: string }) => s.name),
    ).toEqual(["RUNNER_SECRET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"]);
  });

  it("runs cloudflared connectors of the runners' tunnel, on QUIC, with the tunnel token from SSM", async () => {
    expect(one(graph, T.tunnel).inputs).toMatchObject({ accountId: "account", configSrc: "cloudflare" });
    const connector = one(graph, T.service, "GpuTunnelConnector");
    expect(connector.inputs).toMatchObject({ launchType: "FARGATE", desiredCount: 2 });
    const [cloudflared] = containers(one(graph, T.taskDefinition, "GpuTunnelTask"));
    expect(cloudflared.image).toMatch(/^cloudflare\/cloudflared:20\d\d\./);
    expect(cloudflared.command.join(" ")).toContain("--protocol quic");
    expect(cloudflared.secrets.map((s: { name: string }) => s.name)).toEqual(["TUNNEL_TOKEN"]);

    const { runnerNetworkBinding, runnerTunnel } = await import("./fleet/tunnel");
    const binding = runnerNetworkBinding(runnerTunnel({ app: "corral", stage: "binding" }, "account"));
    expect(binding).toMatchObject({ type: "vpc_network", name: "RUNNER_NETWORK" });
    expect(await new Promise((resolve) => binding.tunnelId.apply(resolve))).toBe(idOf("GpuRunnerTunnel"));
  });

  it("scales tasks on demand per runner between the bounds, and keeps no wake-from-zero alarm at min 1", () => {
    expect(one(graph, T.target).inputs).toMatchObject({ minCapacity: 1, maxCapacity: 4 });
    const tracking = one(graph, T.policy, "GpuRunnerDemandTracking").inputs.targetTrackingScalingPolicyConfiguration;
    expect(tracking).toMatchObject({
      targetValue: 3,
      scaleOutCooldown: 120,
      scaleInCooldown: 600,
      customizedMetricSpecification: {
        namespace: METRIC_NAMESPACE,
        metricName: MetricName.demandPerRunner,
        statistic: "Average",
        dimensions: [{ name: "Fleet", value: "corral-test-gpu" }],
      },
    });
    expect(ofType(graph, T.alarm)).toEqual([]);
  });

  it("keeps every log group for the configured retention", () => {
    const groups = ofType(graph, T.logGroup);
    expect(groups.map((g) => g.name).sort()).toEqual(["GpuRunnerLogs", "GpuTunnelLogs"]);
    for (const g of groups) expect(g.inputs.retentionInDays).toBe(defaultFleetSettings.logRetentionDays);
  });
});

describe("fleet settings round-trip into resources", () => {
  const env = {
    GPU_FLEET_INSTANCE_TYPES: "g6e.xlarge,g5.2xlarge",
    GPU_FLEET_MIN: "0",
    GPU_FLEET_MAX: "7",
    GPU_FLEET_SPOT: "1",
    GPU_FLEET_IMAGE_TAG: "cuda-9.9.9",
    GPU_FLEET_PARALLEL: "6",
    GPU_FLEET_TARGET_DEMAND_PER_RUNNER: "4.5",
    GPU_FLEET_ROOT_VOLUME_GIB: "300",
    GPU_FLEET_CACHE_MAX_GIB: "250",
    GPU_FLEET_RUNNER_PORT: "12000",
    GPU_FLEET_LOG_RETENTION_DAYS: "30",
    GPU_FLEET_CONNECTORS: "3",
  };
  let graph: Declared[];
  beforeAll(async () => {
    graph = await deploy(fleetSettingsFromEnv(env));
  });

  const runnerContainer = () => containers(one(graph, T.taskDefinition, "GpuRunnerTask"))[0];
  const asgPolicy = () => one(graph, T.asg).inputs.mixedInstancesPolicy;

  it.each([
    [
      "GPU_FLEET_INSTANCE_TYPES",
      () => asgPolicy().launchTemplate.overrides,
      [{ instanceType: "g6e.xlarge" }, { instanceType: "g5.2xlarge" }],
    ],
    ["GPU_FLEET_INSTANCE_TYPES (first)", () => one(graph, T.launchTemplate).inputs.instanceType, "g6e.xlarge"],
    [
      "GPU_FLEET_MIN/MAX (instances)",
      () => [one(graph, T.asg).inputs.minSize, one(graph, T.asg).inputs.maxSize],
      [0, 7],
    ],
    [
      "GPU_FLEET_MIN/MAX (tasks)",
      () => [one(graph, T.target).inputs.minCapacity, one(graph, T.target).inputs.maxCapacity],
      [0, 7],
    ],
    ["GPU_FLEET_MIN (first deploy)", () => one(graph, T.service, "GpuRunnerService").inputs.desiredCount, 0],
    ["GPU_FLEET_SPOT", () => asgPolicy().instancesDistribution.onDemandPercentageAboveBaseCapacity, 0],
    ["GPU_FLEET_IMAGE_TAG", () => String(runnerContainer().image).split(":").at(-1), "cuda-9.9.9"],
    ["GPU_FLEET_PARALLEL", () => envOf(runnerContainer()).PARALLEL, "6"],
    [
      "GPU_FLEET_TARGET_DEMAND_PER_RUNNER",
      () => one(graph, T.policy, "GpuRunnerDemandTracking").inputs.targetTrackingScalingPolicyConfiguration.targetValue,
      4.5,
    ],
    ["GPU_FLEET_ROOT_VOLUME_GIB", () => one(graph, T.launchTemplate).inputs.blockDeviceMappings[0].ebs.volumeSize, 300],
    ["GPU_FLEET_CACHE_MAX_GIB", () => envOf(runnerContainer()).CACHE_MAX_BYTES, String(250 * 1024 ** 3)],
    ["GPU_FLEET_RUNNER_PORT (listen)", () => envOf(runnerContainer()).PORT, "12000"],
    ["GPU_FLEET_RUNNER_PORT (security group)", () => one(graph, T.sg, "GpuRunnerSg").inputs.ingress[0].fromPort, 12000],
    ["GPU_FLEET_RUNNER_PORT (registered URL)", () => runnerContainer().command[2].includes(':12000"'), true],
    ["GPU_FLEET_LOG_RETENTION_DAYS", () => ofType(graph, T.logGroup).map((g) => g.inputs.retentionInDays), [30, 30]],
    ["GPU_FLEET_CONNECTORS", () => one(graph, T.service, "GpuTunnelConnector").inputs.desiredCount, 3],
  ] as const)("%s", (_knob, read, expected) => {
    expect(read()).toEqual(expected);
  });

  it("wakes a fleet scaled to zero when requests wait (GPU_FLEET_MIN=0)", () => {
    expect(one(graph, T.policy, "GpuRunnerWakeFromZero").inputs.stepScalingPolicyConfiguration).toMatchObject({
      adjustmentType: "ExactCapacity",
      stepAdjustments: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }],
    });
    const alarm = one(graph, T.alarm).inputs;
    expect(alarm.alarmActions).toEqual([arnOf(T.policy, "GpuRunnerWakeFromZero")]);
    expect(alarm.metricQueries[0].metric).toMatchObject({
      namespace: METRIC_NAMESPACE,
      metricName: MetricName.queueDepth,
    });
  });
});

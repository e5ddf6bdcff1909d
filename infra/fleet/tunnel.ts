/**
 * The private path from the edge to the runners: a Cloudflare Tunnel, dialled out from inside the fleet's VPC by
 * `cloudflared` connectors, and bound to the edge Worker as a Workers VPC network (`RUNNER_NETWORK`). The Worker's
 * `fetch` to a runner's private address travels inside the tunnel; nothing listens on the internet. See the transport
 * decision in infra/README.md.
 */
import * as aws from "@pulumi/aws";
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { type FleetNames, prefixOf } from "./names";
import type { FleetNetwork } from "./network";
import { containerSecrets, secureParameters, taskExecutionRole } from "./secrets";

/** Workers VPC needs cloudflared 2025.7.0 or later, on QUIC. */
export const CLOUDFLARED_IMAGE = "cloudflare/cloudflared:2025.11.1";

/** The tunnel alone: created before the Worker, whose RUNNER_NETWORK binding names it. */
export function runnerTunnel(names: FleetNames, accountId: string): cloudflare.ZeroTrustTunnelCloudflared {
  return new cloudflare.ZeroTrustTunnelCloudflared("GpuRunnerTunnel", {
    accountId,
    name: `${prefixOf(names)}-runners`,
    // Remotely managed: the connector needs only its token, and the tunnel's settings live with Cloudflare.
    configSrc: "cloudflare",
  });
}

/** The edge Worker's binding to the tunnel (sst.config.ts adds it to the Worker's bindings). */
export const runnerNetworkBinding = (tunnel: cloudflare.ZeroTrustTunnelCloudflared) => ({
  type: "vpc_network",
  name: "RUNNER_NETWORK",
  tunnelId: tunnel.id,
});

export interface TunnelConnectorArgs {
  names: FleetNames;
  accountId: string;
  tunnel: cloudflare.ZeroTrustTunnelCloudflared;
  network: FleetNetwork;
  cluster: aws.ecs.Cluster;
  replicas: number;
  logRetentionDays: number;
}

/**
 * `cloudflared` as a small Fargate service in the private subnets, one replica per AZ by default: each replica is a
 * connector of the same tunnel, so losing one (or its AZ) only moves traffic to the others.
 */
export function tunnelConnector(args: TunnelConnectorArgs): aws.ecs.Service {
  const prefix = prefixOf(args.names);
  const token = cloudflare.getZeroTrustTunnelCloudflaredTokenOutput({
    accountId: args.accountId,
    tunnelId: args.tunnel.id,
  }).token;
  const secrets = secureParameters(args.names, "tunnel", { TUNNEL_TOKEN: { name: "TunnelToken", value: token } });
  const executionRole = taskExecutionRole("GpuTunnelExecutionRole", secrets);
  const logGroup = new aws.cloudwatch.LogGroup("GpuTunnelLogs", {
    name: `/corral/${args.names.stage}/tunnel-connector`,
    retentionInDays: args.logRetentionDays,
  });
  const region = aws.getRegionOutput().name;
  const taskDefinition = new aws.ecs.TaskDefinition("GpuTunnelTask", {
    family: `${prefix}-cloudflared`,
    requiresCompatibilities: ["FARGATE"],
    networkMode: "awsvpc",
    cpu: "256",
    memory: "512",
    runtimePlatform: { cpuArchitecture: "ARM64", operatingSystemFamily: "LINUX" },
    executionRoleArn: executionRole.arn,
    containerDefinitions: pulumi.jsonStringify([
      {
        name: "cloudflared",
        image: CLOUDFLARED_IMAGE,
        essential: true,
        command: ["tunnel", "--no-autoupdate", "--protocol", "quic", "--metrics", "0.0.0.0:2000", "run"],
        secrets: containerSecrets(secrets),
        logConfiguration: {
          logDriver: "awslogs",
          options: { "awslogs-group": logGroup.name, "awslogs-region": region, "awslogs-stream-prefix": "cloudflared" },
        },
      },
    ]),
  });
  return new aws.ecs.Service("GpuTunnelConnector", {
    name: "tunnel-connector",
    cluster: args.cluster.arn,
    taskDefinition: taskDefinition.arn,
    launchType: "FARGATE",
    desiredCount: args.replicas,
    networkConfiguration: {
      subnets: args.network.privateSubnetIds,
      securityGroups: [args.network.connectorSecurityGroup.id],
      assignPublicIp: false,
    },
    deploymentMinimumHealthyPercent: 100,
    deploymentMaximumPercent: 200,
  });
}

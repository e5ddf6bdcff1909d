/**
 * The autoscaled GPU runner fleet on AWS, called from sst.config.ts's run() when GPU_FLEET=1 (see infra/README.md).
 * Plain Pulumi (`@pulumi/aws`, `@pulumi/cloudflare`), no SST globals, so the whole resource graph is unit tested
 * offline with Pulumi's mocks (gpu-fleet.test.ts). One module per concept under infra/fleet/:
 *
 * - network.ts: private subnets for runners and the tunnel connector, one NAT gateway, an S3 gateway endpoint,
 *   security groups (the runner port from the connector only);
 * - tunnel.ts: the Cloudflare Tunnel the edge Worker is bound to, and its `cloudflared` connectors in the VPC;
 * - capacity.ts: the ECS cluster and its GPU instances (launch template, Auto Scaling group, capacity provider);
 * - runner-service.ts: the runner task and service, its secrets and logs;
 * - scaling.ts: the task scaling policies on the edge's demand metric.
 *
 * The metric publisher (an `sst.aws.Cron`) stays in sst.config.ts, being SST's own component.
 */
import type * as cloudflare from "@pulumi/cloudflare";
import { gpuCapacity } from "./fleet/capacity";
import { type FleetNames, prefixOf } from "./fleet/names";
import { fleetNetwork } from "./fleet/network";
import { type RunnerEndpoints, runnerService } from "./fleet/runner-service";
import { runnerScaling } from "./fleet/scaling";
import { tunnelConnector } from "./fleet/tunnel";
import type { GpuFleetSettings } from "./fleet-settings";

export interface GpuFleetArgs extends RunnerEndpoints {
  names: FleetNames;
  /** Cloudflare account of the tunnel. */
  accountId: string;
  /** Created before the edge Worker (its RUNNER_NETWORK binding names it): see `runnerTunnel`. */
  tunnel: cloudflare.ZeroTrustTunnelCloudflared;
  settings: GpuFleetSettings;
}

export function gpuRunnerFleet(args: GpuFleetArgs) {
  const fleetName = `${prefixOf(args.names)}-gpu`;
  const network = fleetNetwork(prefixOf(args.names), args.settings.runnerPort);
  const capacity = gpuCapacity(fleetName, args.settings, network);
  const connector = tunnelConnector({
    names: args.names,
    accountId: args.accountId,
    tunnel: args.tunnel,
    network,
    cluster: capacity.cluster,
    replicas: args.settings.connectorReplicas,
    logRetentionDays: args.settings.logRetentionDays,
  });
  const runners = runnerService({ ...args, fleetName, capacity });
  runnerScaling({ fleetName, settings: args.settings, cluster: capacity.cluster, service: runners.service });
  return {
    fleetName,
    cluster: capacity.cluster.name,
    service: runners.service.name,
    connector: connector.name,
    repositoryUrl: runners.repository.repositoryUrl,
    autoScalingGroup: capacity.autoScalingGroup.name,
    logGroup: runners.logGroup.name,
  };
}

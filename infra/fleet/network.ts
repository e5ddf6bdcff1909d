/**
 * The fleet's network: runners and the tunnel connector live in private subnets that the internet cannot reach
 * (no public IP, no inbound rule from outside the VPC). Their only way out is one NAT gateway, for what is not on AWS:
 * blobs from R2's S3 API, heartbeats to the edge's public URL, cloudflared's own connections to Cloudflare, and the
 * connector image from Docker Hub. ECR image layers come from S3 through a gateway endpoint, which is free and keeps
 * multi-GiB CUDA pulls off the NAT's per-GB charge. Public subnets hold the NAT gateway and nothing else.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export const VPC_CIDR = "10.60.0.0/16";
const PRIVATE_CIDRS = ["10.60.0.0/19", "10.60.32.0/19"];
const PUBLIC_CIDRS = ["10.60.128.0/24", "10.60.129.0/24"];

export interface FleetNetwork {
  vpc: aws.ec2.Vpc;
  privateSubnetIds: pulumi.Output<string>[];
  publicSubnetIds: pulumi.Output<string>[];
  /** cloudflared: nothing in, anything out. */
  connectorSecurityGroup: aws.ec2.SecurityGroup;
  /** Runners: the runner port from the connector only; anything out (through the NAT). */
  runnerSecurityGroup: aws.ec2.SecurityGroup;
}

export function fleetNetwork(prefix: string, runnerPort: number): FleetNetwork {
  const vpc = new aws.ec2.Vpc("GpuFleetVpc", {
    cidrBlock: VPC_CIDR,
    enableDnsHostnames: true,
    enableDnsSupport: true,
    tags: { Name: `${prefix}-gpu` },
  });
  const zones = aws.getAvailabilityZonesOutput({ state: "available" }).names;
  const publicSubnetIds = publicSide(prefix, vpc, zones);
  const privateSubnetIds = privateSide(prefix, vpc, zones, publicSubnetIds[0]!);
  return { vpc, privateSubnetIds, publicSubnetIds, ...securityGroups(vpc, runnerPort) };
}

type Zones = pulumi.Output<string[]>;

/** Public subnets routed to the internet gateway: they hold the NAT gateway and nothing else. */
function publicSide(prefix: string, vpc: aws.ec2.Vpc, zones: Zones): pulumi.Output<string>[] {
  const internetGateway = new aws.ec2.InternetGateway("GpuFleetIgw", { vpcId: vpc.id });
  const routes = new aws.ec2.RouteTable("GpuFleetPublicRoutes", {
    vpcId: vpc.id,
    routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: internetGateway.id }],
  });
  return PUBLIC_CIDRS.map((cidrBlock, i) => {
    const subnet = new aws.ec2.Subnet(`GpuFleetPublic${i}`, {
      vpcId: vpc.id,
      cidrBlock,
      availabilityZone: zones[i],
      mapPublicIpOnLaunch: false,
      tags: { Name: `${prefix}-gpu-public-${i}` },
    });
    new aws.ec2.RouteTableAssociation(`GpuFleetPublic${i}Routes`, { subnetId: subnet.id, routeTableId: routes.id });
    return subnet.id;
  });
}

/** Private subnets whose only way out is the NAT gateway, plus the S3 gateway endpoint for ECR's layers. */
function privateSide(
  prefix: string,
  vpc: aws.ec2.Vpc,
  zones: Zones,
  natSubnetId: pulumi.Output<string>,
): pulumi.Output<string>[] {
  // One NAT gateway: a second (one per AZ) would survive an AZ outage for another ~$37/month; see infra/README.md.
  const natAddress = new aws.ec2.Eip("GpuFleetNatIp", { domain: "vpc" });
  const nat = new aws.ec2.NatGateway("GpuFleetNat", {
    allocationId: natAddress.id,
    subnetId: natSubnetId,
    tags: { Name: `${prefix}-gpu` },
  });
  const routes = new aws.ec2.RouteTable("GpuFleetPrivateRoutes", {
    vpcId: vpc.id,
    routes: [{ cidrBlock: "0.0.0.0/0", natGatewayId: nat.id }],
  });
  const region = aws.getRegionOutput().name;
  new aws.ec2.VpcEndpoint("GpuFleetS3Endpoint", {
    vpcId: vpc.id,
    serviceName: pulumi.interpolate`com.amazonaws.${region}.s3`,
    vpcEndpointType: "Gateway",
    routeTableIds: [routes.id],
  });
  return PRIVATE_CIDRS.map((cidrBlock, i) => {
    const subnet = new aws.ec2.Subnet(`GpuFleetPrivate${i}`, {
      vpcId: vpc.id,
      cidrBlock,
      availabilityZone: zones[i],
      mapPublicIpOnLaunch: false,
      tags: { Name: `${prefix}-gpu-private-${i}` },
    });
    new aws.ec2.RouteTableAssociation(`GpuFleetPrivate${i}Routes`, { subnetId: subnet.id, routeTableId: routes.id });
    return subnet.id;
  });
}

function securityGroups(vpc: aws.ec2.Vpc, runnerPort: number) {
  const anywhereOut = [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }];
  const connectorSecurityGroup = new aws.ec2.SecurityGroup("GpuTunnelConnectorSg", {
    vpcId: vpc.id,
    description: "corral cloudflared: outbound only (the tunnel is dialled out to Cloudflare)",
    egress: anywhereOut,
  });
  const runnerSecurityGroup = new aws.ec2.SecurityGroup("GpuRunnerSg", {
    vpcId: vpc.id,
    description: "corral gpu-runner: the runner port from the tunnel connector only",
    ingress: [
      { protocol: "tcp", fromPort: runnerPort, toPort: runnerPort, securityGroups: [connectorSecurityGroup.id] },
    ],
    egress: anywhereOut,
  });
  return { connectorSecurityGroup, runnerSecurityGroup };
}

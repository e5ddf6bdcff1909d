/**
 * GPU capacity: an ECS cluster whose EC2 capacity is an Auto Scaling group of single-GPU instances (ECS GPU-optimized
 * AMI) in the private subnets, behind a capacity provider with managed scaling. SST's Service/Cluster run on Fargate,
 * which has no GPUs, hence raw `aws.*`.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { GpuFleetSettings } from "../fleet-settings";
import type { FleetNetwork } from "./network";

const GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id";

export interface GpuCapacity {
  cluster: aws.ecs.Cluster;
  autoScalingGroup: aws.autoscaling.Group;
  capacityProvider: aws.ecs.CapacityProvider;
}

export function gpuCapacity(fleetName: string, settings: GpuFleetSettings, network: FleetNetwork): GpuCapacity {
  const cluster = new aws.ecs.Cluster("GpuCluster", {
    name: fleetName,
    settings: [{ name: "containerInsights", value: "enabled" }],
  });
  const launchTemplate = gpuLaunchTemplate(fleetName, settings, network, cluster);

  const autoScalingGroup = new aws.autoscaling.Group(
    "GpuAsg",
    {
      namePrefix: `${fleetName}-`,
      minSize: settings.minRunners,
      maxSize: settings.maxRunners,
      vpcZoneIdentifiers: network.privateSubnetIds,
      // Required by the capacity provider's managed termination protection: ECS decides which instances may go.
      protectFromScaleIn: true,
      mixedInstancesPolicy: {
        instancesDistribution: {
          onDemandBaseCapacity: 0,
          onDemandPercentageAboveBaseCapacity: settings.spot ? 0 : 100,
          spotAllocationStrategy: "price-capacity-optimized",
        },
        launchTemplate: {
          launchTemplateSpecification: { launchTemplateId: launchTemplate.id, version: "$Latest" },
          overrides: settings.instanceTypes.map((instanceType) => ({ instanceType })),
        },
      },
      tags: [{ key: "AmazonECSManaged", value: "true", propagateAtLaunch: true }],
    },
    // The capacity provider owns the size from here on.
    { ignoreChanges: ["desiredCapacity", "minSize", "maxSize"] },
  );

  const capacityProvider = new aws.ecs.CapacityProvider("GpuCapacity", {
    name: `${fleetName}-cp`,
    autoScalingGroupProvider: {
      autoScalingGroupArn: autoScalingGroup.arn,
      managedTerminationProtection: "ENABLED",
      managedDraining: "ENABLED",
      // 100%: one runner task per GPU instance, no idle spare instances.
      managedScaling: { status: "ENABLED", targetCapacity: 100, minimumScalingStepSize: 1, maximumScalingStepSize: 4 },
    },
  });
  new aws.ecs.ClusterCapacityProviders("GpuClusterCapacity", {
    clusterName: cluster.name,
    // FARGATE too: the tunnel connector runs in the same cluster.
    capacityProviders: [capacityProvider.name, "FARGATE"],
    defaultCapacityProviderStrategies: [{ capacityProvider: capacityProvider.name, weight: 1, base: 0 }],
  });
  return { cluster, autoScalingGroup, capacityProvider };
}

/** The ECS agent's settings, written on boot. */
const ecsUserData = (clusterName: pulumi.Input<string>) =>
  pulumi
    .output(clusterName)
    .apply((name) =>
      Buffer.from(
        [
          "#!/bin/bash",
          "cat >> /etc/ecs/ecs.config <<'CONFIG'",
          `ECS_CLUSTER=${name}`,
          "ECS_ENABLE_GPU_SUPPORT=true",
          "ECS_CONTAINER_STOP_TIMEOUT=120s",
          "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true",
          "CONFIG",
          "",
        ].join("\n"),
      ).toString("base64"),
    );

function gpuLaunchTemplate(
  fleetName: string,
  settings: GpuFleetSettings,
  network: FleetNetwork,
  cluster: aws.ecs.Cluster,
): aws.ec2.LaunchTemplate {
  const instanceRole = new aws.iam.Role("GpuInstanceRole", {
    assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: "ec2.amazonaws.com" }),
    managedPolicyArns: [
      "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
      // Session Manager instead of SSH: no key pairs, no port 22.
      "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ],
  });
  const instanceProfile = new aws.iam.InstanceProfile("GpuInstanceProfile", { role: instanceRole.name });

  return new aws.ec2.LaunchTemplate("GpuLaunchTemplate", {
    namePrefix: `${fleetName}-`,
    imageId: aws.ssm.getParameterOutput({ name: GPU_AMI_PARAMETER }).value,
    instanceType: settings.instanceTypes[0],
    iamInstanceProfile: { arn: instanceProfile.arn },
    userData: ecsUserData(cluster.name),
    // Private subnet, no public address: the instance is reached through the tunnel only.
    networkInterfaces: [{ associatePublicIpAddress: "false", securityGroups: [network.runnerSecurityGroup.id] }],
    blockDeviceMappings: [
      {
        deviceName: "/dev/xvda",
        ebs: { volumeSize: settings.rootVolumeGiB, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" },
      },
    ],
    // IMDSv2 only; hop limit 2 so containers can ask it too (the runner's start command reads its private IP).
    metadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 2, httpEndpoint: "enabled" },
    tagSpecifications: [{ resourceType: "instance", tags: { Name: `${fleetName}-runner` } }],
  });
}

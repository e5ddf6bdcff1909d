/**
 * The autoscaled GPU runner fleet on AWS, called from sst.config.ts's run() when GPU_FLEET=1 (see infra/README.md).
 *
 * SST's Service/Cluster components run on Fargate, which has no GPUs, so this is raw Pulumi `aws.*`: an ECS cluster
 * whose capacity is an Auto Scaling group of single-GPU instances (ECS GPU-optimized AMI) behind a capacity provider
 * with managed scaling. The runner service scales on a custom metric — busy + waiting sequences per ready runner —
 * that a one-minute Cron Lambda (infra/autoscaling/publisher.ts) derives from the edge's `GET /admin/scheduler`.
 * Service desired count → tasks needing a GPU → capacity provider grows the ASG; scale-in runs the other way.
 *
 * Uses the SST globals (`sst`, `aws`, `$interpolate`, `$jsonStringify`, `$app`) so it only loads inside `sst`.
 */
import { METRIC_NAMESPACE, MetricName } from "./autoscaling/metrics";
import { type GpuFleetSettings, runnerStartCommand } from "./fleet-settings";

export interface GpuFleetArgs {
  /** The edge Worker's public URL: runners register and heartbeat there; the autoscaler reads its stats. */
  edgeUrl: $util.Input<string>;
  adminKey: sst.Secret;
  runnerSecret: sst.Secret;
  /** R2 bucket the runners read blobs from through R2's S3 API. */
  blobBucket: $util.Input<string>;
  /** `https://<account id>.r2.cloudflarestorage.com` */
  s3Endpoint: $util.Input<string>;
  s3AccessKeyId: sst.Secret;
  s3SecretAccessKey: sst.Secret;
  settings: GpuFleetSettings;
}

const GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id";

export function gpuRunnerFleet(args: GpuFleetArgs) {
  const s = args.settings;
  const { runnerPort } = s;
  const prefix = `${$app.name}-${$app.stage}`;
  const fleetName = `${prefix}-gpu`;

  // Public subnets without NAT: the edge must reach every runner from the internet, and NAT gateways cost per hour.
  const vpc = new sst.aws.Vpc("GpuFleetVpc", { az: 2 });

  const securityGroup = new aws.ec2.SecurityGroup("GpuRunnerSg", {
    vpcId: vpc.id,
    description: "corral gpu-runner: edge -> runner port only",
    ingress: [{ protocol: "tcp", fromPort: runnerPort, toPort: runnerPort, cidrBlocks: s.ingressCidrs }],
    egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }],
  });

  const repository = new aws.ecr.Repository("RunnerImage", {
    name: `${prefix}-runner`,
    imageTagMutability: "MUTABLE",
    imageScanningConfiguration: { scanOnPush: true },
    forceDelete: $app.stage !== "prod",
  });

  const cluster = new aws.ecs.Cluster("GpuCluster", {
    name: fleetName,
    settings: [{ name: "containerInsights", value: "enabled" }],
  });

  // --- GPU instances -------------------------------------------------------------------------------------------
  const instanceRole = new aws.iam.Role("GpuInstanceRole", {
    assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: "ec2.amazonaws.com" }),
    managedPolicyArns: [
      "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
      // Session Manager instead of SSH: no key pairs, no port 22.
      "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ],
  });
  const instanceProfile = new aws.iam.InstanceProfile("GpuInstanceProfile", { role: instanceRole.name });

  const ami = aws.ssm.getParameterOutput({ name: GPU_AMI_PARAMETER });
  const userData = $interpolate`#!/bin/bash
cat >> /etc/ecs/ecs.config <<EOF
ECS_CLUSTER=${cluster.name}
ECS_ENABLE_GPU_SUPPORT=true
ECS_CONTAINER_STOP_TIMEOUT=120s
ECS_ENABLE_SPOT_INSTANCE_DRAINING=true
EOF
`.apply((script) => Buffer.from(script).toString("base64"));

  const launchTemplate = new aws.ec2.LaunchTemplate("GpuLaunchTemplate", {
    namePrefix: `${fleetName}-`,
    imageId: ami.value,
    instanceType: s.instanceTypes[0],
    iamInstanceProfile: { arn: instanceProfile.arn },
    userData,
    networkInterfaces: [{ associatePublicIpAddress: "true", securityGroups: [securityGroup.id] }],
    blockDeviceMappings: [
      {
        deviceName: "/dev/xvda",
        ebs: { volumeSize: s.rootVolumeGiB, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" },
      },
    ],
    // IMDSv2 only; hop limit 2 so containers can ask it too (the runner's start command reads its public IP).
    metadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 2, httpEndpoint: "enabled" },
    tagSpecifications: [{ resourceType: "instance", tags: { Name: `${fleetName}-runner` } }],
  });

  const autoScalingGroup = new aws.autoscaling.Group(
    "GpuAsg",
    {
      namePrefix: `${fleetName}-`,
      minSize: s.minRunners,
      maxSize: s.maxRunners,
      vpcZoneIdentifiers: vpc.publicSubnets,
      // Required by the capacity provider's managed termination protection: ECS decides which instances may go.
      protectFromScaleIn: true,
      mixedInstancesPolicy: {
        instancesDistribution: {
          onDemandBaseCapacity: 0,
          onDemandPercentageAboveBaseCapacity: s.spot ? 0 : 100,
          spotAllocationStrategy: "price-capacity-optimized",
        },
        launchTemplate: {
          launchTemplateSpecification: { launchTemplateId: launchTemplate.id, version: "$Latest" },
          overrides: s.instanceTypes.map((instanceType) => ({ instanceType })),
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
    capacityProviders: [capacityProvider.name],
    defaultCapacityProviderStrategies: [{ capacityProvider: capacityProvider.name, weight: 1, base: 0 }],
  });

  // --- Runner task ---------------------------------------------------------------------------------------------
  // Secrets reach the container through SSM SecureStrings read by the execution role, never the task definition.
  const secretParameter = (name: string, secret: sst.Secret) =>
    new aws.ssm.Parameter(`GpuFleet${name}`, {
      name: `/${$app.name}/${$app.stage}/gpu-runner/${name}`,
      type: "SecureString",
      value: secret.value,
    });
  const secrets = {
    RUNNER_SECRET: secretParameter("RunnerSecret", args.runnerSecret),
    S3_ACCESS_KEY_ID: secretParameter("S3AccessKeyId", args.s3AccessKeyId),
    S3_SECRET_ACCESS_KEY: secretParameter("S3SecretAccessKey", args.s3SecretAccessKey),
  };

  const executionRole = new aws.iam.Role("GpuTaskExecutionRole", {
    assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: "ecs-tasks.amazonaws.com" }),
    managedPolicyArns: ["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"],
    inlinePolicies: [
      {
        name: "read-runner-secrets",
        policy: $jsonStringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Action: ["ssm:GetParameters"], Resource: Object.values(secrets).map((p) => p.arn) },
          ],
        }),
      },
    ],
  });

  const logGroup = new aws.cloudwatch.LogGroup("GpuRunnerLogs", {
    name: `/corral/${$app.stage}/gpu-runner`,
    retentionInDays: s.logRetentionDays,
  });

  const region = aws.getRegionOutput().name;
  const taskDefinition = new aws.ecs.TaskDefinition("GpuRunnerTask", {
    family: `${fleetName}-runner`,
    requiresCompatibilities: ["EC2"],
    // Host networking: the runner listens on the instance's own port, reachable at its public IP (RUNNER_URL).
    networkMode: "host",
    executionRoleArn: executionRole.arn,
    volumes: [
      // A Docker volume (not a bind mount) keeps the image's node-owned cache directory writable by USER node.
      { name: "blob-cache", dockerVolumeConfiguration: { scope: "shared", autoprovision: true, driver: "local" } },
    ],
    containerDefinitions: $jsonStringify([
      {
        name: "gpu-runner",
        image: $interpolate`${repository.repositoryUrl}:${s.imageTag}`,
        essential: true,
        command: runnerStartCommand(runnerPort),
        // Leaves the instance some memory; the runner's models live in VRAM (MEMORY_BUDGET_BYTES defaults to 90%).
        memoryReservation: 8192,
        resourceRequirements: [{ type: "GPU", value: "1" }],
        portMappings: [{ containerPort: runnerPort, hostPort: runnerPort, protocol: "tcp" }],
        mountPoints: [{ sourceVolume: "blob-cache", containerPath: "/var/cache/corral" }],
        stopTimeout: 120,
        environment: [
          { name: "HOST", value: "0.0.0.0" },
          { name: "PORT", value: String(runnerPort) },
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
        secrets: Object.entries(secrets).map(([name, parameter]) => ({ name, valueFrom: parameter.arn })),
        logConfiguration: {
          logDriver: "awslogs",
          options: { "awslogs-group": logGroup.name, "awslogs-region": region, "awslogs-stream-prefix": "runner" },
        },
      },
    ]),
  });

  const service = new aws.ecs.Service(
    "GpuRunnerService",
    {
      name: "gpu-runner",
      cluster: cluster.arn,
      taskDefinition: taskDefinition.arn,
      desiredCount: s.minRunners,
      capacityProviderStrategies: [{ capacityProvider: capacityProvider.name, weight: 1, base: 0 }],
      // One task per GPU: a rolling deploy replaces runners in place instead of buying a second fleet for minutes.
      deploymentMinimumHealthyPercent: 50,
      deploymentMaximumPercent: 100,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      orderedPlacementStrategies: [{ type: "binpack", field: "memory" }],
    },
    // Application Auto Scaling owns the desired count after the first deploy.
    { ignoreChanges: ["desiredCount"], dependsOn: [capacityProvider] },
  );

  // --- Scaling -------------------------------------------------------------------------------------------------
  const publisher = new sst.aws.Cron("GpuFleetMetrics", {
    schedule: "rate(1 minute)",
    function: {
      handler: "infra/autoscaling/publisher.handler",
      runtime: "nodejs20.x",
      timeout: "20 seconds",
      memory: "128 MB",
      environment: { EDGE_URL: args.edgeUrl, ADMIN_KEY: args.adminKey.value, FLEET_NAME: fleetName },
    },
  });

  const scalableTarget = new aws.appautoscaling.Target("GpuRunnerScaling", {
    serviceNamespace: "ecs",
    scalableDimension: "ecs:service:DesiredCount",
    resourceId: $interpolate`service/${cluster.name}/${service.name}`,
    minCapacity: s.minRunners,
    maxCapacity: s.maxRunners,
  });
  const metricDimensions = [{ name: "Fleet", value: fleetName }];

  // Keeps (busy + waiting sequences) / ready runners near the target: out fast, in slowly (models reload on cold runners).
  new aws.appautoscaling.Policy("GpuRunnerDemandTracking", {
    policyType: "TargetTrackingScaling",
    serviceNamespace: scalableTarget.serviceNamespace,
    scalableDimension: scalableTarget.scalableDimension,
    resourceId: scalableTarget.resourceId,
    targetTrackingScalingPolicyConfiguration: {
      targetValue: s.targetDemandPerRunner,
      scaleOutCooldown: 120,
      scaleInCooldown: 600,
      customizedMetricSpecification: {
        namespace: METRIC_NAMESPACE,
        metricName: MetricName.demandPerRunner,
        statistic: "Average",
        dimensions: metricDimensions,
      },
    },
  });

  // Target tracking multiplies the current count, so it cannot leave zero: a step policy adds the first runner
  // whenever requests wait. Only created when the fleet may scale to zero.
  if (s.minRunners === 0) {
    const wake = new aws.appautoscaling.Policy("GpuRunnerWakeFromZero", {
      policyType: "StepScaling",
      serviceNamespace: scalableTarget.serviceNamespace,
      scalableDimension: scalableTarget.scalableDimension,
      resourceId: scalableTarget.resourceId,
      stepScalingPolicyConfiguration: {
        adjustmentType: "ExactCapacity",
        metricAggregationType: "Maximum",
        cooldown: 300,
        stepAdjustments: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }],
      },
    });
    // Fires only while the service's desired count is 0 (Container Insights' DesiredTaskCount), so ExactCapacity 1
    // can never shrink a fleet that is already starting or running runners.
    new aws.cloudwatch.MetricAlarm("GpuRunnerWakeAlarm", {
      alarmDescription: "corral: requests wait and the GPU runner service is scaled to zero",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      evaluationPeriods: 1,
      treatMissingData: "notBreaching",
      alarmActions: [wake.arn],
      metricQueries: [
        {
          id: "waiting",
          metric: {
            namespace: METRIC_NAMESPACE,
            metricName: MetricName.queueDepth,
            dimensions: { Fleet: fleetName },
            stat: "Maximum",
            period: 60,
          },
        },
        {
          id: "desired",
          metric: {
            namespace: "ECS/ContainerInsights",
            metricName: "DesiredTaskCount",
            dimensions: { ClusterName: cluster.name, ServiceName: service.name },
            stat: "Maximum",
            period: 60,
          },
        },
        { id: "wake", expression: "IF(waiting >= 1 AND FILL(desired, 0) == 0, 1, 0)", returnData: true },
      ],
    });
  }

  return {
    cluster: cluster.name,
    service: service.name,
    repositoryUrl: repository.repositoryUrl,
    autoScalingGroup: autoScalingGroup.name,
    logGroup: logGroup.name,
    metricsFunction: publisher.nodes.function.name,
  };
}

/**
 * Task scaling: Application Auto Scaling keeps (busy + waiting sequences) / ready runners near the target, from the
 * metric the one-minute publisher derives from the edge (infra/autoscaling/). Instances follow the tasks through the
 * capacity provider. Out fast, in slowly: a new runner must fetch and load its models.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { METRIC_NAMESPACE, MetricName } from "../autoscaling/metrics";
import type { GpuFleetSettings } from "../fleet-settings";

export const SCALE_OUT_COOLDOWN_S = 120;
export const SCALE_IN_COOLDOWN_S = 600;

export interface ScalingArgs {
  fleetName: string;
  settings: GpuFleetSettings;
  cluster: aws.ecs.Cluster;
  service: aws.ecs.Service;
}

export function runnerScaling(args: ScalingArgs): aws.appautoscaling.Target {
  const { settings: s, fleetName } = args;
  const target = new aws.appautoscaling.Target("GpuRunnerScaling", {
    serviceNamespace: "ecs",
    scalableDimension: "ecs:service:DesiredCount",
    resourceId: pulumi.interpolate`service/${args.cluster.name}/${args.service.name}`,
    minCapacity: s.minRunners,
    maxCapacity: s.maxRunners,
  });

  new aws.appautoscaling.Policy("GpuRunnerDemandTracking", {
    policyType: "TargetTrackingScaling",
    serviceNamespace: target.serviceNamespace,
    scalableDimension: target.scalableDimension,
    resourceId: target.resourceId,
    targetTrackingScalingPolicyConfiguration: {
      targetValue: s.targetDemandPerRunner,
      scaleOutCooldown: SCALE_OUT_COOLDOWN_S,
      scaleInCooldown: SCALE_IN_COOLDOWN_S,
      customizedMetricSpecification: {
        namespace: METRIC_NAMESPACE,
        metricName: MetricName.demandPerRunner,
        statistic: "Average",
        dimensions: [{ name: "Fleet", value: fleetName }],
      },
    },
  });
  if (s.minRunners === 0) wakeFromZero(args, target);
  return target;
}

/**
 * Target tracking multiplies the current count, so it cannot leave zero: a step policy sets the count to 1 whenever
 * requests wait while the service's desired count is 0 (Container Insights' DesiredTaskCount), so it can never shrink
 * a fleet that is already starting or running runners.
 */
function wakeFromZero({ fleetName, cluster, service }: ScalingArgs, target: aws.appautoscaling.Target): void {
  const wake = new aws.appautoscaling.Policy("GpuRunnerWakeFromZero", {
    policyType: "StepScaling",
    serviceNamespace: target.serviceNamespace,
    scalableDimension: target.scalableDimension,
    resourceId: target.resourceId,
    stepScalingPolicyConfiguration: {
      adjustmentType: "ExactCapacity",
      metricAggregationType: "Maximum",
      cooldown: 300,
      stepAdjustments: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }],
    },
  });
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

/**
 * Secrets reach containers one way only: an SSM SecureString parameter (its value an `sst.Secret` or the tunnel's
 * token), read by the task's execution role when the container starts. Never a plain environment variable in the
 * task definition, where anyone with `ecs:DescribeTaskDefinition` could read it.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { FleetNames } from "./names";

export type SecretParameters = Record<string, aws.ssm.Parameter>;

/** One SecureString per secret, under `/<app>/<stage>/<component>/<Name>`. */
export function secureParameters(
  names: FleetNames,
  component: string,
  values: Record<string, { name: string; value: pulumi.Input<string> }>,
): SecretParameters {
  return Object.fromEntries(
    Object.entries(values).map(([variable, { name, value }]) => [
      variable,
      new aws.ssm.Parameter(`GpuFleet${name}`, {
        name: `/${names.app}/${names.stage}/${component}/${name}`,
        type: "SecureString",
        value: pulumi.secret(value),
      }),
    ]),
  );
}

/** The ECS task execution role: pull the image, write logs, and read exactly these parameters. */
export function taskExecutionRole(name: string, parameters: SecretParameters): aws.iam.Role {
  return new aws.iam.Role(name, {
    assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: "ecs-tasks.amazonaws.com" }),
    managedPolicyArns: ["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"],
    inlinePolicies: [
      {
        name: "read-secrets",
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Action: ["ssm:GetParameters"], Resource: Object.values(parameters).map((p) => p.arn) },
          ],
        }),
      },
    ],
  });
}

/** The container definition's `secrets`: every one a reference to its SSM parameter. */
export const containerSecrets = (parameters: SecretParameters) =>
  Object.entries(parameters).map(([name, parameter]) => ({ name, valueFrom: parameter.arn }));

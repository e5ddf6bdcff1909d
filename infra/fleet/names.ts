/** The deployment's app and stage, from SST's `$app` (passed in, so the fleet modules need no SST globals). */
export interface FleetNames {
  app: string;
  stage: string;
}

/** `<app>-<stage>`: the prefix of every named resource of the fleet. */
export const prefixOf = (names: FleetNames) => `${names.app}-${names.stage}`;

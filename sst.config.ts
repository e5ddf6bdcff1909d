/// <reference path="./.sst/platform/config.d.ts" />

/**
 * Production deploy of corral with SST: the edge Worker on Cloudflare with its D1 database, R2 bucket and Durable
 * Objects — the same resources wrangler.toml declares for the local stack. The GPU runner fleet on AWS is added by
 * infra/ (see infra/README.md). `sst deploy --stage prod`.
 */
export default $config({
  app(input) {
    return {
      name: "corral",
      home: "cloudflare",
      removal: input?.stage === "prod" ? "retain" : "remove",
      providers: { cloudflare: "6.15.0", aws: "6.66.2" },
    };
  },
  async run() {
    const db = new sst.cloudflare.D1("Db");
    const blobs = new sst.cloudflare.Bucket("Blobs");
    const adminKey = new sst.Secret("AdminKey");
    const runnerSecret = new sst.Secret("RunnerSecret");
    const credentialsKey = new sst.Secret("CredentialsKey");
    const accountId = process.env.CLOUDFLARE_DEFAULT_ACCOUNT_ID ?? "";

    // The GPU runner fleet on AWS (infra/README.md) only when asked, so the Cloudflare-only deploy needs no AWS account.
    const { fleetEnabled, fleetSettingsFromEnv } = await import("./infra/fleet-settings");
    const withFleet = fleetEnabled(process.env);
    const settings = withFleet ? fleetSettingsFromEnv(process.env) : undefined;
    // The tunnel to the runners' private network comes first: the Worker's RUNNER_NETWORK binding names it.
    const tunnels = withFleet ? await import("./infra/fleet/tunnel") : undefined;
    const names = { app: $app.name, stage: $app.stage };
    const tunnel = tunnels?.runnerTunnel(names, accountId);

    const edge = new sst.cloudflare.Worker("Edge", {
      handler: "edge/src/index.ts",
      url: true,
      transform: {
        worker: (args) => {
          args.compatibilityDate = "2026-04-26";
          args.compatibilityFlags = ["nodejs_compat", "enable_request_signal"];
          // Binding names match wrangler.toml, so the Worker code is the same in both deploys.
          args.bindings = [
            { type: "d1", name: "DB", id: db.databaseId },
            { type: "r2_bucket", name: "BLOBS", bucketName: blobs.name },
            { type: "durable_object_namespace", name: "SCHEDULER", className: "Scheduler" },
            { type: "durable_object_namespace", name: "LIMITER", className: "TenantLimiter" },
            { type: "durable_object_namespace", name: "BLOB_FETCHER", className: "BlobFetcher" },
            { type: "plain_text", name: "CORRAL_VERSION", text: "0.1.0" },
            { type: "plain_text", name: "ALLOW_PRIVATE_REGISTRIES", text: "false" },
            { type: "secret_text", name: "ADMIN_KEY", text: adminKey.value },
            { type: "secret_text", name: "RUNNER_SECRET", text: runnerSecret.value },
            { type: "secret_text", name: "CREDENTIALS_KEY", text: credentialsKey.value },
            ...(tunnels && tunnel ? [tunnels.runnerNetworkBinding(tunnel)] : []),
          ];
          // Same Durable Object migrations as wrangler.toml's v1 and v2, applied in one step on a fresh deploy.
          args.migrations = {
            newTag: "v2",
            steps: [{ newSqliteClasses: ["Scheduler", "TenantLimiter"] }, { newSqliteClasses: ["BlobFetcher"] }],
          };
        },
      },
    });

    // Blob garbage collection (the Worker's `scheduled` handler), as wrangler.toml's [triggers].
    new cloudflare.WorkersCronTrigger("BlobGc", {
      accountId,
      scriptName: edge.nodes.worker.scriptName,
      schedules: [{ cron: "*/15 * * * *" }],
    });

    const outputs = { edgeUrl: edge.url, database: db.databaseId, bucket: blobs.name };
    if (!tunnel || !settings) return outputs;
    const { gpuRunnerFleet } = await import("./infra/gpu-fleet");
    const edgeUrl = edge.url.apply((url) => url ?? "");
    const fleet = gpuRunnerFleet({
      names,
      accountId,
      tunnel,
      edgeUrl,
      runnerSecret: runnerSecret.value,
      blobBucket: blobs.name,
      s3Endpoint: `https://${accountId}.r2.cloudflarestorage.com`,
      s3AccessKeyId: new sst.Secret("R2AccessKeyId").value,
      s3SecretAccessKey: new sst.Secret("R2SecretAccessKey").value,
      settings,
    });
    // The scaling metric, every minute, from the edge's scheduler stats (infra/autoscaling/publisher.ts).
    const publisher = new sst.aws.Cron("GpuFleetMetrics", {
      schedule: "rate(1 minute)",
      function: {
        handler: "infra/autoscaling/publisher.handler",
        runtime: "nodejs20.x",
        timeout: "20 seconds",
        memory: "128 MB",
        environment: { EDGE_URL: edgeUrl, ADMIN_KEY: adminKey.value, FLEET_NAME: fleet.fleetName },
      },
    });
    return { ...outputs, ...fleet, tunnel: tunnel.id, metricsFunction: publisher.nodes.function.name };
  },
});

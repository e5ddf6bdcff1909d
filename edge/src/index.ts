import { createApp } from "./app";
import type { Env } from "./env";
import { sweepBlobs } from "./store/gc";

export { BlobFetcher } from "./registry-client/blob-fetcher";
export { TenantLimiter } from "./scheduler/limiter";
export { Scheduler } from "./scheduler/scheduler";

const app = createApp();

export default {
  fetch: app.fetch,
  // Blob GC runs on delete too; the cron catches expired uploads and blobs released by failed writes.
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(sweepBlobs(env));
  },
} satisfies ExportedHandler<Env>;

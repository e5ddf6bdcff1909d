import { createApp } from "./app";

export { Scheduler } from "./scheduler/scheduler";
export { TenantLimiter } from "./scheduler/limiter";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<import("./env").Env>;

/**
 * Scheduled Lambda (sst.aws.Cron, every minute): reads the edge's scheduler stats with the admin key and prints them
 * as one CloudWatch EMF line, which becomes the custom metrics the GPU fleet's scaling policies track.
 *
 * Env: EDGE_URL, ADMIN_KEY, FLEET_NAME (the `Fleet` dimension value).
 */
import { computeFleetMetrics, parseSchedulerTotals, toEmfDocument } from "./metrics";

const REQUEST_TIMEOUT_MS = 10_000;

function requiredEnv(name: string): string {
  const value = process.env[name]?.trim();
  if (!value) throw new Error(`${name} is required`);
  return value;
}

export async function handler(): Promise<void> {
  const edgeUrl = requiredEnv("EDGE_URL").replace(/\/+$/, "");
  const response = await fetch(`${edgeUrl}/admin/scheduler`, {
    headers: { authorization: `Bearer ${requiredEnv("ADMIN_KEY")}` },
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  // Throwing (rather than publishing zeros) leaves a gap in the metric: the scaling alarms treat missing data as
  // "no change" instead of scaling a busy fleet in because the edge was briefly unreachable.
  if (!response.ok) throw new Error(`GET /admin/scheduler answered ${response.status}`);
  const metrics = computeFleetMetrics(parseSchedulerTotals(await response.json()));
  console.log(JSON.stringify(toEmfDocument(metrics, requiredEnv("FLEET_NAME"), Date.now())));
}

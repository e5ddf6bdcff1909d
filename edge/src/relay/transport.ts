/**
 * The one way the edge reaches a runner. In production the runners sit in private subnets with no inbound port from
 * the internet; the Worker reaches them through its Workers VPC network binding (`RUNNER_NETWORK`), which carries the
 * request through a Cloudflare Tunnel whose `cloudflared` connector runs in the runners' VPC (infra/README.md). In
 * the local stack nothing is bound and the runner's registered URL is fetched directly. Either way the runner
 * secret goes along as a second factor: reaching the private network is not by itself permission to use a runner.
 */
import type { Env } from "../env";

/** The slice of a VPC network binding (or of a service binding standing in for it) the edge uses. */
export interface RunnerNetwork {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}

/**
 * `path` is the runner API path (`/v1/generate`); `runnerUrl` is the address the runner registered (its private
 * address in production). The caller's signal travels with the request, so aborting it closes the runner's
 * connection whichever transport carried it.
 */
export function fetchRunner(env: Env, runnerUrl: string, path: string, init: RequestInit): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${env.RUNNER_SECRET ?? ""}`);
  const url = `${runnerUrl.replace(/\/+$/, "")}${path}`;
  const request = { ...init, headers };
  return env.RUNNER_NETWORK ? env.RUNNER_NETWORK.fetch(url, request) : fetch(url, request);
}

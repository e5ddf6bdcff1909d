/**
 * gpu-runner entry point: reads the environment (config.ts), starts the runner (runner-app.ts) and prints one
 * line when it listens. SIGTERM/SIGINT drain: stop accepting, let streams finish, dispose every model, exit.
 * Started by the local stack's launcher (CORRAL_PARENT_PID set), it drains the same way once the launcher is gone.
 */
import { errorText } from "@corral/protocol/errors";
import { loadConfig } from "./config";
import { watchParent } from "./parent-watch";
import { startRunner } from "./runner-app";

async function main(): Promise<void> {
  const config = loadConfig();
  const log = (message: string) => console.error(`[runner ${config.runnerId}] ${message}`);
  const runner = await startRunner(config, log);

  const gpu = runner.llama.gpu === false ? "cpu" : runner.llama.gpu;
  console.log(
    `gpu-runner ${config.runnerId} listening on http://${runner.address.address}:${runner.address.port} ` +
      `(${gpu}, threads ${config.threads}, parallel ${config.parallel}, edge ${config.edgeUrl ?? "none"})`,
  );

  const shutdown = async (signal: string) => {
    log(`${signal}: draining ${runner.server.activeRequests} request(s)`);
    await runner.stop();
    log("stopped");
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
  watchParent(process.env, () => void shutdown("launcher gone"));
}

main().catch((err) => {
  console.error(`gpu-runner failed to start: ${errorText(err)}`);
  process.exit(1);
});

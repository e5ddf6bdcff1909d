/**
 * `npm start`: the whole corral stack on one machine, offline — the edge Worker through wrangler (local D1, R2 and
 * Durable Objects persisted under the state dir), one CPU runner, a dev tenant and the built-in tiny models.
 *
 * Env: PORT (edge, default 11434), RUNNER_PORT (default PORT+1), CORRAL_DEV_KEY (the dev tenant's key),
 * CORRAL_STATE_DIR (default .corral), RUNNERS (number of CPU runners, default 1), THREADS (per runner),
 * CORRAL_DEVTOOLS=1 (run the edge under plain `wrangler dev` with its DevTools bridge; by default the same Worker runs
 * through wrangler's API with the inspector off — stack/edge-dev.ts — since the bridge costs ~3x the edge's CPU).
 * Writes <state dir>/runners.json: each runner's id, port and pid (the leader of its process group).
 * The edge and runners get this process's pid as CORRAL_PARENT_PID and stop by themselves when it is gone: killed
 * with SIGKILL, it cannot stop them.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { cachedLlamaRefBinary } from "./llama-ref";
import { builtInModels } from "./stack/built-in-models";
import { type DevState, loadDevState, saveDevState } from "./stack/dev-state";
import { type ManagedProcess, startProcess, stopProcess, waitForHttp } from "./stack/processes";
import { EdgeClient, ensureDevTenant, ensureModel } from "./stack/provision";
import { acquireStateLock } from "./stack/state-lock";

const root = resolve(import.meta.dirname, "..");
const port = Number(process.env.PORT ?? 11434);
const runnerBasePort = Number(process.env.RUNNER_PORT ?? port + 1);
const runnerCount = Math.max(1, Number(process.env.RUNNERS ?? 1));
const stateDir = resolve(root, process.env.CORRAL_STATE_DIR ?? ".corral");
const quiet = process.env.CORRAL_QUIET === "1";
const llamaServer = process.env.LLAMA_SERVER ?? cachedLlamaRefBinary("llama-server");
const threads = process.env.THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / runnerCount)));
const wranglerEnv = { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", NO_COLOR: "1" };
const parentEnv = { CORRAL_PARENT_PID: String(process.pid) };
const bin = (name: string) => join(root, "node_modules", ".bin", name);
// Pull/push vars (edge/PULL_PUSH.md) passed to the Worker when set: tests allow loopback registries with these.
const PASSTHROUGH_VARS = [
  "ALLOW_PRIVATE_REGISTRIES",
  "PULL_PART_SIZE",
  "PULL_CONCURRENCY",
  "REGISTRY_DNS_RESOLVER",
  "REGISTRY_TIMEOUT_MS",
];

const children: ManagedProcess[] = [];
let stopping = false;
let releaseStateLock = () => {};

async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  console.log("\nstopping corral…");
  await Promise.all(children.map((p) => stopProcess(p)));
  releaseStateLock();
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

async function main() {
  const started = Date.now();
  const logDir = join(stateDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const baseUrl = `http://127.0.0.1:${port}`;
  // Before anything touches the state dir's D1 files: a second stack on them would only fail later (SQLITE_BUSY).
  releaseStateLock = acquireStateLock(stateDir, { port, url: baseUrl });
  const state = loadDevState(stateDir);
  const persistTo = join(stateDir, "wrangler");

  await runOnce(
    bin("wrangler"),
    ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo],
    wranglerEnv,
  );

  launchEdge = () => startEdge(state, persistTo, logDir);
  const edge = launchEdge();
  children.push(edge);
  watchForCrash(edge);
  await waitForHttp(`${baseUrl}/`, 90_000);

  const runners: { id: string; port: number; pid: number }[] = [];
  for (let i = 0; i < runnerCount; i++) {
    const runnerPort = runnerBasePort + i;
    const runner = startProcess("runner" + (runnerCount > 1 ? `-${i}` : ""), bin("tsx"), ["gpu-runner/src/main.ts"], {
      cwd: root,
      env: {
        PORT: String(runnerPort),
        HOST: "127.0.0.1",
        RUNNER_ID: `local-${i}`,
        RUNNER_URL: `http://127.0.0.1:${runnerPort}`,
        EDGE_URL: baseUrl,
        RUNNER_SECRET: state.runner_secret,
        CACHE_DIR: join(stateDir, `runner-${i}-cache`),
        THREADS: threads,
        GPU: process.env.GPU ?? "false",
        // Vision models need llama-server: the one built once per machine (the vision tests build it), if any.
        ...(llamaServer ? { LLAMA_SERVER: llamaServer } : {}),
        ...parentEnv,
      },
      logFile: join(logDir, `runner-${i}.log`),
      echo: !quiet,
    });
    children.push(runner);
    runners.push({ id: `local-${i}`, port: runnerPort, pid: runner.child.pid ?? 0 });
    watchForCrash(runner);
  }
  // Tests kill single runners (failover); the pid is its process group's, which includes tsx's node child.
  writeFileSync(join(stateDir, "runners.json"), `${JSON.stringify({ runners }, null, 2)}\n`);

  const client = new EdgeClient(baseUrl, state.admin_key);
  const key = await ensureDevTenant(client, { explicitKey: process.env.CORRAL_DEV_KEY, persistedKey: state.dev_key });
  if (!process.env.CORRAL_DEV_KEY) saveDevState(stateDir, { ...state, dev_key: key });
  for (const model of builtInModels()) await ensureModel(baseUrl, key, model.name, model.gguf);
  await Promise.all(
    Array.from({ length: runnerCount }, (_, i) =>
      waitForHttp(`http://127.0.0.1:${runnerBasePort + i}/`, 60_000, () => true),
    ),
  );

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`
corral is ready in ${seconds}s — Ollama API at ${baseUrl}
  API key (dev tenant): ${key}
  admin key:            ${state.admin_key}
  try:
    curl ${baseUrl}/api/generate -H "Authorization: Bearer ${key}" -d '{"model": "tiny", "prompt": "Why is the sky blue?"}'
  Ctrl-C stops everything; state persists under ${stateDir}.
`);
}

const devtools = process.env.CORRAL_DEVTOOLS === "1";

function startEdge(state: DevState, persistTo: string, logDir: string): ManagedProcess {
  return startProcess(
    "edge",
    devtools ? bin("wrangler") : bin("tsx"),
    [
      devtools ? "dev" : "scripts/stack/edge-dev.ts",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--persist-to",
      persistTo,
      "--inspector-port",
      String(port + 1000),
      "--show-interactive-dev-session=false",
      "--log-level",
      "warn",
      "--var",
      `ADMIN_KEY:${state.admin_key}`,
      "--var",
      `RUNNER_SECRET:${state.runner_secret}`,
      "--var",
      `CREDENTIALS_KEY:${process.env.CREDENTIALS_KEY ?? state.credentials_key}`,
      ...PASSTHROUGH_VARS.flatMap((n) => (process.env[n] ? ["--var", `${n}:${process.env[n]}`] : [])),
    ],
    { cwd: root, env: { ...wranglerEnv, ...parentEnv }, logFile: join(logDir, "edge.log"), echo: !quiet },
  );
}

/**
 * SIGUSR2 restarts the edge alone while the runners keep serving, as a redeploy does in production (the soak suite
 * does it mid-run): in-flight requests through the old edge fail, runners re-register on their next heartbeat.
 */
let launchEdge: (() => ManagedProcess) | undefined;
let restartingEdge = false;
async function restartEdge() {
  const old = children.find((c) => c.name === "edge");
  if (!old || !launchEdge || stopping || restartingEdge) return;
  restartingEdge = true;
  children.splice(children.indexOf(old), 1);
  await stopProcess(old);
  const edge = launchEdge();
  children.push(edge);
  watchForCrash(edge);
  try {
    await waitForHttp(`http://127.0.0.1:${port}/`, 90_000);
    console.log("edge restarted");
  } finally {
    restartingEdge = false;
  }
}
process.on("SIGUSR2", () => void restartEdge().catch((err) => console.error(`edge restart failed: ${err}`)));

/** The edge or the last runner going away stops the stack; a fleet outlives one lost runner, as in production. */
function watchForCrash(p: ManagedProcess) {
  void p.exited.then((code) => {
    // A process no longer among the children was stopped on purpose (the edge, restarted).
    if (stopping || !children.includes(p)) return;
    console.error(`${p.name} exited unexpectedly (code ${code}); see ${join(stateDir, "logs")}`);
    const runnersLeft = children.filter(
      (c) => c.name.startsWith("runner") && c.child.exitCode === null && c.child.signalCode === null,
    );
    if (p.name.startsWith("runner") && runnersLeft.length > 0) return;
    void shutdown(1);
  });
}

async function runOnce(command: string, args: string[], env: NodeJS.ProcessEnv) {
  const p = startProcess("setup", command, args, {
    cwd: root,
    env,
    logFile: join(stateDir, "logs", "setup.log"),
    echo: false,
  });
  const code = await p.exited;
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} failed (code ${code}); see ${stateDir}/logs/setup.log`);
}

main().catch(async (err) => {
  console.error(`corral failed to start: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
});

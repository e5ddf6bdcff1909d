/**
 * A runner killed with SIGKILL runs no exit handler, so nothing in Node can stop its llama-server: the server is
 * started under `setpriv --pdeathsig SIGKILL` and the kernel ends it. Here a real runner process (main.ts, as the
 * local stack starts it, with the edge's blob route served by the test) loads the tiny vision model for an image
 * request; then the runner alone (not its process group) is killed and its llama-server must be gone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BlobServer, blobOf, resolvedModel, startBlobServer, TEST_SECRET } from "../gpu-runner/src/test-support";
import { writeTinyProjector } from "../gpu-runner/src/tiny-model/clip-projector";
import { writeTinyModel } from "../gpu-runner/src/tiny-model/index";
import { noisePng } from "../gpu-runner/src/tiny-model/png";
import { llamaRefBinary } from "../scripts/llama-ref";
import { repoRoot } from "./harness";
import { eventually } from "./inference-support";

const model = blobOf(writeTinyModel());
const projector = blobOf(writeTinyProjector());

/** A process's parent pid and state from /proc (undefined once it is gone). */
function procStat(pid: number): { ppid: number; state: string } | undefined {
  try {
    // "pid (comm) state ppid …"; comm may hold spaces, so parse after its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(ppid), state: state ?? "" };
  } catch {
    return undefined;
  }
}

function llamaServerChildren(parent: number): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && procStat(Number(entry))?.ppid === parent)
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]?.endsWith("llama-server");
      } catch {
        return false;
      }
    });
}

/** Gone, or a zombie nobody has reaped yet (it holds no memory and no port). */
const ended = (pid: number) => {
  const stat = procStat(pid);
  return stat === undefined || stat.state === "Z";
};

let edge: BlobServer;
let dir: string;
let runner: ChildProcess | undefined;
let binary: string;

beforeAll(async () => {
  binary = llamaRefBinary("llama-server");
  edge = await startBlobServer([model, projector]);
  dir = await mkdtemp(join(tmpdir(), "corral-vision-kill-"));
}, 1_800_000);
afterAll(async () => {
  if (runner && runner.exitCode === null && runner.signalCode === null) runner.kill("SIGKILL");
  await edge?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.runIf(process.platform === "linux")("a runner killed with SIGKILL", () => {
  it("takes its llama-server along", async () => {
    runner = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "gpu-runner", "src", "main.ts")], {
      env: {
        ...process.env,
        RUNNER_SECRET: TEST_SECRET,
        EDGE_URL: edge.url,
        PORT: "0",
        RUNNER_ID: "kill-test",
        RUNNER_URL: "http://127.0.0.1:1",
        CACHE_DIR: dir,
        THREADS: "1",
        PARALLEL: "1",
        GPU: "false",
        NUM_CTX: "2048",
        LLAMA_SERVER: binary,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    runner.stdout!.on("data", (chunk) => (stdout += chunk));
    runner.stderr!.on("data", (chunk) => (stderr += chunk));
    const listening = /listening on http:\/\/127\.0\.0\.1:(\d+)/;
    expect(await eventually(async () => listening.test(stdout) || runner!.exitCode !== null, 120_000, 100)).toBe(true);
    const port = listening.exec(stdout)?.[1];
    expect(port, stderr).toBeDefined();

    const res = await fetch(`http://127.0.0.1:${port}/v1/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_SECRET}` },
      body: JSON.stringify({
        request_id: "kill",
        model: resolvedModel(model, "tiny-vision", {
          projector: { digest: projector.digest, size: projector.bytes.length },
        }),
        request: {
          model: "tiny-vision",
          prompt: "What is this?",
          images: [noisePng(1).toString("base64")],
          options: { num_predict: 4, temperature: 0 },
        },
      }),
    });
    const lines = (await res.text()).trim().split("\n");
    expect(JSON.parse(lines.at(-1)!), lines.join("\n")).toMatchObject({ done: true });

    const [server] = llamaServerChildren(runner.pid!);
    expect(server, "the runner's llama-server").toBeDefined();
    const killed = new Promise((resolve) => runner!.once("exit", resolve));
    runner.kill("SIGKILL");
    await killed;
    expect(await eventually(async () => ended(server!), 30_000, 50)).toBe(true);
  }, 300_000);
});

/**
 * A supervised `llama-server` (llama.cpp's HTTP server, built from the source bundled in node-llama-cpp) serving
 * one vision model: the GGUF weights with their `--mmproj` projector, on a private loopback port the OS picks.
 * node-llama-cpp 3.22 has no multimodal API, so images go through llama.cpp's mtmd inside this process; the
 * runner keeps the contract with the edge (chunks, stats, cancel, keep_alive) and talks to it over HTTP.
 * The process dies with its instance (dispose), with the runner on any exit Node gets to run handlers for, and on
 * Linux with the runner however it dies (SIGKILL, OOM killer): it starts under util-linux's `setpriv --pdeathsig`,
 * so the kernel sends it SIGKILL when its parent, the runner, is gone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { ApiError } from "@corral/protocol/errors";
import type { FlashAttentionSetting } from "../config";

/** The media marker llama-server replaces with an image's embeddings; pinned so prompts can carry it. */
export const MEDIA_MARKER = "<__corral_image__>";

export interface LlamaServerOptions {
  binary: string;
  modelPath: string;
  projectorPath: string;
  /** Context cells per sequence (num_ctx); the server gets `contextSize × parallel`, as node-llama-cpp does. */
  contextSize: number;
  parallel: number;
  threads: number;
  /** The runner's FLASH_ATTENTION, so image requests run as its text requests do (default auto). */
  flashAttention?: FlashAttentionSetting;
  /** How long loading may take before the start counts as failed. */
  startTimeoutMs?: number;
}

/** What the server needs from the runner's environment (not its secrets, nor LLAMA_ARG_* overrides). */
const PASSED_ENV = ["PATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "HOME", "TMPDIR"];
const serverEnv = () =>
  Object.fromEntries(PASSED_ENV.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** A runner that exits (normally, by an uncaught error, or by a signal Node handles) takes its servers along. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

export class LlamaServerProcess {
  private disposing?: Promise<void>;
  private hasExited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    /** Resolves when the process has exited, for whatever reason. */
    readonly exited: Promise<void>,
  ) {}

  /** Spawns the server and waits until it listens and /health says the model is loaded. */
  static async start(options: LlamaServerOptions): Promise<LlamaServerProcess> {
    const timeoutMs = options.startTimeoutMs ?? 120_000;
    const { child, exited } = spawnServer(options);
    const log = collectLog(child);
    const url = await listeningUrl(exited, log, timeoutMs).catch(async (err) => {
      child.kill("SIGKILL");
      await exited;
      throw err;
    });
    const server = new LlamaServerProcess(child, url, exited);
    void exited.then(() => {
      server.hasExited = true;
    });
    try {
      await server.waitHealthy(timeoutMs, () => lastLines(log.text));
    } catch (err) {
      await server.dispose();
      throw err;
    }
    return server;
  }

  get alive(): boolean {
    return !this.hasExited && this.disposing === undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private async waitHealthy(timeoutMs: number, log: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
      if (this.hasExited) throw new Error(`llama-server exited while loading: ${log()}`);
      const ok = await fetch(`${this.url}/health`)
        .then((res) => res.ok)
        .catch(() => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error("llama-server did not load the model in time");
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /**
   * POSTs a streaming /completion and yields its events (one JSON object per SSE `data:` line). Aborting
   * `signal` closes the connection, which llama-server takes as cancellation of the task. The server's own 4xx
   * (an image it cannot decode, a prompt longer than the context) become ApiError 400 with its message.
   */
  async *completion(body: Record<string, unknown>, signal: AbortSignal): AsyncGenerator<Record<string, unknown>> {
    const res = await fetch(`${this.url}/completion`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
    if (!res.ok || !res.body) {
      const message = await res.text().then(errorMessage, () => res.statusText);
      throw new ApiError(res.status >= 400 && res.status < 500 ? 400 : 500, message);
    }
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const bytes of res.body) {
      buffered += decoder.decode(bytes as Uint8Array, { stream: true });
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf("\n");
        // Events already read when the caller aborted are not handed out.
        signal.throwIfAborted();
        if (!line.startsWith("data:")) continue;
        const event = JSON.parse(line.slice(5)) as Record<string, unknown>;
        if (event.error) throw new ApiError(400, errorMessage(JSON.stringify(event)));
        yield event;
      }
    }
  }

  /** SIGTERM, then SIGKILL when it has not exited within `graceMs`. Idempotent. */
  dispose(graceMs = 5000): Promise<void> {
    this.disposing ??= (async () => {
      if (this.hasExited) return;
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
      await this.exited;
      clearTimeout(timer);
    })();
    return this.disposing;
  }
}

const flashAttentionArg = (setting: FlashAttentionSetting) => (setting === "auto" ? "auto" : setting ? "on" : "off");

function spawnServer(options: LlamaServerOptions): { child: ChildProcess; exited: Promise<void> } {
  installExitHook();
  const args = [
    ...["-m", options.modelPath, "--mmproj", options.projectorPath],
    ...["-c", String(options.contextSize * options.parallel), "-np", String(options.parallel)],
    ...["-t", String(options.threads), "-tb", String(options.threads)],
    ...["-fa", flashAttentionArg(options.flashAttention ?? "auto")],
    ...["--host", "127.0.0.1", "--port", "0", "--no-webui", "--no-warmup", "--offline"],
  ];
  const [command, commandArgs] = diesWithRunner(options.binary, args);
  const child = spawn(command, commandArgs, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...serverEnv(), LLAMA_MEDIA_MARKER: MEDIA_MARKER },
  });
  live.add(child);
  const exited = new Promise<void>((resolve) => {
    const done = () => {
      live.delete(child);
      resolve();
    };
    child.once("exit", done);
    child.once("error", done);
  });
  return { child, exited };
}

/**
 * The command line that runs `binary` so it dies with this process: on Linux through `setpriv --pdeathsig
 * SIGKILL` (it sets the parent-death signal, then execs the server in its place, so the pid is the server's).
 * Other systems have no parent-death signal; there the exit hook is all there is.
 */
function diesWithRunner(binary: string, args: string[]): [string, string[]] {
  if (process.platform !== "linux") return [binary, args];
  return [setprivPath(), ["--pdeathsig", "SIGKILL", "--", binary, ...args]];
}

let setpriv: string | undefined;

function setprivPath(): string {
  setpriv ??= (process.env.PATH ?? "")
    .split(delimiter)
    .map((dir) => join(dir, "setpriv"))
    .find((candidate) => {
      try {
        accessSync(candidate, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  if (!setpriv) throw new Error("setpriv (util-linux) not found: it makes llama-server die with the runner");
  return setpriv;
}

interface LogTail {
  /** The last 8 KiB of the server's output. */
  text: string;
  /** Called on each new piece of output. */
  onChange?: () => void;
}

/** Reads (and so keeps draining) both pipes for the process's whole life, keeping the tail for error messages. */
function collectLog(child: ChildProcess): LogTail {
  const log: LogTail = { text: "" };
  const onData = (data: Buffer) => {
    log.text = (log.text + data.toString("utf8")).slice(-8192);
    log.onChange?.();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  return log;
}

/** The URL from llama-server's "listening on" line (it binds port 0, so the OS picked the port). */
function listeningUrl(exited: Promise<void>, log: LogTail, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("llama-server did not start in time")), timeoutMs);
    log.onChange = () => {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log.text);
      if (!match) return;
      clearTimeout(timer);
      log.onChange = undefined;
      resolve(match[1]!);
    };
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`llama-server exited while starting: ${lastLines(log.text)}`));
    });
  });
}

/** llama-server's error body is `{"error": {"message": …}}`; anything else is shown as it came. */
function errorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string };
    const inner = typeof parsed.error === "string" ? parsed.error : parsed.error?.message;
    if (typeof inner === "string" && inner) return inner;
  } catch {
    // not JSON
  }
  return text.slice(0, 500) || "llama-server failed";
}

/**
 * Why the server failed, for the client: llama.cpp's own line about it (an embedding size mismatch, an unknown
 * projector type), else its last error line; file paths (the runner's cache) are left out.
 */
function lastLines(log: string): string {
  const lines = log.trim().split("\n");
  const reason =
    lines.find((l) => /mismatch|unknown projector|unable to find tensor/i.test(l)) ??
    lines.findLast((l) => /error|failed/i.test(l)) ??
    lines.at(-1) ??
    "";
  return reason.replace(/\/[^\s'"]+/g, "<file>").trim();
}

/**
 * Lets a process started by the local stack's launcher (scripts/start.ts) notice that the launcher is gone: killed
 * with SIGKILL it cannot stop its children, which would otherwise live on holding their ports. The launcher passes
 * its pid in CORRAL_PARENT_PID; production runners have no such parent and no such variable, and are not watched.
 */
export const PARENT_PID_ENV = "CORRAL_PARENT_PID";

/** `kill(pid, 0)` checks without signalling: ESRCH means gone; EPERM means alive but not ours. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Calls `onGone` once when the process named by CORRAL_PARENT_PID has exited, checking every `intervalMs`; when
 * watching, write errors on stdout/stderr are ignored. Returns a function that stops watching, or undefined when the
 * variable is unset or not a pid.
 */
export function watchParent(
  env: NodeJS.ProcessEnv,
  onGone: () => void,
  intervalMs = 1000,
  alive: (pid: number) => boolean = processAlive,
): (() => void) | undefined {
  const pid = Number(env[PARENT_PID_ENV]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  // The launcher reads our stdout/stderr through pipes: once it is gone a log line would fail with EPIPE, and that
  // unhandled stream error would kill the process before it has shut down (workerd or models left behind).
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
  const timer = setInterval(() => {
    if (alive(pid)) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  // Watching must not keep an otherwise finished process alive.
  timer.unref();
  return () => clearInterval(timer);
}

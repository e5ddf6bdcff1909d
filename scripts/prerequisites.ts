/**
 * What `npm test` needs beyond node_modules: Debian's `docker-registry` (a real OCI registry for the pull/push tests
 * and the soak suite). Checked before the tests (`pretest` runs scripts/check-test-prerequisites.ts; the
 * cross-process tests' global setup checks again for runs of `npm run test:e2e` alone): it installs the
 * package as CI does where it can (root, or sudo without a password, and apt-get), and otherwise stops at once with
 * the one command that fixes it, instead of letting the pull/push tests die minutes later with `spawn … ENOENT`.
 *
 * DOCKER_REGISTRY_BIN names the binary where it is not on PATH (another distribution's `registry`).
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export const REGISTRY_PACKAGE = "docker-registry";
const APT_INSTALL = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", REGISTRY_PACKAGE];

/** The first executable `name` on `path` (a PATH value), or undefined. */
export function findOnPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/** The registry binary the tests start: DOCKER_REGISTRY_BIN when set, else `docker-registry` on PATH. */
export function registryBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DOCKER_REGISTRY_BIN) return env.DOCKER_REGISTRY_BIN;
  return findOnPath(REGISTRY_PACKAGE, env.PATH);
}

export type Plan =
  | { action: "ready"; binary: string }
  | { action: "install"; commands: string[][] }
  | { action: "stop"; fix: string };

/** What to do, from what this machine offers: a pure decision, so each case has a unit test. */
export function planRegistry(machine: {
  binary: string | undefined;
  isRoot: boolean;
  hasAptGet: boolean;
  passwordlessSudo: boolean;
}): Plan {
  if (machine.binary) return { action: "ready", binary: machine.binary };
  if (!machine.hasAptGet) {
    return {
      action: "stop",
      fix: "install the CNCF distribution registry (https://distribution.github.io/distribution/) and set DOCKER_REGISTRY_BIN=/path/to/registry",
    };
  }
  const sudo = machine.isRoot ? [] : ["sudo"];
  if (!machine.isRoot && !machine.passwordlessSudo) return { action: "stop", fix: `sudo ${APT_INSTALL.join(" ")}` };
  return {
    action: "install",
    commands: [
      [...sudo, "apt-get", "update", "-qq"],
      [...sudo, ...APT_INSTALL],
    ],
  };
}

function succeeds(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: "ignore" }).status === 0;
}

/** Makes the registry available or throws an error whose message is the one command that fixes it. */
export function ensureRegistry(env: NodeJS.ProcessEnv = process.env): string {
  const isRoot = process.getuid?.() === 0;
  const plan = planRegistry({
    binary: registryBinary(env),
    isRoot,
    hasAptGet: findOnPath("apt-get", env.PATH) !== undefined,
    passwordlessSudo: !isRoot && findOnPath("sudo", env.PATH) !== undefined && succeeds("sudo", ["-n", "true"]),
  });
  if (plan.action === "ready") return plan.binary;
  const missing = `npm test needs ${REGISTRY_PACKAGE} (a local OCI registry for the pull/push tests)`;
  if (plan.action === "stop") throw new Error(`${missing}; install it with:\n  ${plan.fix}`);
  console.log(`${missing}: installing it (${plan.commands.map((c) => c.join(" ")).join(" && ")})`);
  for (const [command, ...args] of plan.commands) {
    const run = spawnSync(command!, args, { stdio: "inherit", env: { ...env, DEBIAN_FRONTEND: "noninteractive" } });
    if (run.status !== 0)
      throw new Error(`${missing}; installing it failed, run:\n  ${plan.commands.at(-1)!.join(" ")}`);
  }
  const installed = registryBinary(env);
  if (!installed) throw new Error(`${missing}; it is still not on PATH after installing it`);
  return installed;
}

/**
 * What `npm test` needs beyond node_modules: Debian's `docker-registry` (a real OCI registry for the pull/push tests
 * and the soak suite) and `chromium` (a real browser for the console tests). Checked before the tests (`pretest`
 * runs scripts/check-test-prerequisites.ts; the cross-process tests' global setup checks again for runs of
 * `npm run test:e2e` alone): it installs the packages as CI does where it can (root, or sudo without a password, and
 * apt-get), and otherwise stops at once with the one command that fixes it, instead of letting the tests die minutes
 * later with `spawn … ENOENT`.
 *
 * DOCKER_REGISTRY_BIN and CHROMIUM_BIN name the binaries where they are not on PATH.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export const REGISTRY_PACKAGE = "docker-registry";
const APT_INSTALL = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"];

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

/** The browser the console tests drive: CHROMIUM_BIN when set, else Debian's `chromium` on PATH. */
export function chromiumBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CHROMIUM_BIN) return env.CHROMIUM_BIN;
  return findOnPath("chromium", env.PATH);
}

interface TestPackage {
  /** The Debian package. */
  name: string;
  /** What the tests use it for, in the message when it is missing. */
  purpose: string;
  locate(env: NodeJS.ProcessEnv): string | undefined;
  /** How to get it without apt-get. */
  elsewhere: string;
}

export const TEST_PACKAGES: readonly TestPackage[] = [
  {
    name: REGISTRY_PACKAGE,
    purpose: "a local OCI registry for the pull/push tests",
    locate: registryBinary,
    elsewhere:
      "install the CNCF distribution registry (https://distribution.github.io/distribution/) and set DOCKER_REGISTRY_BIN=/path/to/registry",
  },
  {
    name: "chromium",
    purpose: "a real browser for the console tests",
    locate: chromiumBinary,
    elsewhere: "install Chromium and set CHROMIUM_BIN=/path/to/chromium",
  },
];

export type Plan = { action: "ready" } | { action: "install"; commands: string[][] } | { action: "stop"; fix: string };

/** What to do about the `missing` packages, from what this machine offers: a pure decision, each case unit-tested. */
export function planInstall(machine: {
  missing: readonly TestPackage[];
  isRoot: boolean;
  hasAptGet: boolean;
  passwordlessSudo: boolean;
}): Plan {
  if (machine.missing.length === 0) return { action: "ready" };
  if (!machine.hasAptGet) return { action: "stop", fix: machine.missing.map((p) => p.elsewhere).join("\n  ") };
  const install = [...APT_INSTALL, ...machine.missing.map((p) => p.name)];
  const sudo = machine.isRoot ? [] : ["sudo"];
  if (!machine.isRoot && !machine.passwordlessSudo) return { action: "stop", fix: `sudo ${install.join(" ")}` };
  return {
    action: "install",
    commands: [
      [...sudo, "apt-get", "update", "-qq"],
      [...sudo, ...install],
    ],
  };
}

function succeeds(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: "ignore" }).status === 0;
}

/**
 * Makes every test package available (installing the missing ones in one apt-get run where it can) or throws an
 * error whose message is the one command that fixes it.
 */
export function ensureTestPackages(env: NodeJS.ProcessEnv = process.env): void {
  const missing = TEST_PACKAGES.filter((p) => !p.locate(env));
  const isRoot = process.getuid?.() === 0;
  const plan = planInstall({
    missing,
    isRoot,
    hasAptGet: findOnPath("apt-get", env.PATH) !== undefined,
    passwordlessSudo: !isRoot && findOnPath("sudo", env.PATH) !== undefined && succeeds("sudo", ["-n", "true"]),
  });
  if (plan.action === "ready") return;
  const needs = `npm test needs ${missing.map((p) => `${p.name} (${p.purpose})`).join(" and ")}`;
  if (plan.action === "stop") throw new Error(`${needs}; install it with:\n  ${plan.fix}`);
  console.log(`${needs}: installing it (${plan.commands.map((c) => c.join(" ")).join(" && ")})`);
  for (const [command, ...args] of plan.commands) {
    const run = spawnSync(command!, args, { stdio: "inherit", env: { ...env, DEBIAN_FRONTEND: "noninteractive" } });
    if (run.status !== 0) throw new Error(`${needs}; installing it failed, run:\n  ${plan.commands.at(-1)!.join(" ")}`);
  }
  const still = missing.filter((p) => !p.locate(env)).map((p) => p.name);
  if (still.length) throw new Error(`${needs}; ${still.join(", ")} still not on PATH after installing`);
}

/** The registry binary, installed first when it is missing (see ensureTestPackages). */
export function ensureRegistry(env: NodeJS.ProcessEnv = process.env): string {
  ensureTestPackages(env);
  return registryBinary(env) as string;
}

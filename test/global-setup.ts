import type { TestProject } from "vitest/node";
import { ensureTestPackages } from "../scripts/prerequisites";
import { type RunningStack, startStack } from "./harness";

declare module "vitest" {
  export interface ProvidedContext {
    stack: { url: string; key: string; adminKey: string };
  }
}

let stack: RunningStack | undefined;

/** One shared stack for the cross-process tests; tests needing a special fleet start their own. */
export async function setup(project: TestProject) {
  // `npm run test:e2e` alone skips npm test's pretest: check (or install) the packages here too, before minutes pass.
  ensureTestPackages();
  stack = await startStack();
  project.provide("stack", { url: stack.url, key: stack.key, adminKey: stack.adminKey });
}

export async function teardown() {
  await stack?.stop();
}

/**
 * How the runner starts a job's child process (quantize, convert): `node <args> <entry>`, where the entry is the
 * `child.ts` (under the tsx loader, in development and tests) or the built `child.js` beside the calling module.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** node arguments and entry file for the `child` module in the directory of `moduleUrl` (an import.meta.url). */
export function childEntry(moduleUrl: string): { args: string[]; entry: string } {
  const self = fileURLToPath(moduleUrl);
  if (!self.endsWith(".ts")) return { args: [], entry: join(dirname(self), "child.js") };
  let loader: string;
  try {
    loader = createRequire(moduleUrl).resolve("tsx");
  } catch (err) {
    throw new Error("the runner needs tsx to run a TypeScript child process", { cause: err });
  }
  return { args: ["--import", pathToFileURL(loader).href], entry: join(dirname(self), "child.ts") };
}

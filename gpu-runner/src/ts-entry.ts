import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * How to start `name` (a module beside `moduleUrl`) in a child process or worker thread: the .js file when this
 * code runs compiled, else the .ts file with tsx's loader, since a fresh process or thread does not inherit it.
 */
export function scriptEntry(moduleUrl: string, name: string): { execArgv: string[]; file: string } {
  const self = fileURLToPath(moduleUrl);
  if (!self.endsWith(".ts")) return { execArgv: [], file: join(dirname(self), `${name}.js`) };
  let loader: string;
  try {
    loader = createRequire(moduleUrl).resolve("tsx");
  } catch (err) {
    throw new Error(`${name} needs tsx to run as TypeScript`, { cause: err });
  }
  return { execArgv: ["--import", pathToFileURL(loader).href], file: join(dirname(self), `${name}.ts`) };
}

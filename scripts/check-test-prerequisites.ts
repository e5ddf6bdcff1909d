/** `npm test`'s pretest step: installs what the tests need where it can, else stops with the command that fixes it. */
import { ensureRegistry } from "./prerequisites";

try {
  ensureRegistry();
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}

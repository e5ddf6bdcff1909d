/** `npm test`'s pretest step: installs what the tests need where it can, else stops with the command that fixes it. */
import { ensureTestPackages } from "./prerequisites";

try {
  ensureTestPackages();
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}

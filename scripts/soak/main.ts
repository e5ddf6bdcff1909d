/**
 * `npm run soak`: SOAK_SECONDS (default 120), RUNNERS (default 2, at least 2: one is stopped and killed mid-run),
 * SOAK_TENANTS (default 3), SOAK_CLIENTS per tenant (default 2), SOAK_SEED (default 1). Prints one JSON report on
 * stdout (`npm run --silent soak > report.json`), progress on stderr; exits 1 when an invariant broke.
 */
import { runSoak } from "./soak";

const int = (name: string, fallback: number, min: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer ≥ ${min}`);
  return value;
};

const report = await runSoak({
  seconds: int("SOAK_SECONDS", 120, 10),
  runners: int("RUNNERS", 2, 2),
  tenants: int("SOAK_TENANTS", 3, 2),
  clientsPerTenant: int("SOAK_CLIENTS", 2, 1),
  seed: int("SOAK_SEED", 1, 0),
  log: (line) => console.error(line),
});
console.log(JSON.stringify(report, null, 2));
process.exit(report.ok ? 0 : 1);

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Secrets of the local stack, generated once and persisted so a second `npm start` reuses them. */
export interface DevState {
  admin_key: string;
  runner_secret: string;
  dev_key?: string;
}

const token = () => randomBytes(24).toString("base64url");

export function loadDevState(stateDir: string): DevState {
  mkdirSync(stateDir, { recursive: true });
  const file = join(stateDir, "dev.json");
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8")) as DevState;
  const state: DevState = { admin_key: `admin-${token()}`, runner_secret: `runner-${token()}` };
  saveDevState(stateDir, state);
  return state;
}

export function saveDevState(stateDir: string, state: DevState): void {
  writeFileSync(join(stateDir, "dev.json"), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

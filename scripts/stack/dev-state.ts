import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Secrets of the local stack, generated once and persisted so a second `npm start` reuses them. */
export interface DevState {
  admin_key: string;
  runner_secret: string;
  /** Encrypts tenants' stored registry credentials (push). Added to older state files on load. */
  credentials_key: string;
  dev_key?: string;
}

const token = () => randomBytes(24).toString("base64url");

export function loadDevState(stateDir: string): DevState {
  mkdirSync(stateDir, { recursive: true });
  const file = join(stateDir, "dev.json");
  const saved = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Partial<DevState>) : {};
  const state: DevState = {
    ...saved,
    admin_key: saved.admin_key ?? `admin-${token()}`,
    runner_secret: saved.runner_secret ?? `runner-${token()}`,
    credentials_key: saved.credentials_key ?? `credentials-${token()}`,
  };
  saveDevState(stateDir, state);
  return state;
}

export function saveDevState(stateDir: string, state: DevState): void {
  writeFileSync(join(stateDir, "dev.json"), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

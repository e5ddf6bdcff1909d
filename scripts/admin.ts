/**
 * Operator CLI for the admin API.
 *   npm run admin -- [--host URL] [--admin-key KEY] <command> [...]
 * Commands:
 *   tenants                          list tenants
 *   tenant:create <name>             create a tenant
 *   key:issue <tenant> [label]       issue an API key (printed once)
 *   keys <tenant>                    list keys (prefixes only)
 *   key:revoke <keyId>               revoke a key
 *   signing-key:add <tenant> <file.pub|key> [label]   register an ed25519 key of the Ollama CLI (OLLAMA_AUTH=1)
 *   signing-keys <tenant>            list signing keys
 *   signing-key:revoke <keyId>       revoke a signing key
 *   quotas <tenant> [storage_bytes=N] [requests_per_minute=N] [concurrent_requests=N]   (N or "none")
 *   limits <tenant> [num_ctx=N] [num_predict=N] [prompt_bytes=N] ...   request bounds (N or "default"; the
 *                                    names and defaults are REQUEST_LIMIT_DEFAULTS in edge/src/bounds.ts)
 *   usage <tenant> [since] [until]   usage by day and model
 * Defaults: --host $CORRAL_HOST or http://127.0.0.1:11434; --admin-key $CORRAL_ADMIN_KEY or the local stack's key.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

const args = process.argv.slice(2);
function flag(name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const [, value] = args.splice(i, 2);
  return value;
}

const host = flag("host") ?? process.env.CORRAL_HOST ?? "http://127.0.0.1:11434";
const adminKey = flag("admin-key") ?? process.env.CORRAL_ADMIN_KEY ?? localAdminKey();

function localAdminKey(): string | undefined {
  const file = resolve(import.meta.dirname, "..", process.env.CORRAL_STATE_DIR ?? ".corral", "dev.json");
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { admin_key: string }).admin_key : undefined;
}

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${host}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey ?? ""}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new Error(`${res.status}: ${data.error ?? "request failed"}`);
  return data;
}

const quotaValue = (v: string) => (v === "none" ? null : Number(v));

async function main() {
  const [command, ...rest] = args;
  const need = (i: number, what: string) => {
    const v = rest[i];
    if (!v) throw new Error(`missing ${what}`);
    return encodeURIComponent(v);
  };
  switch (command) {
    case "tenants":
      return call("GET", "/tenants");
    case "tenant:create":
      return call("POST", "/tenants", { name: rest[0] });
    case "key:issue":
      return call("POST", `/tenants/${need(0, "tenant")}/keys`, { label: rest[1] });
    case "keys":
      return call("GET", `/tenants/${need(0, "tenant")}/keys`);
    case "key:revoke":
      return call("DELETE", `/keys/${need(0, "key id")}`);
    case "signing-key:add": {
      const source = rest[1] ?? "";
      const publicKey = existsSync(source) ? readFileSync(source, "utf8") : source;
      return call("POST", `/tenants/${need(0, "tenant")}/signing-keys`, { public_key: publicKey, label: rest[2] });
    }
    case "signing-keys":
      return call("GET", `/tenants/${need(0, "tenant")}/signing-keys`);
    case "signing-key:revoke":
      return call("DELETE", `/signing-keys/${need(0, "signing key id")}`);
    case "quotas":
      return call(
        "PUT",
        `/tenants/${need(0, "tenant")}/quotas`,
        Object.fromEntries(
          rest
            .slice(1)
            .map((kv) => kv.split("="))
            .map(([k, v]) => [k, quotaValue(v ?? "")]),
        ),
      );
    case "limits":
      return call(
        "PUT",
        `/tenants/${need(0, "tenant")}/limits`,
        Object.fromEntries(
          rest
            .slice(1)
            .map((kv) => kv.split("="))
            .map(([k, v]) => [k, v === "default" ? null : Number(v)]),
        ),
      );
    case "usage": {
      const q = new URLSearchParams();
      if (rest[1]) q.set("since", rest[1]);
      if (rest[2]) q.set("until", rest[2]);
      return call("GET", `/tenants/${need(0, "tenant")}/usage?${q}`);
    }
    default:
      throw new Error(`unknown command ${command ?? "(none)"}; see the header of scripts/admin.ts`);
  }
}

main().then(
  (out) => console.log(JSON.stringify(out, null, 2)),
  (err: unknown) => {
    console.error(`admin: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);

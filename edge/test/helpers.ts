import { SELF } from "cloudflare:test";

export const ADMIN = "test-admin-key";

export async function call(
  method: string,
  path: string,
  opts: { key?: string; body?: unknown; raw?: BodyInit; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: BodyInit | undefined = opts.raw;
  if (opts.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  return SELF.fetch(`http://corral.test${path}`, { method, headers, body });
}

/** Creates a tenant and returns one API key for it, through the admin API as an operator would. */
export async function newTenant(name: string): Promise<{ id: string; key: string }> {
  const t = await call("POST", "/admin/tenants", { key: ADMIN, body: { name } });
  if (t.status !== 201) throw new Error(`create tenant: ${t.status} ${await t.text()}`);
  const { id } = (await t.json()) as { id: string };
  const k = await call("POST", `/admin/tenants/${id}/keys`, { key: ADMIN, body: { label: "test" } });
  const { key } = (await k.json()) as { key: string };
  return { id, key };
}

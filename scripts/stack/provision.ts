import { createHash } from "node:crypto";

/** Talks to the running edge as an operator (admin API) and as the dev tenant (Ollama API). */
export class EdgeClient {
  constructor(
    readonly baseUrl: string,
    private readonly adminKey: string,
  ) {}

  async admin<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${this.adminKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  async keyWorks(key: string): Promise<boolean> {
    const res = await fetch(`${this.baseUrl}/api/tags`, { headers: { authorization: `Bearer ${key}` } });
    return res.ok;
  }
}

/** The dev tenant exists once; its key is CORRAL_DEV_KEY when set, else the persisted one, else a fresh one. */
export async function ensureDevTenant(
  edge: EdgeClient,
  wanted: { explicitKey?: string; persistedKey?: string },
): Promise<string> {
  const { tenants } = await edge.admin<{ tenants: { id: string; name: string }[] }>("GET", "/tenants");
  const tenant =
    tenants.find((t) => t.name === "dev") ?? (await edge.admin<{ id: string }>("POST", "/tenants", { name: "dev" }));
  const candidate = wanted.explicitKey ?? wanted.persistedKey;
  if (candidate && (await edge.keyWorks(candidate))) return candidate;
  const issued = await edge.admin<{ key: string }>("POST", `/tenants/${tenant.id}/keys`, {
    label: "development key (npm start)",
    ...(wanted.explicitKey ? { key: wanted.explicitKey } : {}),
  });
  return issued.key;
}

/** Uploads a GGUF as a blob (if absent) and creates a model from it (if absent or different), as any Ollama client would. */
export async function ensureModel(baseUrl: string, key: string, name: string, gguf: Uint8Array): Promise<void> {
  const auth = { authorization: `Bearer ${key}` };
  const digest = `sha256:${createHash("sha256").update(gguf).digest("hex")}`;
  const head = await fetch(`${baseUrl}/api/blobs/${digest}`, { method: "HEAD", headers: auth });
  if (head.status !== 200) {
    const up = await fetch(`${baseUrl}/api/blobs/${digest}`, { method: "POST", headers: auth, body: gguf });
    if (!up.ok) throw new Error(`uploading ${name}: ${up.status} ${await up.text()}`);
  }
  const show = await fetch(`${baseUrl}/api/show`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ model: name }),
  });
  if (show.ok) return;
  const create = await fetch(`${baseUrl}/api/create`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ model: name, files: { [`${name}.gguf`]: digest }, stream: false }),
  });
  if (!create.ok) throw new Error(`creating ${name}: ${create.status} ${await create.text()}`);
}

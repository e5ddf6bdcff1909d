/**
 * A tenant of its own for a cross-process test, made as an operator makes one (the admin API: a tenant, then a key),
 * with the official `ollama` client on its key, and the steps the create tests share: blobs uploaded as `ollama
 * create` uploads them, a streaming create's statuses, a greedy run. A test file gets its own tenant so its models
 * stay apart from the other files' on the shared stack.
 */
import { createHash, randomBytes } from "node:crypto";
import { type CreateRequest, Ollama } from "ollama";
import { expect } from "vitest";

export const blobDigest = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** The client's CreateRequest type lacks `files`, which its create sends as given. */
export type FilesRequest = Omit<CreateRequest, "stream"> & { files?: Record<string, string> };

export class TestTenant {
  readonly ollama: Ollama;

  private constructor(
    readonly url: string,
    readonly id: string,
    readonly key: string,
  ) {
    this.ollama = new Ollama({ host: url, headers: { Authorization: `Bearer ${key}` } });
  }

  /** A new tenant named `<label>-<random hex>`, and a key for it. */
  static async create(stack: { url: string; adminKey: string }, label: string): Promise<TestTenant> {
    const admin = { authorization: `Bearer ${stack.adminKey}`, "content-type": "application/json" };
    const adminPost = async <T>(path: string, body: unknown): Promise<T> => {
      const res = await fetch(`${stack.url}${path}`, { method: "POST", headers: admin, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };
    const name = `${label}-${randomBytes(4).toString("hex")}`;
    const { id } = await adminPost<{ id: string }>("/admin/tenants", { name });
    const { key } = await adminPost<{ key: string }>(`/admin/tenants/${id}/keys`, { label: "e2e" });
    return new TestTenant(stack.url, id, key);
  }

  /** Uploads one blob with its length, as the JS client does; returns its digest. */
  async uploadBlob(bytes: Uint8Array): Promise<string> {
    const digest = blobDigest(bytes);
    const res = await fetch(`${this.url}/api/blobs/${digest}`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.key}`, "content-length": String(bytes.length) },
      body: bytes,
    });
    expect([200, 201]).toContain(res.status);
    return digest;
  }

  /** Uploads each file; returns the `files` (or `adapters`) map of a create: file name → digest. */
  async uploadAll(files: Map<string, Uint8Array>): Promise<Record<string, string>> {
    const map: Record<string, string> = {};
    for (const [name, bytes] of files) map[name] = await this.uploadBlob(bytes);
    return map;
  }

  /** A streaming create; the statuses in the order they came. */
  async createStreaming(request: FilesRequest): Promise<string[]> {
    const statuses: string[] = [];
    const lines = await this.ollama.create({ ...request, stream: true } as CreateRequest & { stream: true });
    for await (const line of lines) statuses.push(line.status);
    return statuses;
  }

  /**
   * Greedy, raw: the same prompt through the stack, so any difference in the weights shows in the text. Unloaded
   * right after (keep_alive 0), so the models of one case do not crowd the runner for the next.
   */
  async greedy(model: string): Promise<string | undefined> {
    const options = { temperature: 0, num_predict: 12, seed: 1 };
    const reply = await this.ollama.generate({ model, prompt: "the quick brown", raw: true, keep_alive: 0, options });
    return reply.response;
  }
}

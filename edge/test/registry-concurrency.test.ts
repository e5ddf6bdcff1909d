/**
 * Concurrency: parallel create/copy/delete of one name end consistent, and blob GC never takes a blob that a
 * create is about to reference.
 */

import { env as testEnv } from "cloudflare:test";
import { parseRequest } from "@corral/protocol";
import { createRequestSchema } from "@corral/protocol/schemas-models";
import { describe, expect, it } from "vitest";
import { pinForWrite, unpin } from "../src/db/blobs";
import type { Env } from "../src/env";
import { commitCreate } from "../src/store/create";
import { planCreate } from "../src/store/create-plan";
import { collectBlobs, sweepBlobs } from "../src/store/gc";
import { blobKey } from "../src/store/store";
import { call, newTenant } from "./helpers";
import { createFromGguf, digest, ggufModel, upload } from "./registry-fixtures";

// The worker bindings under test, typed as the Worker sees them (the test pool types them more loosely).
const env = testEnv as unknown as Env;

/** Every manifest's digests have layer rows, blob rows and bucket objects; every blob row has its object. */
async function expectConsistent(): Promise<void> {
  const { results: models } = await env.DB.prepare("SELECT tenant_id, name, manifest FROM models").all<{
    tenant_id: string;
    name: string;
    manifest: string;
  }>();
  for (const m of models) {
    const manifest = JSON.parse(m.manifest) as { config: { digest: string }; layers: { digest: string }[] };
    const wanted = new Set([manifest.config.digest, ...manifest.layers.map((l) => l.digest)]);
    const { results: rows } = await env.DB.prepare("SELECT digest FROM model_layers WHERE tenant_id = ? AND name = ?")
      .bind(m.tenant_id, m.name)
      .all<{ digest: string }>();
    expect(new Set(rows.map((r) => r.digest))).toEqual(wanted);
    for (const d of wanted) expect(await env.BLOBS.head(blobKey(d)), d).not.toBeNull();
  }
  const { results: blobs } = await env.DB.prepare("SELECT digest FROM blobs").all<{ digest: string }>();
  for (const b of blobs) expect(await env.BLOBS.head(blobKey(b.digest)), b.digest).not.toBeNull();
  const { n } = (await env.DB.prepare(
    "SELECT COUNT(*) AS n FROM model_layers l WHERE NOT EXISTS (SELECT 1 FROM models m WHERE m.tenant_id = l.tenant_id AND m.name = l.name)",
  ).first<{ n: number }>())!;
  expect(n).toBe(0);
}

function createBody(model: string, d: string, system: string) {
  return { model, files: { "m.gguf": d }, system, stream: false };
}

describe("concurrent writes to one name", () => {
  it("parallel creates and deletes leave either no model or one whole model", async () => {
    const { key } = await newTenant("conc-create-delete");
    const weights = ggufModel({ salt: 60 });
    await upload(key, weights);
    const d = digest(weights);
    for (let round = 0; round < 3; round++) {
      const requests = [];
      for (let i = 0; i < 4; i++) {
        requests.push(call("POST", "/api/create", { key, body: createBody("contested", d, `round ${round} #${i}`) }));
        requests.push(call("DELETE", "/api/delete", { key, body: { model: "contested" } }));
      }
      const responses = await Promise.all(requests);
      for (const r of responses) {
        const text = await r.text();
        // A create that starts after a delete released the blob is refused, as it would be in that order.
        if (r.status === 400) expect(text).toMatch(/blob sha256:[0-9a-f]{64} not found/);
        else expect([200, 404, 409, 503], text).toContain(r.status);
      }
      await expectConsistent();
    }
    const tags = (await (await call("GET", "/api/tags", { key })).json()) as { models: unknown[] };
    expect(tags.models.length).toBeLessThanOrEqual(1);
  });

  it("parallel copies and deletes of the source never leave a dangling copy", async () => {
    const { key } = await newTenant("conc-copy-delete");
    for (let round = 0; round < 3; round++) {
      await createFromGguf(key, "src", ggufModel({ salt: 61 + round }), { system: `r${round}` });
      const results = await Promise.all([
        call("POST", "/api/copy", { key, body: { source: "src", destination: `dst${round}` } }),
        call("DELETE", "/api/delete", { key, body: { model: "src" } }),
        call("POST", "/api/copy", { key, body: { source: "src", destination: `dst${round}b` } }),
      ]);
      // A copy that lost its source to the delete is a 404 (source gone) or a 409 (blobs collected mid-save).
      for (const r of results) expect([200, 404, 409]).toContain(r.status);
      await expectConsistent();
    }
  });
});

describe("blob GC against writers", () => {
  it("skips a digest a writer has pinned, and a writer cannot pin while GC deletes it", async () => {
    const { id, key } = await newTenant("gc-pins");
    const bytes = ggufModel({ salt: 70 });
    await upload(key, bytes);
    const d = digest(bytes);
    await env.DB.prepare("DELETE FROM blob_owners WHERE tenant_id = ?").bind(id).run();

    expect(await pinForWrite(env.DB, [d], "writer-1")).toEqual([]);
    expect(await collectBlobs(env, [d])).toEqual([]);
    expect(await env.BLOBS.head(blobKey(d))).not.toBeNull();
    await unpin(env.DB, "writer-1");

    // A GC in progress (its delete pin) blocks writers until it is done.
    const now = Date.now();
    await env.DB.prepare("INSERT INTO blob_pins (digest, holder, kind, expires_at) VALUES (?, 'gc-x', 'delete', ?)")
      .bind(d, now + 60_000)
      .run();
    expect(await pinForWrite(env.DB, [d], "writer-2", now)).toEqual([d]);
    await env.DB.prepare("DELETE FROM blob_pins WHERE holder = 'gc-x'").run();

    expect(await collectBlobs(env, [d])).toEqual([d]);
    expect(await env.BLOBS.head(blobKey(d))).toBeNull();
    expect(await env.DB.prepare("SELECT 1 FROM blobs WHERE digest = ?").bind(d).first()).toBeNull();
  });

  it("GC spares a planned create's blobs; one that lost them anyway fails instead of writing a dangling manifest", async () => {
    const { id, key } = await newTenant("gc-race");
    const bytes = ggufModel({ salt: 71 });
    await upload(key, bytes);
    const request = parseRequest(createRequestSchema, { model: "racy", files: { "m.gguf": digest(bytes) } });
    const plan = await planCreate(env, id, request);
    await env.DB.prepare("DELETE FROM blob_owners WHERE tenant_id = ?").bind(id).run();
    // While the planned create holds its pins, GC leaves the blob alone...
    expect(await collectBlobs(env, [digest(bytes)])).toEqual([]);
    // ...but a create stalled past its pins' lifetime can lose the race: then it must fail cleanly.
    await env.DB.prepare("DELETE FROM blob_pins WHERE holder = ?").bind(plan.holder).run();
    expect(await collectBlobs(env, [digest(bytes)])).toEqual([digest(bytes)]);

    const lines: unknown[] = [];
    await expect(async () => {
      for await (const line of commitCreate(env, plan)) lines.push(line);
    }).rejects.toThrow(/removed while it was being created/);
    expect(await env.DB.prepare("SELECT 1 FROM models WHERE tenant_id = ?").bind(id).first()).toBeNull();
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM blob_pins").first("n")).toBe(0);
    await expectConsistent();
  });

  it("the sweep collects blobs uploaded but never used once the grace period is over", async () => {
    const { key } = await newTenant("gc-sweep");
    const bytes = ggufModel({ salt: 72 });
    await upload(key, bytes);
    const d = digest(bytes);
    expect(await sweepBlobs(env)).not.toContain(d);
    const later = Date.now() + 25 * 60 * 60_000;
    expect(await sweepBlobs(env, later)).toContain(d);
    expect(await env.BLOBS.head(blobKey(d))).toBeNull();
    expect((await call("HEAD", `/api/blobs/${d}`, { key })).status).toBe(404);
  });
});

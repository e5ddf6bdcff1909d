/** saveModel: the one write of a model under a name (create, pull and copy all use it). */

import { env as testEnv } from "cloudflare:test";
import { ApiError } from "@corral/protocol";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, newTenant } from "../../test/helpers";
import { createFromGguf, ggufModel } from "../../test/registry-fixtures";
import { pinForWrite } from "../db/blobs";
import { getModel } from "../db/models";
import type { Env } from "../env";
import { collectBlobs } from "./gc";
import { manifestDigests, parseManifest } from "./manifest";
import { type ModelToSave, saveModel } from "./save-model";

const env = testEnv as unknown as Env;

/** What saving `source`'s manifest under `destination` asks for, with `holder`'s pins (if the test takes any). */
async function saveOf(tenantId: string, source: string, destination: string, holder: string): Promise<ModelToSave> {
  const row = (await getModel(env.DB, tenantId, `registry.ollama.ai/library/${source}:latest`))!;
  return {
    tenantId,
    name: { key: `registry.ollama.ai/library/${destination}:latest`, display: `${destination}:latest` },
    manifest: { text: row.manifest, digest: row.digest, size: row.size },
    digests: manifestDigests(parseManifest(row.manifest)),
    holder,
    verb: "copied",
  };
}

const pinCount = async (holder: string) =>
  env.DB.prepare("SELECT COUNT(*) AS n FROM blob_pins WHERE holder = ?").bind(holder).first<number>("n");

describe("saveModel", () => {
  afterEach(() => vi.restoreAllMocks());

  it("a save whose blobs the GC took (its pins lapsed) is a 409 that writes nothing, its pins left to the caller", async () => {
    const { id, key } = await newTenant("save-lost-race");
    await createFromGguf(key, "src", ggufModel({ salt: 90 }), { system: "race" });
    const save = await saveOf(id, "src", "dst", "lost-race");
    // The source goes away and its blobs are collected before this save's batch runs.
    expect((await call("DELETE", "/api/delete", { key, body: { model: "src" } })).status).toBe(200);
    await collectBlobs(env, save.digests);
    expect(
      await env.DB.prepare("SELECT COUNT(*) AS n FROM blobs WHERE digest = ?").bind(save.digests[0]).first("n"),
    ).toBe(0);
    await env.DB.prepare("INSERT INTO blob_pins (digest, holder, kind, expires_at) VALUES ('sha256:x', ?, 'write', ?)")
      .bind("lost-race", Date.now() + 60_000)
      .run();

    const failure = await saveModel(env, save).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).status).toBe(409);
    expect((failure as ApiError).message).toMatch(/removed while it was being copied/);
    expect(await getModel(env.DB, id, save.name.key)).toBeNull();
    const layers = await env.DB.prepare("SELECT COUNT(*) AS n FROM model_layers WHERE tenant_id = ?")
      .bind(id)
      .first("n");
    expect(layers).toBe(0);
    // The batch rolled back as a whole, so the pins it would have released are still there for the caller.
    expect(await pinCount("lost-race")).toBe(1);
  });

  it("stamps modified_at strictly after the version it replaces, even within one millisecond", async () => {
    const { id, key } = await newTenant("save-modified-at");
    await createFromGguf(key, "src", ggufModel({ salt: 91 }), { system: "stamp" });
    const save = await saveOf(id, "src", "dst", "stamp");
    vi.spyOn(Date, "now").mockReturnValue(1_900_000_000_000);
    for (let i = 0; i < 2; i++) {
      expect(await pinForWrite(env.DB, save.digests, "stamp")).toEqual([]);
      await saveModel(env, save);
      expect(await pinCount("stamp")).toBe(0);
    }
    expect((await getModel(env.DB, id, save.name.key))?.modified_at).toBe(1_900_000_000_001);
  });
});

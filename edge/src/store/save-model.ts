/**
 * The one place a model is saved under a name: create, pull and copy all end here.
 *
 * The caller holds write pins (under `holder`) on every digest the manifest references, so the GC stays away.
 * Then ONE D1 batch writes the caller's blob rows, the model row, its layer rows (each taking its digest from the
 * blobs table, so a blob that vanished fails the whole batch) and the release of the pins. A save that lost that
 * race to the GC (its pins lapsed) is a 409: nothing was written and trying again may succeed. Afterwards what only
 * the replaced manifest used is released (best effort; the sweep retries).
 */
import { ApiError } from "@corral/protocol";
import { unpinStatement } from "../db/blobs";
import { getModel, putModelStatements } from "../db/models";
import type { Env } from "../env";
import { releaseModelBlobs } from "./gc";
import { manifestDigests, parseManifest } from "./manifest";
import type { TenantModelName } from "./names";

/** Small layers up to this size are also kept inline in D1 (resolve and show then never read R2). */
export const INLINE_MAX_CHARS = 512 * 1024;

export interface ModelToSave {
  tenantId: string;
  name: TenantModelName;
  manifest: { text: string; digest: string; size: number };
  /** Every digest the manifest references, pinned for writing by `holder`. */
  digests: readonly string[];
  holder: string;
  /** Statements written in the same transaction (blob rows, inline copies), stamped with the save's time. */
  alongside?: (now: number) => D1PreparedStatement[];
  /** What the model was doing when a blob went missing: `created`, `pulled`, `copied`. */
  verb: string;
}

export interface SavedModel {
  /** The digests only the replaced manifest used; empty when nothing was replaced. */
  stale: string[];
  /** Releases `stale` (a no-op when empty); failures are logged, never thrown: the model is already in place. */
  releaseStale(): Promise<void>;
}

/**
 * Saves the model. Its `modified_at` is `max(now, previous + 1)`: Ollama's is the manifest file's mtime (now), kept
 * strictly increasing so that a replaced version's blobs, released by time, can never include the new version's.
 */
export async function saveModel(env: Env, model: ModelToSave): Promise<SavedModel> {
  const db = env.DB;
  const previous = await getModel(db, model.tenantId, model.name.key);
  const now = Math.max(Date.now(), (previous?.modified_at ?? 0) + 1);
  const row = {
    tenant_id: model.tenantId,
    name: model.name.key,
    display_name: model.name.display,
    manifest: model.manifest.text,
    digest: model.manifest.digest,
    size: model.manifest.size,
    modified_at: now,
  };
  try {
    await db.batch([
      ...(model.alongside?.(now) ?? []),
      ...putModelStatements(db, row, model.digests),
      unpinStatement(db, model.holder),
    ]);
  } catch (err) {
    if (String(err).includes("NOT NULL constraint failed")) {
      throw new ApiError(409, `a blob this model needs was removed while it was being ${model.verb}; try again`);
    }
    throw err;
  }
  const stale =
    previous && previous.digest !== model.manifest.digest
      ? manifestDigests(parseManifest(previous.manifest)).filter((d) => !model.digests.includes(d))
      : [];
  return {
    stale,
    releaseStale: async () => {
      if (stale.length === 0 || !previous) return;
      await releaseModelBlobs(env, model.tenantId, stale, previous.modified_at).catch((err) =>
        console.error(`gc after a model was ${model.verb} failed`, err),
      );
    },
  };
}

/**
 * Committing a planned create (create-plan.ts) while reporting Ollama's progress lines.
 *
 * Order of writes, so that a model appears only when all of it exists and nothing is left half-written:
 * 1. pin every digest the manifest references (planning pinned the existing ones already; GC keeps away);
 * 2. store the new small layers in R2 (content-addressed, so a failure afterwards leaves only bytes that the
 *    sweep collects);
 * 3. ONE D1 batch: blob rows and ownership for the new layers, cached GGUF summaries, the model row, its
 *    layer rows (each taking its digest from the blobs table, so a blob that vanished fails the whole batch),
 *    and the release of the pins;
 * 4. release what the replaced manifest (if any) no longer needs.
 */
import { ApiError } from "@corral/protocol";
import type { ProgressResponse } from "@corral/protocol/types";
import { blobRows, pinForWriteOrWait, recordBlobStatements, unpin, unpinStatement } from "../db/blobs";
import { getModel, putModelStatements } from "../db/models";
import type { Env } from "../env";
import type { CreatePlan } from "./create-plan";
import { releaseModelBlobs } from "./gc";
import { manifestDigests, parseManifest } from "./manifest";
import { blobKey } from "./store";

/** Small layers up to this size are also kept inline in D1 (resolve and show then never read R2). */
export const INLINE_MAX_CHARS = 512 * 1024;

export async function* commitCreate(env: Env, plan: CreatePlan): AsyncGenerator<ProgressResponse> {
  const db = env.DB;
  for (let i = 0; i < plan.parsedFiles; i++) yield { status: "parsing GGUF" };

  const holder = plan.holder;
  const referenced = manifestDigests(plan.manifest.manifest);
  await pinForWriteOrWait(db, referenced, holder);
  let pinned = true;
  try {
    const existing = await blobRows(
      db,
      plan.newBlobs.map((b) => b.digest),
    );
    for (const blob of plan.newBlobs) {
      if (existing.has(blob.digest)) continue;
      await env.BLOBS.put(blobKey(blob.digest), blob.content, { sha256: blob.digest.slice("sha256:".length) });
    }
    for (const status of plan.statuses) yield { status };
    yield { status: "writing manifest" };

    const previous = await getModel(db, plan.tenantId, plan.name.key);
    const now = Math.max(Date.now(), (previous?.modified_at ?? 0) + 1);
    const statements = [
      ...plan.newBlobs.flatMap((b) =>
        recordBlobStatements(
          db,
          { digest: b.digest, size: b.size, content: b.content.length <= INLINE_MAX_CHARS ? b.content : null },
          plan.tenantId,
          now,
        ),
      ),
      ...[...plan.summaries].map(([digest, summary]) =>
        db.prepare("UPDATE blobs SET gguf = ? WHERE digest = ? AND gguf IS NULL").bind(JSON.stringify(summary), digest),
      ),
      ...putModelStatements(
        db,
        {
          tenant_id: plan.tenantId,
          name: plan.name.key,
          display_name: plan.name.display,
          manifest: plan.manifest.text,
          digest: plan.manifest.digest,
          size: plan.manifest.size,
          modified_at: now,
        },
        referenced,
      ),
      unpinStatement(db, holder),
    ];
    try {
      await db.batch(statements);
    } catch (err) {
      if (String(err).includes("NOT NULL constraint failed")) {
        throw new ApiError(409, "a blob this model needs was removed while it was being created; upload it again");
      }
      throw err;
    }
    pinned = false;

    if (previous && previous.digest !== plan.manifest.digest) {
      const stale = manifestDigests(parseManifest(previous.manifest)).filter((d) => !referenced.includes(d));
      // The new model is in place; failing to collect old blobs must not fail the create (the sweep retries).
      await releaseModelBlobs(env, plan.tenantId, stale, previous.modified_at).catch((err) =>
        console.error("gc after create failed", err),
      );
    }
    yield { status: "success" };
  } finally {
    if (pinned) await unpin(db, holder);
  }
}

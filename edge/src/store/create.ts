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
 * With `quantize`, a runner first writes the quantized weights as a new blob (quantize.ts); the plan then takes
 * that blob in place of the source weights, and the same steps follow. A safetensors checkpoint is first converted
 * the same way (checkpoint.ts), then quantized if asked; a safetensors LoRA adapter is converted last (adapter.ts). The create's pins are extended while a job runs, however
 * long it takes.
 */
import { ApiError } from "@corral/protocol";
import type { ProgressResponse } from "@corral/protocol/types";
import {
  assertStorageQuota,
  blobRows,
  extendPins,
  ggufSummaryStatement,
  pinForWriteOrWait,
  recordBlobStatements,
  recordOwnerlessBlob,
  unpin,
  visibleBlob,
} from "../db/blobs";
import type { Env } from "../env";
import { runAdapterJob } from "./adapter";
import { runConvertJob } from "./checkpoint";
import { type CreatePlan, withConvertedAdapter, withConvertedWeights, withQuantizedWeights } from "./create-plan";
import { readHeader, summarise } from "./gguf";
import { MediaType, manifestDigests } from "./manifest";
import { runQuantizeJob } from "./quantize";
import { INLINE_MAX_CHARS, saveModel } from "./save-model";
import { blobKey } from "./store";

/** How often a running quantize job extends the create's pins (they last WRITE_PIN_MS). */
const PIN_REFRESH_MS = 60_000;

export async function* commitCreate(
  env: Env,
  planned: CreatePlan,
  signal: AbortSignal = new AbortController().signal,
): AsyncGenerator<ProgressResponse> {
  const db = env.DB;
  let plan = planned;
  const holder = plan.holder;
  let pinned = true;
  // Stopping early (the client left) aborts the runner's job too.
  const job = new AbortController();
  const onAbort = () => job.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (let i = 0; i < plan.parsedFiles; i++) yield { status: "parsing GGUF" };
    if (plan.convert) {
      const produced = yield* extendingPins(db, holder, runConvertJob(env, plan.convert.step, job.signal));
      plan = await adoptProducedBlob(env, plan, produced);
    }
    if (plan.quantize) {
      const produced = yield* extendingPins(db, holder, runQuantizeJob(env, plan.quantize, job.signal));
      plan = await adoptProducedBlob(env, plan, produced);
    }
    if (plan.adapter) {
      const produced = yield* extendingPins(db, holder, runAdapterJob(env, plan.adapter, job.signal));
      plan = await adoptProducedBlob(env, plan, produced);
    }

    const referenced = manifestDigests(plan.manifest.manifest);
    await pinForWriteOrWait(db, referenced, holder);
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

    const saved = await saveModel(env, {
      tenantId: plan.tenantId,
      name: plan.name,
      manifest: plan.manifest,
      digests: referenced,
      holder,
      verb: "created",
      alongside: (now) => [
        ...plan.produced.flatMap((b) => recordBlobStatements(db, b, plan.tenantId, now)),
        ...plan.newBlobs.flatMap((b) =>
          recordBlobStatements(
            db,
            { digest: b.digest, size: b.size, content: b.content.length <= INLINE_MAX_CHARS ? b.content : null },
            plan.tenantId,
            now,
          ),
        ),
        ...[...plan.summaries].map(([digest, summary]) => ggufSummaryStatement(db, digest, JSON.stringify(summary))),
      ],
    });
    pinned = false;
    await saved.releaseStale();
    yield { status: "success" };
  } finally {
    signal.removeEventListener("abort", onAbort);
    job.abort();
    if (pinned) await unpin(db, holder);
  }
}

/** Relays a runner job's progress, extending the create's pins now and then, however long the job takes. */
async function* extendingPins<T>(
  db: D1Database,
  holder: string,
  progress: AsyncGenerator<ProgressResponse, T>,
): AsyncGenerator<ProgressResponse, T> {
  let refreshed = Date.now();
  let next = await progress.next();
  while (!next.done) {
    yield next.value;
    if (Date.now() - refreshed > PIN_REFRESH_MS) {
      refreshed = Date.now();
      await extendPins(db, holder);
    }
    next = await progress.next();
  }
  return next.value;
}

/**
 * Takes over a blob a runner stored for this create: pins it, checks the bucket holds it, makes sure its row exists
 * (runners announce their S3 uploads, but a row may have been collected since), checks it is the GGUF model it
 * should be and that the tenant's quota has room, and puts it into the plan.
 */
async function adoptProducedBlob(
  env: Env,
  plan: CreatePlan,
  produced: { digest: string; size: number },
): Promise<CreatePlan> {
  await pinForWriteOrWait(env.DB, [produced.digest], plan.holder);
  const object = await env.BLOBS.head(blobKey(produced.digest));
  if (!object || object.size !== produced.size) {
    throw new ApiError(502, `the runner reported ${produced.digest}, but the blob store does not hold it`);
  }
  await recordOwnerlessBlob(env.DB, produced.digest, produced.size);
  const summary = summarise(await readHeader(env, produced.digest, produced.size));
  const convert = plan.convert?.step;
  if (convert && (summary.mediaType !== MediaType.model || summary.family !== convert.architecture)) {
    throw new ApiError(502, `the converted file is not a ${convert.architecture} model (${summary.family})`);
  }
  const step = plan.quantize;
  if (step && (summary.mediaType !== MediaType.model || summary.quantization_level !== step.fileType)) {
    throw new ApiError(502, `the quantized file is not a ${step.fileType} model (${summary.quantization_level})`);
  }
  // The weights' jobs run first: an adapter job's result is the only one left then.
  const adapter = !convert && !step ? plan.adapter : null;
  if (adapter && (summary.mediaType !== MediaType.adapter || summary.family !== adapter.base.architecture)) {
    throw new ApiError(502, `the converted adapter is not a ${adapter.base.architecture} adapter (${summary.family})`);
  }
  const visible = (await visibleBlob(env.DB, plan.tenantId, produced.digest)) !== null;
  const next = convert
    ? withConvertedWeights(plan, produced, summary, visible)
    : adapter
      ? withConvertedAdapter(plan, produced, summary, visible)
      : withQuantizedWeights(plan, produced, summary, visible);
  // Only the model's final weights count: a converted file that is quantized next is never the tenant's.
  if (!next.quantize) await assertStorageQuota(env.DB, plan.tenantId, produced.digest, produced.size);
  return next;
}

/**
 * Models: one row per (tenant, normalised name) holding the manifest text, plus one model_layers row per digest
 * the manifest references. Writes are single D1 batches (one transaction), so a reader sees either the old model
 * or the new one with all its layer rows, never a mix.
 */

export interface ModelRow {
  tenant_id: string;
  /** Lower-cased full name (`registry.ollama.ai/library/x:latest`): the identity. */
  name: string;
  /** Ollama's shortest display form, case as first written. */
  display_name: string;
  manifest: string;
  digest: string;
  size: number;
  modified_at: number;
}

export async function listModels(db: D1Database, tenantId: string): Promise<ModelRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM models WHERE tenant_id = ? ORDER BY modified_at DESC, name")
    .bind(tenantId)
    .all<ModelRow>();
  return results;
}

/**
 * The tenant's models, newest first, with the inline text and cached GGUF summary of every layer they reference
 * (what tags needs for details and capabilities): one D1 batch, no R2 read.
 */
export async function listModelsWithInlineLayers(
  db: D1Database,
  tenantId: string,
): Promise<{ rows: Omit<ModelRow, "tenant_id">[]; contents: Map<string, string>; summaries: Map<string, string> }> {
  const [modelResult, layerResult] = await db.batch([
    db
      .prepare(
        `SELECT name, display_name, manifest, digest, size, modified_at FROM models WHERE tenant_id = ?
         ORDER BY modified_at DESC, name`,
      )
      .bind(tenantId),
    db
      .prepare(
        `SELECT DISTINCT b.digest, b.content, b.gguf FROM model_layers l JOIN blobs b ON b.digest = l.digest
         WHERE l.tenant_id = ? AND (b.content IS NOT NULL OR b.gguf IS NOT NULL)`,
      )
      .bind(tenantId),
  ]);
  return { rows: (modelResult?.results ?? []) as Omit<ModelRow, "tenant_id">[], ...inlineLayers(layerResult) };
}

/** Inline texts and GGUF summaries by digest from a `SELECT digest, content, gguf` result. */
function inlineLayers(result: D1Result | undefined) {
  const contents = new Map<string, string>();
  const summaries = new Map<string, string>();
  for (const r of (result?.results ?? []) as { digest: string; content: string | null; gguf: string | null }[]) {
    if (r.content !== null) contents.set(r.digest, r.content);
    if (r.gguf !== null) summaries.set(r.digest, r.gguf);
  }
  return { contents, summaries };
}

export async function getModel(db: D1Database, tenantId: string, name: string): Promise<ModelRow | null> {
  return db.prepare("SELECT * FROM models WHERE tenant_id = ? AND name = ?").bind(tenantId, name).first<ModelRow>();
}

/**
 * Statements that make `row` the model under its name, referencing exactly `digests`, and record the tenant's
 * ownership of those blobs. Each layer row takes its digest from the blobs table: if a blob row vanished (GC won
 * a race) the NOT NULL constraint fails and the whole batch rolls back, so no manifest can point at a missing blob.
 */
export function putModelStatements(db: D1Database, row: ModelRow, digests: readonly string[]): D1PreparedStatement[] {
  const statements = [
    db
      .prepare(
        `INSERT INTO models (tenant_id, name, display_name, manifest, digest, size, modified_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, name) DO UPDATE SET manifest = excluded.manifest, digest = excluded.digest,
           size = excluded.size, modified_at = excluded.modified_at`,
      )
      .bind(row.tenant_id, row.name, row.display_name, row.manifest, row.digest, row.size, row.modified_at),
    db.prepare("DELETE FROM model_layers WHERE tenant_id = ? AND name = ?").bind(row.tenant_id, row.name),
  ];
  for (const digest of new Set(digests)) {
    statements.push(
      db
        .prepare(
          `INSERT INTO model_layers (tenant_id, name, digest)
           VALUES (?, ?, (SELECT digest FROM blobs WHERE digest = ?))`,
        )
        .bind(row.tenant_id, row.name, digest),
      db
        .prepare(
          `INSERT INTO blob_owners (tenant_id, digest, created_at) VALUES (?, ?, ?)
           ON CONFLICT (tenant_id, digest) DO UPDATE SET created_at = excluded.created_at`,
        )
        .bind(row.tenant_id, digest, row.modified_at),
    );
  }
  return statements;
}

/**
 * Deletes the model and its layer rows in one batch; RETURNING tells exactly which manifest was deleted (even if a
 * create replaced it a moment before). Null when there was no such model.
 */
export async function deleteModel(
  db: D1Database,
  tenantId: string,
  name: string,
): Promise<{ manifest: string; modified_at: number } | null> {
  const [, deleted] = await db.batch([
    db.prepare("DELETE FROM model_layers WHERE tenant_id = ? AND name = ?").bind(tenantId, name),
    db
      .prepare("DELETE FROM models WHERE tenant_id = ? AND name = ? RETURNING manifest, modified_at")
      .bind(tenantId, name),
  ]);
  return (deleted?.results[0] as { manifest: string; modified_at: number } | undefined) ?? null;
}

/** A model row and the inline text of its small layers (digest → text), read in one batch. */
export async function getModelWithInlineLayers(
  db: D1Database,
  tenantId: string,
  name: string,
): Promise<{
  row: Omit<ModelRow, "tenant_id" | "name">;
  /** Small layers' inline text, by digest. */
  contents: Map<string, string>;
  /** GGUF layers' header summaries (JSON), by digest. */
  summaries: Map<string, string>;
} | null> {
  const [modelResult, contentResult] = await db.batch([
    db
      .prepare("SELECT display_name, manifest, digest, size, modified_at FROM models WHERE tenant_id = ? AND name = ?")
      .bind(tenantId, name),
    db
      .prepare(
        `SELECT b.digest, b.content, b.gguf FROM model_layers l JOIN blobs b ON b.digest = l.digest
         WHERE l.tenant_id = ? AND l.name = ? AND (b.content IS NOT NULL OR b.gguf IS NOT NULL)`,
      )
      .bind(tenantId, name),
  ]);
  const row = modelResult?.results[0] as Omit<ModelRow, "tenant_id" | "name"> | undefined;
  if (!row) return null;
  return { row, ...inlineLayers(contentResult) };
}

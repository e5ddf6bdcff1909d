export interface ModelRow {
  tenant_id: string;
  name: string;
  display_name: string;
  manifest: string;
  digest: string;
  size: number;
  modified_at: number;
}

export async function listModels(db: D1Database, tenantId: string): Promise<ModelRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM models WHERE tenant_id = ? ORDER BY modified_at DESC")
    .bind(tenantId)
    .all<ModelRow>();
  return results;
}

/** A model's price as the operator set it, in US dollars per million tokens. */
export interface ModelPrice {
  model: string;
  input_per_million: number;
  output_per_million: number;
  updated_at: number;
}

export async function listPrices(db: D1Database): Promise<ModelPrice[]> {
  const { results } = await db.prepare("SELECT * FROM model_prices ORDER BY model").all<ModelPrice>();
  return results;
}

export async function setPrice(db: D1Database, price: Omit<ModelPrice, "updated_at">, now = Date.now()): Promise<void> {
  await db
    .prepare(
      `INSERT INTO model_prices (model, input_per_million, output_per_million, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (model) DO UPDATE SET input_per_million = excluded.input_per_million,
         output_per_million = excluded.output_per_million, updated_at = excluded.updated_at`,
    )
    .bind(price.model, price.input_per_million, price.output_per_million, now)
    .run();
}

export async function deletePrice(db: D1Database, model: string): Promise<boolean> {
  const res = await db.prepare("DELETE FROM model_prices WHERE model = ?").bind(model).run();
  return res.meta.changes > 0;
}

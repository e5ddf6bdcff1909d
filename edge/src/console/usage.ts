/** The tenant's usage: charts per day and per model over a date range, a cost estimate, and a CSV export. */
import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { html } from "hono/html";
import { listPrices, type ModelPrice } from "../db/prices";
import { usageSummary } from "../db/usage";
import { barChart } from "./chart";
import type { ConsoleBindings, ConsoleContext } from "./context";
import { page } from "./layout";

const DAY_MS = 86_400_000;
/** At most a year per view: the charts stay readable and the query bounded. */
const MAX_RANGE_DAYS = 366;
const INPUT_COLOR = "#0b5cad";
const OUTPUT_COLOR = "#b35c00";
const REQUESTS_COLOR = "#2b7a0b";

export interface DateRange {
  since: string;
  /** Inclusive, as the form shows it; the query's bound is the next day. */
  until: string;
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The range a form asked for, defaulting to the last 30 days; a bad one is a 400 with a sentence. */
export function dateRange(since: string | undefined, until: string | undefined, now = Date.now()): DateRange {
  const range = { since: since || isoDay(now - 29 * DAY_MS), until: until || isoDay(now) };
  for (const [name, value] of Object.entries(range)) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(value))) {
      throw new ApiError(400, `the ${name === "since" ? "start" : "end"} date must be a date like 2026-01-31`);
    }
  }
  const days = (Date.parse(range.until) - Date.parse(range.since)) / DAY_MS;
  if (days < 0) throw new ApiError(400, "the start date must not be after the end date");
  if (days >= MAX_RANGE_DAYS) throw new ApiError(400, `a range can span at most ${MAX_RANGE_DAYS} days`);
  return range;
}

export interface UsageRow {
  day: string;
  model: string;
  requests: number;
  prompt_tokens: number;
  output_tokens: number;
}

/** US dollars for a row at the operator's price, or null when the model has no price. */
export function costOf(
  row: Pick<UsageRow, "model" | "prompt_tokens" | "output_tokens">,
  prices: Map<string, ModelPrice>,
) {
  const price = prices.get(row.model);
  if (!price) return null;
  return (row.prompt_tokens * price.input_per_million + row.output_tokens * price.output_per_million) / 1e6;
}

function totalsBy(rows: UsageRow[], key: "day" | "model") {
  const out = new Map<string, { requests: number; prompt_tokens: number; output_tokens: number }>();
  for (const r of rows) {
    const t = out.get(r[key]) ?? { requests: 0, prompt_tokens: 0, output_tokens: 0 };
    t.requests += r.requests;
    t.prompt_tokens += r.prompt_tokens;
    t.output_tokens += r.output_tokens;
    out.set(r[key], t);
  }
  return out;
}

async function load(c: ConsoleContext) {
  const range = dateRange(c.req.query("since"), c.req.query("until"));
  const untilExclusive = isoDay(Date.parse(range.until) + DAY_MS);
  const [{ usage }, priceList] = await Promise.all([
    usageSummary(c.env.DB, c.get("tenantId"), range.since, untilExclusive),
    listPrices(c.env.DB),
  ]);
  return { range, rows: usage as UsageRow[], prices: new Map(priceList.map((p) => [p.model, p])) };
}

const money = (usd: number | null) => (usd === null ? "no price set" : `$${usd.toFixed(4)}`);

function charts(rows: UsageRow[], by: "day" | "model") {
  const totals = totalsBy(rows, by);
  const categories = [...totals.keys()];
  const values = (f: "requests" | "prompt_tokens" | "output_tokens") => categories.map((k) => totals.get(k)?.[f] ?? 0);
  return html`${barChart({
    id: `tokens-by-${by}`,
    title: `Tokens per ${by}`,
    categories,
    series: [
      { name: "Tokens in", values: values("prompt_tokens"), color: INPUT_COLOR },
      { name: "Tokens out", values: values("output_tokens"), color: OUTPUT_COLOR },
    ],
  })}${barChart({
    id: `requests-by-${by}`,
    title: `Requests per ${by}`,
    categories,
    series: [{ name: "Requests", values: values("requests"), color: REQUESTS_COLOR }],
  })}`;
}

export const usagePages = new Hono<ConsoleBindings>()
  .get("/usage", async (c) => {
    const { range, rows, prices } = await load(c);
    const costs = rows.map((r) => costOf(r, prices));
    const total = costs.reduce<number>((sum, x) => sum + (x ?? 0), 0);
    const unpriced = costs.some((x) => x === null);
    const query = new URLSearchParams({ since: range.since, until: range.until }).toString();
    return page(
      c,
      { title: "Usage", session: c.get("session") },
      html`<form method="get" action="/console/usage" class="row">
<div><label for="since">From</label><input id="since" name="since" type="date" value="${range.since}" required></div>
<div><label for="until">To (inclusive)</label><input id="until" name="until" type="date" value="${range.until}" required></div>
<div><button type="submit">Show</button></div>
</form>
<p><a href="/console/usage.csv?${query}" download>Download CSV</a></p>
${
  rows.length === 0
    ? html`<p>No requests in this range.</p>`
    : html`<p id="cost-estimate">Estimated cost: <strong>$${total.toFixed(4)}</strong>${unpriced ? " (some models have no price set and are not included)" : ""}.</p>
<h2>Per day</h2>${charts(rows, "day")}
<h2>Per model</h2>${charts(rows, "model")}
<h2>Details</h2>
<div class="scroll"><table id="usage-table"><caption class="muted">One row per day and model (UTC)</caption>
<thead><tr><th scope="col">Day</th><th scope="col">Model</th><th scope="col">Requests</th><th scope="col">Tokens in</th><th scope="col">Tokens out</th><th scope="col">Cost estimate</th></tr></thead>
<tbody>${rows.map(
        (r, i) =>
          html`<tr><td>${r.day}</td><td>${r.model}</td><td>${r.requests}</td><td>${r.prompt_tokens}</td><td>${r.output_tokens}</td><td>${money(costs[i] ?? null)}</td></tr>`,
      )}</tbody></table></div>`
}`,
    );
  })
  .get("/usage.csv", async (c) => {
    const { range, rows, prices } = await load(c);
    const lines = ["day,model,requests,prompt_tokens,output_tokens,cost_usd"];
    for (const r of rows) {
      const cost = costOf(r, prices);
      lines.push(
        [
          r.day,
          csvField(r.model),
          r.requests,
          r.prompt_tokens,
          r.output_tokens,
          cost === null ? "" : cost.toFixed(6),
        ].join(","),
      );
    }
    return c.body(`${lines.join("\n")}\n`, 200, {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="usage-${range.since}-${range.until}.csv"`,
    });
  });

/** Quotes a CSV field when needed, and defuses a leading formula character for spreadsheet programs. */
export function csvField(value: string): string {
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

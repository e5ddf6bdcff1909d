/** The operator's pages: tenants with their quotas and usage, model prices, and the live fleet with drain. */
import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { html } from "hono/html";
import { deletePrice, listPrices, setPrice } from "../db/prices";
import { listTenants, type Quotas, setQuotas } from "../db/tenants";
import { usageByTenant } from "../db/usage";
import { drainRunner } from "../scheduler/client";
import { schedulerStats } from "../scheduler/stats";
import type { SchedulerStats } from "../scheduler/types";
import { type ConsoleBindings, type ConsoleContext, formFields } from "./context";
import { csrfField, formatBytes, type PageOptions, page } from "./layout";
import { dateRange } from "./usage";

const DAY_MS = 86_400_000;
/** A price above this many dollars per million tokens is a typo, not a price. */
const MAX_PRICE = 1_000_000;
const QUOTA_LABELS: Record<string, string> = {
  storage_bytes: "Storage (bytes)",
  requests_per_minute: "Requests per minute",
  concurrent_requests: "Concurrent requests",
};
const labelOf = (quota: string) => QUOTA_LABELS[quota] ?? quota.replace(/_/g, " ");

/** A quota field: empty means unlimited; otherwise a whole number the database can hold exactly. */
export function parseQuota(name: string, value: string | undefined): number | null {
  const text = (value ?? "").trim();
  if (text === "") return null;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new ApiError(400, `${labelOf(name)} must be a whole number of at least 0, or empty for no limit`);
  }
  return n;
}

async function tenantsPage(c: ConsoleContext, notice?: PageOptions["notice"]) {
  const session = c.get("session");
  const range = dateRange(c.req.query("since"), c.req.query("until"));
  const [tenants, usage] = await Promise.all([
    listTenants(c.env.DB),
    usageByTenant(c.env.DB, Date.parse(range.since), Date.parse(range.until) + DAY_MS),
  ]);
  const usageOf = new Map(usage.map((u) => [u.tenant_id, u]));
  return page(
    c,
    { title: "Tenants", session, notice },
    html`<form method="get" action="/console/admin" class="row">
<div><label for="since">Usage from</label><input id="since" name="since" type="date" value="${range.since}" required></div>
<div><label for="until">To (inclusive)</label><input id="until" name="until" type="date" value="${range.until}" required></div>
<div><button type="submit">Show</button></div>
</form>
<p>Empty quota fields mean no limit.</p>
${tenants.map((t) => {
  const u = usageOf.get(t.id);
  return html`<section aria-labelledby="tenant-${t.id}"><h2 id="tenant-${t.id}">${t.name}</h2>
<p class="muted">${t.id} · ${u ? `${u.requests} request${u.requests === 1 ? "" : "s"}, ${u.prompt_tokens} tokens in, ${u.output_tokens} tokens out` : "no requests"}</p>
<form method="post" action="/console/admin/tenants/${t.id}/quotas" class="row">${csrfField(session)}
${Object.entries(t.quotas).map(
  ([k, v]) =>
    html`<div><label for="${t.id}-${k}">${labelOf(k)}</label><input id="${t.id}-${k}" name="${k}" inputmode="numeric" pattern="[0-9]*" value="${v ?? ""}"></div>`,
)}
<div><button type="submit" aria-label="Save quotas for ${t.name}">Save quotas</button></div></form></section>`;
})}`,
  );
}

async function pricesPage(c: ConsoleContext, notice?: PageOptions["notice"]) {
  const session = c.get("session");
  const prices = await listPrices(c.env.DB);
  return page(
    c,
    { title: "Prices", session, notice },
    html`<p>Tenants' cost estimates multiply their tokens by these prices (US dollars per million tokens).</p>
<div class="scroll"><table id="prices"><thead><tr><th scope="col">Model</th><th scope="col">Input</th><th scope="col">Output</th><th scope="col">Actions</th></tr></thead>
<tbody>${prices.map(
      (p) => html`<tr><td>${p.model}</td><td>$${p.input_per_million}</td><td>$${p.output_per_million}</td>
<td><form method="post" action="/console/admin/prices/remove" class="inline">${csrfField(session)}<input type="hidden" name="model" value="${p.model}"><button type="submit" class="danger" aria-label="Remove the price of ${p.model}">Remove</button></form></td></tr>`,
    )}</tbody></table></div>
<h2>Set a price</h2>
<form method="post" action="/console/admin/prices" class="row">${csrfField(session)}
<div><label for="model">Model name (as usage records it)</label><input id="model" name="model" required maxlength="300"></div>
<div><label for="input">Input, $ per million tokens</label><input id="input" name="input" required inputmode="decimal"></div>
<div><label for="output">Output, $ per million tokens</label><input id="output" name="output" required inputmode="decimal"></div>
<div><button type="submit">Save price</button></div></form>`,
  );
}

export function parsePrice(name: string, value: string | undefined): number {
  const text = (value ?? "").trim();
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n > MAX_PRICE) {
    throw new ApiError(400, `the ${name} price must be a number from 0 to ${MAX_PRICE}`);
  }
  return n;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const shortBlob = (digest: string) => digest.replace(/^sha256:/, "").slice(0, 12);

/** The fleet tables: drawn whole on each refresh, so the live view and the first paint are the same markup. */
function fleetTables(c: ConsoleContext, stats: SchedulerStats) {
  const session = c.get("session");
  const t = stats.totals;
  return html`<p id="fleet-totals">${t.ready_runners} of ${t.runners} runners ready · ${t.busy_sequences} of ${t.slots} sequences busy · queue ${t.queue_depth} (oldest ${seconds(t.oldest_wait_ms)}) · ${t.dispatched} dispatched · ${t.evicted_runners} evictions · refused: ${Object.entries(
    t.rejected,
  )
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`)
    .join(", ")}</p>
<h2>Runners</h2>
<div class="scroll"><table id="runners"><thead><tr><th scope="col">Runner</th><th scope="col">State</th><th scope="col">Busy</th><th scope="col">Memory free</th><th scope="col">Last seen</th><th scope="col">Loaded models</th><th scope="col">Actions</th></tr></thead>
<tbody>${stats.runners.map(
    (
      r,
    ) => html`<tr data-runner="${r.id}"><td>${r.id}</td><td class="state">${r.state}</td><td>${r.busy_sequences} / ${r.slots}</td>
<td>${formatBytes(r.memory_free)} of ${formatBytes(r.memory_total)}</td><td>${seconds(r.last_seen_ms_ago)} ago</td>
<td>${r.loaded.map((m) => html`<div><code>${shortBlob(m.model_blob)}</code> ${m.busy_sequences}/${m.sequences} busy, until ${m.expires_at.slice(11, 19)}</div>`)}</td>
<td><form method="post" action="/console/admin/runners/${r.id}/${r.state === "draining" ? "undrain" : "drain"}" class="inline">${csrfField(session)}
<button type="submit" class="${r.state === "draining" ? "secondary" : "danger"}">${r.state === "draining" ? "Undrain" : "Drain"} ${r.id}</button></form></td></tr>`,
  )}</tbody></table></div>
${stats.runners.length === 0 ? html`<p>No runner has registered.</p>` : ""}
<h2>Models</h2>
<div class="scroll"><table id="fleet-models"><thead><tr><th scope="col">Weights</th><th scope="col">Runners</th><th scope="col">Busy</th><th scope="col">Queue</th><th scope="col">Oldest wait</th></tr></thead>
<tbody>${stats.models.map(
    (m) =>
      html`<tr><td><code>${shortBlob(m.model_blob)}</code></td><td>${m.runners}</td><td>${m.busy_sequences} / ${m.sequences}</td><td>${m.queue_depth}</td><td>${seconds(m.oldest_wait_ms)}</td></tr>`,
  )}</tbody></table></div>`;
}

async function drain(c: ConsoleContext, draining: boolean) {
  const id = c.req.param("runner") ?? "";
  if (!(await drainRunner(c.env, id, draining))) throw new ApiError(404, `runner ${id} not found`);
  return c.redirect("/console/admin/fleet", 303);
}

export const operatorPages = new Hono<ConsoleBindings>()
  .get("/", (c) => tenantsPage(c))
  .post("/tenants/:tenant/quotas", async (c) => {
    const fields = await formFields(c);
    const tenant = (await listTenants(c.env.DB)).find((t) => t.id === c.req.param("tenant"));
    if (!tenant) throw new ApiError(404, "tenant not found");
    const quotas: Record<string, number | null> = {};
    for (const k of Object.keys(tenant.quotas)) quotas[k] = parseQuota(k, fields[k]);
    await setQuotas(c.env.DB, tenant.id, quotas as Partial<Quotas>);
    return tenantsPage(c, { kind: "ok", text: `Saved the quotas of ${tenant.name}.` });
  })
  .get("/prices", (c) => pricesPage(c))
  .post("/prices", async (c) => {
    const { model = "", input, output } = await formFields(c);
    const name = model.trim();
    if (!name || name.length > 300) throw new ApiError(400, "enter a model name of at most 300 characters");
    await setPrice(c.env.DB, {
      model: name,
      input_per_million: parsePrice("input", input),
      output_per_million: parsePrice("output", output),
    });
    return pricesPage(c, { kind: "ok", text: `Saved the price of ${name}.` });
  })
  .post("/prices/remove", async (c) => {
    const { model = "" } = await formFields(c);
    if (!(await deletePrice(c.env.DB, model))) throw new ApiError(404, "that model has no price");
    return pricesPage(c, { kind: "ok", text: `Removed the price of ${model}.` });
  })
  .get("/fleet", async (c) =>
    page(
      c,
      { title: "Fleet", session: c.get("session") },
      html`<p class="muted">Refreshes every two seconds.</p><div id="fleet" data-refresh="/console/admin/fleet/live">${fleetTables(c, await schedulerStats(c.env))}</div>`,
    ),
  )
  .get("/fleet/live", async (c) => c.html(fleetTables(c, await schedulerStats(c.env))))
  .post("/runners/:runner/drain", (c) => drain(c, true))
  .post("/runners/:runner/undrain", (c) => drain(c, false));

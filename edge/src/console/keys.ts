/** The tenant's API keys: list with last use, create (the secret shown once), revoke. */
import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { html } from "hono/html";
import { issueKey, listKeys, revokeKey } from "../db/tenants";
import { keysLastUsed } from "../db/usage";
import { type ConsoleBindings, type ConsoleContext, formFields } from "./context";
import { csrfField, formatTime, type PageOptions, page } from "./layout";

/** Keys a tenant may hold at once through the console; revoked keys do not count. */
const MAX_ACTIVE_KEYS = 100;

async function keysPage(c: ConsoleContext, extra: Partial<PageOptions> = {}, issued?: string) {
  const tenantId = c.get("tenantId");
  const session = c.get("session");
  const [keys, lastUsed] = await Promise.all([listKeys(c.env.DB, tenantId), keysLastUsed(c.env.DB, tenantId)]);
  return page(
    c,
    { title: "API keys", session, ...extra },
    html`${
      issued
        ? html`<section aria-labelledby="new-key-heading"><h2 id="new-key-heading">Your new key</h2>
<p>Copy it now: it is shown only once.</p>
<p><code id="new-key">${issued}</code></p>
<button type="button" class="secondary" data-copy="new-key">Copy key</button> <span id="new-key-status" role="status"></span>
</section>`
        : ""
    }
<h2>Create a key</h2>
<form method="post" action="/console/keys">${csrfField(session)}
<label for="label">Label</label><input id="label" name="label" maxlength="200" placeholder="e.g. laptop">
<button type="submit">Create key</button>
</form>
<h2>Keys</h2>
<div class="scroll"><table id="keys">
<thead><tr><th scope="col">Label</th><th scope="col">Prefix</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Status</th></tr></thead>
<tbody>${keys.map(
      (k) => html`<tr data-key-id="${k.id}"><td>${k.label ?? ""}</td><td><code>${k.display_prefix}</code></td>
<td>${formatTime(k.created_at)}</td><td>${formatTime(lastUsed.get(k.id) ?? null)}</td>
<td>${
        k.revoked_at !== null
          ? `revoked ${formatTime(k.revoked_at)}`
          : html`<form method="post" action="/console/keys/${k.id}/revoke" class="inline">${csrfField(session)}
<button type="submit" class="danger" aria-label="Revoke key ${k.label || k.display_prefix}">Revoke</button></form>${
              k.id === (session.kind === "tenant" ? session.keyId : "")
                ? html` <span class="muted">(this session)</span>`
                : ""
            }`
      }</td></tr>`,
    )}</tbody></table></div>`,
  );
}

export const keysPages = new Hono<ConsoleBindings>()
  .get("/keys", (c) => keysPage(c))
  .post("/keys", async (c) => {
    const { label = "" } = await formFields(c);
    if (label.length > 200) throw new ApiError(400, "a label can be at most 200 characters");
    const tenantId = c.get("tenantId");
    const active = (await listKeys(c.env.DB, tenantId)).filter((k) => k.revoked_at === null).length;
    if (active >= MAX_ACTIVE_KEYS) throw new ApiError(409, `a tenant can hold at most ${MAX_ACTIVE_KEYS} active keys`);
    const issued = await issueKey(c.env.DB, tenantId, label.trim() || null);
    return keysPage(c, { notice: { kind: "ok", text: "Key created." } }, issued.key);
  })
  .post("/keys/:id/revoke", async (c) => {
    const id = c.req.param("id");
    if (!(await revokeKey(c.env.DB, id, { tenantId: c.get("tenantId") }))) {
      throw new ApiError(404, "that key does not exist or is already revoked");
    }
    // Revoking the key this session was opened with ends the session too (sessions are bound to their key).
    const session = c.get("session");
    if (session.kind === "tenant" && session.keyId === id) return c.redirect("/console/sign-in", 303);
    return keysPage(c, { notice: { kind: "ok", text: "Key revoked. Requests with it are now refused." } });
  });

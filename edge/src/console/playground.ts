/**
 * The playground (a chat streamed from the browser straight to /api/chat with the session cookie and CSRF header;
 * see assets.ts) and the tenant's registry credentials (through /api/registry-credentials; passwords never shown).
 */
import type { ListModelResponse } from "@corral/protocol";
import { Hono } from "hono";
import { html } from "hono/html";
import { type ConsoleBindings, type ConsoleContext, formFields } from "./context";
import { csrfField, formatTime, page } from "./layout";

async function registryPage(c: ConsoleContext, notice?: { kind: "ok" | "error"; text: string }) {
  const session = c.get("session");
  const { registries } = await c.get("api")<{
    registries: { registry: string; username: string; updated_at: string }[];
  }>("GET", "/api/registry-credentials");
  return page(
    c,
    { title: "Registry credentials", session, notice },
    html`<p>Push and pull use these to sign in to a registry. Passwords are stored encrypted and never shown again.</p>
<div class="scroll"><table id="registries"><thead><tr><th scope="col">Registry</th><th scope="col">Username</th><th scope="col">Updated</th><th scope="col">Actions</th></tr></thead>
<tbody>${registries.map(
      (r) => html`<tr><td>${r.registry}</td><td>${r.username}</td><td>${formatTime(r.updated_at)}</td>
<td><form method="post" action="/console/registry/remove" class="inline">${csrfField(session)}<input type="hidden" name="registry" value="${r.registry}"><button type="submit" class="danger" aria-label="Remove credentials for ${r.registry}">Remove</button></form></td></tr>`,
    )}</tbody></table></div>
${registries.length === 0 ? html`<p>No credentials stored.</p>` : ""}
<h2>Set or replace</h2>
<form method="post" action="/console/registry">${csrfField(session)}
<label for="registry">Registry host</label><input id="registry" name="registry" required maxlength="255" placeholder="registry.example.com">
<label for="username">Username</label><input id="username" name="username" required maxlength="255" autocomplete="off">
<label for="password">Password or token</label><input id="password" name="password" type="password" required maxlength="4096" autocomplete="new-password">
<button type="submit">Save credentials</button>
</form>`,
  );
}

export const playgroundPages = new Hono<ConsoleBindings>()
  .get("/playground", async (c) => {
    const { models } = await c.get("api")<{ models: ListModelResponse[] }>("GET", "/api/tags");
    const chosen = c.req.query("model");
    return page(
      c,
      { title: "Playground", session: c.get("session") },
      html`<form id="playground">
<div class="row">
<div><label for="model">Model</label><select id="model" name="model" required>${models.map(
        (m) => html`<option${m.name === chosen ? html` selected` : ""}>${m.name}</option>`,
      )}</select></div>
<div><label for="temperature">Temperature</label><input id="temperature" name="temperature" type="number" min="0" max="2" step="0.1" inputmode="decimal"></div>
<div><label for="num_predict">Max output tokens</label><input id="num_predict" name="num_predict" type="number" min="-1" max="1000000" step="1"></div>
<div><label for="seed">Seed</label><input id="seed" name="seed" type="number" step="1"></div>
</div>
<label for="system">System prompt</label><textarea id="system" name="system" rows="2" maxlength="20000"></textarea>
<label for="prompt">Message</label><textarea id="prompt" name="prompt" rows="3" required maxlength="100000"></textarea>
<button type="submit" id="send">Send</button> <button type="button" id="stop" class="secondary" disabled>Stop</button>
</form>
<h2>Answer</h2>
<p id="play-status" role="status" class="muted"></p>
<div id="answer" class="output" aria-live="off"></div>
<p id="play-stats"></p>
${models.length === 0 ? html`<p>You have no models yet; create or pull one first.</p>` : ""}`,
    );
  })
  .get("/registry", (c) => registryPage(c))
  .post("/registry", async (c) => {
    const { registry = "", username = "", password = "" } = await formFields(c);
    const host = registry.trim();
    await c.get("api")("PUT", `/api/registry-credentials/${encodeURIComponent(host)}`, { username, password });
    return registryPage(c, { kind: "ok", text: `Saved credentials for ${host}.` });
  })
  .post("/registry/remove", async (c) => {
    const { registry = "" } = await formFields(c);
    await c.get("api")("DELETE", `/api/registry-credentials/${encodeURIComponent(registry)}`);
    return registryPage(c, { kind: "ok", text: `Removed credentials for ${registry}.` });
  });

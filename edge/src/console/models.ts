/**
 * The tenant's models: the list (/api/tags, capabilities included), running models
 * (/api/ps), details, copy and delete — all through the API's own routes, so nothing here repeats their logic.
 */
import type { ListModelResponse, ProcessModelResponse, ShowResponse } from "@corral/protocol";
import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { html } from "hono/html";
import { type ConsoleBindings, type ConsoleContext, formFields } from "./context";
import { csrfField, formatBytes, formatTime, page } from "./layout";

async function modelsPage(c: ConsoleContext, notice?: { kind: "ok" | "error"; text: string }) {
  const api = c.get("api");
  const session = c.get("session");
  const [{ models }, { models: running }] = await Promise.all([
    api<{ models: ListModelResponse[] }>("GET", "/api/tags"),
    api<{ models: ProcessModelResponse[] }>("GET", "/api/ps"),
  ]);
  return page(
    c,
    { title: "Models", session, notice },
    html`<div class="scroll"><table id="models">
<thead><tr><th scope="col">Name</th><th scope="col">Size</th><th scope="col">Family</th><th scope="col">Parameters</th><th scope="col">Quantization</th><th scope="col">Capabilities</th><th scope="col">Modified</th><th scope="col">Actions</th></tr></thead>
<tbody>${models.map(
      (m, i) => html`<tr><td><a href="/console/models/show?name=${encodeURIComponent(m.name)}">${m.name}</a></td>
<td>${formatBytes(m.size)}</td><td>${m.details.family}</td><td>${m.details.parameter_size}</td><td>${m.details.quantization_level}</td>
<td>${(m.capabilities ?? []).join(", ")}</td><td>${formatTime(String(m.modified_at))}</td>
<td><form method="post" action="/console/models/copy" class="row">${csrfField(session)}<input type="hidden" name="source" value="${m.name}">
<div><label for="copy-${i}">Copy <span class="sr">${m.name} </span>to</label><input id="copy-${i}" name="destination" required maxlength="300"></div><div><button type="submit" class="secondary" aria-label="Copy ${m.name}">Copy</button></div></form>
<form method="post" action="/console/models/delete" class="inline">${csrfField(session)}<input type="hidden" name="model" value="${m.name}"><button type="submit" class="danger" aria-label="Delete ${m.name}">Delete</button></form></td></tr>`,
    )}</tbody></table></div>
${models.length === 0 ? html`<p>No models yet. Create or pull one with the API or the ollama CLI.</p>` : ""}
<h2>Running</h2>
${
  running.length === 0
    ? html`<p>No model is loaded right now.</p>`
    : html`<div class="scroll"><table id="running"><thead><tr><th scope="col">Name</th><th scope="col">Size</th><th scope="col">In GPU memory</th><th scope="col">Context</th><th scope="col">Unloads at</th></tr></thead>
<tbody>${running.map(
        (m) =>
          html`<tr><td>${m.name}</td><td>${formatBytes(m.size)}</td><td>${formatBytes(m.size_vram)}</td><td>${m.context_length ?? ""}</td><td>${formatTime(m.expires_at)}</td></tr>`,
      )}</tbody></table></div>`
}`,
  );
}

export const modelsPages = new Hono<ConsoleBindings>()
  .get("/models", (c) => modelsPage(c))
  .get("/models/show", async (c) => {
    const name = c.req.query("name") ?? "";
    if (!name) throw new ApiError(400, "choose a model to show");
    const show = await c.get("api")<ShowResponse>("POST", "/api/show", { model: name });
    const info = Object.entries(show.model_info ?? {}).map(
      ([k, v]) => html`<tr><th scope="row">${k}</th><td>${JSON.stringify(v)}</td></tr>`,
    );
    return page(
      c,
      { title: `Model ${name}`, session: c.get("session") },
      html`<p><a href="/console/models">Back to models</a></p>
<dl><dt>Family</dt><dd>${show.details?.family ?? ""}</dd><dt>Parameters</dt><dd>${show.details?.parameter_size ?? ""}</dd>
<dt>Quantization</dt><dd>${show.details?.quantization_level ?? ""}</dd><dt>Capabilities</dt><dd>${(show.capabilities ?? []).join(", ")}</dd>
<dt>Modified</dt><dd>${show.modified_at ? formatTime(String(show.modified_at)) : ""}</dd></dl>
<h2>Modelfile</h2><pre>${show.modelfile ?? ""}</pre>
${show.parameters ? html`<h2>Parameters</h2><pre>${show.parameters}</pre>` : ""}
<h2>Template</h2><pre>${show.template ?? ""}</pre>
${info.length > 0 ? html`<h2>Model info</h2><div class="scroll"><table>${info}</table></div>` : ""}`,
    );
  })
  .post("/models/copy", async (c) => {
    const { source = "", destination = "" } = await formFields(c);
    await c.get("api")("POST", "/api/copy", { source, destination: destination.trim() });
    return modelsPage(c, { kind: "ok", text: `Copied ${source} to ${destination.trim()}.` });
  })
  .post("/models/delete", async (c) => {
    const { model = "" } = await formFields(c);
    await c.get("api")("DELETE", "/api/delete", { model });
    return modelsPage(c, { kind: "ok", text: `Deleted ${model}.` });
  });

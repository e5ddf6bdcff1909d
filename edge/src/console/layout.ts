/**
 * The console's page shell: one HTML document per page, drawn on the server with hono/html (every interpolated
 * value is escaped), styled and scripted only from /console/assets (the CSP allows nothing inline).
 */
import type { Context } from "hono";
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { SessionIdentity } from "../db/sessions";

export type Markup = HtmlEscapedString | Promise<HtmlEscapedString>;

const TENANT_NAV = [
  ["/console/usage", "Usage"],
  ["/console/keys", "API keys"],
  ["/console/models", "Models"],
  ["/console/playground", "Playground"],
  ["/console/registry", "Registry credentials"],
] as const;
const OPERATOR_NAV = [
  ["/console/admin", "Tenants"],
  ["/console/admin/prices", "Prices"],
  ["/console/admin/fleet", "Fleet"],
] as const;

export interface PageOptions {
  title: string;
  session: SessionIdentity | null;
  /** A sentence saying what just happened (success) or went wrong (error). */
  notice?: { kind: "ok" | "error"; text: string };
  status?: 200 | 400 | 401 | 403 | 404 | 409 | 413 | 500 | 501 | 502 | 503;
}

export function page(c: Context, opts: PageOptions, body: Markup): Response | Promise<Response> {
  const nav = opts.session ? (opts.session.kind === "tenant" ? TENANT_NAV : OPERATOR_NAV) : [];
  const here = new URL(c.req.url).pathname;
  const doc = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · corral</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
${opts.session ? html`<meta name="csrf-token" content="${opts.session.csrfToken}">` : ""}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<span class="brand">corral</span>
${
  nav.length > 0
    ? html`<nav aria-label="Console"><ul>${nav.map(
        ([href, label]) =>
          html`<li><a href="${href}"${here === href ? html` aria-current="page"` : ""}>${label}</a></li>`,
      )}</ul></nav>
<form method="post" action="/console/sign-out" class="inline">${csrfField(opts.session)}<button type="submit">Sign out</button></form>`
    : ""
}
</header>
<main id="main" tabindex="-1">
<h1>${opts.title}</h1>
${opts.notice ? html`<p class="notice ${opts.notice.kind}" role="${opts.notice.kind === "error" ? "alert" : "status"}">${opts.notice.text}</p>` : ""}
${body}
</main>
</body>
</html>`;
  return c.html(doc, opts.status ?? 200);
}

export const csrfField = (session: SessionIdentity | null) =>
  session ? html`<input type="hidden" name="csrf" value="${session.csrfToken}">` : "";

/** An error message as a sentence: "model 'x' not found" → "Model 'x' not found." */
export function sentence(message: string): string {
  const text = message.trim() || "Something went wrong";
  const capital = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

const UNITS = ["B", "KB", "MB", "GB", "TB"];
export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit]}`;
}

export const formatTime = (ms: number | string | null) =>
  ms === null ? "never" : new Date(ms).toISOString().replace("T", " ").slice(0, 16).concat(" UTC");

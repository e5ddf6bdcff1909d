/**
 * The console's session, CSRF and isolation rules, through the Worker as a browser would reach it (cookies kept by
 * hand, redirects not followed). What a real browser does with them is test/console.e2e.test.ts.
 */
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_SESSIONS_PER_KEY } from "../src/db/sessions";
import { recordUsage } from "../src/db/usage";
import { ADMIN, call, newTenant } from "./helpers";

const ORIGIN = "http://corral.test";

interface Browser {
  cookie: string;
  csrf: string;
}

async function signIn(key: string): Promise<{ res: Response; browser: Browser }> {
  const res = await SELF.fetch(`${ORIGIN}/console/sign-in`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN },
    body: new URLSearchParams({ key }),
  });
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const browser = { cookie, csrf: "" };
  if (cookie) {
    const page = await get(browser, "/console/keys");
    const html = await page.text();
    browser.csrf = /name="csrf-token" content="([^"]+)"/.exec(html)?.[1] ?? "";
    if (!browser.csrf)
      browser.csrf = /name="csrf" value="([^"]+)"/.exec(await (await get(browser, "/console/admin")).text())?.[1] ?? "";
  }
  return { res, browser };
}

const get = (b: Browser, path: string) =>
  SELF.fetch(`${ORIGIN}${path}`, { redirect: "manual", headers: { cookie: b.cookie } });

function post(
  b: Browser,
  path: string,
  fields: Record<string, string>,
  opts: { origin?: string; csrf?: boolean } = {},
) {
  return SELF.fetch(`${ORIGIN}${path}`, {
    method: "POST",
    redirect: "manual",
    headers: {
      cookie: b.cookie,
      origin: opts.origin ?? ORIGIN,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams(opts.csrf === false ? fields : { ...fields, csrf: b.csrf }),
  });
}

const unique = (p: string) => `${p}-${crypto.randomUUID().slice(0, 8)}`;

describe("console sign-in", () => {
  it("exchanges a key for a short-lived HttpOnly, Secure, SameSite=Strict host cookie", async () => {
    const t = await newTenant(unique("console"));
    const { res, browser } = await signIn(t.key);
    expect(res.status).toBe(303);
    const setCookie = res.headers.get("set-cookie") ?? "";
    expect(setCookie).toMatch(/^__Host-corral_session=/);
    for (const attr of ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"]) expect(setCookie).toContain(attr);
    expect(Number(/Max-Age=(\d+)/.exec(setCookie)?.[1])).toBeLessThanOrEqual(7200);
    expect(setCookie).not.toContain(t.key);
    expect(browser.csrf.length).toBeGreaterThan(20);
  });

  it("refuses a wrong key with a sentence, and sets no cookie", async () => {
    const { res } = await signIn("corral-not-a-key");
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(await res.text()).toContain("That key is not valid.");
  });

  it("refuses a sign-in posted from another site", async () => {
    const res = await SELF.fetch(`${ORIGIN}/console/sign-in`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example" },
      body: new URLSearchParams({ key: "whatever" }),
    });
    expect(res.status).toBe(403);
  });

  it("serves pages with a strict CSP and the usual security headers, well under 100 KB", async () => {
    const t = await newTenant(unique("headers"));
    const { browser } = await signIn(t.key);
    const res = await get(browser, "/console/usage");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await res.text();
    const assets = await Promise.all(
      ["/console/assets/console.css", "/console/assets/console.js"].map(async (p) => (await get(browser, p)).text()),
    );
    expect(body.length + assets.reduce((n, a) => n + a.length, 0)).toBeLessThan(100_000);
  });
});

describe("console forms and CSRF", () => {
  it("creates a key only with the session's CSRF token, and the new key works on the API", async () => {
    const t = await newTenant(unique("csrf"));
    const { browser } = await signIn(t.key);
    expect((await post(browser, "/console/keys", { label: "x" }, { csrf: false })).status).toBe(403);
    expect((await post({ ...browser, csrf: "forged" }, "/console/keys", { label: "x" })).status).toBe(403);
    expect((await post(browser, "/console/keys", { label: "x" }, { origin: "https://evil.example" })).status).toBe(403);
    const res = await post(browser, "/console/keys", { label: "laptop" });
    expect(res.status).toBe(200);
    const key = /<code id="new-key">([^<]+)<\/code>/.exec(await res.text())?.[1] ?? "";
    expect((await call("GET", "/api/tags", { key })).status).toBe(200);
  });

  it("lets the session call the API: reads freely, writes only with the CSRF header", async () => {
    const t = await newTenant(unique("apicookie"));
    const { browser } = await signIn(t.key);
    expect((await get(browser, "/api/tags")).status).toBe(200);
    const show = (headers: Record<string, string>) =>
      SELF.fetch(`${ORIGIN}/api/show`, {
        method: "POST",
        headers: { cookie: browser.cookie, "content-type": "application/json", ...headers },
        body: JSON.stringify({ model: "nothing-here" }),
      });
    expect((await show({})).status).toBe(403);
    expect((await show({ "x-csrf-token": browser.csrf })).status).toBe(404);
    // A wrong bearer key is never rescued by the cookie.
    expect((await show({ "x-csrf-token": browser.csrf, authorization: "Bearer nope" })).status).toBe(401);
  });

  it("ends the session when its key is revoked, and on sign-out", async () => {
    const t = await newTenant(unique("revoke"));
    const first = await signIn(t.key);
    const second = await signIn(t.key);
    const keyId = /data-key-id="([^"]+)"/.exec(await (await get(first.browser, "/console/keys")).text())?.[1] ?? "";
    expect((await post(first.browser, `/console/keys/${keyId}/revoke`, {})).status).toBe(303);
    expect((await get(second.browser, "/console/usage")).status).toBe(401);
    expect((await get(second.browser, "/api/tags")).status).toBe(401);
    expect((await call("GET", "/api/tags", { key: t.key })).status).toBe(401);

    const other = await newTenant(unique("signout"));
    const { browser } = await signIn(other.key);
    expect((await post(browser, "/console/sign-out", {})).status).toBe(303);
    expect((await get(browser, "/console/usage")).status).toBe(401);
  });
});

describe("console isolation", () => {
  it("keeps a tenant session off operator pages and the admin API", async () => {
    const t = await newTenant(unique("iso"));
    const { browser } = await signIn(t.key);
    for (const path of ["/console/admin", "/console/admin/fleet", "/console/admin/prices"]) {
      const res = await get(browser, path);
      expect(res.status).toBe(403);
      expect(await res.text()).toContain("This page is for operators only.");
    }
    expect((await post(browser, "/console/admin/runners/local-0/drain", {})).status).toBe(403);
    expect((await get(browser, "/admin/tenants")).status).toBe(401);
  });

  it("cannot revoke another tenant's key", async () => {
    const a = await newTenant(unique("iso-a"));
    const b = await newTenant(unique("iso-b"));
    const bKeys = (await (await call("GET", `/admin/tenants/${b.id}/keys`, { key: ADMIN })).json()) as {
      keys: { id: string }[];
    };
    const { browser } = await signIn(a.key);
    const res = await post(browser, `/console/keys/${bKeys.keys[0]?.id}/revoke`, {});
    expect(res.status).toBe(404);
    expect((await call("GET", "/api/tags", { key: b.key })).status).toBe(200);
  });

  it("shows a tenant only its own usage, priced from the operator's table", async () => {
    const a = await newTenant(unique("use-a"));
    const b = await newTenant(unique("use-b"));
    const model = unique("priced");
    const now = Date.now();
    const row = {
      key_id: null,
      endpoint: "chat",
      model,
      model_digest: null,
      load_duration: 0,
      prompt_cached_tokens: 0,
    };
    const durations = { prompt_eval_duration: 0, eval_duration: 0, total_duration: 1, status: "ok" as const };
    await recordUsage(env.DB, {
      ...row,
      ...durations,
      request_id: unique("r"),
      tenant_id: a.id,
      prompt_tokens: 1234,
      output_tokens: 4321,
      runner_id: null,
      created_at: now,
    });
    await recordUsage(env.DB, {
      ...row,
      ...durations,
      request_id: unique("r"),
      tenant_id: b.id,
      prompt_tokens: 999_999,
      output_tokens: 1,
      runner_id: null,
      created_at: now,
    });
    const operator = (await signIn(ADMIN)).browser;
    expect((await post(operator, "/console/admin/prices", { model, input: "1000", output: "2000" })).status).toBe(200);

    const { browser } = await signIn(a.key);
    const page = await (await get(browser, "/console/usage")).text();
    expect(page).toContain("1,234");
    expect(page).toContain("4,321");
    expect(page).not.toContain("999,999");
    // 1234 × $1000/M + 4321 × $2000/M
    expect(page).toContain("$9.8760");
    const csv = await (await get(browser, "/console/usage.csv")).text();
    const tenants = await (await get(operator, "/console/admin")).text();
    expect(tenants).toContain(`${a.id} · 1 request, 1234 tokens in, 4321 tokens out`);
    const lastYear = await (await get(operator, "/console/admin?since=2025-01-01&until=2025-01-31")).text();
    expect(lastYear).not.toContain(`${a.id} · 1 request`);
    expect(csv.split("\n")[1]).toMatch(new RegExp(`^\\d{4}-\\d{2}-\\d{2},${model},1,1234,4321,9\\.876000$`));
  });
});

describe("console operator", () => {
  it("signs in with the admin key, reaches the admin API through the session, and refuses tenant pages", async () => {
    const { browser } = await signIn(ADMIN);
    expect((await get(browser, "/console/admin")).status).toBe(200);
    expect((await get(browser, "/console/admin/fleet")).status).toBe(200);
    expect((await get(browser, "/admin/tenants")).status).toBe(200);
    expect((await get(browser, "/console/usage")).status).toBe(403);
    expect((await get(browser, "/api/tags")).status).toBe(401);
  });

  it("edits quotas, refusing what is not a whole number with a sentence", async () => {
    const t = await newTenant(unique("quota"));
    const { browser } = await signIn(ADMIN);
    const bad = await post(browser, `/console/admin/tenants/${t.id}/quotas`, { requests_per_minute: "-3" });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("Requests per minute must be a whole number");
    const ok = await post(browser, `/console/admin/tenants/${t.id}/quotas`, { requests_per_minute: "60" });
    expect(ok.status).toBe(200);
    const tenant = (await (await call("GET", `/admin/tenants/${t.id}`, { key: ADMIN })).json()) as {
      quotas: Record<string, number | null>;
    };
    expect(tenant.quotas.requests_per_minute).toBe(60);
    expect(tenant.quotas.storage_bytes).toBeNull();
  });
});

describe("console errors and fetch metadata", () => {
  it("refuses a form a browser marks cross-site, even with the right token", async () => {
    const t = await newTenant(unique("site"));
    const { browser } = await signIn(t.key);
    const res = await SELF.fetch(`${ORIGIN}/console/keys`, {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie: browser.cookie,
        "sec-fetch-site": "cross-site",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ label: "x", csrf: browser.csrf }),
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("This form must be sent from the console itself.");
  });

  it("refuses a form over 64 KB before reading it", async () => {
    const t = await newTenant(unique("big"));
    const { browser } = await signIn(t.key);
    const res = await post(browser, "/console/keys", { label: "x".repeat(70_000) });
    expect(res.status).toBe(413);
    expect(await res.text()).toContain("The form is too large.");
  });

  it("shows an API error from a route it calls as a sentence, not JSON", async () => {
    const t = await newTenant(unique("sentence"));
    const { browser } = await signIn(t.key);
    // The Worker tests run without CREDENTIALS_KEY, so the registry-credentials route refuses with 501.
    const res = await post(browser, "/console/registry", { registry: "r.example", username: "u", password: "p" });
    expect(res.status).toBe(501);
    const page = await res.text();
    expect(page).toContain("Registry credentials are not enabled: the CREDENTIALS_KEY secret is not set.");
    expect(page).not.toContain('{"error"');
    const models = await get(browser, "/console/models/show?name=missing");
    expect(models.status).toBe(404);
    expect(await models.text()).toMatch(/Model .*missing.* not found\./);
  });
});

describe("console sessions per key", () => {
  it("keeps only the newest sessions of a key", async () => {
    const t = await newTenant(unique("many"));
    const first = await signIn(t.key);
    for (let i = 0; i < MAX_SESSIONS_PER_KEY; i++) await signIn(t.key);
    expect((await get(first.browser, "/console/usage")).status).toBe(401);
    const { n } = (await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM console_sessions s JOIN api_keys k ON k.id = s.key_id WHERE k.tenant_id = ?",
    )
      .bind(t.id)
      .first<{ n: number }>()) ?? { n: -1 };
    expect(n).toBe(MAX_SESSIONS_PER_KEY);
  });
});

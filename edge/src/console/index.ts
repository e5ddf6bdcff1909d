/**
 * The web console under /console: tenants sign in with an API key, operators with the admin key. Pages are drawn
 * on the server; their reads and writes go through the same db functions and API routes the JSON API uses.
 */
import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { html } from "hono/html";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { secretsEqual } from "../crypto";
import { closeSession, openSession } from "../db/sessions";
import { resolveKey } from "../db/tenants";
import { operatorPages } from "./admin";
import { CONSOLE_CSS, CONSOLE_JS } from "./assets";
import { apiCaller, type ConsoleBindings, type ConsoleContext, formFields, type RouteTable } from "./context";
import { keysPages } from "./keys";
import { page, sentence } from "./layout";
import { modelsPages } from "./models";
import { playgroundPages } from "./playground";
import {
  adminKeyHash,
  clearSessionCookie,
  csrfMatches,
  readSession,
  SESSION_COOKIE,
  setSessionCookie,
} from "./session";
import { usagePages } from "./usage";

/** Forms are a few fields; anything larger is refused before it is parsed. */
const MAX_FORM_BYTES = 64 * 1024;

const SECURITY_HEADERS = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'"],
    connectSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  xFrameOptions: "DENY",
  // Not no-referrer: with it, browsers send `Origin: null` on the console's own forms.
  referrerPolicy: "same-origin",
  permissionsPolicy: { camera: [], microphone: [], geolocation: [] },
});

function signInPage(c: ConsoleContext, error?: string, status: 200 | 400 | 401 | 403 = 200) {
  return page(
    c,
    { title: "Sign in", session: null, notice: error ? { kind: "error", text: error } : undefined, status },
    html`<form method="post" action="/console/sign-in">
<label for="key">API key or admin key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<p class="muted">The key is exchanged for a session of at most two hours and is not kept by the browser.</p>
<button type="submit">Sign in</button>
</form>`,
  );
}

/**
 * A state-changing console request must come from the console itself. Fetch metadata says so directly (and holds
 * through proxies that rewrite the host); older browsers send Origin, which must then be ours.
 */
function sameOrigin(c: ConsoleContext): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site) return site === "same-origin";
  const origin = c.req.header("origin");
  return !origin || origin === new URL(c.req.url).origin;
}

async function signIn(c: ConsoleContext): Promise<Response> {
  const { key } = await formFields(c);
  if (!key || key.length > 512) return signInPage(c, "Enter an API key.", 400);
  const adminKey = c.env.ADMIN_KEY;
  const opened =
    adminKey && (await secretsEqual(key, adminKey))
      ? await openSession(c.env.DB, { kind: "operator", adminKeyHash: (await adminKeyHash(adminKey)) ?? "" })
      : await resolveKey(c.env.DB, key).then((id) =>
          id ? openSession(c.env.DB, { kind: "tenant", tenantId: id.tenantId, keyId: id.keyId }) : null,
        );
  if (!opened) return signInPage(c, "That key is not valid. Check it and try again.", 401);
  setSessionCookie(c, opened);
  return c.redirect("/console", 303);
}

function renderError(err: Error, c: ConsoleContext): Response | Promise<Response> {
  const known = err instanceof ApiError || err instanceof HTTPException;
  if (!known) console.error("console error", err);
  const status = known ? err.status : 500;
  if (status === 401) {
    clearSessionCookie(c);
    return signInPage(c, "Your session has ended. Sign in again.", 401);
  }
  const text = status === 500 ? "Something went wrong on our side. Try again." : sentence(err.message);
  const session = c.get("session") ?? null;
  return page(c, { title: "Error", session, notice: { kind: "error", text }, status: status as 400 }, html``);
}

const asset = (body: string, type: string) => (c: ConsoleContext) =>
  c.body(body, 200, { "content-type": `${type}; charset=utf-8`, "cache-control": "public, max-age=300" });

/** Every page below sign-in needs a live session; a POST also needs the session's CSRF token. */
const requireSession = (routes: RouteTable) =>
  createMiddleware<ConsoleBindings>(async (c, next) => {
    const session = await readSession(c);
    if (!session) {
      if (c.req.method === "GET" && c.req.path === "/console") return c.redirect("/console/sign-in", 303);
      throw new ApiError(401, "unauthorized");
    }
    if (c.req.method === "POST" && !(await csrfMatches(session, (await formFields(c)).csrf))) {
      throw new ApiError(403, "the form has expired; reload the page and try again");
    }
    c.set("session", session);
    c.set("api", apiCaller(c, routes, session));
    if (session.kind === "tenant") c.set("tenantId", session.tenantId);
    await next();
  });

/** A tenant session never reaches an operator page; an operator has no tenant, so tenant pages show nothing. */
const pageForSession = createMiddleware<ConsoleBindings>(async (c, next) => {
  const path = c.req.path;
  const operatorPage = path === "/console/admin" || path.startsWith("/console/admin/");
  const kind = c.get("session").kind;
  if (operatorPage && kind !== "operator") throw new ApiError(403, "this page is for operators only");
  if (!operatorPage && kind !== "tenant") throw new ApiError(403, "this page is for tenants: sign in with an API key");
  await next();
});

const formGuard = [
  createMiddleware<ConsoleBindings>(async (c, next) => {
    if (!sameOrigin(c)) throw new ApiError(403, "this form must be sent from the console itself");
    await next();
  }),
  bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: () => {
      throw new ApiError(413, "the form is too large");
    },
  }),
] as const;

export function consoleRoutes(routes: RouteTable) {
  const app = new Hono<ConsoleBindings>();
  app.use("*", SECURITY_HEADERS, async (c, next) => {
    await next();
    if (!c.req.path.startsWith("/console/assets/")) c.header("cache-control", "no-store");
  });
  app.onError(renderError);
  app.get("/assets/console.css", asset(CONSOLE_CSS, "text/css"));
  app.get("/assets/console.js", asset(CONSOLE_JS, "text/javascript"));
  app.post("*", ...formGuard);
  app.get("/sign-in", (c) => signInPage(c));
  app.post("/sign-in", signIn);

  app.use("*", requireSession(routes));
  app.get("/", (c) => c.redirect(c.get("session").kind === "tenant" ? "/console/usage" : "/console/admin", 303));
  app.post("/sign-out", async (c) => {
    const token = getCookie(c, SESSION_COOKIE, "host");
    if (token) await closeSession(c.env.DB, token);
    clearSessionCookie(c);
    return c.redirect("/console/sign-in", 303);
  });
  app.use("*", pageForSession);
  app.route("/admin", operatorPages);
  app.route("/", usagePages).route("/", keysPages).route("/", modelsPages).route("/", playgroundPages);
  return app;
}

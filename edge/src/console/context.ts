/** What the console's middleware puts on the context for its pages. */
import { ApiError } from "@corral/protocol";
import type { Context, Hono } from "hono";
import type { SessionIdentity } from "../db/sessions";
import type { AppBindings, Env, TenantVars } from "../env";
import { CSRF_HEADER } from "./session";

/** The Worker's own route table, which console pages call instead of repeating what an API route does. */
export type RouteTable = Pick<Hono<AppBindings>, "request">;

export interface ConsoleVars extends TenantVars {
  session: SessionIdentity;
  /** Calls the Worker's own API as this session (its cookie and CSRF token): the same auth, checks and errors. */
  api: <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => Promise<T>;
}

export type ConsoleBindings = { Bindings: Env; Variables: ConsoleVars };
export type ConsoleContext = Context<ConsoleBindings>;

export function apiCaller(c: Context<ConsoleBindings>, routes: RouteTable, session: SessionIdentity) {
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const headers: Record<string, string> = { cookie: c.req.header("cookie") ?? "", [CSRF_HEADER]: session.csrfToken };
    if (body !== undefined) headers["content-type"] = "application/json";
    const init: RequestInit = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    const res = await routes.request(path, init, c.env, c.executionCtx);
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // Not JSON (an empty 200 from copy or delete): nothing to read.
    }
    if (!res.ok) throw new ApiError(res.status, String(parsed.error ?? `the request failed (${res.status})`));
    return parsed as T;
  };
}

/** A form's fields as strings (files and repeated fields are not part of any console form). */
export async function formFields(c: ConsoleContext): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === "string") out[k] = v;
  return out;
}

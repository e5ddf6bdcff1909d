import { ApiError } from "@corral/protocol";
import { Hono } from "hono";
import { z } from "zod";
import { readJson } from "../body";
import { deleteCredentials, listCredentials } from "../db/credentials";
import type { AppBindings } from "../env";
import type { OciEnv } from "../registry-client/config";
import { normalizeRegistryHost, saveCredentials } from "../registry-client/credentials";

const CredentialsBody = z.object({
  // Basic auth cannot carry a colon in the user name.
  username: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[^:\r\n]+$/),
  password: z
    .string()
    .min(1)
    .max(4096)
    .regex(/^[^\r\n]+$/),
});

function registryParam(raw: string): string {
  const host = normalizeRegistryHost(raw);
  if (!host) throw new ApiError(400, `invalid registry host ${JSON.stringify(raw)}`);
  return host;
}

/**
 * The tenant's registry credentials, used by push and pull for that host: set with
 * `PUT /api/registry-credentials/:host`, listed without passwords, removed with DELETE.
 */
export const registryCredentialsRoutes = new Hono<AppBindings>()
  .get("/registry-credentials", async (c) => {
    return c.json({ registries: await listCredentials(c.env.DB, c.get("tenantId")) });
  })
  .put("/registry-credentials/:registry", async (c) => {
    const registry = registryParam(c.req.param("registry"));
    const secret = (c.env as OciEnv).CREDENTIALS_KEY;
    if (!secret) throw new ApiError(501, "registry credentials are not enabled: the CREDENTIALS_KEY secret is not set");
    const body = await readJson(c, CredentialsBody, "credentials");
    await saveCredentials(c.env.DB, secret, c.get("tenantId"), registry, body);
    return c.json({ registry, username: body.username });
  })
  .delete("/registry-credentials/:registry", async (c) => {
    const registry = registryParam(c.req.param("registry"));
    if (!(await deleteCredentials(c.env.DB, c.get("tenantId"), registry))) {
      throw new ApiError(404, "no credentials stored for this registry");
    }
    return c.json({ registry, deleted: true });
  });

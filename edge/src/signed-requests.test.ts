/**
 * Requests signed as the stock Ollama client signs them (api/client.go, auth/auth.go), against the real app in
 * workerd: the key is an ed25519 key in SSH form (its `.pub` line registered through the admin API), the header
 * `<base64 SSH wire blob>:<base64 raw signature>` over `METHOD,PATH?ts=<unix seconds>`.
 */
import { describe, expect, it } from "vitest";
import { ADMIN, call, newTenant } from "../test/helpers";
import { seedModel } from "../test/relay-fixtures";
import { challengeOf, SIGNATURE_WINDOW_S } from "./signed-requests";

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/** SSH's wire form of a string: uint32 big-endian length, then the bytes. */
function sshString(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.byteLength);
  new DataView(out.buffer).setUint32(0, bytes.byteLength);
  out.set(bytes, 4);
  return out;
}

interface SshKey {
  /** The `.pub` line, as ssh.MarshalAuthorizedKey writes it (what ~/.ollama/id_ed25519.pub holds). */
  authorizedKey: string;
  blob: string;
  sign(challenge: string): Promise<string>;
}

async function newSshKey(): Promise<SshKey> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const blob = b64(new Uint8Array([...sshString(new TextEncoder().encode("ssh-ed25519")), ...sshString(raw)]));
  return {
    authorizedKey: `ssh-ed25519 ${blob}\n`,
    blob,
    async sign(challenge) {
      const signature = await crypto.subtle.sign(
        { name: "Ed25519" },
        pair.privateKey,
        new TextEncoder().encode(challenge),
      );
      // auth.Sign: "<public key without its type>:<base64 of the signature blob>".
      return `${blob}:${b64(new Uint8Array(signature))}`;
    },
  };
}

const register = (tenantId: string, publicKey: string, label = "laptop") =>
  call("POST", `/admin/tenants/${tenantId}/signing-keys`, { key: ADMIN, body: { public_key: publicKey, label } });

/** A request as api/client.go sends it; `ts` and the signed path may be overridden to forge one. */
async function signed(
  key: SshKey,
  method: string,
  path: string,
  opts: { ts?: number; signedPath?: string; bearer?: boolean; header?: string } = {},
) {
  const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
  const header = opts.header ?? (await key.sign(challengeOf(method, opts.signedPath ?? path, ts)));
  const authorization = opts.bearer ? `Bearer ${header}` : header;
  return { header, res: await call(method, `${path}?ts=${ts}`, { headers: { authorization } }) };
}

const names = async (res: Response) => ((await res.json()) as { models: { name: string }[] }).models.map((m) => m.name);

describe("requests signed by the Ollama client", () => {
  it("authenticates a registered key as its tenant, with or without Bearer", async () => {
    const tenant = await newTenant(`signer-${crypto.randomUUID().slice(0, 8)}`);
    await seedModel(tenant.id, "mine");
    const key = await newSshKey();
    const registered = await register(tenant.id, key.authorizedKey);
    expect(registered.status).toBe(201);
    expect(await registered.json()).toMatchObject({ public_key: key.blob, label: "laptop", revoked_at: null });

    const now = Math.floor(Date.now() / 1000);
    const { res } = await signed(key, "GET", "/api/tags", { ts: now });
    expect(res.status).toBe(200);
    expect(await names(res)).toEqual(["mine:latest"]);
    // Ed25519 signatures are deterministic: the same path in the same second is the same signature, a replay.
    const viaBearer = await signed(key, "GET", "/api/tags", { bearer: true, ts: now - 1 });
    expect(viaBearer.res.status).toBe(200);
  });

  it("refuses stale and future timestamps, replays, other paths and unknown keys", async () => {
    const tenant = await newTenant(`signer-${crypto.randomUUID().slice(0, 8)}`);
    const key = await newSshKey();
    await register(tenant.id, key.authorizedKey);
    const now = Math.floor(Date.now() / 1000);

    expect((await signed(key, "GET", "/api/tags", { ts: now - SIGNATURE_WINDOW_S - 5 })).res.status).toBe(401);
    expect((await signed(key, "GET", "/api/tags", { ts: now + SIGNATURE_WINDOW_S + 5 })).res.status).toBe(401);
    // Signed for one path, presented on another.
    expect((await signed(key, "GET", "/api/ps", { signedPath: "/api/tags" })).res.status).toBe(401);

    const first = await signed(key, "GET", "/api/tags", { ts: now });
    expect(first.res.status).toBe(200);
    const replay = await signed(key, "GET", "/api/tags", { ts: now, header: first.header });
    expect(replay.res.status).toBe(401);
    expect(await replay.res.json()).toEqual({ error: "unauthorized" });

    const stranger = await newSshKey();
    expect((await signed(stranger, "GET", "/api/tags")).res.status).toBe(401);
  });

  it("gives another tenant's key that tenant's view only", async () => {
    const a = await newTenant(`signer-a-${crypto.randomUUID().slice(0, 8)}`);
    const b = await newTenant(`signer-b-${crypto.randomUUID().slice(0, 8)}`);
    await seedModel(a.id, "secret");
    const keyOfB = await newSshKey();
    await register(b.id, keyOfB.authorizedKey);
    const { res } = await signed(keyOfB, "GET", "/api/tags");
    expect(await names(res)).toEqual([]);
    const show = await signed(keyOfB, "POST", "/api/show");
    expect(show.res.status).not.toBe(200);
    // One key, one tenant: registering B's key for A as well is refused.
    expect((await register(a.id, keyOfB.blob)).status).toBe(409);
  });

  it("stops accepting a revoked key, which can then be registered again", async () => {
    const tenant = await newTenant(`signer-${crypto.randomUUID().slice(0, 8)}`);
    const key = await newSshKey();
    const { id } = (await (await register(tenant.id, key.authorizedKey)).json()) as { id: string };
    const now = Math.floor(Date.now() / 1000);
    expect((await signed(key, "GET", "/api/tags", { ts: now })).res.status).toBe(200);
    expect((await call("DELETE", `/admin/signing-keys/${id}`, { key: ADMIN })).status).toBe(200);
    expect((await signed(key, "GET", "/api/tags", { ts: now - 1 })).res.status).toBe(401);
    const listed = await call("GET", `/admin/tenants/${tenant.id}/signing-keys`, { key: ADMIN });
    expect(await listed.json()).toMatchObject({ signing_keys: [{ id, revoked_at: expect.any(Number) }] });
    expect((await register(tenant.id, key.authorizedKey)).status).toBe(201);
  });

  it.each([
    ["an RSA key line", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== me@host"],
    ["garbage", "not a key"],
    ["a truncated blob", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA=="],
  ])("refuses to register %s", async (_, publicKey) => {
    const tenant = await newTenant(`signer-${crypto.randomUUID().slice(0, 8)}`);
    const res = await register(tenant.id, publicKey);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "invalid public key: expected an ssh-ed25519 key as in ~/.ollama/id_ed25519.pub",
    });
  });
});

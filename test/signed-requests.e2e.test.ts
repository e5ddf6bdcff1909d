/**
 * The stock Ollama client's signed requests (OLLAMA_AUTH=1) against the running stack, in the Go client's exact
 * formats (api/client.go, auth/auth.go): the test writes an ed25519 key's `.pub` line as ssh.MarshalAuthorizedKey
 * writes ~/.ollama/id_ed25519.pub, registers it with the operator CLI (`npm run admin -- signing-key:add`), and
 * sends `Authorization: <wire blob>:<signature>` over `METHOD,PATH?ts=<unix seconds>` with `ts` in the query.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { repoRoot } from "./harness";
import { SCRIPTED_SENTENCE } from "./inference-support";

const { url, adminKey } = inject("stack");
const dir = mkdtempSync(join(tmpdir(), "corral-ollama-key-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** SSH wire strings: each a uint32 big-endian length and its bytes. */
function wire(...parts: Buffer[]): Buffer {
  return Buffer.concat(
    parts.map((part) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(part.length);
      return Buffer.concat([length, part]);
    }),
  );
}

/** An ed25519 key and its `.pub` file, in the forms Ollama's Go code reads and writes. */
function writeOllamaKey(): { pubFile: string; blob: string; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  // The raw 32-byte key is the tail of the DER SubjectPublicKeyInfo.
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const blob = wire(Buffer.from("ssh-ed25519"), raw).toString("base64");
  const pubFile = join(dir, "id_ed25519.pub");
  writeFileSync(pubFile, `ssh-ed25519 ${blob}\n`);
  return { pubFile, blob, privateKey };
}

/** auth.Sign: "<public key without its type>:<base64 of the raw signature>". */
const token = (key: { blob: string; privateKey: KeyObject }, challenge: string) =>
  `${key.blob}:${sign(null, Buffer.from(challenge), key.privateKey).toString("base64")}`;

function admin(...args: string[]): unknown {
  const out = execFileSync(process.execPath, ["--import", "tsx", "scripts/admin.ts", ...args], {
    cwd: repoRoot,
    env: { ...process.env, CORRAL_HOST: url, CORRAL_ADMIN_KEY: adminKey },
    encoding: "utf8",
  });
  return JSON.parse(out);
}

/** A request as api/client.go's `do`/`stream` make it. */
async function signedFetch(key: { blob: string; privateKey: KeyObject }, method: string, path: string, body?: unknown) {
  const ts = String(Math.floor(Date.now() / 1000));
  return fetch(`${url}${path}?ts=${ts}`, {
    method,
    headers: { authorization: token(key, `${method},${path}?ts=${ts}`), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe("signed requests from the Ollama client", () => {
  it("chats as the tenant whose key the operator registered, until the key is revoked", async () => {
    const key = writeOllamaKey();
    const tenants = admin("tenants") as { tenants: { id: string; name: string }[] };
    const dev = tenants.tenants.find((t) => t.name === "dev");
    if (!dev) throw new Error("the local stack's dev tenant is missing");
    const registered = admin("signing-key:add", dev.id, key.pubFile, "e2e") as { id: string; public_key: string };
    expect(registered.public_key).toBe(key.blob);

    const res = await signedFetch(key, "POST", "/api/chat", {
      model: "scripted",
      messages: [{ role: "user", content: "Say it." }],
      stream: false,
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { message: { content: string } }).message.content).toBe(SCRIPTED_SENTENCE);

    admin("signing-key:revoke", registered.id);
    const refused = await signedFetch(key, "GET", "/api/tags");
    expect(refused.status).toBe(401);
  });

  it("refuses a key nobody registered", async () => {
    const res = await signedFetch(writeOllamaKey(), "GET", "/api/tags");
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "unauthorized" });
  });
});

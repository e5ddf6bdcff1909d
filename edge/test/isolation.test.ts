/**
 * Isolation matrix: tenant B, on every endpoint, gets exactly the answer it would get for something that does
 * not exist when it names tenant A's models and blobs — and nothing of A's changes.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { call, newTenant } from "./helpers";
import { createFromGguf, digest, ggufModel, json, snapshot, upload } from "./registry-fixtures";

let a = { id: "", key: "" };
let b = { id: "", key: "" };
const aWeights = ggufModel({ salt: 50 });
const aLoose = ggufModel({ salt: 51 }); // uploaded by A, used by no model

beforeAll(async () => {
  a = await newTenant("iso-a");
  b = await newTenant("iso-b");
  await createFromGguf(a.key, "secret", aWeights, { system: "A's system prompt" });
  expect((await upload(a.key, aLoose)).status).toBe(201);
});

/** Status and body of a response, with the one name that differs replaced so both answers can be compared. */
async function answer(res: Response, name: string): Promise<string> {
  const text = await res.text();
  return `${res.status} ${text.split(name).join("<name>")}`;
}

type Probe = (key: string, name: string) => Promise<Response>;

const modelProbes: Record<string, Probe> = {
  show: (key, name) => call("POST", "/api/show", { key, body: { model: name } }),
  "show verbose": (key, name) => call("POST", "/api/show", { key, body: { model: name, verbose: true } }),
  "copy from": (key, name) => call("POST", "/api/copy", { key, body: { source: name, destination: "stolen" } }),
  delete: (key, name) => call("DELETE", "/api/delete", { key, body: { model: name } }),
  "create from": (key, name) => call("POST", "/api/create", { key, body: { model: "stolen", from: name } }),
  "create FROM (modelfile)": (key, name) =>
    call("POST", "/api/create", { key, body: { name: "stolen", modelfile: `FROM ${name}` } }),
};

describe("models of another tenant read as missing", () => {
  it.each(Object.entries(modelProbes))("%s", async (_label, probe) => {
    const before = await snapshot();
    const theirs = await answer(await probe(b.key, "secret"), "secret");
    const missing = await answer(await probe(b.key, "nothing-here"), "nothing-here");
    expect(theirs).toBe(missing);
    expect(theirs.startsWith("404")).toBe(true);
    expect(await snapshot()).toBe(before);
  });

  it("tags lists only the tenant's own models", async () => {
    const tags = await json<{ models: unknown[] }>(await call("GET", "/api/tags", { key: b.key }));
    expect(tags.models).toEqual([]);
    const own = await json<{ models: { name: string }[] }>(await call("GET", "/api/tags", { key: a.key }));
    expect(own.models.map((m) => m.name)).toEqual(["secret:latest"]);
  });
});

const blobProbes: Record<string, Probe> = {
  HEAD: (key, d) => call("HEAD", `/api/blobs/${d}`, { key }),
  "create files": (key, d) => call("POST", "/api/create", { key, body: { model: "stolen", files: { "m.gguf": d } } }),
  "create FROM digest": (key, d) =>
    call("POST", "/api/create", { key, body: { model: "stolen", modelfile: `FROM ${d}` } }),
  "create adapter": (key, d) =>
    call("POST", "/api/create", { key, body: { model: "stolen", from: "mine", adapters: { "a.gguf": d } } }),
};

describe("blobs of another tenant read as missing", () => {
  beforeAll(async () => {
    await createFromGguf(b.key, "mine", ggufModel({ salt: 52 }));
  });

  it.each(Object.entries(blobProbes))("%s (used by A's model, and uploaded-only by A)", async (_label, probe) => {
    const never = digest(ggufModel({ salt: 53 }));
    for (const theirs of [digest(aWeights), digest(aLoose)]) {
      const before = await snapshot();
      const got = await answer(await probe(b.key, theirs), theirs);
      const missing = await answer(await probe(b.key, never), never);
      expect(got).toBe(missing);
      expect(Number(got.slice(0, 3))).toBeGreaterThanOrEqual(400);
      expect(await snapshot()).toBe(before);
    }
  });
});

describe("same names, separate namespaces", () => {
  it("B's model of the same name is unrelated to A's, and deleting it leaves A's intact", async () => {
    await createFromGguf(b.key, "secret", ggufModel({ salt: 54 }), { system: "B's own" });
    const showA = await json(await call("POST", "/api/show", { key: a.key, body: { model: "secret" } }));
    const showB = await json(await call("POST", "/api/show", { key: b.key, body: { model: "secret" } }));
    expect(showA.system).toBe("A's system prompt");
    expect(showB.system).toBe("B's own");
    expect((await call("DELETE", "/api/delete", { key: b.key, body: { model: "secret" } })).status).toBe(200);
    expect((await call("POST", "/api/show", { key: a.key, body: { model: "secret" } })).status).toBe(200);
    expect((await call("HEAD", `/api/blobs/${digest(aWeights)}`, { key: a.key })).status).toBe(200);
  });

  it("a blob both tenants use survives until neither needs it", async () => {
    const shared = ggufModel({ salt: 55 });
    await createFromGguf(a.key, "shared-a", shared);
    await createFromGguf(b.key, "shared-b", shared);
    expect((await call("DELETE", "/api/delete", { key: a.key, body: { model: "shared-a" } })).status).toBe(200);
    expect((await call("HEAD", `/api/blobs/${digest(shared)}`, { key: a.key })).status).toBe(404);
    expect((await call("HEAD", `/api/blobs/${digest(shared)}`, { key: b.key })).status).toBe(200);
    expect((await call("POST", "/api/show", { key: b.key, body: { model: "shared-b", verbose: true } })).status).toBe(
      200,
    );
  });
});

/**
 * Bad input drawn from Ollama's security history: each case must get a 4xx and leave D1 and the bucket exactly
 * as they were (snapshots of every registry table's rows and of the bucket's keys, before and after).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { call, newTenant } from "./helpers";
import { badGgufs, createFromGguf, digest, ggufModel, snapshot, upload } from "./registry-fixtures";

let key = "";
beforeAll(async () => {
  key = (await newTenant("bad-input")).key;
  // Something to protect: a model and its blobs that no bad request may touch.
  await createFromGguf(key, "victim", ggufModel({ salt: 40 }), { system: "keep me" });
});

async function expectRejected(send: () => Promise<Response>): Promise<void> {
  const before = await snapshot();
  const res = await send();
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(((await res.json()) as { error: unknown }).error).toEqual(expect.any(String));
  expect(await snapshot()).toBe(before);
}

const longPart = "a".repeat(81);
const badNames = [
  ["parent traversal", "../../etc/passwd"],
  ["absolute path", "/etc/passwd"],
  ["windows path", "C:\\models\\x"],
  ["over-long model part", longPart],
  ["over-long namespace", `${longPart}/model`],
  ["over-long tag", `model:${longPart}`],
  ["empty", ""],
  ["dot dot part", "ns/../model"],
  ["unicode", "modèle"],
] as const;

describe("bad names", () => {
  it.each(badNames)("create refuses %s", async (_label, name) => {
    const d = digest(ggufModel({ salt: 40 }));
    await expectRejected(() => call("POST", "/api/create", { key, body: { model: name, files: { "m.gguf": d } } }));
  });
  it.each(badNames)("copy refuses %s as destination", async (_label, name) => {
    await expectRejected(() => call("POST", "/api/copy", { key, body: { source: "victim", destination: name } }));
  });
  it.each(badNames)("copy refuses %s as source", async (_label, name) => {
    await expectRejected(() => call("POST", "/api/copy", { key, body: { source: name, destination: "x" } }));
  });
  it.each(badNames)("delete refuses %s", async (_label, name) => {
    await expectRejected(() => call("DELETE", "/api/delete", { key, body: { model: name } }));
  });
  it.each(badNames)("show refuses %s", async (_label, name) => {
    await expectRejected(() => call("POST", "/api/show", { key, body: { model: name } }));
  });
});

const badDigests = [
  ["parent traversal", "../../../etc/passwd"],
  ["encoded traversal", "sha256:..%2F..%2Fetc%2Fpasswd"],
  ["absolute path", "%2Fetc%2Fpasswd"],
  ["uppercase", `sha256:${"AB".repeat(32)}`],
  ["short", "sha256:abcd"],
  ["empty", ""],
  ["prefix only", "sha256:"],
  ["long", `sha256:${"a".repeat(65)}`],
] as const;

describe("bad digests", () => {
  it.each(badDigests)("POST /api/blobs refuses %s", async (_label, d) => {
    await expectRejected(() => call("POST", `/api/blobs/${d}`, { key, raw: "x", headers: { "content-length": "1" } }));
  });
  it.each(badDigests)("multipart start refuses %s", async (_label, d) => {
    await expectRejected(() => call("POST", `/api/blobs/${d}/uploads`, { key, body: { size: 10 } }));
  });
  it.each(badDigests.filter(([, d]) => d !== ""))("create files refuses %s", async (_label, d) => {
    await expectRejected(() =>
      call("POST", "/api/create", { key, body: { model: "x", files: { "m.gguf": decodeURIComponent(d) } } }),
    );
  });
  it('create refuses files: {"0.gguf": ""}', async () => {
    await expectRejected(() => call("POST", "/api/create", { key, body: { model: "x", files: { "0.gguf": "" } } }));
  });
  it.each([["../m.gguf"], ["/abs/m.gguf"], ["a/../../m.gguf"]])("create refuses file name %s", async (name) => {
    const d = digest(ggufModel({ salt: 40 }));
    await expectRejected(() => call("POST", "/api/create", { key, body: { model: "x", files: { [name]: d } } }));
  });
  it("create refuses an adapter with an empty digest", async () => {
    const d = digest(ggufModel({ salt: 40 }));
    await expectRejected(() =>
      call("POST", "/api/create", { key, body: { model: "x", files: { "m.gguf": d }, adapters: { "a.gguf": "" } } }),
    );
  });
});

describe("bad GGUF blobs", () => {
  it.each(Object.entries(badGgufs))("create refuses a %s, writing nothing", async (label, make) => {
    const bytes = make();
    expect((await upload(key, bytes)).status).toBe(201);
    await expectRejected(() =>
      call("POST", "/api/create", {
        key,
        body: { model: `bad-${label.replace(/\W/g, "")}`, files: { "m.gguf": digest(bytes) } },
      }),
    );
    await expectRejected(() =>
      call("POST", "/api/create", { key, body: { model: "bad-mf", modelfile: `FROM ${digest(bytes)}` } }),
    );
  });

  it("create refuses a blob that was never uploaded", async () => {
    const d = digest(ggufModel({ salt: 41 }));
    await expectRejected(() => call("POST", "/api/create", { key, body: { model: "x", files: { "m.gguf": d } } }));
  });
});

describe("Modelfiles naming server paths or broken syntax", () => {
  it.each([
    ["FROM /etc/passwd"],
    ["FROM ./model.gguf"],
    ["FROM ../../models/x.gguf"],
    ["FROM ~/models/x.gguf"],
    ["FROM C:\\models\\x.gguf"],
    ["FROM model.gguf"],
    ["FROM victim\nADAPTER /etc/passwd"],
    ["FROM victim\nADAPTER ./lora.gguf"],
    ["FROM sha256:xyz"],
    ["SYSTEM no from line"],
    ['FROM victim\nSYSTEM """unterminated'],
    ["FROM victim\nBOGUS command"],
    ["FROM victim\nPARAMETER nonsense 1"],
    ["FROM victim\nPARAMETER temperature hot"],
    ["FROM victim\nMESSAGE robot hi"],
    ["FROM victim\nTEMPLATE {{ if .System }}unclosed"],
  ])("create refuses %j", async (modelfile) => {
    await expectRejected(() => call("POST", "/api/create", { key, body: { model: "x", modelfile } }));
  });

  it.each([["/etc/passwd"], ["./x.gguf"]])("create refuses from: %j", async (from) => {
    await expectRejected(() => call("POST", "/api/create", { key, body: { model: "x", from } }));
  });

  it("create refuses a server path for the Modelfile itself", async () => {
    await expectRejected(() => call("POST", "/api/create", { key, body: { model: "x", path: "/etc/Modelfile" } }));
  });
});

describe("bad bodies", () => {
  it.each([
    ["empty body", "/api/create", ""],
    ["not JSON", "/api/create", "{nope"],
    ["array", "/api/show", "[]"],
    ["wrong field type", "/api/copy", '{"source": 1, "destination": "x"}'],
    ["neither from nor files", "/api/create", '{"model": "x"}'],
  ])("%s is a 400", async (_label, path, raw) => {
    await expectRejected(() => call("POST", path, { key, raw, headers: { "content-type": "application/json" } }));
  });
});

/**
 * A create's NDJSON stream always ends with `success` or one `{"error": …}` line, whatever cuts it. Here the fault
 * is real: the runner is a real server on loopback (network-servers.ts `cutJob`) whose connection drops in the middle
 * of the job's answer, and the edge reads it through workerd's own network stack.
 */
import { createExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, inject, it } from "vitest";
import { createApp } from "../src/app";
import { call, newTenant } from "./helpers";
import { digest, ggufModel, json, snapshot, upload } from "./registry-fixtures";
import { bindings, heartbeat, resetFleet, runnerStatus } from "./relay-fixtures";

const { cutJob, silent } = inject("networkServers");
const source = ggufModel({ salt: 61, fileType: 0 });
let tenant: { id: string; key: string };

beforeEach(async () => {
  await resetFleet();
  tenant = await newTenant(`stream-end-${crypto.randomUUID().slice(0, 8)}`);
  expect((await upload(tenant.key, source)).status).toBe(201);
});

const createWithRunner = async (url: string) => {
  await heartbeat(runnerStatus("cut", { url }));
  return call("POST", "/api/create", {
    key: tenant.key,
    body: { model: "cut", files: { "m.gguf": digest(source) }, quantize: "q8_0" },
  });
};

/** The raw body split at newlines, the last piece kept even when unterminated: a cut line shows as such. */
async function rawLines(res: Response): Promise<string[]> {
  const text = await res.text();
  expect(text.endsWith("\n")).toBe(true);
  return text.slice(0, -1).split("\n");
}

describe("create stream: the runner's connection drops mid-job", () => {
  it.each([
    ["between two lines", "between"],
    ["inside a line", "mid-line"],
  ])("%s: the stream ends with one error line naming the runner, and nothing is created", async (_label, where) => {
    const before = await snapshot();
    const res = await createWithRunner(`http://127.0.0.1:${cutJob}/${where}`);
    expect(res.status).toBe(200);
    const lines = (await rawLines(res)).map((l) => JSON.parse(l) as { status?: string; error?: string });
    expect(lines.at(-1)?.error).toMatch(/^lost the connection to runner cut during the quantize job \(.+\)$/);
    expect(lines.filter((l) => l.error !== undefined)).toHaveLength(1);
    expect(lines.some((l) => l.status === "success")).toBe(false);
    const tags = await json<{ models: unknown[] }>(await call("GET", "/api/tags", { key: tenant.key }));
    expect(tags.models).toEqual([]);
    expect(await snapshot()).toBe(before);
  });
});

/** With the silence limit shrunk (RUNNER_JOB_SILENCE_MS) so that the test waits a moment, not a minute. */
async function createWithSilentRunner(url: string): Promise<Response> {
  await heartbeat(runnerStatus("cut", { url }));
  const request = new Request("http://corral.test/api/create", {
    method: "POST",
    headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "cut", files: { "m.gguf": digest(source) }, quantize: "q8_0" }),
  });
  return createApp().fetch(request, { ...bindings, RUNNER_JOB_SILENCE_MS: "300" }, createExecutionContext());
}

describe("create stream: a runner that goes silent", () => {
  it.each([
    [
      "after its first line",
      `http://127.0.0.1:${cutJob}/stall`,
      /^runner cut sent nothing for 0.3 s during the quantize job$/,
    ],
    [
      "before answering at all",
      `http://127.0.0.1:${silent}`,
      /^cannot quantize right now \(runner cut did not answer within 0.3 s\), please try again$/,
    ],
  ])("%s: the stream ends with one error line, and nothing is created", async (_label, url, message) => {
    const before = await snapshot();
    const res = await createWithSilentRunner(url);
    expect(res.status).toBe(200);
    const lines = (await rawLines(res)).map((l) => JSON.parse(l) as { status?: string; error?: string });
    expect(lines[0]).toEqual({ status: "parsing GGUF" });
    expect(lines.at(-1)?.error).toMatch(message);
    expect(lines.filter((l) => l.error !== undefined)).toHaveLength(1);
    expect(await snapshot()).toBe(before);
  });
});

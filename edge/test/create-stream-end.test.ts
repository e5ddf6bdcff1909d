/**
 * A create's NDJSON stream always ends with `success` or one `{"error": …}` line, whatever cuts it. Here the fault
 * is real: the runner is a real server on loopback (network-servers.ts `cutJob`) whose connection drops in the middle
 * of the job's answer, and the edge reads it through workerd's own network stack.
 */
import { beforeEach, describe, expect, inject, it } from "vitest";
import { call, newTenant } from "./helpers";
import { digest, ggufModel, json, snapshot, upload } from "./registry-fixtures";
import { heartbeat, resetFleet, runnerStatus } from "./relay-fixtures";

const { cutJob } = inject("networkServers");
const source = ggufModel({ salt: 61, fileType: 0 });
let tenant: { id: string; key: string };

beforeEach(async () => {
  await resetFleet();
  tenant = await newTenant(`stream-end-${crypto.randomUUID().slice(0, 8)}`);
  expect((await upload(tenant.key, source)).status).toBe(201);
});

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
    await heartbeat(runnerStatus("cut", { url: `http://127.0.0.1:${cutJob}/${where}` }));
    const before = await snapshot();
    const res = await call("POST", "/api/create", {
      key: tenant.key,
      body: { model: "cut", files: { "m.gguf": digest(source) }, quantize: "q8_0" },
    });
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

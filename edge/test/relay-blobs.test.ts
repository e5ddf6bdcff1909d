import { digestOf } from "@corral/protocol/digest";
import { beforeAll, describe, expect, it } from "vitest";
import { blobKey } from "../src/store/store";
import { call } from "./helpers";
import { bindings, RUNNER_SECRET } from "./relay-fixtures";

const bytes = new TextEncoder().encode("0123456789abcdefghij");
const digest = digestOf(bytes);
const path = (d: string) => `/internal/blobs/${d}`;

beforeAll(async () => {
  await bindings.BLOBS.put(blobKey(digest), bytes);
});

describe("GET /internal/blobs/:digest", () => {
  it("streams the whole blob", async () => {
    const res = await call("GET", path(digest), { key: RUNNER_SECRET });
    expect(res.status).toBe(200);
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("content-length")).toBe("20");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  it("accepts Ollama's file-name spelling of the digest", async () => {
    const res = await call("GET", path(digest.replace(":", "-")), { key: RUNNER_SECRET });
    expect(await res.text()).toBe("0123456789abcdefghij");
  });

  it.each([
    ["bytes=0-3", "0123", "bytes 0-3/20"],
    ["bytes=10-", "abcdefghij", "bytes 10-19/20"],
    ["bytes=-5", "fghij", "bytes 15-19/20"],
    ["bytes=18-99", "ij", "bytes 18-19/20"],
  ])("answers Range %s with 206", async (range, body, contentRange) => {
    const res = await call("GET", path(digest), { key: RUNNER_SECRET, headers: { range } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(contentRange);
    expect(res.headers.get("content-length")).toBe(String(body.length));
    expect(await res.text()).toBe(body);
  });

  it("answers a range past the end with 416", async () => {
    const res = await call("GET", path(digest), { key: RUNNER_SECRET, headers: { range: "bytes=50-60" } });
    expect(res.status).toBe(416);
    expect(res.headers.get("content-range")).toBe("bytes */20");
  });

  it.each([
    ["a malformed digest", "sha256:xyz", 400],
    ["an upper-case digest", `sha256:${"A".repeat(64)}`, 400],
    ["a path escape", "..%2F..%2Fetc", 400],
    ["an unknown digest", `sha256:${"0".repeat(64)}`, 404],
  ])("answers %s with a 4xx", async (_label, d, status) => {
    const res = await call("GET", path(d), { key: RUNNER_SECRET });
    expect(res.status).toBe(status);
  });

  it("is for runners only", async () => {
    expect((await call("GET", path(digest))).status).toBe(401);
  });
});

/**
 * The soak suite's generator of bad inputs: each must be refused with a 4xx and change nothing. Classes: malformed
 * JSON and UTF-8, malformed GGUF, Ollama's CVE classes (path traversal in model names and digests — CVE-2024-37032;
 * a crafted GGUF — CVE-2024-39720; a model name that is a huge string), absurd options and huge numbers (the bound
 * table of issue #9: one request must not take the fleet down).
 */
import { createHash } from "node:crypto";

export interface BadInput {
  name: string;
  /**
   * `refused`: a 4xx. `handled`: a 2xx or a 4xx, never a 5xx — where Ollama itself accepts the input (Go's JSON
   * decoder turns invalid UTF-8 in strings into U+FFFD), corral may too.
   */
  expect?: "refused" | "handled";
  endpoint: string;
  method?: string;
  path?: string;
  body?: unknown;
  rawBody?: string | Uint8Array;
  /** A blob the bad create names, uploaded first as an ordinary (valid) upload. */
  blob?: Uint8Array;
}

const digestOf = (bytes: Uint8Array | string) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const generate = (extra: Record<string, unknown>) => ({ model: "tiny", prompt: "x", stream: false, ...extra });
const options = (o: Record<string, unknown>) => generate({ options: o });

/** A GGUF header that claims far more tensors than it holds (the crafted-GGUF class). */
function lyingGguf(): Uint8Array {
  const b = Buffer.alloc(24);
  b.write("GGUF", 0, "latin1");
  b.writeUInt32LE(3, 4);
  b.writeBigUInt64LE(0xffff_ffff_ffffn, 8);
  b.writeBigUInt64LE(0xffff_ffff_ffffn, 16);
  return b;
}

export function badInputs(tinyGguf: Uint8Array): BadInput[] {
  const truncated = tinyGguf.subarray(0, 4096);
  const notGguf = new TextEncoder().encode("this is not a model at all ".repeat(40));
  const createFrom = (name: string, blob: Uint8Array): BadInput => ({
    name,
    endpoint: "/api/create",
    body: { model: `bad-${name}`, files: { "m.gguf": digestOf(blob) }, stream: false },
    blob,
  });
  return [
    { name: "malformed JSON", endpoint: "/api/generate", rawBody: '{"model": "tiny", "prompt": ' },
    { name: "JSON array body", endpoint: "/api/chat", rawBody: "[1,2,3]" },
    {
      name: "invalid UTF-8",
      expect: "handled",
      endpoint: "/api/generate",
      rawBody: new Uint8Array([...Buffer.from('{"model":"tiny","prompt":"'), 0xff, 0xfe, 0xc3, ...Buffer.from('"}')]),
    },
    {
      name: "huge number literal",
      endpoint: "/api/generate",
      rawBody: '{"model":"tiny","prompt":"x","options":{"seed":1e999}}',
    },
    { name: "traversal in model name", endpoint: "/api/generate", body: generate({ model: "../../../etc/passwd" }) },
    { name: "traversal in show", endpoint: "/api/show", body: { model: "..%2F..%2Fetc%2Fpasswd" } },
    { name: "traversal in copy", endpoint: "/api/copy", body: { source: "tiny", destination: "../../outside:latest" } },
    { name: "traversal in delete", endpoint: "/api/delete", method: "DELETE", body: { model: "../../tiny" } },
    { name: "traversal in pull", endpoint: "/api/pull", body: { model: "127.0.0.1:1/../../x:latest", stream: false } },
    {
      name: "traversal in digest",
      endpoint: "/api/blobs",
      path: "/api/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd",
      rawBody: "x",
    },
    { name: "short digest", endpoint: "/api/blobs", path: "/api/blobs/sha256:abc", rawBody: "x" },
    {
      name: "blob body not matching its digest",
      endpoint: "/api/blobs",
      path: `/api/blobs/${digestOf("something else")}`,
      rawBody: "hello",
    },
    {
      name: "create from an unknown digest",
      endpoint: "/api/create",
      body: { model: "bad-unknown", files: { "m.gguf": digestOf("nope") } },
    },
    createFrom("create from a non-GGUF blob", notGguf),
    createFrom("create from a truncated GGUF", truncated),
    createFrom("create from a GGUF with absurd counts", lyingGguf()),
    {
      name: "malformed template",
      endpoint: "/api/create",
      body: { model: "bad-template", from: "tiny", template: "{{ range", stream: false },
    },
    { name: "model name of 100 KB", endpoint: "/api/show", body: { model: "m".repeat(100_000) } },
    { name: "options of the wrong type", endpoint: "/api/generate", body: options({ temperature: "hot" }) },
    { name: "image that is not base64", endpoint: "/api/generate", body: generate({ images: ["not base64!!"] }) },
    { name: "num_ctx 2^31", endpoint: "/api/generate", body: options({ num_ctx: 2_147_483_648 }) },
    { name: "num_predict 2^53", endpoint: "/api/generate", body: options({ num_predict: 2 ** 53 }) },
    { name: "num_batch 10^12", endpoint: "/api/generate", body: options({ num_batch: 1e12 }) },
    {
      name: "top_k 10^15",
      endpoint: "/api/chat",
      body: { model: "tiny", messages: [{ role: "user", content: "x" }], stream: false, options: { top_k: 1e15 } },
    },
    { name: "keep_alive of 10^9 hours", endpoint: "/api/generate", body: generate({ keep_alive: "1000000000h" }) },
    {
      name: "embed batch of 100000 inputs",
      endpoint: "/api/embed",
      body: { model: "tiny", input: Array(100_000).fill("x") },
    },
    {
      name: "quantize to an unknown type",
      endpoint: "/api/create",
      body: { model: "bad-q", from: "tiny", quantize: "q1_x", stream: false },
    },
  ];
}

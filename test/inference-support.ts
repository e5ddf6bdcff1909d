/**
 * Small helpers shared by the cross-process inference tests (test/inference-*.e2e.test.ts): an authenticated
 * `ollama` client, raw JSON calls for what the client does not cover, stream collection, and the built-in
 * models' ChatML (gpu-runner/src/tiny-model/chat-template.ts) written out by hand, so that a chat can be compared
 * with the same prompt sent raw.
 */
import { Ollama } from "ollama";

/** A qwen2.5-style Go template (the runner's template tests use the same one). */
export { QWEN_STYLE_TEMPLATE } from "../gpu-runner/src/test-support";
export {
  SCRIPTED_SENTENCE,
  SCRIPTED_TOOL_CALL_FUNCTION,
} from "../gpu-runner/src/tiny-model/scripts";

export function client(url: string, key: string): Ollama {
  return new Ollama({ host: url, headers: { Authorization: `Bearer ${key}` } });
}

export interface RawResponse {
  status: number;
  body: Record<string, unknown>;
}

/** A JSON request outside the client (create with `files`, admin API, error bodies). */
export async function api(
  url: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<RawResponse> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}

/** Drains a client stream: every chunk, and the last one (the done chunk with the stats). */
export async function collect<T extends { done: boolean }>(
  stream: AsyncIterable<T>,
): Promise<{ chunks: T[]; last: T }> {
  const chunks: T[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  const last = chunks.at(-1);
  if (!last) throw new Error("the stream ended without a chunk");
  return { chunks, last };
}

export interface ChatTurn {
  role: string;
  content: string;
}

/** What the built-in models' chat template renders for plain messages (no tools): ChatML with the reply opened. */
export function chatml(messages: readonly ChatTurn[]): string {
  return `${messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join("")}<|im_start|>assistant\n`;
}

export function l2norm(vector: readonly number[]): number {
  return Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
}

export function cosine(a: readonly number[], b: readonly number[]): number {
  const dot = a.reduce((sum, x, i) => sum + x * (b[i] ?? 0), 0);
  return dot / (l2norm(a) * l2norm(b));
}

/** Polls `probe` until it returns true or the deadline passes; answers whether it did. */
export async function eventually(probe: () => Promise<boolean>, deadlineMs: number, everyMs = 250): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

/** A model name no other test uses, so that parallel runs and reruns never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
}

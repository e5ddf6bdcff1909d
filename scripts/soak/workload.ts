/**
 * What each soak client does: a seeded random mix of Ollama and OpenAI inference (streamed or not, some aborted),
 * model management (create, copy, delete, quantize), pull/push through a real registry, and bad inputs. Every
 * request is recorded; completed streamed answers with a fixed seed at temperature 0 are kept for the replay check.
 */
import { createHash } from "node:crypto";
import { type BadInput, badInputs } from "./bad-inputs";
import { type SoakRequest, type SoakResult, send } from "./client";
import type { RequestRecord } from "./invariants";

export interface Tenant {
  name: string;
  key: string;
}

/** A streamed answer kept for replay: the request (sent again with `stream: false`) and what it streamed. */
export interface ReplaySample {
  label: string;
  endpoint: string;
  body: Record<string, unknown>;
  key: string;
  tenant: string;
  text: string;
  tokens: number;
}

export interface WorkloadContext {
  baseUrl: string;
  registryHost: string;
  tinyGguf: Uint8Array;
  records: RequestRecord[];
  samples: ReplaySample[];
  /** Quantize jobs are CPU-heavy: one at a time across the soak. */
  quantizeBusy: { value: boolean };
  timeoutMs: number;
  stopAt: number;
}

/** mulberry32: a small seeded PRNG, so a run's mix of requests is reproducible from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PROMPTS = [
  "Why is the sky blue?",
  "Write a haiku about rust.",
  "List three primes.",
  "hello",
  "Tell me a story.",
];
const MAX_SAMPLES = 40;
const RETRY_PAUSE_MS = 250;

type Op = (ctx: WorkloadContext, t: Tenant, random: () => number, n: number) => Promise<void>;

/** Sends and records one request; after a dropped connection or a 5xx, waits a moment as a real client would. */
async function record(ctx: WorkloadContext, req: Omit<SoakRequest, "timeoutMs">): Promise<SoakResult> {
  const result = await send(ctx.baseUrl, { timeoutMs: ctx.timeoutMs, ...req });
  ctx.records.push(result.record);
  if (result.record.outcome === "network_error" || result.record.outcome === "server_error") {
    await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
  }
  return result;
}

const pick = <T>(random: () => number, list: readonly T[]): T => list[Math.floor(random() * list.length)]!;

/** Generate, chat or OpenAI chat on `tiny` with a fixed seed at temperature 0; one in eight is aborted. */
const infer: Op = async (ctx, t, random) => {
  const kind = pick(random, ["generate", "chat", "openai"] as const);
  const stream = random() < 0.6;
  const prompt = pick(random, PROMPTS);
  const seed = 1 + Math.floor(random() * 5);
  const maxTokens = 4 + Math.floor(random() * 20);
  const abortAfterMs = stream && random() < 0.125 ? 20 + Math.floor(random() * 800) : undefined;
  const body: Record<string, unknown> =
    kind === "generate"
      ? { model: "tiny", prompt, stream, options: { seed, temperature: 0, num_predict: maxTokens } }
      : kind === "chat"
        ? {
            model: "tiny",
            messages: [{ role: "user", content: prompt }],
            stream,
            options: { seed, temperature: 0, num_predict: maxTokens },
          }
        : {
            model: "tiny",
            messages: [{ role: "user", content: prompt }],
            stream,
            seed,
            temperature: 0,
            max_tokens: maxTokens,
            ...(stream ? { stream_options: { include_usage: true } } : {}),
          };
  const endpoint = kind === "generate" ? "/api/generate" : kind === "chat" ? "/api/chat" : "/v1/chat/completions";
  const result = await record(ctx, {
    tenant: t.name,
    key: t.key,
    endpoint,
    body,
    stream,
    ...(abortAfterMs === undefined ? {} : { abortAfterMs }),
  });
  const tokens = result.record.outputTokens;
  if (stream && result.record.outcome === "ok" && tokens !== undefined && ctx.samples.length < MAX_SAMPLES) {
    ctx.samples.push({
      label: `${t.name} ${endpoint} #${ctx.records.length}`,
      endpoint,
      body,
      key: t.key,
      tenant: t.name,
      text: result.text,
      tokens,
    });
  }
};

const embed: Op = async (ctx, t, random) => {
  const openai = random() < 0.3;
  const input = Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(random, PROMPTS));
  await record(ctx, {
    tenant: t.name,
    key: t.key,
    endpoint: openai ? "/v1/embeddings" : "/api/embed",
    body: { model: "tiny", input },
    stream: false,
  });
};

/** Create a model from `tiny`, copy it, delete both: no step may leave a half-written model behind. */
const manage: Op = async (ctx, t, random, n) => {
  const name = `soak-${n}`;
  const created = await record(ctx, {
    tenant: t.name,
    key: t.key,
    endpoint: "/api/create",
    body: { model: name, from: "tiny", system: `You are soak model ${n}.`, stream: random() < 0.5 },
    stream: false,
  });
  if (created.record.outcome !== "ok") return;
  await record(ctx, {
    tenant: t.name,
    key: t.key,
    endpoint: "/api/copy",
    body: { source: name, destination: `${name}-copy` },
    stream: false,
  });
  for (const model of [name, `${name}-copy`]) {
    await record(ctx, {
      tenant: t.name,
      key: t.key,
      method: "DELETE",
      endpoint: "/api/delete",
      body: { model },
      stream: false,
    });
  }
};

/** Copy `tiny` to a registry name, push it, delete it locally, pull it back, delete it again. */
const registry: Op = async (ctx, t, random, n) => {
  const name = `${ctx.registryHost}/soak/${t.name}-${n}:latest`;
  const stream = random() < 0.5;
  const step = (endpoint: string, body: Record<string, unknown>, method?: string) =>
    record(ctx, {
      tenant: t.name,
      key: t.key,
      endpoint,
      body,
      stream: body.stream === true,
      ...(method ? { method } : {}),
    });
  if ((await step("/api/copy", { source: "tiny", destination: name })).record.outcome !== "ok") return;
  const pushed = await step("/api/push", { model: name, insecure: true, stream });
  await step("/api/delete", { model: name }, "DELETE");
  if (pushed.record.outcome !== "ok") return;
  if ((await step("/api/pull", { model: name, insecure: true, stream })).record.outcome === "ok") {
    await step("/api/delete", { model: name }, "DELETE");
  }
};

const quantize: Op = async (ctx, t, _random, n) => {
  if (ctx.quantizeBusy.value) return;
  ctx.quantizeBusy.value = true;
  try {
    const name = `soak-q-${n}`;
    const result = await record(ctx, {
      tenant: t.name,
      key: t.key,
      endpoint: "/api/create",
      body: { model: name, from: "tiny", quantize: "q8_0", stream: false },
      stream: false,
    });
    if (result.record.outcome === "ok") {
      await record(ctx, {
        tenant: t.name,
        key: t.key,
        method: "DELETE",
        endpoint: "/api/delete",
        body: { model: name },
        stream: false,
      });
    }
  } finally {
    ctx.quantizeBusy.value = false;
  }
};

const digestOf = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

const badInput: Op = async (ctx, t, random) => {
  const bad: BadInput = pick(random, badInputs(ctx.tinyGguf));
  if (bad.blob) {
    // The upload itself is valid (a blob is any bytes); only creating a model from it must be refused.
    await record(ctx, {
      tenant: t.name,
      key: t.key,
      endpoint: "/api/blobs",
      path: `/api/blobs/${digestOf(bad.blob)}`,
      rawBody: bad.blob,
      stream: false,
    });
  }
  await record(ctx, {
    tenant: t.name,
    key: t.key,
    endpoint: bad.endpoint,
    stream: false,
    badInput: bad.name,
    ...(bad.expect === "handled" ? { badInputMayPass: true } : {}),
    ...(bad.method ? { method: bad.method } : {}),
    ...(bad.path ? { path: bad.path } : {}),
    ...(bad.body === undefined ? {} : { body: bad.body }),
    ...(bad.rawBody === undefined ? {} : { rawBody: bad.rawBody }),
  });
};

/** Weighted mix: mostly inference, as a real service sees; the rest exercises every other path. */
const MIX: [Op, number][] = [
  [infer, 50],
  [embed, 10],
  [manage, 8],
  [registry, 4],
  [quantize, 2],
  [badInput, 16],
];

function pickWeighted(mix: [Op, number][], at: number): Op {
  let left = at;
  for (const [op, weight] of mix) {
    if (left < weight) return op;
    left -= weight;
  }
  return mix[0]![0];
}

/** One client of one tenant: picks operations until the soak's end. */
export async function clientLoop(ctx: WorkloadContext, t: Tenant, seed: number): Promise<void> {
  const random = rng(seed);
  const total = MIX.reduce((s, [, w]) => s + w, 0);
  for (let n = 0; Date.now() < ctx.stopAt; n++) {
    const op = pickWeighted(MIX, random() * total);
    await op(ctx, t, random, seed * 10_000 + n);
  }
}

/**
 * PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors) as llama.cpp's convert_lora_to_gguf.py turns
 * them into a GGUF adapter on a base model: each `base_model.model.<hf name>.lora_A/B.weight` pair becomes
 * `<gguf name>.lora_a` / `.lora_b` under the base architecture's tensor naming, lora_b's rows permuted as the base
 * tensor's are (llama's Q/K), F32 throughout (the script's default outtype). Shared because the edge checks an adapter
 * against its base before any runner work starts, and the runner's converter writes by the same plan.
 */
import { type CheckpointTensor, type GgufArchitecture, ggufTensorName, permutedHeads } from "./checkpoint";
import { ApiError } from "./errors";
import { metadataNumber } from "./gguf/describe";
import type { GgufHeader } from "./gguf/reader";
import { type GgufMetadataEntry, kv } from "./gguf/writer";
import type { AdapterBaseWire } from "./runner";
import { CONVERTIBLE_DTYPES, type SafetensorsTensor } from "./safetensors";

/** What an adapter is checked against: the base model's GGUF, as its header tells. */
export interface AdapterBase {
  architecture: string;
  layers: number;
  heads: number;
  kvHeads: number;
  /** The base's weights the adapter targets: GGUF name → ggml dims ([in, out]). */
  tensors: ReadonlyMap<string, readonly number[]>;
}

export interface AdapterConfig {
  rank: number;
  alpha: number;
  /** The modules adapter_config.json lists, or null for PEFT's string forms ("all-linear" or a pattern). */
  targets: ReadonlySet<string> | null;
}

export interface AdapterTensor extends CheckpointTensor {
  /** lora_b of llama's Q/K: the head count its rows are permuted by. */
  permuteHeads: number | null;
}

export interface AdapterPlan {
  config: AdapterConfig;
  architecture: GgufArchitecture;
  /** In write order: per base tensor (layer by layer), its lora_a then its lora_b. */
  tensors: AdapterTensor[];
}

const LLAMA_MODULES: ReadonlySet<string> = new Set([
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
]);
/**
 * The architectures whose adapters convert, and the linear modules a LoRA can target on each. Their lora tensors go
 * through the converter's rules unchanged but for llama's Q/K permutation (Gemma's +1 is for norms, which a LoRA
 * does not target). Phi-3 keeps q/k/v and gate/up fused, as its GGUF does: a LoRA trained on the fused modules
 * applies as it is; one on a part of them cannot.
 */
const MODULES_BY_ARCHITECTURE: Readonly<Record<string, ReadonlySet<string>>> = {
  llama: LLAMA_MODULES,
  qwen2: LLAMA_MODULES,
  qwen3: LLAMA_MODULES,
  gemma2: LLAMA_MODULES,
  gemma3: LLAMA_MODULES,
  phi3: new Set(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]),
};
/** Phi-3's fused modules, by the parts a LoRA might name instead. */
const FUSED_IN: Readonly<Record<string, string>> = {
  q_proj: "qkv_proj",
  k_proj: "qkv_proj",
  v_proj: "qkv_proj",
  gate_proj: "gate_up_proj",
  up_proj: "gate_up_proj",
};
const KNOWN_MODULES = new Set(Object.values(MODULES_BY_ARCHITECTURE).flatMap((m) => [...m]));
const MAX_RANK = 4096;
const LORA_NAME = /^base_model\.model\.(model\.layers\.\d{1,4}\.(?:self_attn|mlp)\.(\w+))\.lora_(A|B)\.weight$/;

/** Parses adapter_config.json; a 400 naming the field for anything missing, out of range or not supported. */
export function parseAdapterConfig(text: string): AdapterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad("adapter_config.json is not valid JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw bad("adapter_config.json is not a JSON object");
  const c = raw as Record<string, unknown>;
  if (c.peft_type !== undefined && c.peft_type !== "LORA") {
    throw bad(`adapter_config.json peft_type ${JSON.stringify(c.peft_type)} is not supported, only LORA`);
  }
  if (c.use_dora === true) throw bad("DoRA adapters (use_dora) are not supported");
  if (c.fan_in_fan_out === true) throw bad("adapters with fan_in_fan_out are not supported");
  for (const key of ["rank_pattern", "alpha_pattern"]) {
    const v = c[key];
    if (v !== undefined && v !== null && (typeof v !== "object" || Object.keys(v).length > 0)) {
      throw bad(`adapter_config.json ${key} is not supported (one rank and alpha for every module)`);
    }
  }
  if (Array.isArray(c.modules_to_save) && c.modules_to_save.length > 0) {
    throw bad("adapter_config.json modules_to_save is not supported (fully trained modules are not a LoRA)");
  }
  const rank = c.r;
  if (typeof rank !== "number" || !Number.isInteger(rank) || rank < 1 || rank > MAX_RANK) {
    throw bad(`adapter_config.json r must be an integer from 1 to ${MAX_RANK}`);
  }
  const alpha = c.lora_alpha;
  if (typeof alpha !== "number" || !(alpha > 0) || alpha > 1e6)
    throw bad("adapter_config.json lora_alpha must be a number in (0, 1e6]");
  return { rank, alpha, targets: parseTargets(c.target_modules) };
}

function parseTargets(value: unknown): ReadonlySet<string> | null {
  if (typeof value === "string") return null;
  if (!Array.isArray(value) || value.length === 0 || value.some((m) => typeof m !== "string")) {
    throw bad("adapter_config.json target_modules must be a list of module names");
  }
  for (const m of value as string[]) {
    if (!KNOWN_MODULES.has(m)) {
      throw bad(`adapter target module ${JSON.stringify(m)} is not supported; known: ${[...KNOWN_MODULES].join(", ")}`);
    }
  }
  return new Set(value as string[]);
}

/**
 * Plans an adapter's conversion onto `base`: every tensor a lora_A/lora_B pair on a known module of a layer the base
 * has, ranks equal to `r`, A's input width and B's output width those of the base weight. Anything else is a 400.
 */
export function planAdapter(
  configText: string,
  file: string,
  tensors: readonly SafetensorsTensor[],
  base: AdapterBase,
): AdapterPlan {
  const config = parseAdapterConfig(configText);
  const modules = Object.hasOwn(MODULES_BY_ARCHITECTURE, base.architecture)
    ? MODULES_BY_ARCHITECTURE[base.architecture]!
    : null;
  if (!modules) {
    const supported = Object.keys(MODULES_BY_ARCHITECTURE).join(", ");
    throw bad(`LoRA adapters on ${base.architecture} models are not supported (only ${supported})`);
  }
  const architecture = base.architecture as GgufArchitecture;
  const pairs = new Map<string, { a?: SafetensorsTensor; b?: SafetensorsTensor }>();
  for (const t of tensors) {
    const match = LORA_NAME.exec(t.name);
    if (!match) {
      if (t.name.endsWith(".base_layer.weight")) continue;
      throw bad(`unexpected tensor ${t.name} in the adapter: only lora_A and lora_B weights of layers convert`);
    }
    const [, hfBase, module, side] = match;
    if (!KNOWN_MODULES.has(module!))
      throw bad(`adapter tensor ${t.name} targets module ${module}, which is not supported`);
    if (!modules.has(module!)) throw bad(moduleNotInBase(t.name, module!, base.architecture));
    if (config.targets && !config.targets.has(module!)) {
      throw bad(`adapter tensor ${t.name} targets ${module}, which adapter_config.json target_modules does not list`);
    }
    if (!CONVERTIBLE_DTYPES.has(t.dtype))
      throw bad(`adapter tensor ${t.name} has dtype ${t.dtype}; only F32, F16 and BF16 convert`);
    if (t.shape.length !== 2) throw bad(`adapter tensor ${t.name} has ${t.shape.length} dimensions, not 2`);
    const layer = Number(/\.layers\.(\d+)\./.exec(hfBase!)![1]);
    if (layer >= base.layers)
      throw bad(`adapter tensor ${t.name} is for layer ${layer}; the base model has ${base.layers}`);
    const name = ggufTensorName(`${hfBase}.weight`, { arch: architecture, layers: base.layers })!;
    const pair = pairs.get(name) ?? {};
    if (pair[side === "A" ? "a" : "b"]) throw bad(`adapter tensor ${t.name} appears twice`);
    pair[side === "A" ? "a" : "b"] = t;
    pairs.set(name, pair);
  }
  if (pairs.size === 0) throw bad("the adapter has no LoRA tensors");
  const out: AdapterTensor[] = [];
  for (const [name, { a, b }] of [...pairs].sort(([x], [y]) => layerOf(x) - layerOf(y))) {
    if (!a || !b) throw bad(`adapter tensor ${(a ?? b)!.name} has no lora_${a ? "B" : "A"} beside it`);
    checkPair(name, a, b, config.rank, base);
    const heads = permutedHeads({ arch: architecture, heads: base.heads, kvHeads: base.kvHeads }, name);
    if (heads !== null && b.shape[0]! % (2 * heads) !== 0) {
      throw bad(
        `adapter tensor ${b.name} has ${b.shape[0]} rows, not a whole number of rotary head pairs (${heads} heads)`,
      );
    }
    out.push({ ...a, name: `${name}.lora_a`, file, permuteHeads: null });
    out.push({ ...b, name: `${name}.lora_b`, file, permuteHeads: heads });
  }
  return { config, architecture, tensors: out };
}

function moduleNotInBase(tensor: string, module: string, architecture: string): string {
  const fused = architecture === "phi3" ? FUSED_IN[module] : undefined;
  return fused
    ? `adapter tensor ${tensor} targets ${module}, but phi3 models fuse it into ${fused}: a LoRA on a part of a fused ` +
        `weight cannot be applied (train it on ${fused})`
    : `adapter tensor ${tensor} targets ${module}, which ${architecture} models do not have`;
}

function checkPair(name: string, a: SafetensorsTensor, b: SafetensorsTensor, rank: number, base: AdapterBase): void {
  const [aRank, aIn] = a.shape as [number, number];
  const [bOut, bRank] = b.shape as [number, number];
  if (aRank !== rank || bRank !== rank) {
    throw bad(`adapter tensors ${a.name} [${a.shape}] and ${b.name} [${b.shape}] do not have rank r=${rank}`);
  }
  const dims = base.tensors.get(name);
  if (!dims) throw bad(`the base model has no tensor ${name} for adapter tensor ${a.name}: wrong base model?`);
  const [baseIn, baseOut] = dims as [number, number];
  if (aIn !== baseIn || bOut !== baseOut) {
    throw bad(
      `adapter tensors ${a.name} [${a.shape}] and ${b.name} [${b.shape}] do not fit the base model's ${name} ` +
        `(${baseOut} × ${baseIn}): wrong base model?`,
    );
  }
}

function layerOf(name: string): number {
  return Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? 0);
}

/** The keys convert_lora_to_gguf.py writes that llama.cpp reads: the base architecture, the type and alpha. */
export function adapterMetadata(plan: AdapterPlan): GgufMetadataEntry[] {
  return [
    kv.str("general.architecture", plan.architecture),
    kv.str("general.type", "adapter"),
    kv.str("adapter.type", "lora"),
    kv.f32("adapter.lora.alpha", plan.config.alpha),
    kv.u32("general.quantization_version", 2),
  ];
}

function bad(message: string): ApiError {
  return new ApiError(400, message);
}

/** The base model as an adapter is checked against, from its GGUF header. */
export function adapterBaseFromHeader(header: GgufHeader): AdapterBase {
  const architecture = header.metadata["general.architecture"];
  if (typeof architecture !== "string") throw bad("the base model's GGUF has no general.architecture");
  const whole = (key: string) => {
    const v = metadataNumber(header, `${architecture}.${key}`);
    if (v === undefined || !Number.isSafeInteger(v) || v < 1)
      throw bad(`the base model's GGUF has no ${architecture}.${key}`);
    return v;
  };
  const heads = whole("attention.head_count");
  return {
    architecture,
    layers: whole("block_count"),
    heads,
    kvHeads: `${architecture}.attention.head_count_kv` in header.metadata ? whole("attention.head_count_kv") : heads,
    tensors: new Map(header.tensors.filter((t) => t.dims.length === 2).map((t) => [t.name, t.dims])),
  };
}

/** The job's `adapter_base` for a planned adapter: the base's shape and the dims of the weights the adapter targets. */
export function adapterBaseWire(base: AdapterBase, plan: AdapterPlan): AdapterBaseWire {
  const targets = [...new Set(plan.tensors.map((t) => t.name.replace(/\.lora_[ab]$/, "")))];
  return {
    architecture: base.architecture,
    layers: base.layers,
    heads: base.heads,
    kv_heads: base.kvHeads,
    tensors: targets.map((name) => ({ name, dims: [...base.tensors.get(name)!] })),
  };
}

/** A convert job's `adapter_base` as the planner takes it. */
export function adapterBaseFromWire(wire: AdapterBaseWire): AdapterBase {
  return {
    architecture: wire.architecture,
    layers: wire.layers,
    heads: wire.heads,
    kvHeads: wire.kv_heads,
    tensors: new Map(wire.tensors.map((t) => [t.name, t.dims])),
  };
}

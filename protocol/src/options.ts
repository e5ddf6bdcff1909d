/**
 * Model options (`options` in requests, `parameters` in create, `PARAMETER` in Modelfiles) with Ollama's typing
 * rules from api/types.go: Options.FromMap for JSON maps and FormatParams for Modelfile text.
 */
import { ApiError } from "./errors";

type OptionKind = "int" | "float" | "bool" | "strings";

/**
 * Every option Ollama has documented. The `legacy` ones are gone from current Ollama's Options struct (it now
 * ignores them) but older clients still send them; they are type-checked as older Ollama did and the runner
 * may ignore them.
 */
export const OPTION_KINDS = {
  // Load-time (Ollama's Runner struct): changing one needs the model loaded again.
  num_ctx: "int",
  num_batch: "int",
  num_gpu: "int",
  main_gpu: "int",
  use_mmap: "bool",
  num_thread: "int",
  draft_num_predict: "int",
  // Load-time, legacy.
  numa: "bool",
  low_vram: "bool",
  f16_kv: "bool",
  logits_all: "bool",
  vocab_only: "bool",
  use_mlock: "bool",
  embedding_only: "bool",
  // Per request.
  num_keep: "int",
  seed: "int",
  num_predict: "int",
  top_k: "int",
  top_p: "float",
  min_p: "float",
  typical_p: "float",
  repeat_last_n: "int",
  temperature: "float",
  repeat_penalty: "float",
  presence_penalty: "float",
  frequency_penalty: "float",
  stop: "strings",
  // Per request, legacy.
  mirostat: "int",
  mirostat_tau: "float",
  mirostat_eta: "float",
  penalize_newline: "bool",
  tfs_z: "float",
} as const satisfies Record<string, OptionKind>;

export type OptionName = keyof typeof OPTION_KINDS;

interface KindValue {
  int: number;
  float: number;
  bool: boolean;
  strings: string[];
}

export type Options = { -readonly [K in OptionName]?: KindValue[(typeof OPTION_KINDS)[K]] };

/** Options current Ollama's Modelfile parser skips with a deprecation warning instead of storing. */
const DEPRECATED_PARAMETERS: ReadonlySet<string> = new Set([
  "penalize_newline",
  "low_vram",
  "f16_kv",
  "logits_all",
  "vocab_only",
  "use_mlock",
  "mirostat",
  "mirostat_tau",
  "mirostat_eta",
  "numa",
  "tfs_z",
  "embedding_only",
]);

export function isOptionName(name: string): name is OptionName {
  return Object.hasOwn(OPTION_KINDS, name);
}

const GO_KIND_NAME: Record<OptionKind, string> = {
  int: "integer",
  float: "float32",
  bool: "boolean",
  strings: "array",
};

/**
 * Validates an options map the way Ollama's Options.FromMap does: unknown keys and null values are ignored,
 * integers given as JSON numbers are truncated toward zero (Go converts the decoded float64), and a wrongly
 * typed known key is a 400 with Ollama's text, e.g. `option "temperature" must be of type float32`.
 */
export function validateOptions(raw: Record<string, unknown>): Options {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!isOptionName(key) || value === null || value === undefined) continue;
    const kind = OPTION_KINDS[key];
    const wrongType = () => new ApiError(400, `option ${JSON.stringify(key)} must be of type ${GO_KIND_NAME[kind]}`);
    switch (kind) {
      case "int":
        if (typeof value !== "number" || !Number.isFinite(value)) throw wrongType();
        out[key] = Math.trunc(value) || 0; // `|| 0` folds -0 from truncating e.g. -0.5
        break;
      case "float":
        if (typeof value !== "number" || !Number.isFinite(value)) throw wrongType();
        out[key] = value;
        break;
      case "bool":
        if (typeof value !== "boolean") throw wrongType();
        out[key] = value;
        break;
      case "strings":
        if (!Array.isArray(value)) throw wrongType();
        if (!value.every((item) => typeof item === "string")) {
          // Ollama's wording, grammar included.
          throw new ApiError(400, `option ${JSON.stringify(key)} must be of an array of strings`);
        }
        out[key] = [...value];
        break;
    }
  }
  return out as Options;
}

/** Layers option maps: later ones win key by key (model defaults < request options). */
export function mergeOptions(...layers: ReadonlyArray<Options | undefined>): Options {
  return Object.assign({}, ...layers.filter(Boolean)) as Options;
}

const GO_BOOL_TEXT: Record<string, boolean> = {
  "1": true,
  t: true,
  T: true,
  TRUE: true,
  true: true,
  True: true,
  "0": false,
  f: false,
  F: false,
  FALSE: false,
  false: false,
  False: false,
};

const INT_TEXT = /^[+-]?\d+$/;
const FLOAT_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Types one `PARAMETER <name> <value>` line of a Modelfile as Ollama's api.FormatParams does.
 * Returns undefined for parameters Ollama deprecated (it skips them with a warning), a one-element array for
 * `stop` (repeated lines accumulate — see parametersToOptions), else the typed value. Unknown names and
 * unparsable values are 400s with Ollama's texts (`unknown parameter 'x'`, `invalid int value [abc]`).
 * Stricter than Go in one way: inf/nan/hex floats and integers beyond 2^53 are refused.
 */
export function parseParameterValue(name: string, text: string): number | boolean | string[] | undefined {
  if (!isOptionName(name)) throw new ApiError(400, `unknown parameter '${name}'`);
  if (DEPRECATED_PARAMETERS.has(name)) return undefined;
  switch (OPTION_KINDS[name]) {
    case "int": {
      const value = Number(text);
      if (!INT_TEXT.test(text) || !Number.isSafeInteger(value)) {
        throw new ApiError(400, `invalid int value [${text}]`);
      }
      return value;
    }
    case "float": {
      const value = Number(text);
      if (!FLOAT_TEXT.test(text) || Math.abs(value) > FLOAT32_MAX) {
        throw new ApiError(400, `invalid float value [${text}]`);
      }
      return value;
    }
    case "bool": {
      const value = GO_BOOL_TEXT[text];
      if (value === undefined) throw new ApiError(400, `invalid bool value [${text}]`);
      return value;
    }
    case "strings":
      return [text];
  }
}

/** Builds an Options map from Modelfile PARAMETER lines in order; repeated `stop` lines add up. */
export function parametersToOptions(entries: Iterable<readonly [name: string, text: string]>): Options {
  const out: Record<string, unknown> = {};
  for (const [name, text] of entries) {
    const value = parseParameterValue(name, text);
    if (value === undefined) continue;
    const previous = out[name];
    out[name] = Array.isArray(value) && Array.isArray(previous) ? [...previous, ...value] : value;
  }
  return out as Options;
}

/**
 * Renders options as Ollama's /api/show `parameters` text: one `name value` line per value, names padded to
 * 30 columns, repeated lines for `stop`, strings quoted.
 */
export function formatParameters(options: Options): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(options)) {
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) {
      lines.push(`${name.padEnd(30)} ${typeof item === "string" ? JSON.stringify(item) : String(item)}`);
    }
  }
  return lines.join("\n");
}

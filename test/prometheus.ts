/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests that scrape `/metrics`: it
 * accepts what Prometheus accepts and throws, with the line number, on anything it would reject or that breaks the
 * format's rules (one HELP and TYPE per family, TYPE before the family's samples, a family's samples together, no
 * repeated series, the last line ending in a newline).
 *
 * Naming conventions that Prometheus' own linter (`promtool check metrics`) enforces are checked too: counters end
 * in `_total`, other types do not.
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  /** The sample's own name (`x_bucket` for a histogram family `x`). */
  name: string;
  labels: Record<string, string>;
  value: number;
  timestamp?: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help?: string;
  samples: Sample[];
}

export class PrometheusFormatError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: ReadonlySet<string> = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
/** Sample-name suffixes that belong to a histogram's or summary's family. */
const FAMILY_SUFFIXES: Record<string, readonly string[]> = {
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["_sum", "_count"],
};

/** Parses a whole scrape; throws PrometheusFormatError on the first violation. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  if (text !== "" && !text.endsWith("\n")) throw new PrometheusFormatError(lineCount(text), "missing final newline");
  const families = new Map<string, MetricFamily>();
  /** Families whose samples have ended (another family's samples came after them). */
  const closed = new Set<string>();
  const seenSeries = new Set<string>();
  /** Families with an explicit TYPE line (an explicit "untyped" counts). */
  const typed = new Set<string>();
  let current: string | undefined;

  const family = (name: string): MetricFamily => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: "untyped", samples: [] };
      families.set(name, f);
    }
    return f;
  };

  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const fail = (message: string): never => {
      throw new PrometheusFormatError(lineNo, message);
    };
    const line = raw.replace(/^[ \t]+/, "");
    if (line === "") return;
    if (line.startsWith("#")) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      // Any other comment is allowed and ignored.
      if (!m) return;
      const [, keyword, name = "", rest = ""] = m;
      if (!METRIC_NAME.test(name)) fail(`invalid metric name "${name}" in ${keyword}`);
      const f = family(name);
      if (closed.has(name)) fail(`${keyword} for ${name} after its samples ended`);
      if (keyword === "HELP") {
        if (f.help !== undefined) fail(`second HELP for ${name}`);
        f.help = unescapeHelp(rest, fail);
      } else {
        const type = rest.trim();
        if (!TYPES.has(type)) fail(`unknown type "${type}" for ${name}`);
        if (f.samples.length > 0) fail(`TYPE for ${name} after its first sample`);
        if (typed.has(name)) fail(`second TYPE for ${name}`);
        typed.add(name);
        f.type = type as MetricType;
      }
      switchTo(name);
      return;
    }

    const sample = parseSample(line, fail);
    const owner = familyOf(sample.name, families);
    const f = family(owner);
    if (closed.has(owner)) fail(`samples of ${owner} are not together`);
    switchTo(owner);
    if (f.type === "counter" && sample.value < 0) fail(`counter ${sample.name} is negative`);
    if (f.type === "histogram" && sample.name === `${owner}_bucket` && sample.labels.le === undefined) {
      fail(`${sample.name} without an le label`);
    }
    const key = seriesKey(sample);
    if (seenSeries.has(key)) fail(`duplicate series ${key}`);
    seenSeries.add(key);
    f.samples.push(sample);
  });

  for (const f of families.values()) {
    if (f.type === "counter" && !f.name.endsWith("_total")) {
      throw new PrometheusFormatError(0, `counter ${f.name} should end in _total`);
    }
    if (f.type !== "counter" && f.name.endsWith("_total")) {
      throw new PrometheusFormatError(0, `${f.type} ${f.name} should not end in _total (reserved for counters)`);
    }
  }
  return families;

  function switchTo(name: string) {
    if (current !== undefined && current !== name) closed.add(current);
    current = name;
  }
}

function lineCount(text: string): number {
  return text.split("\n").length;
}

/** The family a sample belongs to: its own name, or the histogram/summary it is a `_bucket`/`_sum`/`_count` of. */
function familyOf(sampleName: string, families: ReadonlyMap<string, MetricFamily>): string {
  for (const [type, suffixes] of Object.entries(FAMILY_SUFFIXES)) {
    for (const suffix of suffixes) {
      if (!sampleName.endsWith(suffix)) continue;
      const base = sampleName.slice(0, -suffix.length);
      if (families.get(base)?.type === type) return base;
    }
  }
  return sampleName;
}

function seriesKey(sample: Sample): string {
  const labels = Object.keys(sample.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(sample.labels[k])}`);
  return `${sample.name}{${labels.join(",")}}`;
}

function parseSample(line: string, fail: (message: string) => never): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) return fail(`invalid sample line "${line}"`);
  const name = nameMatch[0];
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === "{") {
    pos++;
    for (;;) {
      pos = skipBlanks(line, pos);
      if (line[pos] === "}") {
        pos++;
        break;
      }
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(pos));
      if (!labelMatch) return fail(`invalid label name in "${line}"`);
      const label = labelMatch[0];
      if (!LABEL_NAME.test(label) || label.startsWith("__")) fail(`reserved or invalid label name "${label}"`);
      if (label in labels) fail(`label ${label} repeated`);
      pos = skipBlanks(line, pos + label.length);
      if (line[pos] !== "=") fail(`expected = after label ${label}`);
      pos = skipBlanks(line, pos + 1);
      if (line[pos] !== '"') fail(`label ${label}'s value is not quoted`);
      const { value, end } = readLabelValue(line, pos + 1, fail);
      labels[label] = value;
      pos = skipBlanks(line, end);
      if (line[pos] === ",") {
        pos++;
        continue;
      }
      if (line[pos] !== "}") fail(`expected , or } after label ${label}`);
    }
  }
  const rest = line.slice(pos);
  const m = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(rest);
  if (!m?.[1]) return fail(`expected a value after ${name}: "${rest}"`);
  const sample: Sample = { name, labels, value: parseValue(m[1], fail) };
  if (m[2] !== undefined) sample.timestamp = Number(m[2]);
  return sample;
}

function skipBlanks(line: string, pos: number): number {
  while (line[pos] === " " || line[pos] === "\t") pos++;
  return pos;
}

function readLabelValue(line: string, start: number, fail: (message: string) => never): { value: string; end: number } {
  let value = "";
  for (let i = start; i < line.length; i++) {
    const ch = line[i];
    if (ch === '"') return { value, end: i + 1 };
    if (ch !== "\\") {
      value += ch;
      continue;
    }
    const next = line[++i];
    if (next === "\\") value += "\\";
    else if (next === '"') value += '"';
    else if (next === "n") value += "\n";
    else fail(`invalid escape \\${next ?? ""} in a label value`);
  }
  return fail("unterminated label value");
}

function unescapeHelp(text: string, fail: (message: string) => never): string {
  return text.replace(/\\(.?)/g, (_, ch: string) => {
    if (ch === "\\") return "\\";
    if (ch === "n") return "\n";
    return fail(`invalid escape \\${ch} in HELP`);
  });
}

/** Go's ParseFloat as Prometheus uses it: decimal or exponent notation, Inf and NaN spelled its way. */
function parseValue(text: string, fail: (message: string) => never): number {
  if (/^[+-]?Inf$/.test(text)) return text.startsWith("-") ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) fail(`invalid value "${text}"`);
  return Number(text);
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when none, throws on several. */
export function sampleValue(
  families: ReadonlyMap<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const matches = [...families.values()]
    .flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matches.length > 1) throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matches[0]?.value;
}

/** Sum of every sample of `name` whose labels include `labels` (0 when there are none). */
export function sampleSum(
  families: ReadonlyMap<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  return [...families.values()]
    .flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

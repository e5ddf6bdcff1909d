/**
 * `keep_alive` values: a number of seconds or a Go duration string, as Ollama's api.Duration reads them.
 */
import { ApiError } from "./errors";

const NANOS_PER_UNIT: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3, // micro sign
  "\u03bcs": 1e3, // Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const MAX_DURATION_NANOS = 2 ** 63 - 1;

const quote = (s: string) => JSON.stringify(s);

/**
 * Go's time.ParseDuration: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, e.g. "300ms", "1.5h", "1h30m", "-1s", "0".
 * Returns nanoseconds (a float: sub-nanosecond precision is irrelevant here); errors carry Go's texts.
 */
export function parseGoDuration(text: string): number {
  const invalid = () => new ApiError(400, `time: invalid duration ${quote(text)}`);
  let s = text;
  let negative = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    negative = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") throw invalid();

  let total = 0;
  while (s !== "") {
    const number = /^(\d*)(?:\.(\d*))?/.exec(s)!;
    const [consumed, whole = "", fraction] = number;
    if (whole === "" && (fraction === undefined || fraction === "")) throw invalid();
    s = s.slice(consumed.length);

    let unitLength = 0;
    while (unitLength < s.length && !/[0-9.]/.test(s[unitLength]!)) unitLength++;
    if (unitLength === 0) throw new ApiError(400, `time: missing unit in duration ${quote(text)}`);
    const unit = s.slice(0, unitLength);
    s = s.slice(unitLength);
    const scale = NANOS_PER_UNIT[unit];
    if (scale === undefined) {
      throw new ApiError(400, `time: unknown unit ${quote(unit)} in duration ${quote(text)}`);
    }
    total += Number(`${whole || "0"}.${fraction || "0"}`) * scale;
    if (total > MAX_DURATION_NANOS) throw invalid();
  }
  return negative ? -total : total;
}

/** Go's reflect type names for what a JSON value decodes to, as they appear in Ollama's error texts. */
export function goTypeOfJson(value: unknown): string {
  if (value === null) return "<nil>";
  if (Array.isArray(value)) return "[]interface {}";
  switch (typeof value) {
    case "boolean":
      return "bool";
    case "number":
      return "float64";
    case "string":
      return "string";
    default:
      return "map[string]interface {}";
  }
}

/**
 * Reads a `keep_alive` value into milliseconds: null when unset (use the default), Infinity when negative
 * (keep loaded forever), 0 to unload right after the request. Numbers are seconds; strings are Go durations.
 * One leniency beyond Ollama: a string holding a bare number ("-1", "300") counts as seconds, as Ollama's
 * OLLAMA_KEEP_ALIVE setting does, because clients copy that form into requests.
 */
export function parseKeepAlive(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  let millis: number;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new ApiError(400, `invalid keep_alive value ${value}`);
    millis = value * 1000;
  } else if (typeof value === "string") {
    const trimmed = value.trim();
    millis = /^[-+]?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) * 1000 : parseGoDuration(value) / 1e6;
  } else {
    throw new ApiError(400, `Unsupported type: '${goTypeOfJson(value)}'`);
  }
  if (millis < 0 || millis * 1e6 > MAX_DURATION_NANOS) return Number.POSITIVE_INFINITY;
  return millis;
}

/** Formats milliseconds back into a keep_alive value that parseKeepAlive reads identically (-1 for forever). */
export function formatKeepAlive(millis: number): number | string {
  if (millis === Number.POSITIVE_INFINITY) return -1;
  return `${Math.round(millis)}ms`;
}

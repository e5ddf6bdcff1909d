// text/template's predefined functions (funcs.go). `and`/`or` are evaluated lazily by the executor; the rest are
// plain functions over the value model of ./values.

import { formatValue, sprint, sprintf, sprintln } from "./fmt";
import {
  compareStrings,
  type GoFunc,
  isTrue,
  kindOf,
  mapGet,
  mapSize,
  typeName,
  utf8Decoder,
  utf8Encoder,
  utf8Length,
} from "./values";

type BasicKind = "bool" | "int" | "float" | "string" | null;

function basicKind(v: unknown): BasicKind {
  const k = kindOf(v);
  return k === "bool" || k === "int" || k === "float" || k === "string" ? k : null;
}

/** Go's indirectInterface: a nil interface becomes the invalid value. */
const indirect = (v: unknown): unknown => (v === null ? undefined : v);

const isNilValue = (v: unknown): boolean => v === undefined || v === null;

function eq(arg1: unknown, ...rest: unknown[]): boolean {
  const a = indirect(arg1);
  if (rest.length === 0) throw new Error("missing argument for comparison");
  const k1 = basicKind(a);
  for (const raw of rest) {
    const b = indirect(raw);
    const k2 = basicKind(b);
    let truth = false;
    if (k1 !== k2) {
      if (a !== undefined && b !== undefined) throw new Error("incompatible types for comparison");
    } else if (k1 !== null) {
      truth = a === b;
    } else {
      const kindA = kindOf(a);
      const kindB = kindOf(b);
      if (kindA !== kindB && a !== undefined && b !== undefined) {
        throw new Error(
          `non-comparable types ${sprintf("%s", [a])}: ${typeName(a)}, ${typeName(b)}: ${formatValue(b)}`,
        );
      }
      if (isNilValue(a) || isNilValue(b)) truth = isNilValue(a) === isNilValue(b);
      else if (kindB === "slice" || kindB === "map" || kindB === "func") {
        throw new Error(`non-comparable type ${sprintf("%s", [b])}: ${typeName(b)}`);
      } else truth = a === b;
    }
    if (truth) return true;
  }
  return false;
}

function lt(arg1: unknown, arg2: unknown): boolean {
  const a = indirect(arg1);
  const b = indirect(arg2);
  const k1 = basicKind(a);
  const k2 = basicKind(b);
  if (k1 === null || k2 === null) throw new Error("invalid type for comparison");
  if (k1 !== k2) throw new Error("incompatible types for comparison");
  switch (k1) {
    case "bool":
      throw new Error("invalid type for comparison");
    case "string":
      return compareStrings(a as string, b as string) < 0;
    default:
      return (a as number | bigint) < (b as number | bigint);
  }
}

const le = (a: unknown, b: unknown): boolean => lt(a, b) || eq(a, b);

function indexArg(index: unknown, cap: number): number {
  const i = indirect(index);
  if (typeof i !== "bigint") {
    if (i === undefined) throw new Error("cannot index slice/array with nil");
    throw new Error(`cannot index slice/array with type ${typeName(i)}`);
  }
  if (i < 0n || i > BigInt(cap)) throw new Error(`index out of range: ${i}`);
  return Number(i);
}

function index(item: unknown, ...indexes: unknown[]): unknown {
  let cur = indirect(item);
  if (cur === undefined) throw new Error("index of untyped nil");
  for (const idx of indexes) {
    if (cur === null || cur === undefined) throw new Error("index of nil pointer");
    switch (kindOf(cur)) {
      case "slice": {
        const arr = cur as unknown[];
        const x = indexArg(idx, arr.length);
        // Go's indexArg lets x == len through and reflect then panics.
        if (x >= arr.length) throw new Error("reflect: slice index out of range");
        cur = arr[x];
        break;
      }
      case "string": {
        const bytes = utf8Encoder.encode(cur as string);
        const x = indexArg(idx, bytes.length);
        if (x >= bytes.length) throw new Error("reflect: string index out of range");
        cur = BigInt(bytes[x]!);
        break;
      }
      case "map": {
        const key = indirect(idx);
        if (key !== undefined && typeof key !== "string") {
          throw new Error(`value has type ${typeName(key)}; should be string`);
        }
        const { found, value } = mapGet(cur as object, key ?? "");
        cur = found ? value : null;
        break;
      }
      default:
        throw new Error(`can't index item of type ${typeName(cur)}`);
    }
  }
  return cur;
}

function slice(item: unknown, ...indexes: unknown[]): unknown {
  const v = indirect(item);
  if (v === undefined) throw new Error("slice of untyped nil");
  if (indexes.length > 3) throw new Error(`too many slice indexes: ${indexes.length}`);
  let bytes: Uint8Array | null = null;
  let len: number;
  if (typeof v === "string") {
    if (indexes.length === 3) throw new Error("cannot 3-index slice a string");
    bytes = utf8Encoder.encode(v);
    len = bytes.length;
  } else if (Array.isArray(v)) {
    len = v.length;
  } else {
    throw new Error(`can't slice item of type ${typeName(v)}`);
  }
  const idx = [0, len, len];
  indexes.forEach((x, i) => {
    idx[i] = indexArg(x, len);
  });
  if (idx[0]! > idx[1]!) throw new Error(`invalid slice index: ${idx[0]} > ${idx[1]}`);
  if (indexes.length === 3 && idx[1]! > idx[2]!) throw new Error(`invalid slice index: ${idx[1]} > ${idx[2]}`);
  if (bytes) return utf8Decoder.decode(bytes.subarray(idx[0], idx[1]));
  return (v as unknown[]).slice(idx[0], idx[1]);
}

function length(item: unknown): bigint {
  if (item === undefined || item === null) {
    throw new Error("reflect: call of reflect.Value.Type on zero Value");
  }
  switch (kindOf(item)) {
    case "string":
      return BigInt(utf8Length(item as string));
    case "slice":
      return BigInt((item as unknown[]).length);
    case "map":
      return BigInt(mapSize(item as object));
    default:
      throw new Error(`len of type ${typeName(item)}`);
  }
}

/** text/template's evalArgs: one string argument as is, otherwise fmt.Sprint with invalid values as <no value>. */
function evalArgs(args: unknown[]): string {
  if (args.length === 1 && typeof args[0] === "string") return args[0];
  return sprint(args.map((a) => (a === undefined || a === null ? "<no value>" : a)));
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "\0": "\ufffd",
  '"': "&#34;",
  "'": "&#39;",
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
};

export function htmlEscape(s: string): string {
  return s.replace(/[\0"'&<>]/g, (c) => HTML_ESCAPES[c]!);
}

export function jsEscape(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === "'") out += "\\'";
    else if (ch === '"') out += '\\"';
    else if (ch === "<") out += "\\u003C";
    else if (ch === ">") out += "\\u003E";
    else if (ch === "&") out += "\\u0026";
    else if (ch === "=") out += "\\u003D";
    else if (cp < 0x20) out += `\\u00${cp.toString(16).toUpperCase().padStart(2, "0")}`;
    else if (cp < 0x80 || /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) out += ch;
    else out += `\\u${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  }
  return out;
}

/** url.QueryEscape. */
export function queryEscape(s: string): string {
  let out = "";
  for (const b of utf8Encoder.encode(s)) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === " ") out += "+";
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const fn = (params: GoFunc["params"], call: GoFunc["call"], variadic?: GoFunc["variadic"]): GoFunc =>
  variadic ? { params, variadic, call } : { params, call };

/** Builtins other than and/or, which the executor special-cases for short-circuiting. */
export const BUILTINS: ReadonlyMap<string, GoFunc> = new Map<string, GoFunc>([
  ["and", fn(["value"], () => undefined, "value")],
  ["or", fn(["value"], () => undefined, "value")],
  ["not", fn(["value"], (a) => !isTrue(indirect(a)))],
  ["eq", fn(["value"], (a, ...rest) => eq(a, ...rest), "value")],
  ["ne", fn(["value", "value"], (a, b) => !eq(a, b))],
  ["lt", fn(["value", "value"], lt)],
  ["le", fn(["value", "value"], le)],
  ["gt", fn(["value", "value"], (a, b) => !le(a, b))],
  ["ge", fn(["value", "value"], (a, b) => !lt(a, b))],
  ["len", fn(["value"], length)],
  ["index", fn(["value"], index, "value")],
  ["slice", fn(["value"], slice, "value")],
  ["print", fn([], (...args) => sprint(args), "any")],
  ["println", fn([], (...args) => sprintln(args), "any")],
  ["printf", fn(["string"], (format, ...args) => sprintf(format as string, args), "any")],
  ["html", fn([], (...args) => htmlEscape(evalArgs(args)), "any")],
  ["js", fn([], (...args) => jsEscape(evalArgs(args)), "any")],
  ["urlquery", fn([], (...args) => queryEscape(evalArgs(args)), "any")],
  [
    "call",
    fn(
      ["value"],
      (f) => {
        if (isNilValue(f)) throw new Error("call of nil");
        throw new Error(`non-function of type ${typeName(f)}`);
      },
      "value",
    ),
  ],
]);

// How JavaScript values stand in for Go values inside the template engine.
//
//   undefined           invalid reflect.Value ("<no value>"): a missing map key, an unset variable
//   null                nil interface / nil pointer
//   boolean, string     bool, string
//   bigint              int (template integer literals, len, range indexes, int struct fields)
//   number              float64 (what encoding/json decodes numbers into)
//   Array               slice
//   Map                 map with insertion-ordered JSON (an ordered map); ranges sorted like any Go map
//   other object        map[string]any (sorted keys when ranged, printed or marshalled)
//   object + goStruct   struct: fixed fields (missing ones are an execution error), JSON tags
//
// Extra Go behaviour rides on a non-enumerable symbol: Stringer/Marshaler methods, nil-ness of empty slices/maps,
// struct-ness and type names for error messages.

export const GO_META: unique symbol = Symbol("corral.goMeta");

export interface JsonFieldSpec {
  readonly name: string;
  readonly omitEmpty?: boolean;
}

export type ParamType = "any" | "value" | "string" | "int" | "bool";

/** A Go function callable from templates. Throwing an Error becomes "error calling NAME: message". */
export interface GoFunc {
  readonly params: readonly ParamType[];
  /** Element type of a trailing variadic parameter. */
  readonly variadic?: ParamType;
  readonly call: (...args: unknown[]) => unknown;
}

export interface GoMeta {
  readonly typeName?: string;
  readonly struct?: boolean;
  /** JSON names per Go field; null means `json:"-"`. Fields without an entry marshal under their Go name. */
  readonly json?: Readonly<Record<string, JsonFieldSpec | null>>;
  /** An empty slice/map that is nil in Go: prints as [] / map[], marshals as null. */
  readonly nil?: boolean;
  /** fmt.Stringer. */
  readonly string?: () => string;
  /** json.Marshaler; must return compact JSON. */
  readonly marshalJSON?: () => string;
  /** Methods reachable as `.Name args...`. */
  readonly methods?: Readonly<Record<string, GoFunc>>;
}

export function withMeta<T extends object>(value: T, meta: GoMeta): T {
  Object.defineProperty(value, GO_META, { value: meta, enumerable: false, configurable: true });
  return value;
}

export function metaOf(v: unknown): GoMeta | undefined {
  return typeof v === "object" && v !== null ? (v as { [GO_META]?: GoMeta })[GO_META] : undefined;
}

/** A Go struct value with the given exported fields (object key order is field order). */
export function goStruct<T extends Record<string, unknown>>(
  typeName: string,
  fields: T,
  extra: Omit<GoMeta, "struct" | "typeName"> = {},
): T {
  return withMeta(fields, { ...extra, typeName, struct: true });
}

export function goNilSlice(typeName?: string): unknown[] {
  return withMeta([], { nil: true, typeName });
}

export function goNilMap(typeName?: string): Record<string, unknown> {
  return withMeta({}, { nil: true, typeName });
}

export type GoKind = "invalid" | "nil" | "bool" | "int" | "float" | "string" | "slice" | "map" | "struct" | "func";

export function kindOf(v: unknown): GoKind {
  switch (typeof v) {
    case "undefined":
      return "invalid";
    case "boolean":
      return "bool";
    case "bigint":
      return "int";
    case "number":
      return "float";
    case "string":
      return "string";
    case "function":
      return "func";
    case "object":
      if (v === null) return "nil";
      if (Array.isArray(v)) return "slice";
      if (metaOf(v)?.struct) return "struct";
      return "map";
    default:
      return "invalid";
  }
}

/** Go's reflect type name, for error messages such as "can't evaluate field X in type string". */
export function typeName(v: unknown): string {
  const named = metaOf(v)?.typeName;
  if (named) return named;
  switch (kindOf(v)) {
    case "int":
      return "int";
    case "float":
      return "float64";
    case "string":
      return "string";
    case "bool":
      return "bool";
    case "slice":
      return "[]interface {}";
    case "map":
      return "map[string]interface {}";
    case "struct":
      return "struct {}";
    case "func":
      return "func()";
    default:
      return "interface {}";
  }
}

/** Go's template truth: the zero value of every type is false, structs are always true. */
export function isTrue(v: unknown): boolean {
  switch (kindOf(v)) {
    case "invalid":
    case "nil":
      return false;
    case "bool":
      return v as boolean;
    case "int":
      return (v as bigint) !== 0n;
    case "float":
      return (v as number) !== 0;
    case "string":
      return (v as string).length > 0;
    case "slice":
      return (v as unknown[]).length > 0;
    case "map":
      return mapSize(v as object) > 0;
    default:
      return true;
  }
}

export function mapSize(m: object): number {
  return m instanceof Map ? m.size : Object.keys(m).length;
}

/** Compares strings as Go does (UTF-8 byte order, which is code point order). */
export function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // Surrogates (astral code points) sort after every BMP code unit in code point order.
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? 1 : -1;
    return ca < cb ? -1 : 1;
  }
  return a.length - b.length;
}

/** Map entries in Go's iteration order for range/fmt (sorted keys). */
export function sortedEntries(m: object): [string, unknown][] {
  const entries: [string, unknown][] =
    m instanceof Map ? [...m.entries()].map(([k, v]) => [String(k), v]) : Object.entries(m);
  return entries.sort(([a], [b]) => compareStrings(a, b));
}

/** Map lookup; undefined when the key is absent. */
export function mapGet(m: object, key: string): { found: boolean; value: unknown } {
  if (m instanceof Map) return { found: m.has(key), value: m.get(key) };
  return Object.hasOwn(m, key)
    ? { found: true, value: (m as Record<string, unknown>)[key] }
    : { found: false, value: undefined };
}

export const utf8Encoder = new TextEncoder();
export const utf8Decoder = new TextDecoder("utf-8", { fatal: false });

export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

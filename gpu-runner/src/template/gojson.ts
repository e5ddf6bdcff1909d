// encoding/json.Marshal as Ollama's `json` template function produces it: compact, map keys sorted, struct fields
// in declaration order under their json tags, and <, >, & escaped as \u003c \u003e \u0026.

import { formatJSONFloat } from "./gofloat";
import { compareStrings, kindOf, metaOf } from "./values";

export class JSONMarshalError extends Error {}

const HEX = "0123456789abcdef";

/** Go's encodeState.string with HTML escaping. */
export function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1);
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else {
        out += "\ufffd"; // invalid UTF-16 stands in for Go's invalid UTF-8
      }
      continue;
    }
    switch (c) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += "\\\\";
        continue;
      case 0x0a:
        out += "\\n";
        continue;
      case 0x0d:
        out += "\\r";
        continue;
      case 0x09:
        out += "\\t";
        continue;
      case 0x08:
        out += "\\b";
        continue;
      case 0x0c:
        out += "\\f";
        continue;
    }
    if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      out += `\\u${c < 0x100 ? `00${HEX[c >> 4]}${HEX[c & 0xf]}` : c.toString(16)}`;
      continue;
    }
    out += s[i];
  }
  return `${out}"`;
}

function isEmptyValue(v: unknown): boolean {
  switch (kindOf(v)) {
    case "invalid":
    case "nil":
      return true;
    case "bool":
      return v === false;
    case "int":
      return v === 0n;
    case "float":
      return v === 0;
    case "string":
      return v === "";
    case "slice":
      return (v as unknown[]).length === 0;
    case "map":
      return v instanceof Map ? v.size === 0 : Object.keys(v as object).length === 0;
    default:
      return false;
  }
}

/** json.Marshal; throws JSONMarshalError where Go returns an error (NaN, Inf). */
export function marshalJSON(v: unknown): string {
  const meta = metaOf(v);
  if (meta?.marshalJSON) return meta.marshalJSON();
  switch (kindOf(v)) {
    case "invalid":
    case "nil":
    case "func":
      return "null";
    case "bool":
      return v ? "true" : "false";
    case "int":
      return (v as bigint).toString();
    case "float": {
      const f = v as number;
      if (!Number.isFinite(f)) throw new JSONMarshalError(`json: unsupported value: ${formatJSONFloat(f)}`);
      return formatJSONFloat(f);
    }
    case "string":
      return jsonString(v as string);
    case "slice":
      return meta?.nil ? "null" : `[${(v as unknown[]).map(marshalJSON).join(",")}]`;
    case "map": {
      if (meta?.nil) return "null";
      // A JS Map is an ordered map (Ollama's orderedmap); plain objects are Go maps with sorted keys.
      const entries =
        v instanceof Map
          ? [...v.entries()].map(([k, val]): [string, unknown] => [String(k), val])
          : Object.entries(v as object).sort(([a], [b]) => compareStrings(a, b));
      return `{${entries.map(([k, val]) => `${jsonString(k)}:${marshalJSON(val)}`).join(",")}}`;
    }
    case "struct": {
      const parts: string[] = [];
      for (const [field, val] of Object.entries(v as object)) {
        const spec = meta?.json?.[field];
        if (spec === null) continue;
        if (spec?.omitEmpty && isEmptyValue(val)) continue;
        parts.push(`${jsonString(spec?.name ?? field)}:${marshalJSON(val)}`);
      }
      return `{${parts.join(",")}}`;
    }
  }
}

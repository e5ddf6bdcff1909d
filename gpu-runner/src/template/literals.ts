// Go literal syntax used inside template actions: strconv.Unquote for "..." / `...` / '.' and the number rules of
// text/template/parse.newNumber (an integer literal is an int, a literal with . e E p P is a float).

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: false });

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = {
  a: 7,
  b: 8,
  f: 12,
  n: 10,
  r: 13,
  t: 9,
  v: 11,
  "\\": 92,
};

/** Decodes the escapes of a Go interpreted literal body; returns null on invalid syntax. */
function decodeEscapes(body: string, quote: '"' | "'"): number[] | null {
  const bytes: number[] = [];
  for (let i = 0; i < body.length; ) {
    const cp = body.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    if (ch === quote || ch === "\n") return null;
    if (ch !== "\\") {
      bytes.push(...utf8.encode(ch));
      i += ch.length;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return null;
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      bytes.push(simple);
      i += 2;
    } else if (e === quote) {
      bytes.push(quote.charCodeAt(0));
      i += 2;
    } else if (e === "x" || e === "u" || e === "U") {
      const n = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = body.slice(i + 2, i + 2 + n);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== n) return null;
      const v = Number.parseInt(hex, 16);
      if (e === "x") bytes.push(v);
      else {
        if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return null;
        bytes.push(...utf8.encode(String.fromCodePoint(v)));
      }
      i += 2 + n;
    } else if (e >= "0" && e <= "7") {
      const oct = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct)) return null;
      const v = Number.parseInt(oct, 8);
      if (v > 255) return null;
      bytes.push(v);
      i += 4;
    } else {
      return null;
    }
  }
  return bytes;
}

/** strconv.Unquote for "..." and `...` literals; null when the syntax is invalid. */
export function unquoteString(lit: string): string | null {
  if (lit.length < 2) return null;
  const q = lit[0];
  if (q !== lit[lit.length - 1]) return null;
  const body = lit.slice(1, -1);
  if (q === "`") {
    if (body.includes("`")) return null;
    // Go drops carriage returns from raw strings.
    return body.replaceAll("\r", "");
  }
  if (q !== '"') return null;
  const bytes = decodeEscapes(body, '"');
  return bytes ? utf8Decoder.decode(new Uint8Array(bytes)) : null;
}

/** Value of a Go rune literal such as 'a' or '\n'; null when invalid. */
export function unquoteChar(lit: string): number | null {
  if (lit.length < 3 || lit[0] !== "'" || lit[lit.length - 1] !== "'") return null;
  const body = lit.slice(1, -1);
  if (!body.startsWith("\\")) {
    const cp = body.codePointAt(0)!;
    return String.fromCodePoint(cp).length === body.length ? cp : null;
  }
  const bytes = decodeEscapes(body, "'");
  if (!bytes || bytes.length === 0) return null;
  if (body[1] === "x" || (body[1]! >= "0" && body[1]! <= "7")) return bytes.length === 1 ? bytes[0]! : null;
  const s = utf8Decoder.decode(new Uint8Array(bytes));
  const cp = s.codePointAt(0)!;
  return String.fromCodePoint(cp).length === s.length ? cp : null;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** strconv.ParseInt/ParseUint with base 0 (prefixes 0x 0o 0b, legacy leading-0 octal, underscores). */
function parseGoInteger(text: string): bigint | null {
  let s = text;
  let neg = false;
  if (s.startsWith("+") || s.startsWith("-")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  let base = 10;
  let prefixed = false;
  if (/^0[xX]/.test(s)) {
    base = 16;
    s = s.slice(2);
    prefixed = true;
  } else if (/^0[oO]/.test(s)) {
    base = 8;
    s = s.slice(2);
    prefixed = true;
  } else if (/^0[bB]/.test(s)) {
    base = 2;
    s = s.slice(2);
    prefixed = true;
  } else if (s.length > 1 && s[0] === "0") {
    base = 8;
    s = s.slice(1);
    prefixed = true;
  }
  if (s.includes("_")) {
    // Underscores must separate digits (or follow the base prefix).
    if (!(prefixed ? /^_?[^_]+(_[^_]+)*$/ : /^[^_]+(_[^_]+)*$/).test(s)) return null;
    s = s.replaceAll("_", "");
  }
  const digits = base === 16 ? /^[0-9a-fA-F]+$/ : base === 8 ? /^[0-7]+$/ : base === 2 ? /^[01]+$/ : /^[0-9]+$/;
  if (!digits.test(s)) return null;
  const prefix = base === 16 ? "0x" : base === 8 ? "0o" : base === 2 ? "0b" : "";
  const magnitude = BigInt(prefix + s);
  return neg ? -magnitude : magnitude;
}

export interface ParsedNumber {
  int: bigint | null;
  float: number | null;
}

/** Go's parse.newNumber for an itemNumber; throws an Error with Go's message when invalid. */
export function parseNumber(text: string): ParsedNumber {
  if (text.endsWith("i")) throw new Error(`complex numbers are not supported: ${JSON.stringify(text)}`);
  const integer = parseGoInteger(text);
  let int: bigint | null = null;
  let float: number | null = null;
  let uintOnly = false;
  if (integer !== null) {
    if (integer >= INT64_MIN && integer <= INT64_MAX) int = integer;
    else if (integer >= 0n && integer <= UINT64_MAX) uintOnly = true;
    else throw new Error(`integer overflow: ${JSON.stringify(text)}`);
    float = Number(integer);
  } else {
    const plain = text.replaceAll("_", "");
    const f = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(plain) ? Number(plain) : Number.NaN;
    if (Number.isFinite(f)) {
      if (!/[.eEpP]/.test(text)) throw new Error(`integer overflow: ${JSON.stringify(text)}`);
      float = f;
      if (Number.isInteger(f) && Math.abs(f) < 2 ** 63) int = BigInt(f);
    }
  }
  if (int === null && float === null && !uintOnly) throw new Error(`illegal number syntax: ${JSON.stringify(text)}`);
  return { int, float };
}

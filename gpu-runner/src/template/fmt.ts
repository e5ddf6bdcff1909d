// The parts of Go's fmt package that templates reach: %v printing of values (print, println, {{ . }}), and printf
// with the common verbs, flags, width and precision, including Go's "%!d(string=x)" style complaints.

import { formatFloat } from "./gofloat";
import { kindOf, metaOf, sortedEntries, typeName, utf8Encoder } from "./values";

interface Spec {
  verb: string;
  plus: boolean;
  plusV: boolean;
  minus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width: number | null;
  prec: number | null;
}

const plainSpec = (verb: string): Spec => ({
  verb,
  plus: false,
  plusV: false,
  minus: false,
  sharp: false,
  space: false,
  zero: false,
  width: null,
  prec: null,
});

/** fmt.Sprint of one value (%v). */
export function formatValue(v: unknown): string {
  return printArg(v, plainSpec("v"));
}

/** fmt.Sprint: spaces between operands when neither side is a string. */
export function sprint(args: readonly unknown[]): string {
  let out = "";
  let prevString = false;
  args.forEach((arg, i) => {
    const isString = typeof arg === "string";
    if (i > 0 && !isString && !prevString) out += " ";
    out += formatValue(arg);
    prevString = isString;
  });
  return out;
}

/** fmt.Sprintln: always spaces, newline at the end. */
export function sprintln(args: readonly unknown[]): string {
  return `${args.map(formatValue).join(" ")}\n`;
}

export function sprintf(format: string, args: readonly unknown[]): string {
  let out = "";
  let argNum = 0;
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf("%", i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    const spec = plainSpec("");
    for (; i < format.length; i++) {
      const c = format[i];
      if (c === "#") spec.sharp = true;
      else if (c === "0") spec.zero = !spec.minus;
      else if (c === "+") spec.plus = true;
      else if (c === "-") {
        spec.minus = true;
        spec.zero = false;
      } else if (c === " ") spec.space = true;
      else break;
    }
    if (format[i] === "*") {
      i++;
      const w = args[argNum++];
      if (typeof w === "bigint") {
        spec.width = Number(w < 0n ? -w : w);
        if (w < 0n) {
          spec.minus = true;
          spec.zero = false;
        }
      } else out += "%!(BADWIDTH)";
    } else {
      const m = /^\d+/.exec(format.slice(i));
      if (m) {
        spec.width = Number(m[0]);
        i += m[0].length;
      }
    }
    if (format[i] === ".") {
      i++;
      if (format[i] === "*") {
        i++;
        const p = args[argNum++];
        if (typeof p === "bigint" && p >= 0n) spec.prec = Number(p);
        else out += "%!(BADPREC)";
      } else {
        const m = /^\d+/.exec(format.slice(i));
        spec.prec = m ? Number(m[0]) : 0;
        if (m) i += m[0].length;
      }
    }
    if (i >= format.length) {
      out += "%!(NOVERB)";
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    spec.verb = verb;
    if (verb === "v" && spec.plus) {
      // %+v names struct fields; it does not sign numbers.
      spec.plus = false;
      spec.plusV = true;
    }
    if (verb === "%") {
      out += "%";
      continue;
    }
    if (argNum >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const arg = args[argNum++];
    out += verb === "T" ? pad(arg === undefined || arg === null ? "<nil>" : typeName(arg), spec) : printArg(arg, spec);
  }
  if (argNum < args.length) {
    const extras = args
      .slice(argNum)
      .map((a) => (a === undefined || a === null ? "<nil>" : `${typeName(a)}=${formatValue(a)}`));
    out += `%!(EXTRA ${extras.join(", ")})`;
  }
  return out;
}

function badVerb(arg: unknown, spec: Spec): string {
  if (arg === undefined || arg === null) return `%!${spec.verb}(<nil>)`;
  return `%!${spec.verb}(${typeName(arg)}=${formatValue(arg)})`;
}

function printArg(arg: unknown, spec: Spec): string {
  const { verb } = spec;
  if (arg === undefined || arg === null) return verb === "v" ? pad("<nil>", spec) : badVerb(arg, spec);
  const stringer = metaOf(arg)?.string;
  if (stringer && "vsxXq".includes(verb)) return fmtString(stringer(), spec);
  switch (kindOf(arg)) {
    case "bool":
      return verb === "t" || verb === "v" ? pad(String(arg), spec) : badVerb(arg, spec);
    case "int":
      return fmtInteger(arg as bigint, spec);
    case "float":
      return fmtFloatVerb(arg as number, spec);
    case "string":
      return fmtString(arg as string, spec);
    case "slice":
      return `[${(arg as unknown[]).map((e) => printArg(e, spec)).join(" ")}]`;
    case "map":
      return `map[${sortedEntries(arg as object)
        .map(([k, v]) => `${printArg(k, spec)}:${printArg(v, spec)}`)
        .join(" ")}]`;
    case "struct":
      return `{${Object.entries(arg as object)
        .map(([k, v]) => (spec.plusV ? `${k}:` : "") + printArg(v, spec))
        .join(" ")}}`;
    default:
      return badVerb(arg, spec);
  }
}

function pad(s: string, spec: Spec, zeroAllowed = true): string {
  if (spec.width === null) return s;
  const n = spec.width - [...s].length;
  if (n <= 0) return s;
  if (spec.minus) return s + " ".repeat(n);
  return (spec.zero && zeroAllowed ? "0" : " ").repeat(n) + s;
}

/** Pads a signed number, putting zero padding between the sign and the digits. */
function padNumber(sign: string, digits: string, spec: Spec, zeroAllowed: boolean): string {
  if (spec.zero && zeroAllowed && !spec.minus && spec.width !== null) {
    const n = spec.width - sign.length - digits.length;
    return sign + (n > 0 ? "0".repeat(n) : "") + digits;
  }
  return pad(sign + digits, { ...spec, zero: false });
}

function fmtInteger(v: bigint, spec: Spec): string {
  const { verb } = spec;
  const neg = v < 0n;
  const abs = neg ? -v : v;
  let digits: string;
  let prefix = "";
  switch (verb) {
    case "v":
    case "d":
      digits = abs.toString(10);
      break;
    case "b":
      digits = abs.toString(2);
      if (spec.sharp) prefix = "0b";
      break;
    case "o":
    case "O":
      digits = abs.toString(8);
      if (verb === "O") prefix = "0o";
      else if (spec.sharp && digits !== "0") prefix = "0";
      break;
    case "x":
    case "X":
      digits = abs.toString(16);
      if (verb === "X") digits = digits.toUpperCase();
      if (spec.sharp) prefix = verb === "x" ? "0x" : "0X";
      break;
    case "c":
      return pad(String.fromCodePoint(Number(abs)), spec);
    case "q":
      return pad(quoteRune(Number(v)), spec);
    case "U": {
      const hex = abs.toString(16).toUpperCase().padStart(4, "0");
      return pad(spec.sharp ? `U+${hex} '${String.fromCodePoint(Number(abs))}'` : `U+${hex}`, spec);
    }
    default:
      return badVerb(v, spec);
  }
  if (spec.prec !== null) {
    digits = spec.prec === 0 && abs === 0n ? "" : digits.padStart(spec.prec, "0");
  }
  const sign = neg ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  return padNumber(sign + prefix, digits, spec, spec.prec === null);
}

function fmtFloatVerb(v: number, spec: Spec): string {
  let num: string;
  switch (spec.verb) {
    case "v":
      num = formatFloat(v, "g", spec.prec ?? -1);
      break;
    case "g":
    case "G":
      num = formatFloat(v, spec.verb, spec.prec ?? -1);
      break;
    case "e":
    case "E":
      num = formatFloat(v, spec.verb, spec.prec ?? 6);
      break;
    case "f":
    case "F":
      num = formatFloat(v, "f", spec.prec ?? 6);
      break;
    default:
      return badVerb(v, spec);
  }
  let sign = "+";
  if (num.startsWith("-") || num.startsWith("+")) {
    sign = num[0]!;
    num = num.slice(1);
  }
  if (num === "Inf" || num === "NaN") {
    const showSign = num === "Inf" || spec.plus || spec.space;
    const s = showSign ? (sign === "+" && spec.space && !spec.plus ? " " : sign) : "";
    return pad(s + num, spec, false);
  }
  if (sign === "+") sign = spec.plus ? "+" : spec.space ? " " : "";
  return padNumber(sign, num, spec, true);
}

function fmtString(s: string, spec: Spec): string {
  const truncated = spec.prec !== null ? [...s].slice(0, spec.prec).join("") : s;
  switch (spec.verb) {
    case "v":
    case "s":
      return pad(truncated, spec);
    case "q":
      return pad(spec.sharp && canBackquote(truncated) ? `\`${truncated}\`` : quote(truncated, spec.plus), spec);
    case "x":
    case "X": {
      let hex = [...utf8Encoder.encode(truncated)].map((b) => b.toString(16).padStart(2, "0"));
      if (spec.verb === "X") hex = hex.map((h) => h.toUpperCase());
      const prefix = spec.sharp ? (spec.verb === "x" ? "0x" : "0X") : "";
      const body = spec.space ? hex.map((h) => prefix + h).join(" ") : prefix + hex.join("");
      return pad(body, spec);
    }
    default:
      return badVerb(s, spec);
  }
}

const isPrint = (ch: string): boolean => /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch);

function escapeRune(ch: string, quoteChar: string, asciiOnly: boolean): string {
  const cp = ch.codePointAt(0)!;
  if (ch === quoteChar || ch === "\\") return `\\${ch}`;
  if (asciiOnly ? cp < 0x7f && isPrint(ch) : isPrint(ch)) return ch;
  const named: Record<string, string> = {
    "\x07": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
  };
  const esc = named[ch];
  if (esc) return esc;
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp >= 0xd800 && cp <= 0xdfff) return "\\ufffd"; // lone surrogate: not valid UTF-8 in Go either
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return `\\U${cp.toString(16).padStart(8, "0")}`;
}

/** strconv.Quote (or QuoteToASCII when asciiOnly). */
export function quote(s: string, asciiOnly = false): string {
  let out = '"';
  for (const ch of s) out += escapeRune(ch, '"', asciiOnly);
  return `${out}"`;
}

function quoteRune(cp: number): string {
  const ch = cp >= 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : "\ufffd";
  return `'${escapeRune(ch, "'", false)}'`;
}

function canBackquote(s: string): boolean {
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === "`" || ch === "\ufeff" || (cp < 0x20 && ch !== "\t") || cp === 0x7f) return false;
  }
  return true;
}

// strconv.FormatFloat for float64 ('e', 'f', 'g' with a precision or -1 for shortest), needed because Go prints
// JSON-decoded numbers through fmt: 1e+06 for %v of a million, half-even rounding for %.2f, etc.

/** Decimal digits d[0..] with the point after `dp` digits: value = 0.d × 10^dp. No trailing zeros; nd=0 means 0. */
interface Decimal {
  digits: string;
  dp: number;
}

/** Exact decimal expansion of a finite, non-negative double. */
function exactDecimal(x: number): Decimal {
  if (x === 0) return { digits: "", dp: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biasedExp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp: number;
  if (biasedExp === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = biasedExp - 1075;
  }
  let digits: string;
  let dp: number;
  if (exp >= 0) {
    digits = (mant << BigInt(exp)).toString();
    dp = digits.length;
  } else {
    // mant × 2^exp = mant × 5^-exp / 10^-exp
    digits = (mant * 5n ** BigInt(-exp)).toString();
    dp = digits.length + exp;
  }
  return trim({ digits, dp });
}

function trim(d: Decimal): Decimal {
  let end = d.digits.length;
  while (end > 0 && d.digits[end - 1] === "0") end--;
  return end === 0 ? { digits: "", dp: 0 } : { digits: d.digits.slice(0, end), dp: d.dp };
}

/** Shortest digits that round-trip (JS and Go's Ryu agree on these). */
function shortestDecimal(x: number): Decimal {
  if (x === 0) return { digits: "", dp: 0 };
  const [mantissa, e] = x.toExponential().split("e") as [string, string];
  const digits = mantissa.replace(".", "");
  return trim({ digits, dp: Number(e) + 1 });
}

/** Rounds to nd significant digits, half to even on the exact value (Go's decimal.Round). */
function roundDecimal(d: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= d.digits.length) return d;
  const next = d.digits.charCodeAt(nd) - 48;
  let up: boolean;
  if (next > 5) up = true;
  else if (next < 5) up = false;
  else if (nd + 1 < d.digits.length)
    up = true; // more nonzero digits follow (trimmed, so any is nonzero)
  else up = nd > 0 && (d.digits.charCodeAt(nd - 1) - 48) % 2 === 1;
  if (!up) return trim({ digits: d.digits.slice(0, nd), dp: d.dp });
  const kept = d.digits.slice(0, nd).split("").map(Number);
  let i = kept.length - 1;
  while (i >= 0 && kept[i] === 9) i--;
  if (i < 0) return { digits: "1", dp: d.dp + 1 };
  kept[i]! += 1;
  return trim({ digits: kept.slice(0, i + 1).join(""), dp: d.dp });
}

function fmtE(neg: boolean, d: Decimal, prec: number, e: "e" | "E"): string {
  let s = neg ? "-" : "";
  s += d.digits.length > 0 ? d.digits[0] : "0";
  if (prec > 0) s += `.${d.digits.slice(1, prec + 1).padEnd(prec, "0")}`;
  let exp = d.digits.length === 0 ? 0 : d.dp - 1;
  const sign = exp < 0 ? "-" : "+";
  exp = Math.abs(exp);
  return `${s}${e}${sign}${exp < 10 ? `0${exp}` : String(exp)}`;
}

function fmtF(neg: boolean, d: Decimal, prec: number): string {
  let s = neg ? "-" : "";
  if (d.dp > 0) s += d.digits.slice(0, d.dp).padEnd(d.dp, "0");
  else s += "0";
  if (prec > 0) {
    let frac = "";
    for (let i = 0; i < prec; i++) {
      const j = d.dp + i;
      frac += j < 0 || j >= d.digits.length ? "0" : d.digits[j];
    }
    s += `.${frac}`;
  }
  return s;
}

/** strconv.FormatFloat(x, fmt, prec, 64). */
export function formatFloat(x: number, fmt: "e" | "E" | "f" | "g" | "G", prec: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Number.POSITIVE_INFINITY) return "+Inf";
  if (x === Number.NEGATIVE_INFINITY) return "-Inf";
  const neg = x < 0 || Object.is(x, -0);
  const abs = Math.abs(x);
  const shortest = prec < 0;
  let d: Decimal;
  if (shortest) {
    d = shortestDecimal(abs);
    if (fmt === "e" || fmt === "E") prec = Math.max(d.digits.length - 1, 0);
    else if (fmt === "f") prec = Math.max(d.digits.length - d.dp, 0);
    else prec = d.digits.length;
  } else {
    d = exactDecimal(abs);
    if (fmt === "e" || fmt === "E") d = roundDecimal(d, prec + 1);
    else if (fmt === "f") d = roundDecimal(d, d.dp + prec);
    else {
      if (prec === 0) prec = 1;
      d = roundDecimal(d, prec);
    }
    if (fmt === "f" && d.dp + prec < 0) d = { digits: "", dp: 0 };
  }
  if (fmt === "e" || fmt === "E") return fmtE(neg, d, prec, fmt);
  if (fmt === "f") return fmtF(neg, d, prec);
  let eprec = prec;
  if (eprec > d.digits.length && d.digits.length >= d.dp) eprec = d.digits.length;
  if (shortest) eprec = 6;
  const exp = d.dp - 1;
  if (exp < -4 || exp >= eprec) {
    return fmtE(neg, d, Math.min(prec, d.digits.length) - 1, fmt === "g" ? "e" : "E");
  }
  return fmtF(neg, d, Math.max((prec > d.dp ? d.digits.length : prec) - d.dp, 0));
}

/** Go's encoding/json float64 encoding ('f' in [1e-6, 1e21), otherwise 'e' with a one-digit-minimum exponent). */
export function formatJSONFloat(x: number): string {
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-6 || abs >= 1e21)) {
    return formatFloat(x, "e", -1).replace(/e([+-])0(\d)$/, "e$1$2");
  }
  return formatFloat(x, "f", -1);
}

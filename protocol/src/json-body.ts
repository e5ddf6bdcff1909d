/**
 * Request bodies read the way Ollama's handlers read them (gin's ShouldBindJSON, i.e. Go's json.Decoder):
 * an empty body is `missing request body`, malformed JSON gets Go's scanner text
 * (`invalid character 'x' looking for beginning of value`, `unexpected EOF`), and — like a Decoder — only the
 * first JSON value counts: anything after it is ignored.
 */
import { ApiError, OllamaError } from "./errors";

/** Parses a request body's text; throws ApiError 400 with Ollama's texts for empty or malformed bodies. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === "") throw new ApiError(400, OllamaError.missingBody);
  try {
    return JSON.parse(text);
  } catch {
    // Only the error path pays for the scan.
    const end = scanFirstJsonValue(text);
    try {
      return JSON.parse(text.slice(0, end));
    } catch (err) {
      throw new ApiError(400, err instanceof Error ? err.message : "invalid JSON");
    }
  }
}

class JsonSyntaxError extends ApiError {
  constructor(message: string) {
    super(400, message);
  }
}

// Go's scanner reads bytes, so a non-ASCII character is reported by its first UTF-8 byte read as Latin-1:
// a UTF-8 BOM shows up as 'ï', the classic Go message.
function goQuoteChar(char: string): string {
  if (char === "'") return "'\\''";
  if (char === '"') return "'\"'";
  const code = char.codePointAt(0)!;
  if (code >= 0x80) {
    const firstByte = new TextEncoder().encode(char)[0]!;
    return firstByte >= 0xa0 ? `'${String.fromCharCode(firstByte)}'` : `'\\u00${firstByte.toString(16)}'`;
  }
  const escapes: Record<string, string> = {
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
  };
  if (escapes[char]) return `'${escapes[char]}'`;
  if (char === "\x07") return "'\\a'";
  if (char === "\\") return "'\\\\'";
  if (code < 0x20 || code === 0x7f) return `'\\x${code.toString(16).padStart(2, "0")}'`;
  return `'${char}'`;
}

const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\n" || c === "\r";
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";
const isHex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/**
 * Validates the first JSON value in `text` with Go's encoding/json scanner rules and returns the offset just
 * past it; throws ApiError 400 with Go's message at the first syntax error.
 */
function scanFirstJsonValue(text: string): number {
  let i = 0;
  const at = (index: number) => text[index];
  const fail = (context: string): never => {
    if (i >= text.length) throw new JsonSyntaxError("unexpected EOF");
    const char = String.fromCodePoint(text.codePointAt(i)!);
    throw new JsonSyntaxError(`invalid character ${goQuoteChar(char)} ${context}`);
  };
  const skipSpace = () => {
    while (isSpace(at(i))) i++;
  };

  const scanString = () => {
    i++; // opening quote
    for (;;) {
      const c = at(i);
      if (c === undefined) fail("in string literal");
      if (c === '"') {
        i++;
        return;
      }
      if (c === "\\") {
        i++;
        const e = at(i);
        if (e === "u") {
          for (let k = 1; k <= 4; k++) {
            if (!isHex(at(i + k))) {
              i += k;
              fail("in \\u hexadecimal character escape");
            }
          }
          i += 5;
          continue;
        }
        if (e === undefined || !'bfnrt\\/"'.includes(e)) fail("in string escape code");
        i++;
        continue;
      }
      if (c! < " ") fail("in string literal");
      i++;
    }
  };

  const scanNumber = () => {
    if (at(i) === "-") {
      i++;
      if (!isDigit(at(i))) fail("in numeric literal");
    }
    if (at(i) === "0") i++;
    else while (isDigit(at(i))) i++;
    if (at(i) === ".") {
      i++;
      if (!isDigit(at(i))) fail("after decimal point in numeric literal");
      while (isDigit(at(i))) i++;
    }
    if (at(i) === "e" || at(i) === "E") {
      i++;
      if (at(i) === "+" || at(i) === "-") i++;
      if (!isDigit(at(i))) fail("in exponent of numeric literal");
      while (isDigit(at(i))) i++;
    }
  };

  const scanLiteral = (word: string) => {
    for (let k = 0; k < word.length; k++, i++) {
      if (at(i) !== word[k]) fail(`in literal ${word} (expecting '${word[k]}')`);
    }
  };

  const scanValue = (depth: number): void => {
    // Go allows 10000 levels; the scanner recurses, so it stops earlier to keep the JS stack safe.
    if (depth > 1000) throw new JsonSyntaxError("exceeded max depth");
    skipSpace();
    const c = at(i);
    if (c === "{") {
      i++;
      skipSpace();
      if (at(i) === "}") {
        i++;
        return;
      }
      for (;;) {
        skipSpace();
        if (at(i) !== '"') fail("looking for beginning of object key string");
        scanString();
        skipSpace();
        if (at(i) !== ":") fail("after object key");
        i++;
        scanValue(depth + 1);
        skipSpace();
        if (at(i) === ",") {
          i++;
          continue;
        }
        if (at(i) === "}") {
          i++;
          return;
        }
        fail("after object key:value pair");
      }
    }
    if (c === "[") {
      i++;
      skipSpace();
      if (at(i) === "]") {
        i++;
        return;
      }
      for (;;) {
        scanValue(depth + 1);
        skipSpace();
        if (at(i) === ",") {
          i++;
          continue;
        }
        if (at(i) === "]") {
          i++;
          return;
        }
        fail("after array element");
      }
    }
    if (c === '"') scanString();
    else if (c === "-" || isDigit(c)) scanNumber();
    else if (c === "t") scanLiteral("true");
    else if (c === "f") scanLiteral("false");
    else if (c === "n") scanLiteral("null");
    else fail("looking for beginning of value");
  };

  scanValue(0);
  return i;
}

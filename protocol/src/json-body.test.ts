import { describe, expect, it } from "vitest";
import { ApiError } from "./errors";
import { parseJsonBody } from "./json-body";

function errorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected an ApiError");
}

describe("parseJsonBody", () => {
  it("parses a JSON object", () => {
    expect(parseJsonBody('{"model":"llama3.2","stream":false}')).toEqual({ model: "llama3.2", stream: false });
  });

  it.each(["", "   ", "\n\t\r\n"])("an empty body %j is Ollama's `missing request body`", (text) => {
    const err = errorOf(() => parseJsonBody(text));
    expect(err.status).toBe(400);
    expect(err.message).toBe("missing request body");
  });

  it("like Go's json.Decoder, reads only the first value and ignores what follows", () => {
    expect(parseJsonBody('{"model":"a"} {"model":"b"}')).toEqual({ model: "a" });
    expect(parseJsonBody('{"model":"a"}}garbage')).toEqual({ model: "a" });
    expect(parseJsonBody("01")).toBe(0);
  });

  // Texts as Go's encoding/json scanner words them.
  it.each([
    ["x", "invalid character 'x' looking for beginning of value"],
    ["model=llama", "invalid character 'm' looking for beginning of value"],
    ["\ufeff{}", "invalid character 'ï' looking for beginning of value"],
    ["{", "unexpected EOF"],
    ['{"model":"llama', "unexpected EOF"],
    ['{"model"', "unexpected EOF"],
    ["[1,", "unexpected EOF"],
    ["{model:1}", "invalid character 'm' looking for beginning of object key string"],
    ["{'model':1}", "invalid character '\\'' looking for beginning of object key string"],
    ['{"a",1}', "invalid character ',' after object key"],
    ['{"a":1 "b":2}', "invalid character '\"' after object key:value pair"],
    ['{"a":1,}', "invalid character '}' looking for beginning of object key string"],
    ["[1 2]", "invalid character '2' after array element"],
    ["[1,]", "invalid character ']' looking for beginning of value"],
    ['{"a":tru}', "invalid character '}' in literal true (expecting 'e')"],
    ['{"a":nul}', "invalid character '}' in literal null (expecting 'l')"],
    ['{"a":fals}', "invalid character '}' in literal false (expecting 'e')"],
    ['{"a":-}', "invalid character '}' in numeric literal"],
    ['{"a":1.}', "invalid character '}' after decimal point in numeric literal"],
    ['{"a":1e}', "invalid character '}' in exponent of numeric literal"],
    ['{"a":01}', "invalid character '1' after object key:value pair"],
    ['{"a":"\\x"}', "invalid character 'x' in string escape code"],
    ['{"a":"\\u12g4"}', "invalid character 'g' in \\u hexadecimal character escape"],
    ['{"a":"line\nbreak"}', "invalid character '\\n' in string literal"],
    ['{"a":"\u0001"}', "invalid character '\\x01' in string literal"],
    ['{"a":NaN}', "invalid character 'N' looking for beginning of value"],
    ['{"a":\u00e9}', "invalid character 'Ã' looking for beginning of value"],
  ])("%j → %j", (text, message) => {
    const err = errorOf(() => parseJsonBody(text));
    expect(err.status).toBe(400);
    expect(err.message).toBe(message);
  });

  it("stops scanning absurdly deep garbage without overflowing the stack", () => {
    const err = errorOf(() => parseJsonBody(`${"[".repeat(100_000)}x`));
    expect(err.status).toBe(400);
  });
});

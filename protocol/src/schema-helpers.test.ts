import { describe, expect, it } from "vitest";
import { base64ErrorOffset } from "./schema-helpers";

describe("base64ErrorOffset (Go's base64.StdEncoding rules)", () => {
  it.each([
    ["", -1],
    ["QQ==", -1],
    ["QUI=", -1],
    ["QUJD", -1],
    ["QUJD\nRA==\r\n", -1],
    ["Q", 0],
    ["QUJDR", 4],
    ["abc", 0],
    ["Q===", 1],
    ["=QQQ", 0],
    ["Q=Q=", 1],
    ["QQ=", 3],
    ["QQ=A", 2],
    ["QUI=QUI=", 4],
    ["QUI= ", 4],
    ["data:image/png;base64,AAAA", 4],
    ["QU-D", 2],
    ["QU_D", 2],
  ])("%j → %d", (text, offset) => {
    expect(base64ErrorOffset(text)).toBe(offset);
  });

  it("accepts what Buffer encodes and rejects nothing it encodes", () => {
    for (let length = 0; length < 40; length++) {
      const text = Buffer.from(Uint8Array.from({ length }, (_, i) => (i * 37) & 0xff)).toString("base64");
      expect(base64ErrorOffset(text), text).toBe(-1);
    }
  });
});

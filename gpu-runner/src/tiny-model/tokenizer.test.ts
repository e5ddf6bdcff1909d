import { describe, expect, it } from "vitest";
import { scriptTokenIds } from "./scripted";
import { MODEL_SCRIPTS, SCRIPTED_SENTENCE, SCRIPTED_TOOL_CALL, SENTENCE_SCRIPT, scriptText } from "./scripts";
import {
  applyMerges,
  END_OF_TEXT,
  fromByteLevel,
  IM_END,
  IM_START,
  TOKEN_TYPE_CONTROL,
  TOKEN_TYPE_NORMAL,
  tinyVocabulary,
  toByteLevel,
} from "./tokenizer";

const vocab = tinyVocabulary();

describe("byte-level spelling", () => {
  it.each([
    [" the", "Ġthe"],
    ["\n", "Ċ"],
    ["\t", "ĉ"],
    ["a b", "aĠb"],
    ["é", "Ã©"],
    ["\u0000", "Ā"],
    ["\u00ad", "ÂŃ"], // U+00AD is C2 AD in UTF-8; byte AD is unprintable, so remapped
  ])("%j → %j", (text, spelt) => {
    expect(toByteLevel(text)).toBe(spelt);
    expect(fromByteLevel(spelt)).toBe(text);
  });

  it("gives ids 0-255 to the bytes, each spelt by one distinct character", () => {
    const bytes = vocab.tokens.slice(0, 256);
    expect(new Set(bytes).size).toBe(256);
    bytes.forEach((token, b) => {
      expect([...token]).toHaveLength(1);
      expect(vocab.idOfText(String.fromCharCode(b)) === b || b >= 0x80).toBe(true);
    });
  });
});

describe("vocabulary", () => {
  it("has unique token texts (llama.cpp asserts it) and types for every token", () => {
    expect(new Set(vocab.tokens).size).toBe(vocab.tokens.length);
    expect(vocab.tokenTypes).toHaveLength(vocab.tokens.length);
  });

  it("ends with the three CONTROL tokens", () => {
    const n = vocab.tokens.length;
    expect(vocab.tokens.slice(n - 3)).toEqual([IM_START, IM_END, END_OF_TEXT]);
    expect([vocab.imStartId, vocab.imEndId, vocab.endOfTextId]).toEqual([n - 3, n - 2, n - 1]);
    expect(vocab.tokenTypes.filter((t) => t === TOKEN_TYPE_CONTROL)).toHaveLength(3);
    expect(vocab.tokenTypes.slice(0, n - 3).every((t) => t === TOKEN_TYPE_NORMAL)).toBe(true);
  });

  it("has a token for both halves and the result of every merge", () => {
    const known = new Set(vocab.tokens);
    for (const merge of vocab.merges) {
      const parts = merge.split(" ");
      expect(parts).toHaveLength(2);
      expect(known.has(parts[0]!) && known.has(parts[1]!) && known.has(parts.join(""))).toBe(true);
    }
  });

  it.each(["the", " the", " weather", "Paris", " assistant", "The", " quick", "\n\n", '{"'])(
    "encodes the word %j as one token",
    (word) => {
      expect(vocab.encodeWord(word)).toEqual([vocab.idOfText(word)]);
    },
  );

  it("falls back to merged pieces and bytes for unknown words", () => {
    const ids = vocab.encodeWord(" zebra");
    expect(ids.length).toBeGreaterThan(1);
    expect(ids.map((id) => fromByteLevel(vocab.tokens[id]!)).join("")).toBe(" zebra");
  });

  it("applies the lowest-ranked pair first, leftmost on ties", () => {
    const ranks = new Map([
      ["b c", 0],
      ["a b", 1],
      ["a a", 2],
    ]);
    expect(applyMerges(["a", "b", "c"], ranks)).toEqual(["a", "bc"]);
    expect(applyMerges(["a", "a", "a"], ranks)).toEqual(["aa", "a"]);
  });
});

describe("scripts", () => {
  it("spell their exported texts", () => {
    expect(scriptText(MODEL_SCRIPTS.sentence)).toBe(SCRIPTED_SENTENCE);
    expect(scriptText(MODEL_SCRIPTS.tool)).toBe(SCRIPTED_TOOL_CALL);
  });

  it.each(Object.values(MODEL_SCRIPTS))("$name: every piece is a distinct normal token", (script) => {
    const ids = scriptTokenIds(script);
    expect(new Set(ids).size).toBe(script.pieces.length);
    expect(ids.every((id) => vocab.tokenTypes[id] === TOKEN_TYPE_NORMAL)).toBe(true);
  });

  it("the sentence's pieces are how the tokenizer splits it", () => {
    const words = SCRIPTED_SENTENCE.match(/ ?\p{L}+|\./gu) ?? [];
    expect(words.flatMap((w) => vocab.encodeWord(w))).toEqual(scriptTokenIds(SENTENCE_SCRIPT));
  });

  it.each([
    [{ name: "missing", pieces: ["The", " zebra"] }, /not a normal token/],
    [{ name: "repeat", pieces: ["The", " quick", "The"] }, /distinct/],
    [{ name: "control", pieces: ["The", IM_END] }, /not a normal token/],
  ])("refuses a script with a bad piece (%#)", (script, message) => {
    expect(() => scriptTokenIds(script)).toThrow(message);
  });
});

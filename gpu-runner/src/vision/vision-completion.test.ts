import { describe, expect, it } from "vitest";
import { MEDIA_MARKER } from "./llama-server";
import { withImageMarkers } from "./vision-completion";

const M = MEDIA_MARKER;

describe("withImageMarkers", () => {
  it.each([
    ["no images", "hi", 0, 0, "hi"],
    ["images go in front of text without tags", "hi", 0, 2, `${M}${M}hi`],
    ["an [img-N] tag takes its image in place", "look: [img-0] ok", 0, 1, `look: ${M} ok`],
    ["numbering continues across messages", "[img-2] and", 1, 2, `${M}${M} and`],
    ["an empty message (OpenAI's image part)", "", 3, 1, M],
  ])("%s", (_, text, first, count, expected) => {
    expect(withImageMarkers(text, first, count)).toBe(expected);
  });
});

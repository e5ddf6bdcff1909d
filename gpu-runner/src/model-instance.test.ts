import { describe, expect, it } from "vitest";
import { chooseSlot } from "./model-instance";

const slot = (id: number, shared: number, lastUsed: number) => ({ id, shared, lastUsed });

describe("chooseSlot", () => {
  it.each([
    { case: "no free slot", free: [], prompt: 10, want: undefined },
    {
      case: "a follow-up turn goes back to its history",
      free: [slot(0, 0, 1), slot(1, 1900, 9)],
      prompt: 2000,
      want: 1,
    },
    { case: "a prefix of exactly half is reused", free: [slot(0, 0, 0), slot(1, 50, 5)], prompt: 100, want: 1 },
    {
      case: "a shared first token does not overwrite a cached conversation: never-used slot first",
      free: [slot(0, 1, 3), slot(1, 0, 0), slot(2, 0, 0)],
      prompt: 2000,
      want: 1,
    },
    {
      case: "else the least recently used slot",
      free: [slot(0, 2, 7), slot(1, 0, 4), slot(2, 1, 6)],
      prompt: 50,
      want: 1,
    },
    { case: "fresh slots in sequence-id order", free: [slot(0, 0, 0), slot(1, 0, 0)], prompt: 5, want: 0 },
    { case: "an empty prompt takes the LRU slot", free: [slot(0, 0, 2), slot(3, 0, 1)], prompt: 0, want: 3 },
  ])("$case", ({ free, prompt, want }) => {
    expect(chooseSlot(free, prompt)?.id).toBe(want);
  });
});

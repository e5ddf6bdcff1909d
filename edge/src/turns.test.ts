import { describe, expect, it } from "vitest";
import { nextMacrotask, TurnBudget } from "./turns";

/** A budget whose turns are recorded: `turns[i]` is the bytes handled in turn i. */
function recordingBudget(bytesPerTurn: number) {
  const turns = [0];
  const budget = new TurnBudget(bytesPerTurn, async () => {
    turns.push(0);
    await nextMacrotask();
  });
  return { budget, turns, count: (n: number) => (turns[turns.length - 1]! += n) };
}

describe("TurnBudget", () => {
  it.each([
    ["one chunk far past the budget", [10_000], [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]],
    ["small chunks adding up", [300, 300, 300, 300, 300], [1000, 500]],
    ["chunks that straddle turns", [700, 700, 700], [1000, 1000, 100]],
    ["exactly the budget", [1000], [1000]],
  ])("slice: %s", async (_, chunks, expectedTurns) => {
    const { budget, turns, count } = recordingBudget(1000);
    const seen: number[] = [];
    for (const size of chunks) {
      const bytes = Uint8Array.from({ length: size }, (_, i) => i & 0xff);
      await budget.slice(bytes, (slice) => {
        count(slice.length);
        seen.push(...slice);
      });
    }
    expect(turns).toEqual(expectedTurns);
    expect(seen).toEqual(chunks.flatMap((size) => Array.from({ length: size }, (_, i) => i & 0xff)));
  });

  it.each([
    ["small chunks", [400, 400, 400, 400], [800, 800]],
    ["a native chunk past the budget counts as one turn of its own", [200, 5000, 200], [200, 5000, 200]],
  ])("spend: %s", async (_, chunks, expectedTurns) => {
    const { budget, turns, count } = recordingBudget(1000);
    for (const size of chunks) {
      await budget.spend(size);
      count(size);
    }
    expect(turns).toEqual(expectedTurns);
  });
});

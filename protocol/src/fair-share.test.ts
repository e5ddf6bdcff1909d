import { describe, expect, it } from "vitest";
import { fairVictims, type ResidentModel } from "./fair-share";

const model = (name: string, size: number, tenant: string | undefined, idle = true) => ({ name, size, tenant, idle });
const names = (models: { name: string }[]) => models.map((m) => m.name);

describe("fairVictims", () => {
  // A runner of 100 bytes.
  it.each<[string, (ResidentModel & { name: string })[], string | undefined, number, string[]]>([
    [
      "own and unknown idle models first, then others' while within the share",
      [model("b1", 20, "b"), model("a1", 20, "a"), model("u", 10, undefined), model("a2", 10, "a", false)],
      "a",
      10,
      ["a1", "u", "b1"],
    ],
    [
      "only its own past its share (30 used + 30 incoming > 100 / 2)",
      [model("b1", 20, "b"), model("a1", 20, "a"), model("a2", 10, "a", false)],
      "a",
      30,
      ["a1"],
    ],
    ["a newcomer may take others' idle models up to an equal split", [model("b1", 60, "b")], "c", 50, ["b1"]],
    ["past an equal split it takes nothing of theirs", [model("b1", 60, "b")], "c", 51, []],
    ["never a busy model", [model("b1", 60, "b", false), model("a1", 10, "a", false)], "a", 5, []],
    ["every idle model without a tenant", [model("b1", 60, "b"), model("a1", 10, "a", false)], undefined, 90, ["b1"]],
  ])("%s", (_label, resident, tenant, incoming, expected) => {
    expect(names(fairVictims(resident, tenant, 100, incoming))).toEqual(expected);
  });
});

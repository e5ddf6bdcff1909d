import { describe, expect, it } from "vitest";
import { parsePrice, parseQuota } from "./admin";
import { barChart, fitLabel } from "./chart";
import { sentence } from "./layout";
import { costOf, csvField, dateRange } from "./usage";

const NOW = Date.parse("2026-03-15T10:00:00Z");

describe("sentence", () => {
  it.each([
    ["model 'x' not found", "Model 'x' not found."],
    ["unauthorized", "Unauthorized."],
    ["Already a sentence.", "Already a sentence."],
    ["", "Something went wrong."],
  ])("%j → %j", (input, expected) => expect(sentence(input)).toBe(expected));
});

describe("csvField", () => {
  it.each([
    ["tiny:latest", "tiny:latest"],
    ["a,b", '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ["=HYPERLINK(1)", "'=HYPERLINK(1)"],
    ["-2+3", "'-2+3"],
    ["@cmd", "'@cmd"],
  ])("%j → %j", (input, expected) => expect(csvField(input)).toBe(expected));
});

describe("dateRange", () => {
  it("defaults to the last 30 days, today included", () => {
    expect(dateRange(undefined, undefined, NOW)).toEqual({ since: "2026-02-14", until: "2026-03-15" });
  });

  it.each([
    ["2026-13-01", "2026-03-01", "The start date must be a date like 2026-01-31"],
    ["2026-03-01", "tomorrow", "The end date must be a date like 2026-01-31"],
    ["2026-03-02", "2026-03-01", "The start date must not be after the end date"],
    ["2024-01-01", "2026-03-01", "A range can span at most 366 days"],
  ])("refuses %s..%s", (since, until, message) => {
    expect(() => dateRange(since, until, NOW)).toThrow(expect.objectContaining({ status: 400 }));
    try {
      dateRange(since, until, NOW);
    } catch (err) {
      expect(sentence((err as Error).message)).toBe(`${message}.`);
    }
  });
});

describe("costOf", () => {
  const prices = new Map([["m", { model: "m", input_per_million: 2, output_per_million: 10, updated_at: 0 }]]);
  it("prices tokens per million, and says null when the model has no price", () => {
    expect(costOf({ model: "m", prompt_tokens: 500_000, output_tokens: 100_000 }, prices)).toBeCloseTo(2);
    expect(costOf({ model: "other", prompt_tokens: 1, output_tokens: 1 }, prices)).toBeNull();
  });
});

describe("form numbers", () => {
  it.each([
    ["", null],
    [" 60 ", 60],
    ["0", 0],
  ])("quota %j → %j", (input, expected) => expect(parseQuota("requests_per_minute", input)).toBe(expected));

  it.each(["-1", "1.5", "1e3", "abc", "99999999999999999999"])("refuses quota %j", (input) => {
    expect(() => parseQuota("requests_per_minute", input)).toThrow(/Requests per minute must be a whole number/);
  });

  it.each([
    ["0", 0],
    ["0.15", 0.15],
    ["1000000", 1_000_000],
  ])("price %j → %j", (input, expected) => expect(parsePrice("input", input)).toBe(expected));

  it.each(["", "-1", "1000001", "NaN", "Infinity", "1e3"])("refuses price %j", (input) => {
    expect(() => parsePrice("input", input)).toThrow(/input price must be a number/);
  });
});

describe("barChart", () => {
  it("draws one titled bar per value, escapes labels, and shortens long ones", async () => {
    const svg = String(
      await barChart({
        id: "c",
        title: "Tokens <per> day",
        categories: ["<script>", "a-very-long-model-name-indeed:latest"],
        series: [{ name: "In", values: [5, 10], color: "#000" }],
      }),
    );
    expect(svg).toContain('role="img"');
    expect(svg).toContain("Tokens &lt;per&gt; day");
    expect(svg).not.toContain("<script>");
    expect(svg).toContain("<title>a-very-long-model-name-indeed:latest, In: 10</title>");
    expect(svg).toContain(`>${fitLabel("a-very-long-model-name-indeed:latest")}</text>`);
    expect(fitLabel("a-very-long-model-name-indeed:latest")).toHaveLength(22);
    // The largest value spans the plot; the other is scaled to it.
    expect(svg).toContain('width="420"');
    expect(svg).toContain('width="210"');
  });
});

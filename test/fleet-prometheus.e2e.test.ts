/**
 * The Prometheus text reader the fleet tests scrape `/metrics` with (test/prometheus.ts): it must accept the format
 * as Prometheus does and reject what Prometheus would, or a broken exposition would pass the scrape tests. No stack.
 */
import { describe, expect, it } from "vitest";
import { parsePrometheusText, sampleSum, sampleValue } from "./prometheus";

describe("parsePrometheusText accepts", () => {
  it("families with HELP, TYPE, labels, escapes, special values and timestamps", () => {
    const families = parsePrometheusText(
      [
        "# A free comment",
        "# HELP http_requests_total Requests, by code.\\nSecond line with a \\\\ backslash.",
        "# TYPE http_requests_total counter",
        'http_requests_total{method="post",code="200"} 1027 1395066363000',
        'http_requests_total{method="post",code="400",} 3',
        "",
        "# TYPE temperature gauge",
        "temperature -1.5e3",
        'temperature{where="quote \\" newline \\n backslash \\\\"} +Inf',
        'temperature{where="nan"} NaN',
        "# TYPE latency histogram",
        'latency_bucket{le="0.5"} 1',
        'latency_bucket{le="+Inf"} 2',
        "latency_sum 0.75",
        "latency_count 2",
        "untyped_thing 7",
        "",
      ].join("\n"),
    );
    expect([...families.keys()]).toEqual(["http_requests_total", "temperature", "latency", "untyped_thing"]);
    expect(families.get("http_requests_total")).toMatchObject({
      type: "counter",
      help: "Requests, by code.\nSecond line with a \\ backslash.",
    });
    expect(sampleValue(families, "http_requests_total", { code: "200" })).toBe(1027);
    expect(families.get("http_requests_total")?.samples[0]?.timestamp).toBe(1395066363000);
    expect(sampleSum(families, "http_requests_total")).toBe(1030);
    expect(families.get("temperature")?.samples[0]).toEqual({ name: "temperature", labels: {}, value: -1500 });
    expect(sampleValue(families, "temperature", { where: 'quote " newline \n backslash \\' })).toBe(
      Number.POSITIVE_INFINITY,
    );
    expect(sampleValue(families, "temperature", { where: "nan" })).toBeNaN();
    expect(families.get("latency")?.samples.map((s) => s.name)).toEqual([
      "latency_bucket",
      "latency_bucket",
      "latency_sum",
      "latency_count",
    ]);
    expect(families.get("untyped_thing")?.type).toBe("untyped");
  });

  it("an empty scrape", () => {
    expect(parsePrometheusText("").size).toBe(0);
  });

  it("HELP and TYPE of a family that has no samples yet", () => {
    const families = parsePrometheusText("# HELP quiet_total Nothing yet.\n# TYPE quiet_total counter\n");
    expect(families.get("quiet_total")).toMatchObject({ type: "counter", samples: [] });
  });
});

describe("parsePrometheusText rejects", () => {
  it.each([
    ["no final newline", "a 1", /missing final newline/],
    ["a bad metric name", "1abc 1\n", /invalid sample line/],
    ["a bad label name", 'a{1x="y"} 1\n', /invalid label name/],
    ["a reserved label name", 'a{__name__="y"} 1\n', /reserved or invalid label name/],
    ["an unquoted label value", "a{x=y} 1\n", /not quoted/],
    ["an unterminated label value", 'a{x="y} 1\n', /unterminated|expected/],
    ["a bad escape in a label value", 'a{x="\\t"} 1\n', /invalid escape/],
    ["a repeated label", 'a{x="1",x="2"} 1\n', /repeated/],
    ["a missing value", "a\n", /expected a value/],
    ["a bad value", "a one\n", /invalid value/],
    ["a bad timestamp", "a 1 soon\n", /expected a value/],
    ["an unknown type", "# TYPE a thing\na 1\n", /unknown type/],
    ["two TYPE lines", "# TYPE a gauge\n# TYPE a gauge\na 1\n", /second TYPE/],
    ["two HELP lines", "# HELP a x\n# HELP a y\na 1\n", /second HELP/],
    ["TYPE after the first sample", "a 1\n# TYPE a gauge\n", /after its first sample/],
    ["a family's samples split up", 'a 1\nb 2\na{x="1"} 3\n', /not together/],
    ["the same series twice", 'a{x="1"} 1\na{x="1"} 2\n', /duplicate series/],
    ["a negative counter", "# TYPE a_total counter\na_total -1\n", /negative/],
    ["a histogram bucket without le", "# TYPE h histogram\nh_bucket 1\n", /without an le/],
    ["a counter not ending in _total", "# TYPE requests counter\nrequests 1\n", /should end in _total/],
    ["a gauge ending in _total", "# TYPE depth_total gauge\ndepth_total 1\n", /should not end in _total/],
  ])("%s", (_, text, message) => {
    expect(() => parsePrometheusText(text)).toThrow(message);
  });
});

describe("sampleValue", () => {
  it("refuses an ambiguous match instead of picking one", () => {
    const families = parsePrometheusText('a{x="1"} 1\na{x="2"} 2\n');
    expect(() => sampleValue(families, "a")).toThrow(/2 samples/);
    expect(sampleValue(families, "a", { x: "2" })).toBe(2);
    expect(sampleValue(families, "missing")).toBeUndefined();
  });
});

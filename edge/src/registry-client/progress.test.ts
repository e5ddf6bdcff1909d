import { ApiError } from "@corral/protocol";
import { describe, expect, it } from "vitest";
import { type Progress, progressResponse } from "./progress";

const step: Progress = { status: "writing manifest" };
const success: Progress = { status: "success" };

/** A job that yields `lines`, then ends as `end` says: returning, or throwing what it is given. */
async function* job(lines: Progress[], end: { throws?: unknown } = {}): AsyncGenerator<Progress, void, undefined> {
  for (const line of lines) yield line;
  if ("throws" in end) throw end.throws;
}

const stopped = { error: "the operation stopped before it finished" };

describe("progressResponse: a stream always ends with success or one error line", () => {
  it.each<[string, AsyncGenerator<Progress, void, undefined>, unknown[]]>([
    ["success", job([step, success]), [step, success]],
    [
      "an ApiError after a line",
      job([step], { throws: new ApiError(502, "runner gone") }),
      [step, { error: "runner gone" }],
    ],
    [
      "anything else after a line",
      job([step], { throws: new TypeError("boom") }),
      [step, { error: "internal server error" }],
    ],
    ["a job that returns before success", job([step]), [step, stopped]],
    ["a job that yields nothing", job([]), [stopped]],
  ])("stream: %s", async (_label, progress, expected) => {
    const res = await progressResponse(progress, true);
    const text = await res.text();
    expect(text.endsWith("\n")).toBe(true);
    expect(
      text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual(expected);
  });

  it.each<[string, AsyncGenerator<Progress, void, undefined>, number, unknown]>([
    ["success", job([step, success]), 200, success],
    ["a failure", job([step], { throws: new ApiError(502, "runner gone") }), 502, { error: "runner gone" }],
    ["a job that returns before success", job([step]), 500, stopped],
  ])("stream: false, %s: the last object or the error", async (_label, progress, status, body) => {
    const res = await progressResponse(progress, false);
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual(body);
  });
});

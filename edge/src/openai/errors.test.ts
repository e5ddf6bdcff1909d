import { ApiError } from "@corral/protocol";
import { describe, expect, it } from "vitest";
import {
  isOpenAIPath,
  OpenAIRequestError,
  ollamaErrorMessage,
  openAIErrorBody,
  openAIErrorFromThrown,
  translateErrorResponse,
} from "./errors";

describe("openAIErrorBody", () => {
  it.each([
    [400, "invalid_request_error", null],
    [401, "invalid_request_error", "invalid_api_key"],
    [404, "not_found_error", null],
    [429, "rate_limit_error", "rate_limit_exceeded"],
    [500, "api_error", null],
    [503, "api_error", null],
  ])("status %i → type %s, code %s", (status, type, code) => {
    expect(openAIErrorBody(status, "m")).toEqual({ error: { message: "m", type, param: null, code } });
  });
});

describe("openAIErrorFromThrown", () => {
  it.each([
    [new OpenAIRequestError("bad temp", "temperature"), 400, { message: "bad temp", param: "temperature" }],
    [new ApiError(404, 'model "x" not found, try pulling it first'), 404, { type: "not_found_error" }],
    [new Error("secret detail"), 500, { message: "internal server error", type: "api_error" }],
  ])("%s", async (err, status, fields) => {
    const res = openAIErrorFromThrown(err);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject(fields);
  });
});

describe("translateErrorResponse", () => {
  it("keeps the status and Retry-After, and takes the message from Ollama's body", async () => {
    const ollama = Response.json({ error: "too many requests" }, { status: 429, headers: { "retry-after": "3" } });
    const res = await translateErrorResponse(ollama);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("3");
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({
      error: { message: "too many requests", type: "rate_limit_error", param: null, code: "rate_limit_exceeded" },
    });
  });

  it.each([
    ['{"error":"model \\"m\\" not found"}', 'model "m" not found'],
    ["plain text failure\n", "plain text failure"],
    ['{"error": 5}', '{"error": 5}'],
    ["", "error"],
  ])("message of %j is %j", (body, message) => {
    expect(ollamaErrorMessage(body)).toBe(message);
  });
});

it.each([
  ["/v1/chat/completions", true],
  ["/v1", true],
  ["/v10/x", false],
  ["/api/chat", false],
])("isOpenAIPath(%s) = %s", (path, expected) => {
  expect(isOpenAIPath(path)).toBe(expected);
});

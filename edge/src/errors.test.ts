import { ApiError } from "@corral/protocol";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import {
  clientError,
  isOpenAIPath,
  ndjsonErrorLine,
  ollamaError,
  ollamaErrorMessage,
  openAIError,
  openAIErrorBody,
  readOllamaError,
} from "./errors";
import { OpenAIRequestError } from "./openai/request-error";

describe("clientError", () => {
  it.each([
    [new ApiError(404, 'model "x" not found'), { status: 404, message: 'model "x" not found', param: null }],
    [new OpenAIRequestError("bad temp", "temperature"), { status: 400, message: "bad temp", param: "temperature" }],
    [new HTTPException(413, { message: "too big" }), { status: 413, message: "too big" }],
    // Anything unexpected may hold internals: the client learns only that it failed.
    [new Error("secret detail at /srv/x"), { status: 500, message: "internal server error" }],
    ["a thrown string", { status: 500, message: "internal server error" }],
  ])("%s", (err, expected) => {
    expect(clientError(err)).toMatchObject(expected);
  });
});

describe("every dialect carries the error's headers and status", () => {
  const limited = clientError(new ApiError(429, "rate limit", { "retry-after": "7" }));

  it("Ollama", async () => {
    const res = ollamaError(limited);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ error: "rate limit" });
  });

  it("OpenAI", async () => {
    const res = openAIError(limited);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
    expect(await res.json()).toEqual({
      error: { message: "rate limit", type: "rate_limit_error", param: null, code: "rate_limit_exceeded" },
    });
  });

  it("an NDJSON error line says what the JSON answer would", () => {
    expect(ndjsonErrorLine(new ApiError(409, "conflict"))).toEqual({ error: "conflict" });
    expect(ndjsonErrorLine(new TypeError("x is undefined"))).toEqual({ error: "internal server error" });
  });
});

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

describe("readOllamaError", () => {
  it("keeps the status and Retry-After, and takes the message from Ollama's body", async () => {
    const ollama = Response.json({ error: "too many requests" }, { status: 429, headers: { "retry-after": "3" } });
    expect(await readOllamaError(ollama)).toEqual({
      status: 429,
      message: "too many requests",
      headers: { "retry-after": "3" },
      param: null,
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

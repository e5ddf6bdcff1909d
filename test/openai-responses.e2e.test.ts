/**
 * The Responses API of the running stack with the official `openai` client's `responses.create`, as an application
 * would call it against Ollama's /v1 (stateless: no stored responses).
 */
import OpenAI from "openai";
import { describe, expect, inject, it } from "vitest";
import { SCRIPTED_SENTENCE } from "./inference-support";

const { url, key } = inject("stack");
const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });

const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  description: "Current weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: false,
};

describe("OpenAI responses", () => {
  it("answers text input with the scripted sentence, instructions echoed, usage counted", async () => {
    const response = await openai.responses.create({
      model: "scripted",
      input: "Say the sentence.",
      instructions: "You say sentences.",
      temperature: 0,
    });
    expect(response.object).toBe("response");
    expect(response.id).toMatch(/^resp_/);
    expect(response.status).toBe("completed");
    expect(response.output_text).toBe(SCRIPTED_SENTENCE);
    expect(response.instructions).toBe("You say sentences.");
    expect(response.usage?.output_tokens).toBeGreaterThan(0);
    expect(response.usage?.total_tokens).toBe(
      (response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0),
    );
  });

  it("takes message input and stops at max_output_tokens as incomplete", async () => {
    const response = await openai.responses.create({
      model: "scripted",
      input: [{ role: "user", content: [{ type: "input_text", text: "Say the sentence." }] }],
      max_output_tokens: 3,
      temperature: 0,
    });
    expect(response.status).toBe("incomplete");
    expect(response.incomplete_details?.reason).toBe("max_output_tokens");
    expect(response.usage?.output_tokens).toBe(3);
    expect(SCRIPTED_SENTENCE.startsWith(response.output_text)).toBe(true);
  });

  it("streams the Responses event sequence, which the client accumulates into the same text", async () => {
    const stream = await openai.responses.create({ model: "scripted", input: "Say it.", temperature: 0, stream: true });
    const types: string[] = [];
    let text = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") completed = event.response;
    }
    expect(text).toBe(SCRIPTED_SENTENCE);
    expect(types.slice(0, 4)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
    ]);
    expect(types.slice(-4)).toEqual([
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(completed?.status).toBe("completed");
    expect(completed?.usage?.output_tokens).toBeGreaterThan(0);
  });

  it("accumulates a stream with the client's responses.stream helper", async () => {
    const stream = openai.responses.stream({ model: "scripted", input: "Say it.", temperature: 0 });
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(SCRIPTED_SENTENCE);
  });

  it("calls a function tool, and takes its output back", async () => {
    const first = await openai.responses.create({
      model: "scripted-tools",
      input: "What is the weather in Paris?",
      tools: [weatherTool],
      temperature: 0,
    });
    const call = first.output.find((item) => item.type === "function_call");
    if (call?.type !== "function_call") throw new Error("expected a function_call item");
    expect(call.name).toBe("get_weather");
    expect(JSON.parse(call.arguments)).toEqual({ city: "Paris" });
    expect(call.call_id).toMatch(/^call_/);

    const second = await openai.responses.create({
      model: "scripted-tools",
      tools: [weatherTool],
      temperature: 0,
      input: [
        { role: "user", content: "What is the weather in Paris?" },
        call,
        { type: "function_call_output", call_id: call.call_id, output: "Sunny, 21°C" },
      ],
    });
    expect(second.status).toBe("completed");
    expect(second.usage?.input_tokens).toBeGreaterThan(first.usage?.input_tokens ?? 0);
  });

  it("answers errors in OpenAI's shape", async () => {
    await expect(openai.responses.create({ model: "no-such-model", input: "hi" })).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    await expect(
      openai.responses.create({ model: "scripted", input: "hi", previous_response_id: "resp_x" }),
    ).rejects.toMatchObject({ status: 400, param: "previous_response_id" });
  });
});

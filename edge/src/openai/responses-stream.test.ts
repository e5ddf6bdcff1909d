import { describe, expect, it } from "vitest";
import { ResponsesStreamTranslator } from "./responses-stream";

const ids = { response: "resp_1", message: "msg_1", createdAt: 1 };
const line = (message: Record<string, unknown>, over: Record<string, unknown> = {}) => ({
  model: "m",
  message: { role: "assistant", content: "", ...message },
  done: false,
  ...over,
});
const final = line({}, { done: true, done_reason: "stop", prompt_eval_count: 5, eval_count: 2 });

/** Events as [type, data], checking that the SSE event name is the data's type. */
function events(texts: string[]) {
  return texts.map((text) => {
    const [name, data] = text.trimEnd().split("\n");
    const payload = JSON.parse(data!.replace(/^data: /, "")) as Record<string, unknown>;
    expect(name).toBe(`event: ${payload.type}`);
    return payload;
  });
}

function run(lines: unknown[], request: Record<string, unknown> = { model: "m" }) {
  const translator = new ResponsesStreamTranslator(ids, request);
  return events([...lines.flatMap((l) => translator.push(l)), ...translator.end()]);
}

describe("ResponsesStreamTranslator", () => {
  it("streams thinking as a reasoning item, then the text as one message item", () => {
    const out = run([line({ thinking: "Hm" }), line({ content: "Hi" }), line({ content: "!" }), final]);
    expect(out.map((e) => e.type)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.reasoning_summary_text.delta",
      "response.reasoning_summary_text.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(out.map((e) => e.sequence_number)).toEqual(out.map((_, i) => i));
    expect(out[6]).toMatchObject({ output_index: 1, item: { id: "msg_1", type: "message" } });
    const completed = out.at(-1)?.response as Record<string, unknown>;
    expect(completed.status).toBe("completed");
    expect(completed.output).toEqual([
      { id: "rs_resp_1", type: "reasoning", summary: [{ type: "summary_text", text: "Hm" }], encrypted_content: "Hm" },
      {
        id: "msg_1",
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: "Hi!", annotations: [], logprobs: [] }],
      },
    ]);
    expect(completed.usage).toMatchObject({ input_tokens: 5, output_tokens: 2, total_tokens: 7 });
  });

  it("gives each function call as one finished item with its arguments", () => {
    const call = { id: "call_1", function: { name: "f", arguments: { a: 1 } } };
    const out = run([line({ tool_calls: [call] }), final]);
    expect(out.slice(2).map((e) => e.type)).toEqual([
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(out[5]).toMatchObject({
      item: { type: "function_call", call_id: "call_1", name: "f", arguments: '{"a":1}', status: "completed" },
    });
  });

  it("ends a stream cut by the output limit as incomplete", () => {
    const out = run([line({ content: "a" }), { ...final, done_reason: "length" }]);
    expect(out.at(-1)).toMatchObject({
      type: "response.incomplete",
      response: { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } },
    });
  });

  it("turns an error line, or a stream that stops early, into one error event", () => {
    const failed = run([line({ content: "a" }), { error: "boom" }, final]);
    expect(failed.at(-1)).toMatchObject({ type: "error", message: "boom", error: { message: "boom" } });
    expect(failed.filter((e) => e.type === "error")).toHaveLength(1);
    expect(run([line({ content: "a" })]).at(-1)).toMatchObject({ type: "error" });
  });
});

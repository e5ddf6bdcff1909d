import { describe, expect, it } from "vitest";
import {
  ChatStreamTranslator,
  CompletionStreamTranslator,
  ENDED_EARLY_MESSAGE,
  SSE_DONE,
  type StreamTranslator,
  sseFromNdjson,
} from "./translate-stream";

const ctx = (includeUsage = false) => ({ id: "chatcmpl-x", created: 1700000000, includeUsage });
const model = "scripted:latest";
const chatLine = (content: string, extra: Record<string, unknown> = {}) => ({
  model,
  created_at: "2024-01-01T00:00:00Z",
  message: { role: "assistant", content, ...extra },
  done: false,
});
const finalChat = (over: Record<string, unknown> = {}) => ({
  model,
  message: { role: "assistant", content: "" },
  done: true,
  done_reason: "stop",
  prompt_eval_count: 5,
  eval_count: 2,
  ...over,
});

/** Parses SSE text back into its data payloads (`[DONE]` kept as the string). */
function payloads(events: string[]): unknown[] {
  const text = events.join("");
  expect(text.endsWith("\n\n")).toBe(true);
  return text
    .split("\n\n")
    .filter((e) => e !== "")
    .map((e) => {
      expect(e.startsWith("data: ")).toBe(true);
      const data = e.slice("data: ".length);
      return data === "[DONE]" ? data : JSON.parse(data);
    });
}

const feed = (t: StreamTranslator, lines: unknown[]) => [...lines.flatMap((l) => t.push(l)), ...t.end()];

describe("ChatStreamTranslator", () => {
  it("emits one chunk per line, finish_reason on the last, then [DONE]", () => {
    const out = payloads(feed(new ChatStreamTranslator(ctx()), [chatLine("The "), chatLine("fox."), finalChat()]));
    expect(out).toEqual([
      {
        id: "chatcmpl-x",
        object: "chat.completion.chunk",
        created: 1700000000,
        model,
        system_fingerprint: "fp_ollama",
        choices: [{ index: 0, delta: { role: "assistant", content: "The " }, finish_reason: null }],
      },
      expect.objectContaining({
        choices: [{ index: 0, delta: { role: "assistant", content: "fox." }, finish_reason: null }],
      }),
      expect.objectContaining({
        choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: "stop" }],
      }),
      "[DONE]",
    ]);
  });

  it("with include_usage: usage null on chunks, then a chunk with no choices and the usage", () => {
    const out = payloads(
      feed(new ChatStreamTranslator(ctx(true)), [chatLine("a"), finalChat({ done_reason: "length" })]),
    );
    expect(out).toHaveLength(4);
    expect(out[0]).toMatchObject({ usage: null });
    expect(out[1]).toMatchObject({ usage: null, choices: [{ finish_reason: "length" }] });
    expect(out[2]).toEqual({
      id: "chatcmpl-x",
      object: "chat.completion.chunk",
      created: 1700000000,
      model,
      system_fingerprint: "fp_ollama",
      choices: [],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    });
    expect(out[3]).toBe("[DONE]");
  });

  it("numbers tool calls across lines and ends with tool_calls", () => {
    const call = (name: string) => ({ id: `call_${name}`, function: { name, arguments: { city: "Paris" } } });
    const out = payloads(
      feed(new ChatStreamTranslator(ctx()), [
        chatLine("", { tool_calls: [call("a")] }),
        chatLine("", { tool_calls: [call("b")] }),
        finalChat(),
      ]),
    ) as { choices: { delta: { tool_calls?: unknown[] }; finish_reason: string | null }[] }[];
    expect(out[0]?.choices[0]?.delta.tool_calls).toEqual([
      { id: "call_a", index: 0, type: "function", function: { name: "a", arguments: '{"city":"Paris"}' } },
    ]);
    expect(out[1]?.choices[0]?.delta.tool_calls).toMatchObject([{ id: "call_b", index: 1 }]);
    expect(out[2]?.choices[0]?.finish_reason).toBe("tool_calls");
  });

  it("splits a line with both reasoning and content into two chunks, reasoning first", () => {
    const out = payloads(new ChatStreamTranslator(ctx()).push(chatLine("answer", { thinking: "think" })));
    expect(out.map((o) => (o as { choices: { delta: unknown }[] }).choices[0]?.delta)).toEqual([
      { role: "assistant", content: "", reasoning: "think" },
      { role: "assistant", content: "answer" },
    ]);
  });

  it("keeps reasoning-only lines as one chunk", () => {
    const out = payloads(new ChatStreamTranslator(ctx()).push(chatLine("", { thinking: "t" })));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ choices: [{ delta: { reasoning: "t", content: "" } }] });
  });

  it.each([
    ["an error line", [chatLine("a"), { error: "runner failed mid-stream: boom" }], "runner failed mid-stream: boom"],
    ["an end without the final line", [chatLine("a")], ENDED_EARLY_MESSAGE],
  ])("ends with an error event after %s, and no [DONE]", (_name, lines, message) => {
    const out = payloads(feed(new ChatStreamTranslator(ctx()), lines));
    expect(out.at(-1)).toEqual({ error: { message, type: "api_error", param: null, code: null } });
    expect(out).not.toContain("[DONE]");
  });

  it("ignores lines after the end", () => {
    const t = new ChatStreamTranslator(ctx());
    t.push(finalChat());
    expect(t.done).toBe(true);
    expect(t.push(chatLine("late"))).toEqual([]);
    expect(t.end()).toEqual([]);
  });
});

describe("CompletionStreamTranslator", () => {
  const genLine = (response: string, over: Record<string, unknown> = {}) => ({ model, response, done: false, ...over });

  it("emits text chunks, the final finish_reason, usage when asked, then [DONE]", () => {
    const out = payloads(
      feed(new CompletionStreamTranslator({ id: "cmpl-1", created: 5, includeUsage: true }), [
        genLine("ab"),
        genLine("", { done: true, done_reason: "length", prompt_eval_count: 3, eval_count: 1 }),
      ]),
    );
    expect(out).toEqual([
      {
        id: "cmpl-1",
        object: "text_completion",
        created: 5,
        model,
        system_fingerprint: "fp_ollama",
        choices: [{ text: "ab", index: 0, finish_reason: null }],
        usage: null,
      },
      expect.objectContaining({ choices: [{ text: "", index: 0, finish_reason: "length" }] }),
      expect.objectContaining({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } }),
      "[DONE]",
    ]);
  });

  it("offsets logprobs across chunks", () => {
    const t = new CompletionStreamTranslator({ id: "c", created: 0, includeUsage: false });
    t.push(genLine("abc", { logprobs: [{ token: "abc", logprob: 0 }] }));
    const [second] = payloads(t.push(genLine("d", { logprobs: [{ token: "d", logprob: -1 }] }))) as {
      choices: { logprobs: { text_offset: number[] } }[];
    }[];
    expect(second?.choices[0]?.logprobs.text_offset).toEqual([3]);
  });
});

describe("sseFromNdjson", () => {
  const encoder = new TextEncoder();

  function source(pieces: string[]) {
    let read = 0;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = pieces[read++];
        if (next === undefined) controller.close();
        else controller.enqueue(encoder.encode(next));
      },
      cancel() {
        cancelled = true;
      },
    });
    return { stream, drained: () => read > pieces.length, cancelled: () => cancelled };
  }

  it("reframes NDJSON split anywhere into SSE, and reads the upstream to its end", async () => {
    const ndjson = [chatLine("Hel"), chatLine("lo"), finalChat()].map((l) => `${JSON.stringify(l)}\n`).join("");
    // Split mid-line and mid-character boundaries alike.
    const src = source([ndjson.slice(0, 7), ndjson.slice(7, 50), ndjson.slice(50), "\n"]);
    const text = await new Response(sseFromNdjson(src.stream, new ChatStreamTranslator(ctx()))).text();
    const events = payloads([text]);
    expect(
      events.map((e) =>
        e === "[DONE]" ? e : (e as { choices: { delta: { content: string } }[] }).choices[0]?.delta.content,
      ),
    ).toEqual(["Hel", "lo", "", "[DONE]"]);
    expect(text.endsWith(SSE_DONE)).toBe(true);
    expect(src.drained()).toBe(true);
    expect(src.cancelled()).toBe(false);
  });

  it("turns an unreadable line into an error event", async () => {
    const src = source([`${JSON.stringify(chatLine("a"))}\n`, "not json\n"]);
    const events = payloads([await new Response(sseFromNdjson(src.stream, new ChatStreamTranslator(ctx()))).text()]);
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({
      error: { type: "api_error", message: expect.stringContaining("invalid NDJSON line") },
    });
  });

  it("cancels the upstream when the client goes away", async () => {
    const src = source([`${JSON.stringify(chatLine("a"))}\n`, `${JSON.stringify(chatLine("b"))}\n`]);
    const reader = sseFromNdjson(src.stream, new ChatStreamTranslator(ctx())).getReader();
    await reader.read();
    await reader.cancel();
    expect(src.cancelled()).toBe(true);
  });
});

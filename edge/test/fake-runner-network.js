/**
 * An auxiliary Worker standing in for the runners' private network behind the Workers VPC network binding: the edge
 * reaches it through a real service binding (edge/vitest.config.ts), so streaming, cancellation and errors cross a
 * binding as they do in production. Runners are addressed by their private `host:port`; what each one does is set
 * per test through `http://control/` (this isolate's memory), and every request it receives is logged there.
 *
 * Behaviours: `stream` (the tokens, then Ollama's final chunk), `endless` (a line per read until cancelled; the log
 * entry's `cancelled` turns true), `unreachable` (502 Bad Gateway, what the tunnel answers when nothing listens).
 */
const runners = new Map();
let log = [];

const encoder = new TextEncoder();
const line = (value) => encoder.encode(`${JSON.stringify(value)}\n`);

function control(request, url) {
  if (request.method === "DELETE") {
    runners.clear();
    log = [];
    return new Response(null, { status: 204 });
  }
  if (request.method === "PUT") {
    return request.json().then((behaviour) => {
      runners.set(url.pathname.slice("/runners/".length), behaviour);
      return new Response(null, { status: 204 });
    });
  }
  return Response.json(log);
}

function stream(model, tokens) {
  const chunks = tokens.map((response) => line({ model, response, done: false }));
  chunks.push(line({ model, response: "", done: true, done_reason: "stop", prompt_eval_count: 1, eval_count: 2 }));
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

function endless(model, entry) {
  return new ReadableStream({
    pull(controller) {
      controller.enqueue(line({ model, response: "a", done: false }));
    },
    cancel() {
      entry.cancelled = true;
    },
  });
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.hostname === "control") return control(request, url);
    const entry = {
      host: url.host,
      path: url.pathname,
      authorization: request.headers.get("authorization"),
      cancelled: false,
    };
    log.push(entry);
    const behaviour = runners.get(url.host);
    if (!behaviour || behaviour.kind === "unreachable") return new Response("Bad Gateway", { status: 502 });
    const body = await request.json();
    const model = body.model.name;
    const headers = { "content-type": "application/x-ndjson" };
    if (behaviour.kind === "endless") return new Response(endless(model, entry), { headers });
    return new Response(stream(model, behaviour.tokens), { headers });
  },
};

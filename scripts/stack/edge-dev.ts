/**
 * The local stack's edge without wrangler's DevTools bridge: `wrangler dev` always enables the inspector's Network
 * domain, and its inspector proxy then POSTs every DevTools event (one per subrequest and per streamed chunk) to
 * wrangler's Node process. Measured on the 2-core dev VM: ~75 ms of CPU per 64-token streamed generation spent
 * there, about three times the runner's own work — the local stack then measures wrangler, not corral.
 * Same Worker, bindings, persistence and reload-on-change; only the inspector is off.
 *
 * Accepts the `wrangler dev` flags start.ts passes: --ip, --port, --persist-to, --var NAME:VALUE (repeatable);
 * others (--inspector-port, --log-level, ...) are ignored. Stops like on SIGTERM once the launcher named by
 * CORRAL_PARENT_PID is gone (killed with SIGKILL, start.ts cannot stop it).
 */
import { unstable_startWorker } from "wrangler";
import { watchParent } from "../../gpu-runner/src/parent-watch";

type PlainText = { type: "plain_text"; value: string };

function parseDevArgs(args: readonly string[]) {
  const value = (flag: string) => {
    const at = args.indexOf(flag);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const vars: Record<string, PlainText> = {};
  args.forEach((arg, i) => {
    const spec = arg === "--var" ? args[i + 1] : undefined;
    const colon = spec?.indexOf(":") ?? -1;
    if (spec && colon > 0) vars[spec.slice(0, colon)] = { type: "plain_text", value: spec.slice(colon + 1) };
  });
  return {
    hostname: value("--ip") ?? "127.0.0.1",
    port: Number(value("--port") ?? 8787),
    persist: value("--persist-to"),
    vars,
  };
}

async function main() {
  const { hostname, port, persist, vars } = parseDevArgs(process.argv.slice(2));
  const worker = await unstable_startWorker({
    config: "wrangler.toml",
    bindings: vars,
    dev: { server: { hostname, port }, inspector: false, persist: persist ?? false, watch: true, logLevel: "warn" },
  });
  await worker.ready;
  console.log(`edge ready on ${(await worker.url).href} (DevTools off)`);
  const stop = () => void worker.dispose().finally(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  watchParent(process.env, stop);
}

main().catch((err: unknown) => {
  console.error("edge failed to start:", err);
  process.exit(1);
});

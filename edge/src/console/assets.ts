/**
 * The console's only stylesheet and script, served from the Worker (the CSP allows scripts and styles from
 * /console/assets only). The script is progressive: every page works as plain forms; it adds copy buttons, the
 * playground's streaming chat and the fleet's live refresh.
 */
export const CONSOLE_CSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff}
a{color:#0645ad}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;padding:.5rem 1rem;background:#102a43;color:#fff}
header a{color:#fff}
header .brand{font-weight:700}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0}
nav a[aria-current=page]{font-weight:700;text-decoration-thickness:3px}
main{max-width:70rem;margin:0 auto;padding:1rem}
main:focus{outline:none}
.skip,.sr{position:absolute;left:-999px}
.sr{width:1px;height:1px;overflow:hidden}
.skip:focus{left:1rem;top:1rem;background:#fff;color:#000;padding:.5rem;z-index:1}
:focus-visible{outline:3px solid #b35c00;outline-offset:2px}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ccc;vertical-align:top}
.scroll{overflow-x:auto}
label{display:block;font-weight:600;margin-top:.5rem}
input,select,textarea,button{font:inherit;padding:.35rem .5rem;border:1px solid #555;border-radius:4px}
input,select,textarea{width:100%;max-width:30rem;background:#fff;color:#1a1a1a}
button{background:#0b5cad;color:#fff;border-color:#0b5cad;cursor:pointer;margin-top:.5rem}
button.secondary{background:#fff;color:#0b5cad}
button.danger{background:#a4161a;border-color:#a4161a}
header button{background:transparent;border-color:#fff;margin:0}
form.inline{display:inline}
.row{display:flex;flex-wrap:wrap;gap:0 1rem;align-items:flex-end}
.row>*{flex:1 1 10rem}
.notice{padding:.5rem 1rem;border-left:6px solid}
.notice.ok{border-color:#2b7a0b;background:#eef7ea}
.notice.error{border-color:#a4161a;background:#fbeaea}
code,pre{font-family:ui-monospace,monospace;font-size:.9em;overflow-wrap:anywhere}
pre{white-space:pre-wrap;background:#f4f4f4;padding:.5rem;max-height:24rem;overflow:auto}
.chart{max-width:44rem;display:block;margin:.5rem 0}
.chart .value{fill:#1a1a1a}
.output{min-height:6rem;border:1px solid #ccc;padding:.5rem;white-space:pre-wrap}
.muted{color:#555}
@media (max-width:40rem){th,td{padding:.25rem}header{padding:.5rem}}
`;

export const CONSOLE_JS = `"use strict";
const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy)?.textContent ?? "";
    const status = document.getElementById(button.dataset.copy + "-status");
    try {
      await navigator.clipboard.writeText(text);
      if (status) status.textContent = "Copied to the clipboard.";
    } catch {
      if (status) status.textContent = "Copying failed: select the text and copy it by hand.";
    }
  });
}

for (const region of document.querySelectorAll("[data-refresh]")) {
  const every = Number(region.dataset.every || 2000);
  const tick = async () => {
    if (!document.hidden) {
      try {
        const res = await fetch(region.dataset.refresh, { headers: { accept: "text/html" } });
        if (res.ok) region.innerHTML = await res.text();
      } catch {}
    }
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
}

const play = document.getElementById("playground");
if (play) {
  const out = document.getElementById("answer");
  const status = document.getElementById("play-status");
  const stats = document.getElementById("play-stats");
  const send = document.getElementById("send");
  const stop = document.getElementById("stop");
  const history = [];
  let controller = null;
  const num = (name) => {
    const v = play.elements[name].value.trim();
    return v === "" ? undefined : Number(v);
  };
  stop.addEventListener("click", () => controller?.abort());
  play.addEventListener("submit", async (event) => {
    event.preventDefault();
    const prompt = play.elements.prompt.value.trim();
    if (!prompt) { status.textContent = "Write a message first."; return; }
    const system = play.elements.system.value.trim();
    const messages = [...(system ? [{ role: "system", content: system }] : []), ...history, { role: "user", content: prompt }];
    const options = {};
    for (const name of ["temperature", "num_predict", "seed"]) if (num(name) !== undefined) options[name] = num(name);
    controller = new AbortController();
    send.disabled = true; stop.disabled = false;
    out.textContent = ""; stats.textContent = ""; status.textContent = "Generating…";
    let answer = "";
    try {
      const res = await fetch("/api/chat", {
        method: "POST", signal: controller.signal,
        headers: { "content-type": "application/json", "x-csrf-token": csrf() },
        body: JSON.stringify({ model: play.elements.model.value, messages, options, stream: true }),
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new Error(body.error || "the request failed with status " + res.status);
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        const lines = buffered.split("\\n");
        buffered = lines.pop();
        for (const line of lines) {
          if (!line.trim()) continue;
          const chunk = JSON.parse(line);
          if (chunk.error) throw new Error(chunk.error);
          answer += chunk.message?.content ?? "";
          out.textContent = answer;
          if (chunk.done) {
            const seconds = (chunk.eval_duration || 0) / 1e9;
            const rate = seconds > 0 ? (chunk.eval_count / seconds).toFixed(1) : "–";
            stats.textContent = "Prompt tokens: " + chunk.prompt_eval_count + " · Output tokens: " + chunk.eval_count + " · " + rate + " tokens/s";
          }
        }
      }
      history.push({ role: "user", content: prompt }, { role: "assistant", content: answer });
      status.textContent = "Done.";
    } catch (err) {
      if (err.name === "AbortError") status.textContent = "Stopped.";
      else { const m = String(err.message || err); status.textContent = "Error: " + m.charAt(0).toUpperCase() + m.slice(1) + "."; }
    } finally {
      send.disabled = false; stop.disabled = true; controller = null;
    }
  });
}
`;

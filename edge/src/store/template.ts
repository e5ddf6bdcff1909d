/**
 * What the edge needs to know about prompt templates without executing them: a structural check of Go
 * templates at create time (Ollama refuses templates that do not parse), and the capabilities a model's
 * templates imply for `/api/show` (Ollama's Model.Capabilities, simplified).
 */
import { ApiError } from "@corral/protocol";
import type { Capability } from "@corral/protocol/types";
import type { GgufSummary } from "./gguf";

const OPENERS = new Set(["if", "range", "with", "block", "define"]);

/**
 * Checks that every `{{` action is closed and that if/range/with/block/define match their `{{end}}`s. Not a
 * full Go template parser: the runner renders templates; this only stops obviously broken ones early.
 */
export function checkGoTemplate(template: string): void {
  let depth = 0;
  let at = 0;
  for (;;) {
    const open = template.indexOf("{{", at);
    if (open < 0) break;
    const close = template.indexOf("}}", open + 2);
    if (close < 0) throw new ApiError(400, "template error: unclosed action");
    const inner = template
      .slice(open + 2, close)
      .replace(/^-\s*/, "")
      .trim();
    if (!inner.startsWith("/*")) {
      const word = /^[a-z]+/.exec(inner)?.[0] ?? "";
      if (OPENERS.has(word)) depth++;
      else if (word === "end" && --depth < 0) throw new ApiError(400, "template error: unexpected {{end}}");
    }
    at = close + 2;
  }
  if (depth !== 0) throw new ApiError(400, "template error: unexpected EOF");
}

function goTemplateCapabilities(template: string): Capability[] {
  const caps: Capability[] = [];
  if (/\.Tools\b/.test(template)) caps.push("tools");
  if (/\.Suffix\b/.test(template)) caps.push("insert");
  if (/\.(Think|Thinking)\b/.test(template) || (template.includes("<think>") && template.includes("</think>"))) {
    caps.push("thinking");
  }
  return caps;
}

function chatTemplateCapabilities(template: string): Capability[] {
  const caps: Capability[] = [];
  if (template.includes("tools") || template.includes("tool_call")) caps.push("tools");
  if (template.includes("<think>") && template.includes("</think>")) caps.push("thinking");
  return caps;
}

/**
 * completion or embedding (an embedding GGUF declares a pooling type), vision (a projector layer, or vision
 * tensors in the weights themselves), then what the template understands: the Go template layer when there is
 * one, else the GGUF's own chat template.
 */
export function modelCapabilities(
  weights: GgufSummary | null,
  goTemplate: string | undefined,
  hasProjector = false,
): Capability[] {
  const caps: Capability[] = [];
  if (weights) {
    caps.push(weights.pooling ? "embedding" : "completion");
    if (weights.vision || hasProjector) caps.push("vision");
  }
  const fromTemplate =
    goTemplate !== undefined
      ? goTemplateCapabilities(goTemplate)
      : weights?.chat_template
        ? chatTemplateCapabilities(weights.chat_template)
        : [];
  for (const cap of fromTemplate) if (!caps.includes(cap)) caps.push(cap);
  return caps;
}

/**
 * The sources of a create request, in both of its forms, reduced to one shape: a base model name or GGUF blob
 * digests, plus the template/system/license/parameters/messages to layer on top. The Modelfile form is turned
 * into the same fields Ollama's CLI would send (parser.Modelfile.CreateRequest), except that FROM and ADAPTER
 * may only name a model or a blob digest: the server never reads a path.
 */
import { ApiError, type Options, parametersToOptions } from "@corral/protocol";
import { parseDigest } from "@corral/protocol/digest";
import type { CreateRequest } from "@corral/protocol/schemas-models";
import { parseModelfile } from "./modelfile";
import { requireModelName, type TenantModelName } from "./names";

export interface CreateSource {
  from?: { input: string; name: TenantModelName };
  /** [file name, digest], sorted by file name as Ollama does; the name becomes the layer's `from` ("" for none). */
  files: [string, string][];
  adapters: [string, string][];
  template?: string;
  system?: string;
  licenses: string[];
  parameters: Options;
  messages: { role: string; content: string }[];
}

export const SERVER_PATH_REFUSED =
  "FROM and ADAPTER must name a model or a blob digest (sha256:...); server paths are not allowed";

/** Anything that reads like a file path rather than a model name is refused outright. */
function looksLikePath(s: string): boolean {
  return (
    /^[/.~\\]/.test(s) ||
    s.includes("\\") ||
    /^[A-Za-z]:/.test(s) ||
    /\.(gguf|bin|safetensors)$/i.test(s) ||
    s.includes("..")
  );
}

/** `sha256:…`, `sha256-…` or the older CLI's `@sha256:…`: a digest; anything else starting so is malformed. */
function digestArg(s: string): string | null {
  const bare = s.startsWith("@") ? s.slice(1) : s;
  if (!bare.toLowerCase().startsWith("sha256")) return null;
  const digest = parseDigest(bare);
  if (!digest) throw new ApiError(400, "invalid digest format");
  return digest;
}

function modelRef(input: string): { input: string; name: TenantModelName } {
  if (looksLikePath(input)) throw new ApiError(400, SERVER_PATH_REFUSED);
  return { input, name: requireModelName(input) };
}

const sorted = (map: Record<string, string> | undefined): [string, string][] =>
  Object.entries(map ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

export function createSource(request: CreateRequest): CreateSource {
  const source: CreateSource = {
    files: sorted(request.files),
    adapters: sorted(request.adapters),
    licenses: request.license ?? [],
    parameters: request.parameters ?? {},
    messages: (request.messages ?? []).map((m) => ({ role: m.role, content: m.content })),
  };
  if (request.from) source.from = modelRef(request.from);
  if (request.modelfile !== undefined) {
    if (request.from || request.files) throw new ApiError(400, "modelfile cannot be combined with from or files");
    applyModelfile(source, request.modelfile);
  }
  // Fields given as JSON win over the Modelfile's, as they are the more explicit of the two.
  if (request.template) source.template = request.template;
  if (request.system) source.system = request.system;
  if (request.license) source.licenses = request.license;
  if (request.parameters) source.parameters = request.parameters;
  if (request.messages?.length) source.messages = request.messages.map((m) => ({ role: m.role, content: m.content }));
  if (!source.from && source.files.length === 0) throw new ApiError(400, "neither 'from' or 'files' was specified");
  // A safetensors adapter is several files (adapter_config.json and its weights); a GGUF adapter is one.
  const safetensors = source.adapters.some(([name]) => name.endsWith(".safetensors"));
  if (source.adapters.length > 1 && !safetensors) throw new ApiError(400, "only one adapter is currently supported");
  return source;
}

function applyModelfile(source: CreateSource, text: string): void {
  const commands = parseModelfile(text);
  const parameterLines: [string, string][] = [];
  const files: [string, string][] = [];
  const adapters: [string, string][] = [];
  const licenses: string[] = [];
  const messages: { role: string; content: string }[] = [];
  for (const cmd of commands) {
    switch (cmd.name) {
      case "model": {
        const digest = digestArg(cmd.args);
        if (digest) files.push(["", digest]);
        else source.from = modelRef(cmd.args);
        break;
      }
      case "adapter": {
        const digest = digestArg(cmd.args);
        if (!digest) {
          if (looksLikePath(cmd.args)) throw new ApiError(400, SERVER_PATH_REFUSED);
          throw new ApiError(400, "ADAPTER must name a blob digest (sha256:...)");
        }
        adapters.push(["", digest]);
        break;
      }
      case "template":
        source.template = cmd.args;
        break;
      case "system":
        source.system = cmd.args;
        break;
      case "license":
        licenses.push(cmd.args);
        break;
      case "message": {
        const at = cmd.args.indexOf(": ");
        messages.push({ role: cmd.args.slice(0, at), content: cmd.args.slice(at + 2) });
        break;
      }
      default:
        parameterLines.push([cmd.name, cmd.args]);
    }
  }
  // As in Ollama, FROM <model> takes precedence over FROM <blob> when both appear.
  if (!source.from) source.files = files;
  if (adapters.length > 0) source.adapters = adapters;
  if (licenses.length > 0) source.licenses = licenses;
  if (messages.length > 0) source.messages = messages;
  if (parameterLines.length > 0) source.parameters = parametersToOptions(parameterLines);
}

/**
 * Request schemas of the model-management endpoints: create, copy, delete, show, pull, push.
 * Each accepts the deprecated `name` beside `model` (the seed pages still use it) and yields only `model`.
 */
import { z } from "zod";
import { requireDigest } from "./digest";
import { ApiError, OllamaError } from "./errors";
import { parseModelName } from "./names";
import { validateOptions } from "./options";
import { messageSchema, optionsField } from "./schema-fields";
import { def, opt, refineWith } from "./schema-helpers";

/** Go's io/fs.ValidPath: slash-separated, unrooted, no empty, `.` or `..` elements (only "." alone). */
export function isValidRelativePath(path: string): boolean {
  if (path === ".") return true;
  return path.split("/").every((element) => element !== "" && element !== "." && element !== "..");
}

/** `files` / `adapters`: file name → blob digest; names must be relative, digests are made canonical. */
const fileMapField = opt(
  z.record(z.string()).transform(
    refineWith((files: Record<string, string>) => {
      const out: Record<string, string> = {};
      for (const [path, digest] of Object.entries(files)) {
        if (!isValidRelativePath(path)) throw new ApiError(400, "file path must be relative");
        out[path] = requireDigest(digest);
      }
      return out;
    }),
  ),
);

/** Ollama's `cmp.Or(r.Model, r.Name)`: the current field wins, the deprecated one fills in. */
const nameFields = {
  model: def(z.string(), ""),
  name: def(z.string(), ""),
};

function withModel<T extends { model: string; name: string }>({ name, ...rest }: T): Omit<T, "name"> {
  return { ...rest, model: rest.model || name };
}

export const createRequestSchema = z
  .object({
    ...nameFields,
    stream: def(z.boolean(), true),
    // New form (current Ollama): the client uploads blobs, then names them here.
    from: opt(z.string()),
    files: fileMapField,
    adapters: fileMapField,
    quantize: opt(z.string()),
    quantization: opt(z.string()), // deprecated spelling of quantize
    template: opt(z.string()),
    system: opt(z.string()),
    license: opt(
      z.unknown().transform(
        refineWith((license: unknown): string[] => {
          if (typeof license === "string") return license === "" ? [] : [license];
          if (Array.isArray(license) && license.every((item) => typeof item === "string")) return [...license];
          throw new ApiError(400, "license must be a string or an array of strings");
        }),
      ),
    ),
    parameters: opt(z.record(z.unknown()).transform(refineWith(validateOptions))),
    messages: opt(z.array(messageSchema)),
    renderer: opt(z.string()),
    parser: opt(z.string()),
    requires: opt(z.string()),
    // Seed (older Ollama) form: Modelfile text. `path` named a file on the server; corral never reads one.
    modelfile: opt(z.string()),
    path: opt(z.string()),
  })
  .transform(
    refineWith(({ quantization, path, ...request }) => {
      const normalised = withModel(request);
      if (!parseModelName(normalised.model)) throw new ApiError(400, OllamaError.invalidModelName);
      const quantize = request.quantize || quantization || undefined;
      const hasSource = Boolean(request.from || request.files || request.modelfile);
      if (!hasSource && path) {
        throw new ApiError(
          400,
          'reading a Modelfile from a server path is not supported; send its text as "modelfile"',
        );
      }
      if (!hasSource) throw new ApiError(400, "neither 'from' or 'files' was specified");
      return { ...normalised, quantize };
    }),
  )
  .describe("CreateRequest");

export const copyRequestSchema = z
  .object({
    source: def(z.string(), ""),
    destination: def(z.string(), ""),
  })
  .transform(
    refineWith((request) => {
      if (!parseModelName(request.source))
        throw new ApiError(400, `source ${JSON.stringify(request.source)} is invalid`);
      if (!parseModelName(request.destination)) {
        throw new ApiError(400, `destination ${JSON.stringify(request.destination)} is invalid`);
      }
      return request;
    }),
  )
  .describe("CopyRequest");

export const deleteRequestSchema = z
  .object(nameFields)
  .transform(
    refineWith((raw) => {
      const request = withModel(raw);
      if (!parseModelName(request.model)) throw new ApiError(400, `name ${JSON.stringify(request.model)} is invalid`);
      return request;
    }),
  )
  .describe("DeleteRequest");

export const showRequestSchema = z
  .object({
    ...nameFields,
    verbose: def(z.boolean(), false),
    system: opt(z.string()),
    template: opt(z.string()),
    options: optionsField,
  })
  .transform(
    refineWith((raw) => {
      const request = withModel(raw);
      if (request.model === "") throw new ApiError(400, OllamaError.modelRequired);
      return request;
    }),
  )
  .describe("ShowRequest");

/** Pull and push share a body; `username`/`password` are deprecated in Ollama and dropped here. */
const registryFields = {
  ...nameFields,
  insecure: def(z.boolean(), false),
  stream: def(z.boolean(), true),
};

export const pullRequestSchema = z
  .object(registryFields)
  .transform(
    refineWith((raw) => {
      const request = withModel(raw);
      if (!parseModelName(request.model)) throw new ApiError(400, OllamaError.invalidModelName);
      return request;
    }),
  )
  .describe("PullRequest");

export const pushRequestSchema = z
  .object(registryFields)
  .transform(
    refineWith((raw) => {
      const request = withModel(raw);
      if (request.model === "") throw new ApiError(400, OllamaError.modelRequired);
      return request;
    }),
  )
  .describe("PushRequest");

export type CreateRequest = z.output<typeof createRequestSchema>;
export type CopyRequest = z.output<typeof copyRequestSchema>;
export type DeleteRequest = z.output<typeof deleteRequestSchema>;
export type ShowRequest = z.output<typeof showRequestSchema>;
export type PullRequest = z.output<typeof pullRequestSchema>;
export type PushRequest = z.output<typeof pushRequestSchema>;

/**
 * The pieces the request schemas are built from, and `parseRequest`, which turns zod's verdict into the
 * ApiError Ollama would have answered: Go's json texts for wrongly typed fields, handler texts for the rest.
 */
import { z } from "zod";
import { ApiError, OllamaError } from "./errors";

const nullToUndefined = (value: unknown) => (value === null ? undefined : value);

/**
 * An optional field. JSON null counts as absent, as it does for Go's decoder (null leaves the zero value),
 * so clients that send `"images": null` or `"format": null` are accepted like Ollama accepts them.
 */
export function opt<T extends z.ZodTypeAny>(schema: T) {
  return z.preprocess(nullToUndefined, schema.optional());
}

/** A field with a default for absent or null values (Go's zero value, or Ollama's documented default). */
export function def<T extends z.ZodTypeAny>(schema: T, fallback: z.input<T>) {
  return z.preprocess((value) => value ?? fallback, schema) as z.ZodEffects<T, z.output<T>, unknown>;
}

/**
 * Adapts a function that throws ApiError (validateOptions, parseKeepAlive, ...) into a zod transform, so its
 * exact message and status surface through parseRequest.
 */
export function refineWith<I, O>(fn: (value: I) => O) {
  return (value: I, ctx: z.RefinementCtx): O => {
    try {
      return fn(value);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: err.message, params: { status: err.status } });
      return z.NEVER;
    }
  };
}

const isBase64Char = (c: number) =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f;
const isNewline = (c: number) => c === 0x0a || c === 0x0d;

/**
 * Offset Go's base64.StdEncoding reports for the first problem (its decodeQuantum walk: newlines skipped,
 * padding required, nothing after padding), or -1 when the text decodes.
 */
export function base64ErrorOffset(src: string): number {
  const n = src.length;
  let si = 0;
  for (;;) {
    for (let j = 0; j < 4; j++) {
      if (si === n) return j === 0 ? -1 : si - j;
      const c = src.charCodeAt(si++);
      if (isBase64Char(c)) continue;
      if (isNewline(c)) {
        j--;
        continue;
      }
      if (c !== 0x3d /* = */ || j < 2) return si - 1;
      if (j === 2) {
        // A quantum with two data characters needs "==".
        while (si < n && isNewline(src.charCodeAt(si))) si++;
        if (si === n) return n;
        if (src.charCodeAt(si) !== 0x3d) return si - 1;
        si++;
      }
      while (si < n && isNewline(src.charCodeAt(si))) si++;
      return si < n ? si : -1;
    }
  }
}

/** A base64-encoded image, validated with Go's base64 rules (Ollama decodes images into []byte). */
export const base64Image = z.string().transform(
  refineWith((text: string) => {
    const offset = base64ErrorOffset(text);
    if (offset >= 0) throw new ApiError(400, `illegal base64 data at input byte ${offset}`);
    return text;
  }),
);

/** Go type names for fields whose type Go would name in an unmarshal error. */
const GO_FIELD_TYPES: Record<string, { field: string; element?: string }> = {
  messages: { field: "[]api.Message", element: "api.Message" },
  tool_calls: { field: "[]api.ToolCall", element: "api.ToolCall" },
  tools: { field: "api.Tools", element: "api.Tool" },
  images: { field: "[]api.ImageData", element: "api.ImageData" },
  context: { field: "[]int", element: "int" },
  files: { field: "map[string]string", element: "string" },
  adapters: { field: "map[string]string", element: "string" },
};

function jsonKind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "boolean") return "bool";
  return typeof value; // string, number, object
}

function valueAt(root: unknown, path: ReadonlyArray<string | number>): unknown {
  let current = root;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

function goTypeFor(expected: string, path: ReadonlyArray<string | number>): string {
  const last = path.at(-1);
  const named = [...path].reverse().find((key): key is string => typeof key === "string");
  const known = named === undefined ? undefined : GO_FIELD_TYPES[named];
  if (known) return typeof last === "number" ? (known.element ?? known.field) : known.field;
  switch (expected) {
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "number":
    case "integer":
      return "int";
    case "array":
      return "[]interface {}";
    default:
      return "map[string]interface {}";
  }
}

/** Fields decoded into Go maps: keys below them are data, and Go leaves them out of its error's field path. */
const MAP_FIELDS = new Set(["files", "adapters", "options", "parameters", "arguments", "format", "info"]);

/** Go's dotted field path for an error: struct field names only, no slice indices, nothing inside a map. */
function goFieldPath(path: ReadonlyArray<string | number>): string {
  const names: string[] = [];
  for (const key of path) {
    if (typeof key !== "string") continue;
    names.push(key);
    if (MAP_FIELDS.has(key)) break;
  }
  return names.join(".");
}

function issueMessage(issue: z.ZodIssue, typeName: string, body: unknown): string {
  if (issue.code === z.ZodIssueCode.custom) return issue.message;
  const field = goFieldPath(issue.path);
  if (issue.code === z.ZodIssueCode.invalid_type) {
    const actual = valueAt(body, issue.path);
    // Go would decode a zero value; the few fields corral insists on get a plain sentence.
    if (actual === undefined) return `${field} is required`;
    // Go names a number that does not fit an int field by its literal: "number 1.5".
    const kind = typeof actual === "number" && issue.expected === "integer" ? `number ${actual}` : jsonKind(actual);
    return `json: cannot unmarshal ${kind} into Go struct field ${typeName}.${field} of type ${goTypeFor(issue.expected, issue.path)}`;
  }
  return field === "" ? issue.message : `invalid value for "${field}": ${issue.message}`;
}

/**
 * Validates and normalises a parsed JSON body with one of the request schemas. Throws ApiError (400 unless a
 * check says otherwise) with Ollama's text for the first problem found. A JSON `null` body decodes like `{}`,
 * as in Go; any other non-object body is Go's "cannot unmarshal array into Go value of type api.X".
 */
export function parseRequest<S extends z.ZodTypeAny>(schema: S, body: unknown): z.output<S> {
  const typeName = schema.description ?? "Request";
  if (body === undefined) throw new ApiError(400, OllamaError.missingBody);
  const value = body === null ? {} : body;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ApiError(400, `json: cannot unmarshal ${jsonKind(value)} into Go value of type api.${typeName}`);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const status = issue.code === z.ZodIssueCode.custom ? (issue.params?.status ?? 400) : 400;
  throw new ApiError(status, issueMessage(issue, typeName, value));
}

/**
 * Validates one of corral's own bodies (runner ↔ edge messages, admin and upload bodies), which have no Ollama
 * text to match: a 400 naming the first problem, `invalid <subject>: <field path>: <zod's message>`.
 */
export function parseBody<S extends z.ZodTypeAny>(schema: S, body: unknown, subject: string): z.output<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw new ApiError(400, `invalid ${subject}: ${firstIssue(result.error)}`);
}

/** The first problem zod found, worded once for every corral body: `<field path>: <zod's message>`. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`;
}

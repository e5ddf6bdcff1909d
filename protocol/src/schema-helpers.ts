/**
 * The pieces the request schemas are built from, and `parseRequest`, which turns zod's verdict into the
 * ApiError Ollama would have answered: Go's json texts for wrongly typed fields, handler texts for the rest.
 */
import { z } from "zod";
import { ApiError } from "./errors";

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

/** Index of the first byte Go's base64.StdEncoding would refuse, or -1 when the text decodes. */
export function base64ErrorOffset(text: string): number {
  let data = 0; // alphabet characters seen
  let padding = 0;
  let lastIndex = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) continue; // Go skips newlines
    lastIndex = i;
    const inAlphabet =
      (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f;
    if (c === 0x3d /* = */) {
      // Padding may only finish a quantum that has at least two data characters.
      if ((data + padding) % 4 < 2 || padding === 2) return i;
      padding++;
    } else if (!inAlphabet || padding > 0) {
      return i;
    }
    if (inAlphabet) data++;
  }
  if ((data + padding) % 4 !== 0) return (data + padding) % 4 === 1 ? lastIndex : text.length;
  return -1;
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

function issueMessage(issue: z.ZodIssue, typeName: string, body: unknown): string {
  if (issue.code === z.ZodIssueCode.custom) return issue.message;
  const field = issue.path.filter((key) => typeof key === "string").join(".");
  if (issue.code === z.ZodIssueCode.invalid_type) {
    const actual = valueAt(body, issue.path);
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
  if (body === undefined) throw new ApiError(400, "missing request body");
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

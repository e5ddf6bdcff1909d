// What Ollama's templates see: the API's snake_case messages and tools turned into the Go structs of Ollama's
// template package (templateMessage, templateTool, api.ToolProperty, ...) with their field names, JSON tags and
// String() methods, plus the extra template functions (json, currentDate, yesterdayDate, toTypeScriptType).

import { marshalJSON } from "./gojson";
import { type GoFunc, goNilMap, goNilSlice, goStruct, metaOf, withMeta } from "./values";

/** A chat message as the API carries it (structurally compatible with @corral/protocol's Message). */
export interface TemplateMessageInput {
  readonly role: string;
  readonly content?: string;
  readonly thinking?: string;
  /** Base64 image data. */
  readonly images?: readonly string[];
  readonly tool_calls?: readonly TemplateToolCallInput[];
  readonly tool_name?: string;
  readonly tool_call_id?: string;
}

export interface TemplateToolCallInput {
  readonly id?: string;
  readonly function: {
    readonly index?: number;
    readonly name: string;
    readonly arguments?: Readonly<Record<string, unknown>> | null;
  };
}

/** A tool definition as the API carries it (structurally compatible with @corral/protocol's Tool). */
export interface TemplateToolInput {
  readonly type?: string;
  readonly items?: unknown;
  readonly function: {
    readonly name: string;
    readonly description?: string;
    readonly parameters?: Readonly<Record<string, unknown>>;
  };
}

type JsonObject = Readonly<Record<string, unknown>>;

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === "string" ? v : "");
/** A JSON value decoded into Go's `any`: absent is nil. */
const anyValue = (v: unknown): unknown => (v === undefined ? null : v);

function stringSlice(v: unknown, typeName = "[]string"): string[] {
  if (!Array.isArray(v)) return goNilSlice(typeName) as string[];
  return withMeta(
    v.filter((s): s is string => typeof s === "string"),
    { typeName },
  );
}

/** api.PropertyType: a JSON string or array of strings; prints as "string" or "[string null]". */
function propertyType(v: unknown): string[] {
  const types =
    typeof v === "string" ? [v] : Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : null;
  const value = types ?? [];
  return withMeta(value, {
    typeName: "api.PropertyType",
    nil: types === null,
    string: () => (value.length === 0 ? "" : value.length === 1 ? value[0]! : `[${value.join(" ")}]`),
    marshalJSON: () => (value.length === 1 ? marshalJSON(value[0]) : types === null ? "null" : marshalJSON([...value])),
  });
}

/** api.ToolProperty (unknown JSON Schema keywords are dropped, as Go's decoder does). */
export function toolProperty(v: unknown): Record<string, unknown> {
  const p = isObject(v) ? v : {};
  const anyOf = Array.isArray(p.anyOf)
    ? withMeta(p.anyOf.map(toolProperty), { typeName: "[]api.ToolProperty" })
    : goNilSlice("[]api.ToolProperty");
  return goStruct(
    "api.ToolProperty",
    {
      AnyOf: anyOf,
      Type: propertyType(p.type),
      Items: anyValue(p.items),
      Description: str(p.description),
      Enum: Array.isArray(p.enum) ? [...p.enum] : goNilSlice(),
      Properties: isObject(p.properties) ? orderedProperties(p.properties) : null,
      Required: stringSlice(p.required),
    },
    {
      json: {
        AnyOf: { name: "anyOf", omitEmpty: true },
        Type: { name: "type", omitEmpty: true },
        Items: { name: "items", omitEmpty: true },
        Description: { name: "description", omitEmpty: true },
        Enum: { name: "enum", omitEmpty: true },
        Properties: { name: "properties", omitEmpty: true },
        Required: { name: "required", omitEmpty: true },
      },
    },
  );
}

/** *api.ToolPropertiesMap: insertion-ordered (a JS Map marshals in insertion order). */
function orderedProperties(props: JsonObject): Map<string, unknown> {
  return withMeta(new Map(Object.entries(props).map(([k, v]) => [k, toolProperty(v)])), {
    typeName: "*api.ToolPropertiesMap",
  });
}

/** A Go map type whose String() is its JSON ("{}" when nil), like templateArgs and templateProperties. */
function jsonStringerMap(entries: Record<string, unknown> | null, typeName: string): Record<string, unknown> {
  const map = entries ?? goNilMap(typeName);
  const meta = metaOf(map) ?? {};
  return withMeta(map, { ...meta, typeName, string: () => (entries === null ? "{}" : marshalJSON(map)) });
}

const jsonStringer =
  <T extends object>(value: T): (() => string) =>
  () =>
    marshalJSON(value);

/** template.templateTool (and its String() = JSON). */
export function templateTool(tool: TemplateToolInput): Record<string, unknown> {
  const fn = isObject(tool.function) ? tool.function : { name: "" };
  const params = isObject(fn.parameters) ? fn.parameters : {};
  const properties = isObject(params.properties)
    ? Object.fromEntries(Object.entries(params.properties).map(([k, v]) => [k, toolProperty(v)]))
    : null;
  const parameters = goStruct(
    "template.templateToolFunctionParameters",
    {
      Type: str(params.type),
      Defs: anyValue(params.$defs),
      Items: anyValue(params.items),
      Required: stringSlice(params.required),
      Properties: jsonStringerMap(properties, "template.templateProperties"),
    },
    {
      json: {
        Type: { name: "type" },
        Defs: { name: "$defs", omitEmpty: true },
        Items: { name: "items", omitEmpty: true },
        Required: { name: "required", omitEmpty: true },
        Properties: { name: "properties" },
      },
    },
  );
  // Released Ollama printed {{ .Function }} and {{ .Function.Parameters }} as JSON (api.ToolFunction had a
  // String method); current upstream lost that in its template structs, which garbles qwen/deepseek-style
  // templates. We keep the JSON.
  withMeta(parameters, { ...metaOf(parameters), string: jsonStringer(parameters) });
  const fnStruct = goStruct(
    "template.templateToolFunction",
    { Name: str(fn.name), Description: str(fn.description), Parameters: parameters },
    { json: { Name: { name: "name" }, Description: { name: "description" }, Parameters: { name: "parameters" } } },
  );
  withMeta(fnStruct, { ...metaOf(fnStruct), string: jsonStringer(fnStruct) });
  const result = goStruct(
    "template.templateTool",
    { Type: str(tool.type), Items: anyValue(tool.items), Function: fnStruct },
    { json: { Type: { name: "type" }, Items: { name: "items", omitEmpty: true }, Function: { name: "function" } } },
  );
  return withMeta(result, { ...metaOf(result), string: jsonStringer(result) });
}

/** template.templateTools: nil when the request had no tools; prints as JSON. */
export function templateTools(tools: readonly TemplateToolInput[] | null | undefined): unknown[] {
  const list = tools ? tools.map(templateTool) : goNilSlice();
  const nil = !tools;
  return withMeta(list, {
    typeName: "template.templateTools",
    nil,
    string: () => (nil ? "null" : marshalJSON(list)),
  });
}

function templateToolCall(call: TemplateToolCallInput): Record<string, unknown> {
  const fn = isObject(call.function) ? call.function : { name: "" };
  const args = isObject(fn.arguments) ? { ...fn.arguments } : null;
  return goStruct("template.templateToolCall", {
    ID: str(call.id),
    Function: goStruct("template.templateToolCallFunction", {
      Index: BigInt(Number.isInteger(fn.index) ? (fn.index as number) : 0),
      Name: str(fn.name),
      Arguments: jsonStringerMap(args, "template.templateArgs"),
    }),
  });
}

/** *template.templateMessage. */
export function templateMessage(m: TemplateMessageInput): Record<string, unknown> {
  const toolCalls =
    m.tool_calls && m.tool_calls.length > 0
      ? withMeta(m.tool_calls.map(templateToolCall), { typeName: "[]template.templateToolCall" })
      : goNilSlice("[]template.templateToolCall");
  return goStruct("*template.templateMessage", {
    Role: m.role,
    Content: m.content ?? "",
    Thinking: m.thinking ?? "",
    Images: m.images ? withMeta([...m.images], { typeName: "[]api.ImageData" }) : goNilSlice("[]api.ImageData"),
    ToolCalls: toolCalls,
    ToolName: m.tool_name ?? "",
    ToolCallID: m.tool_call_id ?? "",
  });
}

function toTypeScriptType(p: Record<string, unknown>): string {
  const anyOf = p.AnyOf as Record<string, unknown>[];
  if (anyOf.length > 0) return anyOf.map(toTypeScriptType).join(" | ");
  const types = p.Type as string[];
  if (types.length === 0) return "any";
  return types.map(mapToTypeScriptType).join(" | ");
}

function mapToTypeScriptType(jsonType: string): string {
  switch (jsonType) {
    case "string":
      return "string";
    case "number":
    case "integer":
      return "number";
    case "boolean":
      return "boolean";
    case "array":
      return "any[]";
    case "object":
      return "Record<string, any>";
    case "null":
      return "null";
    default:
      return "any";
  }
}

function isoDate(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Ollama's template.FuncMap. `now` is the clock behind currentDate/yesterdayDate (local time, like Go's). */
export function ollamaFuncs(now: () => Date = () => new Date()): Record<string, GoFunc> {
  return {
    json: {
      params: ["any"],
      call: (v) => {
        try {
          return marshalJSON(v);
        } catch {
          return ""; // Ollama ignores json.Marshal's error and returns the empty result.
        }
      },
    },
    currentDate: { params: [], variadic: "string", call: () => isoDate(now()) },
    yesterdayDate: {
      params: [],
      variadic: "string",
      call: () => {
        const d = now();
        return isoDate(new Date(d.getFullYear(), d.getMonth(), d.getDate() - 1));
      },
    },
    toTypeScriptType: {
      params: ["any"],
      call: (v) =>
        metaOf(v)?.typeName === "api.ToolProperty" ? toTypeScriptType(v as Record<string, unknown>) : "any",
    },
  };
}

/**
 * Typed reads of an OpenAI request body's fields. JSON `null` counts as absent (clients send it for unset
 * fields); a value of the wrong type is a 400 naming the field in OpenAI's wording and in `param`.
 */
import { OpenAIRequestError } from "./request-error";

export type Body = Record<string, unknown>;

/** JSON's name for a value's type, as OpenAI's validation messages put it. */
export function jsonTypeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
      return Number.isInteger(value) ? "an integer" : "a decimal";
    case "boolean":
      return "a boolean";
    case "object":
      return "an object";
    default:
      return typeof value;
  }
}

export function invalidType(param: string, expected: string, value: unknown): OpenAIRequestError {
  return new OpenAIRequestError(
    `Invalid type for '${param}': expected ${expected}, but got ${jsonTypeName(value)} instead.`,
    param,
  );
}

export function requireObject(value: unknown, param = "body"): Body {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidType(param, "an object", value);
  }
  return value as Body;
}

const present = (value: unknown) => value !== undefined && value !== null;

export function optString(body: Body, key: string, param = key): string | undefined {
  const value = body[key];
  if (!present(value)) return undefined;
  if (typeof value !== "string") throw invalidType(param, "a string", value);
  return value;
}

export function optNumber(body: Body, key: string, param = key): number | undefined {
  const value = body[key];
  if (!present(value)) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) throw invalidType(param, "a decimal", value);
  return value;
}

export function optInteger(body: Body, key: string, param = key): number | undefined {
  const value = body[key];
  if (!present(value)) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) throw invalidType(param, "an integer", value);
  return value;
}

export function optBoolean(body: Body, key: string, param = key): boolean | undefined {
  const value = body[key];
  if (!present(value)) return undefined;
  if (typeof value !== "boolean") throw invalidType(param, "a boolean", value);
  return value;
}

export function optObject(body: Body, key: string, param = key): Body | undefined {
  const value = body[key];
  if (!present(value)) return undefined;
  return requireObject(value, param);
}

export function optArray(body: Body, key: string, param = key): unknown[] | undefined {
  const value = body[key];
  if (!present(value)) return undefined;
  if (!Array.isArray(value)) throw invalidType(param, "an array", value);
  return value;
}

/** `stop`: one string or a list of strings, as Ollama's `options.stop`. */
export function optStop(body: Body): string[] | undefined {
  const value = body.stop;
  if (!present(value)) return undefined;
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) {
    const bad = value.find((item) => typeof item !== "string");
    if (bad !== undefined) throw invalidType("stop", "a string", bad);
    return value as string[];
  }
  throw invalidType("stop", "a string or an array of strings", value);
}

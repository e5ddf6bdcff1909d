/**
 * Model names with Ollama's rules (types/model/name.go): `[scheme://][host/][namespace/]model[:tag]`.
 *
 * A name is valid only when every part is present after defaults are filled in, and each part passes its
 * character and length rules. Part rules are ASCII-only, so no unicode, no `/`, no `..` and no leading `.`
 * or `-` can reach a storage key or path built from a name.
 */

export const DEFAULT_HOST = "registry.ollama.ai";
export const DEFAULT_NAMESPACE = "library";
export const DEFAULT_TAG = "latest";

export interface ModelName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
  /** Only when the name was written with `http://` or `https://`; no part of the name's identity. */
  scheme?: "http" | "https";
}

type PartKind = "host" | "namespace" | "model" | "tag";

const MAX_LENGTH: Record<PartKind, number> = { host: 350, namespace: 80, model: 80, tag: 80 };

function isAlphanumericOrUnderscore(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x5f
  );
}

function isValidPart(kind: PartKind, s: string): boolean {
  // String length counts UTF-16 units, Go counts bytes; both agree here because any non-ASCII character fails.
  if (s.length < 1 || s.length > MAX_LENGTH[kind]) return false;
  if (!isAlphanumericOrUnderscore(s.charCodeAt(0))) return false;
  for (let i = 1; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (isAlphanumericOrUnderscore(code) || code === 0x2d /* - */) continue;
    if (code === 0x2e /* . */ && kind !== "namespace") continue;
    if (code === 0x3a /* : */ && kind === "host") continue;
    return false;
  }
  return true;
}

/** A namespace (tenant-visible user/org segment) on its own, e.g. for `namespace/model` prefixes. */
export function isValidNamespace(s: string): boolean {
  return isValidPart("namespace", s);
}

/** Splits at the last `sep`; an empty side means the separator promised a part that is missing. */
function cutLast(s: string, sep: string): [before: string, after: string] | null {
  const i = s.lastIndexOf(sep);
  return i < 0 ? null : [s.slice(0, i), s.slice(i + sep.length)];
}

/**
 * Parses a model name, filling in Ollama's defaults (host `registry.ollama.ai`, namespace `library`, tag `latest`).
 * Returns null for anything Ollama would call invalid, and for schemes other than http/https.
 */
export function parseModelName(input: string): ModelName | null {
  let rest = input;
  let tag: string | undefined;
  // `/` cannot appear in a tag, so a `:` after the last `/` starts the tag; earlier ones belong to the host port.
  if (rest.lastIndexOf(":") > rest.lastIndexOf("/")) {
    const cut = cutLast(rest, ":")!;
    [rest, tag] = cut;
    if (tag === "") return null;
  }

  let host: string | undefined;
  let namespace: string | undefined;
  let scheme: "http" | "https" | undefined;
  let model: string;
  const modelCut = cutLast(rest, "/");
  if (!modelCut) {
    model = rest;
  } else {
    let namespaceAndHost: string;
    [namespaceAndHost, model] = modelCut;
    if (namespaceAndHost === "") return null;
    const namespaceCut = cutLast(namespaceAndHost, "/");
    if (!namespaceCut) {
      namespace = namespaceAndHost;
    } else {
      let hostWithScheme: string;
      [hostWithScheme, namespace] = namespaceCut;
      const schemeAt = hostWithScheme.indexOf("://");
      if (schemeAt >= 0) {
        const written = hostWithScheme.slice(0, schemeAt).toLowerCase();
        if (written !== "http" && written !== "https") return null;
        scheme = written;
        host = hostWithScheme.slice(schemeAt + 3);
      } else {
        host = hostWithScheme;
      }
      if (host === "") return null;
    }
    if (namespace === "") return null;
  }

  const name: ModelName = {
    host: host ?? DEFAULT_HOST,
    namespace: namespace ?? DEFAULT_NAMESPACE,
    model,
    tag: tag ?? DEFAULT_TAG,
  };
  if (
    !isValidPart("host", name.host) ||
    !isValidPart("namespace", name.namespace) ||
    !isValidPart("model", name.model) ||
    !isValidPart("tag", name.tag)
  ) {
    return null;
  }
  if (scheme) name.scheme = scheme;
  return name;
}

/** The full name as written (case kept): `host/namespace/model:tag`. */
export function formatModelName(name: ModelName): string {
  return `${name.host}/${name.namespace}/${name.model}:${name.tag}`;
}

/**
 * Ollama's short display form: default host and namespace dropped, tag always kept (`llama3.2:latest`,
 * `me/model:v1`, `example.com:5000/me/model:v1`). This is what tags/ps/show report as `name` and `model`.
 */
export function displayShortest(name: ModelName): string {
  let prefix = "";
  if (name.host.toLowerCase() !== DEFAULT_HOST) {
    prefix = `${name.host}/${name.namespace}/`;
  } else if (name.namespace.toLowerCase() !== DEFAULT_NAMESPACE) {
    prefix = `${name.namespace}/`;
  }
  return `${prefix}${name.model}:${name.tag}`;
}

/** Canonical storage key: names that differ only in case are the same model (Ollama's EqualFold). */
export function fullName(name: ModelName): string {
  return formatModelName(name).toLowerCase();
}

export function equalFold(a: ModelName, b: ModelName): boolean {
  return fullName(a) === fullName(b);
}

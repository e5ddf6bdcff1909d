/**
 * The single error type of the template engine. Messages follow Go's text/template wording
 * ("template: NAME:LINE: ..." for parse errors, "template: NAME:LINE:COL: executing ..." for execution errors)
 * because Ollama returns those strings to clients verbatim.
 */
export class TemplateError extends Error {
  override readonly name = "TemplateError";

  constructor(
    message: string,
    readonly phase: "parse" | "exec",
    /** 1-based line of the offending token or node, when known. */
    readonly line?: number,
    /** 0-based column (Go counts bytes; this counts UTF-16 units), exec errors only. */
    readonly column?: number,
  ) {
    super(message);
  }
}

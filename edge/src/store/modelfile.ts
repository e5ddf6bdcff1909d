/**
 * Modelfile text, read with Ollama's parser rules (parser/parser.go): one command per line (`FROM`, `SYSTEM`,
 * `TEMPLATE`, `PARAMETER name value`, `ADAPTER`, `LICENSE`, `MESSAGE role text`), case-insensitive command
 * names, `#` comments, values running to the end of the line, `"..."` and `"""..."""` quoting for values that
 * span lines or keep their edge spaces, non-printable characters dropped outside quotes, a leading BOM ignored.
 * And the reverse: Ollama's `Command.String` quoting, used to render `/api/show`'s modelfile.
 */
import { ApiError } from "@corral/protocol";

export interface ModelfileCommand {
  /** `model` for FROM, the lower-cased command otherwise; for PARAMETER the parameter name as written. */
  name: string;
  args: string;
}

const COMMANDS = ["from", "license", "template", "system", "adapter", "parameter", "message"];
const INVALID_COMMAND =
  'command must be one of "from", "license", "template", "system", "adapter", "parameter", or "message"';
const INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"';

type State = "nil" | "name" | "value" | "parameter" | "message" | "comment";

const isAlpha = (c: string) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z");
const isDigit = (c: string) => c >= "0" && c <= "9";
const isSpace = (c: string) => c === " " || c === "\t";
const isNewline = (c: string) => c === "\r" || c === "\n";
/** Go's strconv.IsPrint, close enough for text: letters, marks, numbers, punctuation, symbols and ASCII space. */
const isPrint = (c: string) => c === " " || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(c);

const modelfileLineError = (line: number, msg: string) => new ApiError(400, `(line ${line}): ${msg}`);
const unexpectedEof = (buffer?: string) =>
  new ApiError(400, buffer === undefined ? "unexpected EOF" : `unexpected EOF: ${buffer}`);

function unquote(s: string): [string, boolean] {
  if (s.startsWith('"""')) {
    return s.length >= 6 && s.endsWith('"""') ? [s.slice(3, -3), true] : ["", false];
  }
  if (s.startsWith('"')) {
    return s.length >= 2 && s.endsWith('"') ? [s.slice(1, -1), true] : ["", false];
  }
  return [s, true];
}

function nextState(c: string, state: State): [State, string] {
  switch (state) {
    case "nil":
      if (c === "#") return ["comment", ""];
      if (isSpace(c) || isNewline(c)) return ["nil", ""];
      return ["name", c];
    case "name":
      if (isAlpha(c)) return ["name", c];
      if (isSpace(c)) return ["value", ""];
      throw new ApiError(400, INVALID_COMMAND);
    case "value":
      return isNewline(c) || isSpace(c) ? ["nil", c] : ["value", c];
    case "parameter":
      if (isAlpha(c) || isDigit(c) || c === "_") return ["parameter", c];
      if (isSpace(c)) return ["value", ""];
      throw unexpectedEof();
    case "message":
      if (isAlpha(c)) return ["message", c];
      if (isSpace(c)) return ["value", ""];
      throw unexpectedEof();
    case "comment":
      return isNewline(c) ? ["nil", ""] : ["comment", ""];
  }
}

/** Parses Modelfile text; every syntax error is a 400 with Ollama's text. A Modelfile must have a FROM. */
export function parseModelfile(text: string): ModelfileCommand[] {
  const commands: ModelfileCommand[] = [];
  let state: State = "nil";
  let line = 1;
  let buffer = "";
  let role = "";
  let name = "";

  for (const raw of text.startsWith("\uFEFF") ? text.slice(1) : text) {
    if (isNewline(raw)) line++;
    let next: State;
    let c: string;
    try {
      [next, c] = nextState(raw, state);
    } catch (err) {
      if (err instanceof ApiError && err.message === "unexpected EOF") throw unexpectedEof(buffer);
      throw modelfileLineError(line, (err as Error).message);
    }

    if (next !== state) {
      if (state === "name") {
        const command = buffer.toLowerCase();
        if (!COMMANDS.includes(command)) throw modelfileLineError(line, INVALID_COMMAND);
        if (command === "from") name = "model";
        else if (command === "parameter") next = "parameter";
        else {
          if (command === "message") next = "message";
          name = command;
        }
      } else if (state === "parameter") {
        name = buffer;
      } else if (state === "message") {
        if (buffer !== "system" && buffer !== "user" && buffer !== "assistant")
          throw modelfileLineError(line, INVALID_ROLE);
        role = buffer;
      } else if (state === "value") {
        const [value, ok] = unquote(buffer.trim());
        if (!ok || isSpace(c)) {
          // Inside an open quote, or a space within the value: keep reading the same value.
          buffer += c;
          continue;
        }
        commands.push({ name, args: role ? `${role}: ${value}` : value });
        role = "";
      }
      buffer = "";
      state = next;
    }
    if (c !== "" && isPrint(c)) buffer += c;
  }

  if (state === "value") {
    const [value, ok] = unquote(buffer.trim());
    if (!ok) throw unexpectedEof();
    commands.push({ name, args: role ? `${role}: ${value}` : value });
  } else if (state !== "nil" && state !== "comment") {
    throw unexpectedEof();
  }
  if (!commands.some((cmd) => cmd.name === "model")) throw new ApiError(400, "no FROM line");
  return commands;
}

/** Ollama's quoting for rendered values: quotes only when a value spans lines or has edge spaces. */
export function quoteModelfileValue(s: string): string {
  if (s.includes("\n") || s.startsWith(" ") || s.endsWith(" ")) {
    return s.includes('"') ? `"""${s}"""` : `"${s}"`;
  }
  return s;
}

/** One rendered command line (parser.Command.String). */
export function renderCommand(cmd: ModelfileCommand): string {
  switch (cmd.name) {
    case "model":
      return `FROM ${cmd.args}`;
    case "license":
    case "template":
    case "system":
    case "adapter":
      return `${cmd.name.toUpperCase()} ${quoteModelfileValue(cmd.args)}`;
    case "message": {
      const at = cmd.args.indexOf(": ");
      const [r, m] = at < 0 ? [cmd.args, ""] : [cmd.args.slice(0, at), cmd.args.slice(at + 2)];
      return `MESSAGE ${r} ${quoteModelfileValue(m)}`;
    }
    default:
      return `PARAMETER ${cmd.name} ${quoteModelfileValue(cmd.args)}`;
  }
}

// Tokenizer for Go text/template, following the state machine of Go's text/template/parse/lex.go:
// trim markers ("{{- " / " -}}") eat the adjacent ASCII whitespace, comments ("{{/* */}}") vanish, and a lexical
// error becomes a final "error" token that the parser reports when it reaches it.

export const KEYWORDS = [
  "block",
  "break",
  "continue",
  "define",
  "else",
  "end",
  "if",
  "nil",
  "range",
  "template",
  "with",
] as const;
export type Keyword = (typeof KEYWORDS)[number];

export type TokenType =
  | Keyword
  | "text"
  | "leftDelim"
  | "rightDelim"
  | "space"
  | "identifier"
  | "field"
  | "variable"
  | "dot"
  | "bool"
  | "number"
  | "charConstant"
  | "complex"
  | "string"
  | "rawString"
  | "leftParen"
  | "rightParen"
  | "pipe"
  | "declare"
  | "assign"
  | "char"
  | "eof"
  | "error";

export interface Token {
  readonly type: TokenType;
  readonly val: string;
  readonly pos: number;
  readonly line: number;
}

const isKeyword = (word: string): word is Keyword => (KEYWORDS as readonly string[]).includes(word);

const LEFT_DELIM = "{{";
const RIGHT_DELIM = "}}";
const LEFT_COMMENT = "/*";
const RIGHT_COMMENT = "*/";

const isSpace = (c: string | undefined): boolean => c === " " || c === "\t" || c === "\r" || c === "\n";
const isAlphaNumeric = (c: string): boolean => c === "_" || /^[\p{L}\p{Nd}]$/u.test(c);
const hasLeftTrimMarker = (s: string, at: number): boolean => s[at] === "-" && isSpace(s[at + 1]);
const hasRightTrimMarker = (s: string, at: number): boolean => isSpace(s[at]) && s[at + 1] === "-";

function trimRightSpaceLength(s: string): number {
  let n = 0;
  while (n < s.length && isSpace(s[s.length - 1 - n])) n++;
  return n;
}

function trimLeftSpaceLength(s: string, from: number): number {
  let n = 0;
  while (from + n < s.length && isSpace(s[from + n])) n++;
  return n;
}

export function lex(input: string): Token[] {
  return new Lexer(input).run();
}

class Lexer {
  private readonly tokens: Token[] = [];
  private pos = 0;
  private start = 0;
  private parenDepth = 0;

  constructor(private readonly input: string) {}

  run(): Token[] {
    let state: (() => StateFn) | null = this.lexText;
    while (state) state = state.call(this);
    return this.tokens;
  }

  private readonly lineStarts: number[] = [0];

  private lineAt(offset: number): number {
    // Tokens arrive in order, so extend the table of line starts lazily and binary-search it.
    for (let i = this.scannedTo; i < offset; i++) if (this.input.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
    this.scannedTo = Math.max(this.scannedTo, offset);
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  private scannedTo = 0;

  private emit(type: TokenType): void {
    this.tokens.push({
      type,
      val: this.input.slice(this.start, this.pos),
      pos: this.start,
      line: this.lineAt(this.start),
    });
    this.start = this.pos;
  }

  private ignore(): void {
    this.start = this.pos;
  }

  private errorf(message: string): null {
    this.tokens.push({ type: "error", val: message, pos: this.start, line: this.lineAt(this.start) });
    return null;
  }

  /** Next code point (astral characters are one step), or undefined at the end. */
  private next(): string | undefined {
    if (this.pos >= this.input.length) return undefined;
    const cp = this.input.codePointAt(this.pos)!;
    const ch = String.fromCodePoint(cp);
    this.pos += ch.length;
    return ch;
  }

  private peek(): string | undefined {
    if (this.pos >= this.input.length) return undefined;
    return String.fromCodePoint(this.input.codePointAt(this.pos)!);
  }

  private accept(valid: string): boolean {
    const c = this.peek();
    if (c !== undefined && valid.includes(c)) {
      this.pos += c.length;
      return true;
    }
    return false;
  }

  private acceptRun(valid: string): void {
    while (this.accept(valid)) {
      // keep consuming
    }
  }

  private atRightDelim(): { delim: boolean; trim: boolean } {
    if (hasRightTrimMarker(this.input, this.pos) && this.input.startsWith(RIGHT_DELIM, this.pos + 2)) {
      return { delim: true, trim: true };
    }
    if (this.input.startsWith(RIGHT_DELIM, this.pos)) return { delim: true, trim: false };
    return { delim: false, trim: false };
  }

  private atTerminator(): boolean {
    const r = this.peek();
    if (r === undefined || isSpace(r)) return true;
    if (".,|:)(".includes(r)) return true;
    return this.input.startsWith(RIGHT_DELIM, this.pos);
  }

  private lexText(): StateFn {
    const x = this.input.indexOf(LEFT_DELIM, this.pos);
    if (x >= 0) {
      let end = x;
      if (hasLeftTrimMarker(this.input, x + LEFT_DELIM.length)) {
        end = x - trimRightSpaceLength(this.input.slice(this.start, x));
      }
      this.pos = end;
      if (this.pos > this.start) this.emit("text");
      this.pos = x;
      this.ignore();
      return this.lexLeftDelim;
    }
    this.pos = this.input.length;
    if (this.pos > this.start) this.emit("text");
    this.emit("eof");
    return null;
  }

  private lexLeftDelim(): StateFn {
    this.pos += LEFT_DELIM.length;
    const trim = hasLeftTrimMarker(this.input, this.pos);
    const afterMarker = trim ? 2 : 0;
    if (this.input.startsWith(LEFT_COMMENT, this.pos + afterMarker)) {
      this.pos += afterMarker;
      this.ignore();
      return this.lexComment;
    }
    this.emit("leftDelim");
    this.pos += afterMarker;
    this.ignore();
    this.parenDepth = 0;
    return this.lexInsideAction;
  }

  private lexComment(): StateFn {
    this.pos += LEFT_COMMENT.length;
    const i = this.input.indexOf(RIGHT_COMMENT, this.pos);
    if (i < 0) return this.errorf("unclosed comment");
    this.pos = i + RIGHT_COMMENT.length;
    const { delim, trim } = this.atRightDelim();
    if (!delim) return this.errorf("comment ends before closing delimiter");
    if (trim) this.pos += 2;
    this.pos += RIGHT_DELIM.length;
    if (trim) this.pos += trimLeftSpaceLength(this.input, this.pos);
    this.ignore();
    return this.lexText;
  }

  private lexRightDelim(): StateFn {
    const trim = hasRightTrimMarker(this.input, this.pos);
    if (trim) {
      this.pos += 2;
      this.ignore();
    }
    this.pos += RIGHT_DELIM.length;
    this.emit("rightDelim");
    if (trim) {
      this.pos += trimLeftSpaceLength(this.input, this.pos);
      this.ignore();
    }
    return this.lexText;
  }

  private lexInsideAction(): StateFn {
    if (this.atRightDelim().delim) {
      if (this.parenDepth === 0) return this.lexRightDelim;
      return this.errorf("unclosed left paren");
    }
    const r = this.next();
    if (r === undefined) return this.errorf("unclosed action");
    if (isSpace(r)) {
      this.pos -= r.length; // put it back in case we have " -}}"
      return this.lexSpace;
    }
    switch (r) {
      case "=":
        this.emit("assign");
        return this.lexInsideAction;
      case ":":
        if (this.next() !== "=") return this.errorf("expected :=");
        this.emit("declare");
        return this.lexInsideAction;
      case "|":
        this.emit("pipe");
        return this.lexInsideAction;
      case '"':
        return this.lexQuote;
      case "`":
        return this.lexRawQuote;
      case "$":
        return this.lexVariable;
      case "'":
        return this.lexChar;
      case "(":
        this.emit("leftParen");
        this.parenDepth++;
        return this.lexInsideAction;
      case ")":
        this.emit("rightParen");
        this.parenDepth--;
        if (this.parenDepth < 0) return this.errorf("unexpected right paren U+0029 ')'");
        return this.lexInsideAction;
    }
    if (r === ".") {
      const c = this.input[this.pos];
      if (c !== undefined && (c < "0" || c > "9")) return this.lexField;
    }
    if (r === "." || r === "+" || r === "-" || (r >= "0" && r <= "9")) {
      this.pos -= r.length;
      return this.lexNumber;
    }
    if (isAlphaNumeric(r)) {
      this.pos -= r.length;
      return this.lexIdentifier;
    }
    const cp = r.codePointAt(0)!;
    if (cp <= 0x7f && cp >= 0x20 && cp !== 0x7f) {
      this.emit("char");
      return this.lexInsideAction;
    }
    return this.errorf(`unrecognized character in action: ${formatRune(r)}`);
  }

  private lexSpace(): StateFn {
    let numSpaces = 0;
    while (isSpace(this.peek())) {
      this.pos++;
      numSpaces++;
    }
    // Be careful about a trim-marked closing delimiter; we may have consumed the space before the dash.
    if (hasRightTrimMarker(this.input, this.pos - 1) && this.input.startsWith(RIGHT_DELIM, this.pos + 1)) {
      this.pos--;
      if (numSpaces === 1) return this.lexRightDelim;
    }
    this.emit("space");
    return this.lexInsideAction;
  }

  private lexIdentifier(): StateFn {
    for (;;) {
      const r = this.peek();
      if (r !== undefined && isAlphaNumeric(r)) {
        this.pos += r.length;
        continue;
      }
      const word = this.input.slice(this.start, this.pos);
      if (!this.atTerminator()) return this.errorf(`bad character ${formatRune(r ?? "")}`);
      if (isKeyword(word)) this.emit(word);
      else if (word === "true" || word === "false") this.emit("bool");
      else this.emit("identifier");
      return this.lexInsideAction;
    }
  }

  private lexField(): StateFn {
    return this.lexFieldOrVariable("field");
  }

  private lexVariable(): StateFn {
    if (this.atTerminator()) {
      this.emit("variable");
      return this.lexInsideAction;
    }
    return this.lexFieldOrVariable("variable");
  }

  private lexFieldOrVariable(type: "field" | "variable"): StateFn {
    if (this.atTerminator()) {
      this.emit(type === "variable" ? "variable" : "dot");
      return this.lexInsideAction;
    }
    let r: string | undefined;
    for (;;) {
      r = this.peek();
      if (r === undefined || !isAlphaNumeric(r)) break;
      this.pos += r.length;
    }
    if (!this.atTerminator()) return this.errorf(`bad character ${formatRune(r ?? "")}`);
    this.emit(type);
    return this.lexInsideAction;
  }

  private lexChar(): StateFn {
    for (;;) {
      const r = this.next();
      if (r === "\\") {
        const e = this.next();
        if (e !== undefined && e !== "\n") continue;
        return this.errorf("unterminated character constant");
      }
      if (r === undefined || r === "\n") return this.errorf("unterminated character constant");
      if (r === "'") break;
    }
    this.emit("charConstant");
    return this.lexInsideAction;
  }

  private lexNumber(): StateFn {
    if (!this.scanNumber())
      return this.errorf(`bad number syntax: ${JSON.stringify(this.input.slice(this.start, this.pos))}`);
    const sign = this.peek();
    if (sign === "+" || sign === "-") {
      // Complex: 1+2i.
      if (!this.scanNumber() || this.input[this.pos - 1] !== "i") {
        return this.errorf(`bad number syntax: ${JSON.stringify(this.input.slice(this.start, this.pos))}`);
      }
      this.emit("complex");
    } else {
      this.emit("number");
    }
    return this.lexInsideAction;
  }

  private scanNumber(): boolean {
    this.accept("+-");
    let digits = "0123456789_";
    if (this.accept("0")) {
      if (this.accept("xX")) digits = "0123456789abcdefABCDEF_";
      else if (this.accept("oO")) digits = "01234567_";
      else if (this.accept("bB")) digits = "01_";
    }
    this.acceptRun(digits);
    if (this.accept(".")) this.acceptRun(digits);
    if (digits.length === 11 && this.accept("eE")) {
      this.accept("+-");
      this.acceptRun("0123456789_");
    }
    if (digits.length === 23 && this.accept("pP")) {
      this.accept("+-");
      this.acceptRun("0123456789_");
    }
    this.accept("i");
    const after = this.peek();
    if (after !== undefined && isAlphaNumeric(after)) {
      this.pos += after.length;
      return false;
    }
    return true;
  }

  private lexQuote(): StateFn {
    for (;;) {
      const r = this.next();
      if (r === "\\") {
        const e = this.next();
        if (e !== undefined && e !== "\n") continue;
        return this.errorf("unterminated quoted string");
      }
      if (r === undefined || r === "\n") return this.errorf("unterminated quoted string");
      if (r === '"') break;
    }
    this.emit("string");
    return this.lexInsideAction;
  }

  private lexRawQuote(): StateFn {
    const end = this.input.indexOf("`", this.pos);
    if (end < 0) {
      this.pos = this.input.length;
      return this.errorf("unterminated raw quoted string");
    }
    this.pos = end + 1;
    this.emit("rawString");
    return this.lexInsideAction;
  }
}

type StateFn = ((this: Lexer) => StateFn) | null;

/** Go's %#U rendering of a rune, used in lexer messages: U+0021 '!'. */
function formatRune(r: string): string {
  if (r === "") return "U+FFFFFFFF";
  const cp = r.codePointAt(0)!;
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")} '${r}'`;
}

// Token-stream handling and pipeline parsing shared by the template parser (text/template/parse/parse.go):
// declarations, commands, operands, field chains and literals, with Go's parse-time checks and error wording.

import type { ArgNode, ChainNode, CommandNode, PipeNode, Pos, VariableNode } from "./ast";
import { nodeString } from "./ast";
import { TemplateError } from "./errors";
import { KEYWORDS, type Token, type TokenType } from "./lexer";
import { parseNumber, unquoteChar, unquoteString } from "./literals";

const OPERAND_START: ReadonlySet<TokenType> = new Set<TokenType>([
  "bool",
  "charConstant",
  "complex",
  "dot",
  "field",
  "identifier",
  "number",
  "nil",
  "rawString",
  "string",
  "variable",
  "leftParen",
]);

export class PipelineParser {
  protected lastLine = 1;
  protected vars: string[] = ["$"];
  protected actionLine = 0;

  constructor(
    protected readonly parseName: string,
    protected readonly tokens: Token[],
    protected readonly hasFunction: (ident: string) => boolean,
    /** Shared cursor so nested define/block parsers continue where the outer one stopped. */
    protected readonly cursor: { index: number } = { index: 0 },
  ) {}

  // --- token stream ---------------------------------------------------------------------------------------------

  protected next(): Token {
    const t = this.tokens[this.cursor.index] ?? this.tokens[this.tokens.length - 1]!;
    if (this.cursor.index < this.tokens.length) this.cursor.index++;
    this.lastLine = t.line;
    return t;
  }

  protected peek(): Token {
    return this.tokens[this.cursor.index] ?? this.tokens[this.tokens.length - 1]!;
  }

  protected backup(): void {
    this.cursor.index--;
  }

  protected nextNonSpace(): Token {
    let t = this.next();
    while (t.type === "space") t = this.next();
    return t;
  }

  protected peekNonSpace(): Token {
    const t = this.nextNonSpace();
    this.backup();
    return t;
  }

  protected posOf(t: Token): Pos {
    return { offset: t.pos, line: t.line };
  }

  // --- errors ---------------------------------------------------------------------------------------------------

  protected errorf(message: string): never {
    throw new TemplateError(`template: ${this.parseName}:${this.lastLine}: ${message}`, "parse", this.lastLine);
  }

  protected unexpected(token: Token, context: string): never {
    if (token.type === "error") {
      let extra = "";
      if (this.actionLine !== 0 && this.actionLine !== token.line) {
        extra = ` in action started at ${this.parseName}:${this.actionLine}`;
        if (token.val.endsWith(" action")) extra = extra.slice(" in action".length);
      }
      this.errorf(`${token.val}${extra}`);
    }
    this.errorf(`unexpected ${tokenString(token)} in ${context}`);
  }

  protected expect(expected: TokenType, context: string): Token {
    const token = this.nextNonSpace();
    if (token.type !== expected) this.unexpected(token, context);
    return token;
  }

  // --- pipelines ------------------------------------------------------------------------------------------------

  protected pipeline(context: string, end: "rightDelim" | "rightParen"): PipeNode {
    const start = this.peekNonSpace();
    const decl: VariableNode[] = [];
    let isAssign = false;
    for (;;) {
      const v = this.peekNonSpace();
      if (v.type !== "variable") break;
      const mark = this.cursor.index;
      this.next();
      const tokenAfterVariable = this.peek();
      const next = this.peekNonSpace();
      if (next.type === "assign" || next.type === "declare") {
        isAssign = next.type === "assign";
        this.nextNonSpace();
        decl.push(this.newVariable(v));
        this.vars.push(v.val);
        break;
      }
      if (next.type === "char" && next.val === ",") {
        this.nextNonSpace();
        decl.push(this.newVariable(v));
        this.vars.push(v.val);
        if (context === "range" && decl.length < 2) {
          const after = this.peekNonSpace().type;
          if (after === "variable" || after === "rightDelim" || after === "rightParen") continue;
          this.errorf("range can only initialize variables");
        }
        this.errorf(`too many declarations in ${context}`);
      }
      void tokenAfterVariable;
      this.cursor.index = mark;
      break;
    }
    const pipe: PipeNode = { type: "pipe", pos: this.posOf(start), isAssign, decl, cmds: [] };
    for (;;) {
      const token = this.nextNonSpace();
      if (token.type === end) {
        this.checkPipeline(pipe, context);
        return pipe;
      }
      if (!OPERAND_START.has(token.type)) this.unexpected(token, context);
      this.backup();
      pipe.cmds.push(this.command());
    }
  }

  private checkPipeline(pipe: PipeNode, context: string): void {
    if (pipe.cmds.length === 0) this.errorf(`missing value for ${context}`);
    pipe.cmds.slice(1).forEach((c, i) => {
      const first = c.args[0]!.type;
      if (first === "bool" || first === "dot" || first === "nil" || first === "number" || first === "string") {
        this.errorf(`non executable command in pipeline stage ${i + 2}`);
      }
    });
  }

  private command(): CommandNode {
    const cmd: CommandNode = { type: "command", pos: this.posOf(this.peekNonSpace()), args: [] };
    for (;;) {
      this.peekNonSpace();
      const operand = this.operand();
      if (operand) cmd.args.push(operand);
      const token = this.next();
      if (token.type === "space") continue;
      if (token.type === "rightDelim" || token.type === "rightParen") this.backup();
      else if (token.type !== "pipe") this.unexpected(token, "operand");
      break;
    }
    if (cmd.args.length === 0) this.errorf("empty command");
    return cmd;
  }

  private operand(): ArgNode | null {
    const node = this.term();
    if (!node) return null;
    if (this.peek().type !== "field") return node;
    const pos = this.posOf(this.peek());
    const fields: string[] = [];
    while (this.peek().type === "field") fields.push(this.next().val.slice(1));
    switch (node.type) {
      case "field":
        return { type: "field", pos, ident: [...node.ident, ...fields] };
      case "variable":
        return { type: "variable", pos, ident: [...node.ident, ...fields] };
      case "bool":
      case "string":
      case "number":
      case "nil":
      case "dot":
        this.errorf(`unexpected . after term ${JSON.stringify(nodeString(node))}`);
    }
    const chain: ChainNode = { type: "chain", pos, node, field: fields };
    return chain;
  }

  private term(): ArgNode | null {
    const token = this.nextNonSpace();
    const pos = this.posOf(token);
    switch (token.type) {
      case "identifier":
        if (!this.hasFunction(token.val)) this.errorf(`function ${JSON.stringify(token.val)} not defined`);
        return { type: "identifier", pos, ident: token.val };
      case "dot":
        return { type: "dot", pos };
      case "nil":
        return { type: "nil", pos };
      case "variable":
        return this.useVar(token);
      case "field":
        return { type: "field", pos, ident: token.val.slice(1).split(".") };
      case "bool":
        return { type: "bool", pos, value: token.val === "true" };
      case "charConstant": {
        const cp = unquoteChar(token.val);
        if (cp === null) this.errorf(`malformed character constant: ${token.val}`);
        return { type: "number", pos, text: token.val, int: BigInt(cp), float: cp, isChar: true };
      }
      case "complex":
        this.errorf(`complex numbers are not supported: ${JSON.stringify(token.val)}`);
        break;
      case "number":
        try {
          const { int, float } = parseNumber(token.val);
          return { type: "number", pos, text: token.val, int, float, isChar: false };
        } catch (err) {
          this.errorf((err as Error).message);
        }
        break;
      case "leftParen":
        return this.pipeline("parenthesized pipeline", "rightParen");
      case "string":
      case "rawString": {
        const text = unquoteString(token.val);
        if (text === null) this.errorf("invalid syntax");
        return { type: "string", pos, quoted: token.val, text };
      }
    }
    this.backup();
    return null;
  }

  private useVar(token: Token): VariableNode {
    const v = this.newVariable(token);
    if (!this.vars.includes(v.ident[0]!)) this.errorf(`undefined variable ${JSON.stringify(v.ident[0])}`);
    return v;
  }

  private newVariable(token: Token): VariableNode {
    return { type: "variable", pos: this.posOf(token), ident: token.val.split(".") };
  }
}

/** Go's item.String(), used in "unexpected X in Y" messages. */
function tokenString(t: Token): string {
  if (t.type === "eof") return "EOF";
  if (t.type === "error") return t.val;
  if ((KEYWORDS as readonly string[]).includes(t.type)) return `<${t.val}>`;
  if ([...t.val].length > 10) return `${JSON.stringify([...t.val].slice(0, 10).join(""))}...`;
  return JSON.stringify(t.val);
}

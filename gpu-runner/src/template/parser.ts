// Recursive-descent parser for Go text/template, mirroring text/template/parse/parse.go: the same grammar, the same
// parse-time checks (undefined variables and functions, break/continue outside range) and the same error wording.

import type {
  ActionNode,
  ArgNode,
  BranchNode,
  ChainNode,
  CommandNode,
  ListNode,
  Node,
  PipeNode,
  Pos,
  TemplateNode,
  VariableNode,
} from "./ast";
import { nodeString } from "./ast";
import { TemplateError } from "./errors";
import { type Token, type TokenType, lex } from "./lexer";
import { parseNumber, unquoteChar, unquoteString } from "./literals";

/** Parsed templates by name: the main one plus every {{define}}/{{block}}. */
export type TreeSet = Map<string, ListNode>;

interface EndMarker {
  type: "endMarker";
  pos: Pos;
}
interface ElseMarker {
  type: "elseMarker";
  pos: Pos;
}
type ListItem = Node | EndMarker | ElseMarker;

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

/**
 * Parses `text` into a tree set. `name` is the main template's name (Ollama uses ""), `hasFunction` tells which
 * identifiers are callable (Go rejects unknown functions at parse time).
 */
export function parseTreeSet(name: string, text: string, hasFunction: (ident: string) => boolean): TreeSet {
  const trees: TreeSet = new Map();
  const tokens = lex(text);
  const main = new Parser(name, tokens, trees, hasFunction);
  main.parseMain();
  return trees;
}

class Parser {
  private index = 0;
  private lastLine = 1;
  private vars: string[] = ["$"];
  private rangeDepth = 0;
  private actionLine = 0;

  constructor(
    private readonly parseName: string,
    private readonly tokens: Token[],
    private readonly trees: TreeSet,
    private readonly hasFunction: (ident: string) => boolean,
    /** Shared cursor so nested define/block parsers continue where the outer one stopped. */
    private readonly cursor: { index: number } = { index: 0 },
  ) {}

  // --- token stream ---------------------------------------------------------------------------------------------

  private next(): Token {
    const t = this.tokens[this.cursor.index] ?? this.tokens[this.tokens.length - 1]!;
    if (this.cursor.index < this.tokens.length) this.cursor.index++;
    this.lastLine = t.line;
    return t;
  }

  private peek(): Token {
    return this.tokens[this.cursor.index] ?? this.tokens[this.tokens.length - 1]!;
  }

  private backup(): void {
    this.cursor.index--;
  }

  private nextNonSpace(): Token {
    let t = this.next();
    while (t.type === "space") t = this.next();
    return t;
  }

  private peekNonSpace(): Token {
    const t = this.nextNonSpace();
    this.backup();
    return t;
  }

  private posOf(t: Token): Pos {
    return { offset: t.pos, line: t.line };
  }

  // --- errors ---------------------------------------------------------------------------------------------------

  private errorf(message: string): never {
    throw new TemplateError(`template: ${this.parseName}:${this.lastLine}: ${message}`, "parse", this.lastLine);
  }

  private unexpected(token: Token, context: string): never {
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

  private expect(expected: TokenType, context: string): Token {
    const token = this.nextNonSpace();
    if (token.type !== expected) this.unexpected(token, context);
    return token;
  }

  // --- top level ------------------------------------------------------------------------------------------------

  parseMain(): void {
    const root = this.newList(this.posOf(this.peek()));
    while (this.peek().type !== "eof") {
      if (this.peek().type === "leftDelim") {
        const mark = this.cursor.index;
        this.next();
        if (this.nextNonSpace().type === "define") {
          this.child().parseDefinition();
          continue;
        }
        this.cursor.index = mark;
      }
      const n = this.textOrAction();
      if (n.type === "endMarker" || n.type === "elseMarker") {
        this.errorf(`unexpected ${n.type === "endMarker" ? "{{end}}" : "{{else}}"}`);
      }
      root.nodes.push(n);
    }
    this.add(this.parseName, root);
  }

  private child(): Parser {
    return new Parser(this.parseName, this.tokens, this.trees, this.hasFunction, this.cursor);
  }

  private add(name: string, root: ListNode): void {
    const existing = this.trees.get(name);
    if (existing === undefined || isEmptyTree(existing)) {
      this.trees.set(name, root);
      return;
    }
    if (!isEmptyTree(root)) this.errorf(`template: multiple definition of template ${JSON.stringify(name)}`);
  }

  private parseDefinition(): void {
    const context = "define clause";
    const token = this.nextNonSpace();
    if (token.type !== "string" && token.type !== "rawString") this.unexpected(token, context);
    const name = unquoteString(token.val);
    if (name === null) this.errorf("invalid syntax");
    this.expect("rightDelim", context);
    const [root, end] = this.itemList();
    if (end.type !== "endMarker") this.errorf(`unexpected {{else}} in ${context}`);
    this.add(name, root);
  }

  private itemList(): [ListNode, EndMarker | ElseMarker] {
    const list = this.newList(this.posOf(this.peekNonSpace()));
    while (this.peekNonSpace().type !== "eof") {
      const n = this.textOrAction();
      if (n.type === "endMarker" || n.type === "elseMarker") return [list, n];
      list.nodes.push(n);
    }
    this.errorf("unexpected EOF");
  }

  private textOrAction(): ListItem {
    const token = this.nextNonSpace();
    switch (token.type) {
      case "text":
        return { type: "text", pos: this.posOf(token), text: token.val };
      case "leftDelim": {
        this.actionLine = token.line;
        try {
          return this.action();
        } finally {
          this.actionLine = 0;
        }
      }
      default:
        this.unexpected(token, "input");
    }
  }

  private action(): ListItem {
    const token = this.nextNonSpace();
    switch (token.type) {
      case "block":
        return this.blockControl();
      case "break":
      case "continue":
        return this.breakOrContinue(token);
      case "else":
        return this.elseControl();
      case "end":
        return { type: "endMarker", pos: this.posOf(this.expect("rightDelim", "end")) };
      case "if":
        return this.branch("if");
      case "range":
        return this.branch("range");
      case "template":
        return this.templateControl();
      case "with":
        return this.branch("with");
    }
    this.backup();
    const pos = this.posOf(this.peek());
    const action: ActionNode = { type: "action", pos, pipe: this.pipeline("command", "rightDelim") };
    return action;
  }

  private breakOrContinue(keyword: Token): Node {
    const name = keyword.type === "break" ? "{{break}}" : "{{continue}}";
    const token = this.nextNonSpace();
    if (token.type !== "rightDelim") this.unexpected(token, name);
    if (this.rangeDepth === 0) this.errorf(`${name} outside {{range}}`);
    return keyword.type === "break" ? { type: "break", pos: this.posOf(keyword) } : { type: "continue", pos: this.posOf(keyword) };
  }

  private elseControl(): ElseMarker {
    const peek = this.peekNonSpace();
    // "else if" / "else with" chains: leave the keyword for branch() to consume.
    if (peek.type === "if" || peek.type === "with") return { type: "elseMarker", pos: this.posOf(peek) };
    return { type: "elseMarker", pos: this.posOf(this.expect("rightDelim", "else")) };
  }

  private branch(context: "if" | "range" | "with"): BranchNode {
    const varsMark = this.vars.length;
    const pipe = this.pipeline(context, "rightDelim");
    if (context === "range") this.rangeDepth++;
    let [list, next] = this.itemList();
    if (context === "range") this.rangeDepth--;
    let elseList: ListNode | null = null;
    if (next.type === "elseMarker") {
      const chained = this.peek().type;
      if ((context === "if" && chained === "if") || (context === "with" && chained === "with")) {
        this.next();
        elseList = this.newList(next.pos);
        elseList.nodes.push(this.branch(context));
      } else {
        [elseList, next] = this.itemList();
        if (next.type !== "endMarker") this.errorf("expected end; found {{else}}");
      }
    }
    this.vars.length = varsMark;
    return { type: context, pos: pipe.pos, pipe, list, elseList } as BranchNode;
  }

  private parseTemplateName(token: Token, context: string): string {
    if (token.type !== "string" && token.type !== "rawString") this.unexpected(token, context);
    const name = unquoteString(token.val);
    if (name === null) this.errorf("invalid syntax");
    return name;
  }

  private blockControl(): TemplateNode {
    const context = "block clause";
    const token = this.nextNonSpace();
    const name = this.parseTemplateName(token, context);
    const pipe = this.pipeline(context, "rightDelim");
    const body = this.child();
    const [root, end] = body.itemList();
    if (end.type !== "endMarker") this.errorf(`unexpected {{else}} in ${context}`);
    this.add(name, root);
    return { type: "template", pos: this.posOf(token), name, pipe };
  }

  private templateControl(): TemplateNode {
    const context = "template clause";
    const token = this.nextNonSpace();
    const name = this.parseTemplateName(token, context);
    let pipe: PipeNode | null = null;
    if (this.nextNonSpace().type !== "rightDelim") {
      this.backup();
      pipe = this.pipeline(context, "rightDelim");
    }
    return { type: "template", pos: this.posOf(token), name, pipe };
  }

  // --- pipelines ------------------------------------------------------------------------------------------------

  private pipeline(context: string, end: "rightDelim" | "rightParen"): PipeNode {
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

  private newList(pos: Pos): ListNode {
    return { type: "list", pos, nodes: [] };
  }
}

/** Go's item.String(), used in "unexpected X in Y" messages. */
function tokenString(t: Token): string {
  if (t.type === "eof") return "EOF";
  if (t.type === "error") return t.val;
  if (
    ["block", "break", "continue", "define", "else", "end", "if", "nil", "range", "template", "with"].includes(t.type)
  ) {
    return `<${t.val}>`;
  }
  if ([...t.val].length > 10) return `${JSON.stringify([...t.val].slice(0, 10).join(""))}...`;
  return JSON.stringify(t.val);
}

/** Go's parse.IsEmptyTree: only whitespace text (and comments). */
export function isEmptyTree(n: Node): boolean {
  switch (n.type) {
    case "list":
      return n.nodes.every(isEmptyTree);
    case "text":
      return n.text.trim() === "";
    default:
      return false;
  }
}

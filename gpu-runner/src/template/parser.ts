// Recursive-descent parser for Go text/template, mirroring text/template/parse/parse.go: the same grammar, the same
// parse-time checks (undefined variables and functions, break/continue outside range) and the same error wording.

import type { ActionNode, BranchNode, ListNode, Node, PipeNode, Pos, TemplateNode } from "./ast";
import { lex, type Token } from "./lexer";
import { unquoteString } from "./literals";
import { PipelineParser } from "./parse-pipeline";

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

/**
 * Parses `text` into a tree set. `name` is the main template's name (Ollama uses ""), `hasFunction` tells which
 * identifiers are callable (Go rejects unknown functions at parse time).
 */
export function parseTreeSet(name: string, text: string, hasFunction: (ident: string) => boolean): TreeSet {
  const trees: TreeSet = new Map();
  new Parser(name, lex(text), trees, hasFunction).parseMain();
  return trees;
}

class Parser extends PipelineParser {
  private rangeDepth = 0;

  constructor(
    parseName: string,
    tokens: Token[],
    private readonly trees: TreeSet,
    hasFunction: (ident: string) => boolean,
    cursor: { index: number } = { index: 0 },
  ) {
    super(parseName, tokens, hasFunction, cursor);
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
    return keyword.type === "break"
      ? { type: "break", pos: this.posOf(keyword) }
      : { type: "continue", pos: this.posOf(keyword) };
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

  private newList(pos: Pos): ListNode {
    return { type: "list", pos, nodes: [] };
  }
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

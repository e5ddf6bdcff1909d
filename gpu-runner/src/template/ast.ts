// Parse tree of a Go text/template, shaped like Go's text/template/parse nodes so that Ollama's tree
// walks (Vars/Identifiers, thinking-tag inference, Response cutting) can be carried over one to one.

export interface Pos {
  /** Byte-independent offset into the source (UTF-16 index). */
  readonly offset: number;
  /** 1-based line. */
  readonly line: number;
}

export interface ListNode {
  readonly type: "list";
  readonly pos: Pos;
  readonly nodes: Node[];
}

export interface TextNode {
  readonly type: "text";
  readonly pos: Pos;
  readonly text: string;
}

export interface ActionNode {
  readonly type: "action";
  readonly pos: Pos;
  readonly pipe: PipeNode;
}

export interface IfNode extends BranchFields {
  readonly type: "if";
}
export interface RangeNode extends BranchFields {
  readonly type: "range";
}
export interface WithNode extends BranchFields {
  readonly type: "with";
}

export interface BranchFields {
  readonly pos: Pos;
  readonly pipe: PipeNode;
  readonly list: ListNode;
  readonly elseList: ListNode | null;
}

export type BranchNode = IfNode | RangeNode | WithNode;

export interface TemplateNode {
  readonly type: "template";
  readonly pos: Pos;
  readonly name: string;
  /** null for `{{template "x"}}` without an argument (Ollama's Vars() rejects those). */
  readonly pipe: PipeNode | null;
}

export interface BreakNode {
  readonly type: "break";
  readonly pos: Pos;
}

export interface ContinueNode {
  readonly type: "continue";
  readonly pos: Pos;
}

export interface PipeNode {
  readonly type: "pipe";
  readonly pos: Pos;
  /** `=` rather than `:=`. */
  readonly isAssign: boolean;
  readonly decl: VariableNode[];
  readonly cmds: CommandNode[];
}

export interface CommandNode {
  readonly type: "command";
  readonly pos: Pos;
  readonly args: ArgNode[];
}

export interface FieldNode {
  readonly type: "field";
  readonly pos: Pos;
  readonly ident: string[];
}

export interface VariableNode {
  readonly type: "variable";
  readonly pos: Pos;
  /** ["$x", "Field", ...] */
  readonly ident: string[];
}

export interface ChainNode {
  readonly type: "chain";
  readonly pos: Pos;
  readonly node: ArgNode;
  readonly field: string[];
}

export interface IdentifierNode {
  readonly type: "identifier";
  readonly pos: Pos;
  readonly ident: string;
}

export interface DotNode {
  readonly type: "dot";
  readonly pos: Pos;
}

export interface NilNode {
  readonly type: "nil";
  readonly pos: Pos;
}

export interface BoolNode {
  readonly type: "bool";
  readonly pos: Pos;
  readonly value: boolean;
}

export interface StringNode {
  readonly type: "string";
  readonly pos: Pos;
  /** As written, quotes included (used in error contexts). */
  readonly quoted: string;
  readonly text: string;
}

export interface NumberNode {
  readonly type: "number";
  readonly pos: Pos;
  readonly text: string;
  /** Set when the literal denotes an integer value (Go: IsInt). */
  readonly int: bigint | null;
  /** Set when the literal denotes a float value (Go: IsFloat). */
  readonly float: number | null;
  /** Character constant such as 'a' (always an int). */
  readonly isChar: boolean;
}

export type ArgNode =
  | FieldNode
  | VariableNode
  | ChainNode
  | IdentifierNode
  | DotNode
  | NilNode
  | BoolNode
  | StringNode
  | NumberNode
  | PipeNode;

export type Node =
  | ListNode
  | TextNode
  | ActionNode
  | IfNode
  | RangeNode
  | WithNode
  | TemplateNode
  | BreakNode
  | ContinueNode
  | PipeNode
  | CommandNode
  | ArgNode;

/** Renders a node roughly as Go's Node.String() does; used in error messages ("executing ... at <.Foo>"). */
export function nodeString(n: Node): string {
  switch (n.type) {
    case "list":
      return n.nodes.map(nodeString).join("");
    case "text":
      return n.text;
    case "action":
      return `{{${nodeString(n.pipe)}}}`;
    case "if":
    case "range":
    case "with": {
      const elsePart = n.elseList ? `{{else}}${nodeString(n.elseList)}` : "";
      return `{{${n.type} ${nodeString(n.pipe)}}}${nodeString(n.list)}${elsePart}{{end}}`;
    }
    case "template":
      return n.pipe
        ? `{{template ${JSON.stringify(n.name)} ${nodeString(n.pipe)}}}`
        : `{{template ${JSON.stringify(n.name)}}}`;
    case "break":
      return "{{break}}";
    case "continue":
      return "{{continue}}";
    case "pipe": {
      const decl = n.decl.length > 0 ? `${n.decl.map(nodeString).join(", ")} ${n.isAssign ? "=" : ":="} ` : "";
      return decl + n.cmds.map(nodeString).join(" | ");
    }
    case "command":
      return n.args.map((a) => (a.type === "pipe" ? `(${nodeString(a)})` : nodeString(a))).join(" ");
    case "field":
      return n.ident.map((i) => `.${i}`).join("");
    case "variable":
      return n.ident.join(".");
    case "chain": {
      const inner = n.node.type === "pipe" ? `(${nodeString(n.node)})` : nodeString(n.node);
      return inner + n.field.map((f) => `.${f}`).join("");
    }
    case "identifier":
      return n.ident;
    case "dot":
      return ".";
    case "nil":
      return "nil";
    case "bool":
      return n.value ? "true" : "false";
    case "string":
      return n.quoted;
    case "number":
      return n.text;
  }
}

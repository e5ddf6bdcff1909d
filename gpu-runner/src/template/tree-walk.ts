// Ollama's walks over a parsed template: the identifiers it uses (template.Vars), the thinking tags it implies
// (thinking.InferTags) and the legacy "cut everything after {{ .Response }}" rewrite (template.deleteNode).

import type { ArgNode, ListNode, Node, PipeNode } from "./ast";
import { TemplateError } from "./errors";

/** template.Identifiers: field and variable names used in pipelines (not inside chains), in tree order. */
export function identifiers(n: Node): string[] {
  switch (n.type) {
    case "list":
      return n.nodes.flatMap(identifiers);
    case "template":
      if (!n.pipe) throw new TemplateError("undefined template specified", "parse", n.pos.line);
      return identifiers(n.pipe);
    case "action":
      return identifiers(n.pipe);
    case "if":
    case "range":
    case "with":
      return [...identifiers(n.pipe), ...identifiers(n.list), ...(n.elseList ? identifiers(n.elseList) : [])];
    case "pipe":
      return n.cmds.flatMap((c) => c.args.flatMap((a) => identifiers(a)));
    case "field":
    case "variable":
      return [...n.ident];
    default:
      return [];
  }
}

/** template.Vars: lower-cased, de-duplicated, sorted identifiers of every template in the set. */
export function templateVars(trees: Iterable<ListNode>): string[] {
  const set = new Set<string>();
  for (const root of trees) for (const n of root.nodes) for (const id of identifiers(n)) set.add(id.toLowerCase());
  return [...set].sort();
}

/** Children in the order Go's thinking.templateVisit enters them; branch nodes get a synthetic "branch" level. */
type VisitNode = Node | { type: "branch"; of: Node };

function children(n: VisitNode): VisitNode[] {
  switch (n.type) {
    case "list":
      return n.nodes;
    case "if":
    case "range":
    case "with":
      return [{ type: "branch", of: n }];
    case "branch": {
      const b = n.of as Extract<Node, { type: "if" | "range" | "with" }>;
      return [b.pipe, b.list, ...(b.elseList ? [b.elseList] : [])];
    }
    case "action":
      return [n.pipe];
    case "template":
      return n.pipe ? [n.pipe] : [];
    case "pipe":
      return n.cmds;
    case "command":
      return n.args;
    default:
      return [];
  }
}

function visit(
  n: VisitNode,
  enter: (n: VisitNode, ancestors: readonly VisitNode[]) => void,
  ancestors: VisitNode[] = [],
) {
  ancestors.push(n);
  enter(n, ancestors);
  for (const c of children(n)) visit(c, enter, ancestors);
  ancestors.pop();
}

function pipeUsesField(pipe: PipeNode, field: string): boolean {
  let found = false;
  visit(pipe, (n) => {
    if (n.type === "field" && n.ident[0] === field) found = true;
  });
  return found;
}

/**
 * thinking.InferTags: for a `.Thinking` reference inside a range over `.Messages`, the trimmed first and last text
 * of the nearest enclosing list are the opening and closing thinking tags. Empty strings when not found.
 */
export function inferThinkingTags(root: ListNode): { opening: string; closing: string } {
  let opening = "";
  let closing = "";
  visit(root, (n, ancestors) => {
    if (n.type !== "field" || n.ident[0] !== "Thinking") return;
    const range = [...ancestors].reverse().find((a) => a.type === "range");
    if (range?.type !== "range" || !pipeUsesField(range.pipe, "Messages")) return;
    const list = [...ancestors].reverse().find((a) => a.type === "list");
    if (list?.type !== "list") return;
    const first = list.nodes[0];
    const last = list.nodes[list.nodes.length - 1];
    if (first?.type === "text") opening = first.text.trim();
    if (last?.type === "text") closing = last.text.trim();
  });
  return { opening, closing };
}

/**
 * template.deleteNode with Ollama's predicate: keep everything up to and including the first `.Response` field
 * (in tree order, not looking into if/range/with conditions) and drop whatever follows it.
 */
export function cutAfterResponse(root: ListNode): ListNode {
  let cut = false;
  const deleted = (n: Node): boolean => {
    if (n.type === "field" && n.ident.includes("Response")) {
      cut = true;
      return false;
    }
    return cut;
  };
  const walkList = (l: ListNode): ListNode | null =>
    deleted(l) ? null : { ...l, nodes: l.nodes.map(walk).filter((x): x is Node => x !== null) };
  const walkPipe = (p: PipeNode): PipeNode | null => {
    if (deleted(p)) return null;
    const cmds = [];
    for (const c of p.cmds) {
      const args = c.args.map(walk).filter((x): x is ArgNode => x !== null) as ArgNode[];
      if (args.length === 0) return null;
      cmds.push({ ...c, args });
    }
    return cmds.length === 0 ? null : { ...p, cmds };
  };
  function walk(n: Node): Node | null {
    if (n.type === "list") return walkList(n);
    if (n.type === "pipe") return walkPipe(n);
    if (deleted(n)) return null;
    switch (n.type) {
      case "if":
      case "range":
      case "with": {
        const list = walkList(n.list);
        if (!list) throw new TemplateError("template: cannot cut the prompt after .Response", "exec");
        let elseList: ListNode | null = null;
        if (n.elseList) {
          elseList = walkList(n.elseList);
          // Go dereferences the deleted else branch and panics here.
          if (!elseList) throw new TemplateError("template: cannot cut the prompt after .Response", "exec");
        }
        return { ...n, list, elseList };
      }
      case "action": {
        const pipe = walkPipe(n.pipe);
        return pipe ? { ...n, pipe } : null;
      }
      default:
        return n;
    }
  }
  return walkList(root) ?? { ...root, nodes: [] };
}

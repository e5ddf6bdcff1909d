// Executes a parsed template set against data, following text/template/exec.go: if/with/range (with break and
// continue), nested templates, and printing; expression evaluation lives in ./eval.

import type { BranchNode, Node, RangeNode, TemplateNode } from "./ast";
import { nodeString } from "./ast";
import { Evaluator, type ExecContext, type Variable } from "./eval";
import { formatValue } from "./fmt";
import { isTrue, kindOf, sortedEntries, typeName } from "./values";

export type { ExecContext, MissingKey } from "./eval";

const BREAK = Symbol("break");
const CONTINUE = Symbol("continue");

/** Recursion bound for {{template}} (Go allows 100000 frames; a JS stack gives out far earlier). */
const MAX_EXEC_DEPTH = 1000;

export function executeTree(ctx: ExecContext, name: string, input: unknown): string {
  const data = input === null ? undefined : input; // reflect.ValueOf(nil) is the invalid value
  const root = ctx.trees.get(name);
  const state = new State(ctx, name, [{ name: "$", value: data }], 0, []);
  if (!root) return state.errorf(`${JSON.stringify(name)} is an incomplete or empty template`);
  state.walk(data, root);
  return state.out.join("");
}

class State extends Evaluator {
  constructor(
    ctx: ExecContext,
    name: string,
    vars: Variable[],
    private readonly depth: number,
    readonly out: string[],
  ) {
    super(ctx, name, vars);
  }

  // --- walking --------------------------------------------------------------------------------------------------

  walk(dot: unknown, node: Node): void {
    this.at(node);
    switch (node.type) {
      case "action": {
        const val = this.evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) this.printValue(node, val);
        return;
      }
      case "break":
        throw BREAK;
      case "continue":
        throw CONTINUE;
      case "if":
      case "with":
        this.walkIfOrWith(dot, node);
        return;
      case "list":
        for (const n of node.nodes) this.walk(dot, n);
        return;
      case "range":
        this.walkRange(dot, node);
        return;
      case "template":
        this.walkTemplate(dot, node);
        return;
      case "text":
        this.out.push(node.text);
        return;
      default:
        this.errorf(`unknown node: ${nodeString(node)}`);
    }
  }

  private walkIfOrWith(dot: unknown, node: BranchNode): void {
    const mark = this.mark();
    try {
      const val = this.evalPipeline(dot, node.pipe);
      if (isTrue(val)) this.walk(node.type === "with" ? val : dot, node.list);
      else if (node.elseList) this.walk(dot, node.elseList);
    } finally {
      this.pop(mark);
    }
  }

  private walkRange(dot: unknown, r: RangeNode): void {
    this.at(r);
    const outerMark = this.mark();
    try {
      const val = this.evalPipeline(dot, r.pipe);
      const mark = this.mark();
      const oneIteration = (index: unknown, elem: unknown): void => {
        if (r.pipe.decl.length > 0) this.setTopVar(1, elem);
        if (r.pipe.decl.length > 1) this.setTopVar(2, index);
        try {
          this.walk(elem, r.list);
        } catch (err) {
          if (err !== CONTINUE) throw err;
        } finally {
          this.pop(mark);
        }
      };
      let ran = false;
      switch (kindOf(val)) {
        case "slice":
          (val as unknown[]).forEach((elem, i) => {
            ran = true;
            oneIteration(BigInt(i), elem);
          });
          break;
        case "map":
          for (const [k, v] of sortedEntries(val as object)) {
            ran = true;
            oneIteration(k, v);
          }
          break;
        case "int":
          // Go 1.22: ranging over an integer n yields 0..n-1.
          if (r.pipe.decl.length > 1)
            this.errorf(`can't use ${formatValue(val)} to iterate over more than one variable`);
          for (let i = 0n; i < (val as bigint); i++) {
            ran = true;
            oneIteration(i, i);
          }
          break;
        case "invalid":
        case "nil":
          break;
        default:
          this.errorf(`range can't iterate over ${formatValue(val)}`);
      }
      if (!ran && r.elseList) this.walk(dot, r.elseList);
    } catch (err) {
      if (err !== BREAK) throw err;
    } finally {
      this.pop(outerMark);
    }
  }

  private walkTemplate(dot: unknown, t: TemplateNode): void {
    this.at(t);
    const tree = this.ctx.trees.get(t.name);
    if (!tree) this.errorf(`template ${JSON.stringify(t.name)} not defined`);
    if (this.depth >= MAX_EXEC_DEPTH) this.errorf(`exceeded maximum template depth (${MAX_EXEC_DEPTH})`);
    const newDot = t.pipe ? this.evalPipeline(dot, t.pipe) : undefined;
    // No dynamic scoping: the invoked template sees only $.
    const inner = new State(this.ctx, t.name, [{ name: "$", value: newDot }], this.depth + 1, this.out);
    inner.walk(newDot, tree);
  }

  private printValue(node: Node, v: unknown): void {
    this.at(node);
    if (kindOf(v) === "func") this.errorf(`can't print ${nodeString(node)} of type ${typeName(v)}`);
    this.out.push(v === undefined || v === null ? "<no value>" : formatValue(v));
  }
}

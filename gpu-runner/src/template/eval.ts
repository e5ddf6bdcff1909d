// Expression evaluation for the template executor, following text/template/exec.go: pipelines, variables, field
// chains, and function calls with Go's argument count and type checks.

import type {
  ArgNode,
  ChainNode,
  CommandNode,
  FieldNode,
  IdentifierNode,
  Node,
  NumberNode,
  PipeNode,
  VariableNode,
} from "./ast";
import { nodeString } from "./ast";
import { BUILTINS } from "./builtins";
import { TemplateError } from "./errors";
import type { TreeSet } from "./parser";
import { type GoFunc, isTrue, kindOf, mapGet, metaOf, type ParamType, typeName } from "./values";

/** What a missing map key evaluates to: Go's Option("missingkey=...") ("error" is not used by Ollama). */
export type MissingKey = "default" | "zero" | "error";

export interface ExecContext {
  readonly trees: TreeSet;
  readonly funcs: ReadonlyMap<string, GoFunc>;
  readonly missingKey: MissingKey;
  /** Name used in error messages for the location (Go's ParseName). */
  readonly parseName: string;
  readonly source: string;
}

const MISSING = Symbol("missing final argument");
type Final = unknown | typeof MISSING;

export interface Variable {
  name: string;
  value: unknown;
}

export class Evaluator {
  private node: Node | null = null;

  constructor(
    protected readonly ctx: ExecContext,
    protected readonly name: string,
    protected vars: Variable[],
  ) {}

  errorf(message: string): never {
    const node = this.node;
    if (!node) throw new TemplateError(`template: ${this.name}: ${message}`, "exec");
    const before = this.ctx.source.slice(0, node.pos.offset);
    const column = node.pos.offset - (before.lastIndexOf("\n") + 1);
    const location = `${this.ctx.parseName}:${node.pos.line}:${column}`;
    throw new TemplateError(
      `template: ${location}: executing ${JSON.stringify(this.name)} at <${nodeString(node)}>: ${message}`,
      "exec",
      node.pos.line,
      column,
    );
  }

  protected at(node: Node): void {
    this.node = node;
  }

  // --- variables ------------------------------------------------------------------------------------------------

  protected mark(): number {
    return this.vars.length;
  }

  protected pop(mark: number): void {
    this.vars.length = mark;
  }

  private setVar(name: string, value: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i]!.name === name) {
        this.vars[i]!.value = value;
        return;
      }
    }
    this.errorf(`undefined variable: ${name}`);
  }

  protected setTopVar(n: number, value: unknown): void {
    this.vars[this.vars.length - n]!.value = value;
  }

  private varValue(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i]!.name === name) return this.vars[i]!.value;
    }
    this.errorf(`undefined variable: ${name}`);
  }

  // --- evaluation -----------------------------------------------------------------------------------------------

  protected evalPipeline(dot: unknown, pipe: PipeNode): unknown {
    this.at(pipe);
    let value: Final = MISSING;
    for (const cmd of pipe.cmds) {
      value = this.evalCommand(dot, cmd, value);
      // A nil interface{} result is the invalid value from here on (Go digs into interfaces).
      if (value === null) value = undefined;
    }
    for (const v of pipe.decl) {
      if (pipe.isAssign) this.setVar(v.ident[0]!, value);
      else this.vars.push({ name: v.ident[0]!, value });
    }
    return value;
  }

  private notAFunction(args: readonly ArgNode[] | null, final: Final): void {
    if ((args && args.length > 1) || final !== MISSING) {
      this.errorf(`can't give argument to non-function ${nodeString(args![0]!)}`);
    }
  }

  private evalCommand(dot: unknown, cmd: CommandNode, final: Final): unknown {
    const args = cmd.args;
    const first = args[0]!;
    switch (first.type) {
      case "field":
        return this.evalFieldNode(dot, first, args, final);
      case "chain":
        return this.evalChainNode(dot, first, args, final);
      case "identifier":
        return this.evalFunction(dot, first, cmd, args, final);
      case "pipe":
        this.notAFunction(args, final);
        return this.evalPipeline(dot, first);
      case "variable":
        return this.evalVariableNode(dot, first, args, final);
    }
    this.at(first);
    this.notAFunction(args, final);
    switch (first.type) {
      case "bool":
        return first.value;
      case "dot":
        return dot;
      case "nil":
        this.errorf("nil is not a command");
        break;
      case "number":
        return this.idealConstant(first);
      case "string":
        return first.text;
    }
    this.errorf(`can't evaluate command ${JSON.stringify(nodeString(first))}`);
  }

  private idealConstant(n: NumberNode): unknown {
    this.at(n);
    const isHexInt = /^0[xX]/.test(n.text) && !/[pP]/.test(n.text);
    if (!n.isChar && n.float !== null && !isHexInt && /[.eEpP]/.test(n.text)) return n.float;
    if (n.int !== null) return n.int;
    this.errorf(`${n.text} overflows int`);
  }

  private evalFieldNode(dot: unknown, field: FieldNode, args: readonly ArgNode[] | null, final: Final): unknown {
    this.at(field);
    return this.evalFieldChain(dot, dot, field, field.ident, args, final);
  }

  private evalChainNode(dot: unknown, chain: ChainNode, args: readonly ArgNode[] | null, final: Final): unknown {
    this.at(chain);
    if (chain.node.type === "nil") this.errorf(`indirection through explicit nil in ${nodeString(chain)}`);
    const pipe = this.evalArg(dot, "untyped", chain.node);
    return this.evalFieldChain(dot, pipe, chain, chain.field, args, final);
  }

  private evalVariableNode(dot: unknown, v: VariableNode, args: readonly ArgNode[] | null, final: Final): unknown {
    this.at(v);
    const value = this.varValue(v.ident[0]!);
    if (v.ident.length === 1) {
      this.notAFunction(args, final);
      return value;
    }
    return this.evalFieldChain(dot, value, v, v.ident.slice(1), args, final);
  }

  private evalFieldChain(
    dot: unknown,
    receiver: unknown,
    node: Node,
    ident: readonly string[],
    args: readonly ArgNode[] | null,
    final: Final,
  ): unknown {
    let r = receiver;
    // Go names the static type in errors: what came out of a map[string]any is an "interface {}".
    let fromMap = false;
    for (let i = 0; i < ident.length - 1; i++) {
      const next = this.evalField(dot, ident[i]!, node, null, MISSING, r, fromMap);
      fromMap = kindOf(r) === "map";
      r = next;
    }
    return this.evalField(dot, ident[ident.length - 1]!, node, args, final, r, fromMap);
  }

  private evalField(
    dot: unknown,
    fieldName: string,
    node: Node,
    args: readonly ArgNode[] | null,
    final: Final,
    receiver: unknown,
    fromMap = false,
  ): unknown {
    if (receiver === undefined) {
      if (this.ctx.missingKey === "error") this.errorf(`nil data; no entry for key ${JSON.stringify(fieldName)}`);
      return undefined;
    }
    if (receiver === null) this.errorf(`nil pointer evaluating interface {}.${fieldName}`);
    const method = metaOf(receiver)?.methods?.[fieldName];
    if (method) return this.evalCall(dot, method, false, node, fieldName, args, final);
    const hasArgs = (args !== null && args.length > 1) || final !== MISSING;
    const kind = kindOf(receiver);
    if (kind === "struct" && Object.hasOwn(receiver as object, fieldName)) {
      if (hasArgs) this.errorf(`${fieldName} has arguments but cannot be invoked as function`);
      return (receiver as Record<string, unknown>)[fieldName];
    }
    if (kind === "map") {
      if (hasArgs) this.errorf(`${fieldName} is not a method but has arguments`);
      const { found, value } = mapGet(receiver as object, fieldName);
      if (found) return value;
      if (this.ctx.missingKey === "error") this.errorf(`map has no entry for key ${JSON.stringify(fieldName)}`);
      return this.ctx.missingKey === "zero" ? null : undefined;
    }
    const staticType = fromMap && !metaOf(receiver)?.typeName ? "interface {}" : typeName(receiver);
    this.errorf(`can't evaluate field ${fieldName} in type ${staticType}`);
  }

  private evalFunction(
    dot: unknown,
    node: IdentifierNode,
    cmd: Node,
    args: readonly ArgNode[] | null,
    final: Final,
  ): unknown {
    this.at(node);
    const name = node.ident;
    const user = this.ctx.funcs.get(name);
    const fn = user ?? BUILTINS.get(name);
    if (!fn) this.errorf(`${JSON.stringify(name)} is not a defined function`);
    return this.evalCall(dot, fn, user === undefined, cmd, name, args, final);
  }

  private evalCall(
    dot: unknown,
    fn: GoFunc,
    isBuiltin: boolean,
    node: Node,
    name: string,
    allArgs: readonly ArgNode[] | null,
    final: Final,
  ): unknown {
    const args = allArgs ? allArgs.slice(1) : [];
    const numIn = args.length + (final !== MISSING ? 1 : 0);
    let numFixed = args.length;
    if (fn.variadic) {
      numFixed = fn.params.length;
      if (numIn < numFixed) {
        this.errorf(`wrong number of args for ${name}: want at least ${fn.params.length} got ${args.length}`);
      }
    } else if (numIn !== fn.params.length) {
      this.errorf(`wrong number of args for ${name}: want ${fn.params.length} got ${numIn}`);
    }
    if (isBuiltin && (name === "and" || name === "or")) {
      let v: unknown;
      for (const arg of args) {
        v = this.evalArg(dot, "value", arg);
        if (isTrue(v) === (name === "or")) return v;
      }
      if (final !== MISSING) v = final;
      return v;
    }
    const argv: unknown[] = [];
    let i = 0;
    for (; i < numFixed && i < args.length; i++) argv.push(this.evalArg(dot, fn.params[i]!, args[i]!));
    if (fn.variadic) for (; i < args.length; i++) argv.push(this.evalArg(dot, fn.variadic, args[i]!));
    if (final !== MISSING) {
      let t: ParamType = fn.params[fn.params.length - 1] ?? "any";
      if (fn.variadic) t = numIn - 1 < numFixed ? fn.params[numIn - 1]! : fn.variadic;
      argv.push(this.validateType(final, t));
    }
    try {
      return fn.call(...argv);
    } catch (err) {
      if (err instanceof TemplateError) throw err;
      this.at(node);
      this.errorf(`error calling ${name}: ${(err as Error).message}`);
    }
  }

  private validateType(value: unknown, type: ParamType | "untyped"): unknown {
    if (value === undefined) {
      if (type === "untyped" || type === "value") return undefined;
      if (type === "any") return null;
      this.errorf(`invalid value; expected ${type}`);
    }
    const want: Partial<Record<ParamType, string>> = { string: "string", int: "int", bool: "bool" };
    const expected = type === "untyped" ? undefined : want[type];
    if (expected) {
      const ok =
        (type === "string" && typeof value === "string") ||
        (type === "int" && typeof value === "bigint") ||
        (type === "bool" && typeof value === "boolean");
      if (!ok)
        this.errorf(
          `wrong type for value; expected ${expected}; got ${value === null ? "interface {}" : typeName(value)}`,
        );
    }
    return value;
  }

  private evalArg(dot: unknown, type: ParamType | "untyped", n: ArgNode): unknown {
    this.at(n);
    switch (n.type) {
      case "dot":
        return this.validateType(dot, type);
      case "nil":
        if (type === "any") return null;
        if (type === "value" || type === "untyped") return undefined;
        this.errorf(`cannot assign nil to ${type}`);
        break;
      case "field":
        return this.validateType(this.evalFieldNode(dot, n, [n], MISSING), type);
      case "variable":
        return this.validateType(this.evalVariableNode(dot, n, null, MISSING), type);
      case "pipe":
        return this.validateType(this.evalPipeline(dot, n), type);
      case "identifier":
        return this.validateType(this.evalFunction(dot, n, n, null, MISSING), type);
      case "chain":
        return this.validateType(this.evalChainNode(dot, n, null, MISSING), type);
    }
    switch (type) {
      case "bool":
        if (n.type === "bool") return n.value;
        this.errorf(`expected bool; found ${nodeString(n)}`);
        break;
      case "int":
        if (n.type === "number" && n.int !== null) return n.int;
        this.errorf(`expected integer; found ${nodeString(n)}`);
        break;
      case "string":
        if (n.type === "string") return n.text;
        this.errorf(`expected string; found ${nodeString(n)}`);
        break;
    }
    switch (n.type) {
      case "bool":
        return n.value;
      case "number":
        return this.idealConstant(n);
      case "string":
        return n.text;
    }
  }
}

// Public face of the Go text/template engine: parse once, execute many times against JS data that follows the value
// conventions of ./values (bigint = Go int, number = float64, plain object = map, goStruct = struct).

import type { ListNode } from "./ast";
import { BUILTINS } from "./builtins";
import { executeTree, type MissingKey } from "./exec";
import { parseTreeSet, type TreeSet } from "./parser";
import type { GoFunc } from "./values";

export type { ListNode, Node } from "./ast";
export { nodeString } from "./ast";
export { TemplateError } from "./errors";
export type { MissingKey } from "./exec";
export { formatValue, sprintf } from "./fmt";
export { marshalJSON } from "./gojson";
export {
  GO_META,
  type GoFunc,
  type GoMeta,
  goNilMap,
  goNilSlice,
  goStruct,
  isTrue,
  type JsonFieldSpec,
  type ParamType,
  withMeta,
} from "./values";

/** A plain JS function is treated as `func(args ...any) any`. */
export type FuncMap = Readonly<Record<string, GoFunc | ((...args: unknown[]) => unknown)>>;

export interface TemplateOptions {
  /** Name of the main template; Ollama parses with "" (it shows up in error messages). */
  readonly name?: string;
  readonly funcs?: FuncMap;
  /** Go's Option("missingkey=..."); Ollama uses "zero". Default: "default". */
  readonly missingKey?: MissingKey;
}

function normalizeFuncs(funcs: FuncMap | undefined): Map<string, GoFunc> {
  const out = new Map<string, GoFunc>();
  for (const [name, f] of Object.entries(funcs ?? {})) {
    out.set(name, typeof f === "function" ? { params: [], variadic: "any", call: f } : f);
  }
  return out;
}

export class GoTemplate {
  private constructor(
    readonly source: string,
    readonly name: string,
    private readonly treeSet: TreeSet,
    private readonly funcs: ReadonlyMap<string, GoFunc>,
    readonly missingKey: MissingKey,
  ) {}

  static parse(source: string, options: TemplateOptions = {}): GoTemplate {
    const name = options.name ?? "";
    const funcs = normalizeFuncs(options.funcs);
    const trees = parseTreeSet(name, source, (ident) => funcs.has(ident) || BUILTINS.has(ident));
    return new GoTemplate(source, name, trees, funcs, options.missingKey ?? "default");
  }

  /** Root of the main template. */
  get root(): ListNode {
    return this.treeSet.get(this.name) ?? { type: "list", pos: { offset: 0, line: 1 }, nodes: [] };
  }

  /** Every template of the set (main and defined ones), by name. */
  get trees(): ReadonlyMap<string, ListNode> {
    return this.treeSet;
  }

  execute(data: unknown): string {
    return executeTree(
      {
        trees: this.treeSet,
        funcs: this.funcs,
        missingKey: this.missingKey,
        parseName: this.name,
        source: this.source,
      },
      this.name,
      data,
    );
  }

  /**
   * A template whose main tree is `root` (the caller's rewrite of this one). Like Go's
   * `template.New("").AddParseTree("", tree)` when `standalone` is set: no defined templates, no extra functions,
   * default missingkey.
   */
  withRoot(root: ListNode, standalone = false): GoTemplate {
    const trees: TreeSet = standalone ? new Map() : new Map(this.treeSet);
    trees.set(this.name, root);
    return new GoTemplate(
      this.source,
      this.name,
      trees,
      standalone ? new Map() : this.funcs,
      standalone ? "default" : this.missingKey,
    );
  }
}

export function parseTemplate(source: string, options?: TemplateOptions): GoTemplate {
  return GoTemplate.parse(source, options);
}

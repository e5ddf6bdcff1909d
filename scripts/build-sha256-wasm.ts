/**
 * Builds edge/src/store/sha256.wasm (`npm run build:sha256-wasm`): SHA-256's block function (FIPS 180-4) in
 * WebAssembly text, generated here and assembled with wabt. The 64 rounds are unrolled with the working variables
 * renamed instead of shifted, and the message schedule lives in 16 locals, so a block touches memory only to read
 * its 64 bytes. The binary is committed so that neither wrangler nor the tests need wabt;
 * build-sha256-wasm.test.ts checks it is up to date.
 *
 * Memory layout (2 pages), shared with sha256-wasm.ts:
 *   [0, 32)        the chaining words H0..H7 as native (little-endian) i32: JS reads them as an Int32Array
 *   [1024, 66560)  the input buffer: JS copies up to 1024 blocks here, then calls compress(1024, blocks)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SHA256_K } from "@corral/protocol/sha256";
import wabt from "wabt";

export const WASM_PATH = fileURLToPath(new URL("../edge/src/store/sha256.wasm", import.meta.url));

const VARS = ["$a", "$b", "$c", "$d", "$e", "$f", "$g", "$h"];
const get = (name: string) => `(local.get ${name})`;
const rotr = (x: string, n: number) => `(i32.rotr ${x} (i32.const ${n}))`;
const xor3 = (x: string, y: string, z: string) => `(i32.xor (i32.xor ${x} ${y}) ${z})`;
const add = (...xs: string[]) => xs.reduce((sum, x) => `(i32.add ${sum} ${x})`);
const w = (i: number) => `$w${i % 16}`;

/** One round; role j (0 = a … 7 = h) of round r is held by VARS[(j - r) mod 8]. */
function round(r: number): string[] {
  const x = (j: number) => get(VARS[(((j - r) % 8) + 8) % 8]!);
  const out: string[] = [];
  if (r >= 16) {
    const w15 = get(w(r - 15));
    const w2 = get(w(r - 2));
    const s0 = xor3(rotr(w15, 7), rotr(w15, 18), `(i32.shr_u ${w15} (i32.const 3))`);
    const s1 = xor3(rotr(w2, 17), rotr(w2, 19), `(i32.shr_u ${w2} (i32.const 10))`);
    out.push(`(local.set ${w(r)} ${add(get(w(r)), s0, get(w(r - 7)), s1)})`);
  }
  const [a, b, c, , e, f, g, h] = [0, 1, 2, 3, 4, 5, 6, 7].map(x);
  const bigS1 = xor3(rotr(e!, 6), rotr(e!, 11), rotr(e!, 25));
  const ch = `(i32.xor (i32.and ${e} ${f}) (i32.and (i32.xor ${e} (i32.const -1)) ${g}))`;
  out.push(`(local.set $t1 ${add(h!, bigS1, ch, `(i32.const ${SHA256_K[r]})`, get(w(r)))})`);
  const bigS0 = xor3(rotr(a!, 2), rotr(a!, 13), rotr(a!, 22));
  const maj = xor3(`(i32.and ${a} ${b})`, `(i32.and ${a} ${c})`, `(i32.and ${b} ${c})`);
  const d = VARS[(((3 - r) % 8) + 8) % 8]!;
  const hVar = VARS[(((7 - r) % 8) + 8) % 8]!;
  out.push(`(local.set ${d} (i32.add ${get(d)} (local.get $t1)))`);
  out.push(`(local.set ${hVar} (i32.add (local.get $t1) ${add(bigS0, maj)}))`);
  return out;
}

/** The module's text: `compress(pointer, blocks)` folds `blocks` 64-byte blocks at `pointer` into H0..H7. */
export function sha256Wat(): string {
  const body: string[] = [];
  for (let i = 0; i < 16; i++) {
    // Big-endian words: swap the bytes of a little-endian load.
    const raw = `(i32.load offset=${i * 4} (local.get $ptr))`;
    body.push(`(local.set $x ${raw})`);
    body.push(
      `(local.set ${w(i)} (i32.or (i32.rotr (i32.and (local.get $x) (i32.const 0x00ff00ff)) (i32.const 8)) (i32.rotl (i32.and (local.get $x) (i32.const 0xff00ff00)) (i32.const 8))))`,
    );
  }
  body.push(...VARS.map((v, i) => `(local.set ${v} (i32.load offset=${i * 4} (i32.const 0)))`));
  for (let r = 0; r < 64; r++) body.push(...round(r));
  body.push(
    ...VARS.map(
      (v, i) =>
        `(i32.store offset=${i * 4} (i32.const 0) (i32.add (i32.load offset=${i * 4} (i32.const 0)) ${get(v)}))`,
    ),
  );
  const locals = [...VARS, "$t1", "$x", ...Array.from({ length: 16 }, (_, i) => `$w${i}`)];
  return [
    "(module",
    '  (memory (export "memory") 2)',
    '  (func (export "compress") (param $ptr i32) (param $blocks i32)',
    `    ${locals.map((l) => `(local ${l} i32)`).join(" ")}`,
    "    (block $done (loop $block",
    "      (br_if $done (i32.eqz (local.get $blocks)))",
    ...body.map((line) => `      ${line}`),
    "      (local.set $ptr (i32.add (local.get $ptr) (i32.const 64)))",
    "      (local.set $blocks (i32.sub (local.get $blocks) (i32.const 1)))",
    "      (br $block)))))",
    "",
  ].join("\n");
}

export async function compileSha256(): Promise<Uint8Array> {
  const toolkit = await wabt();
  const parsed = toolkit.parseWat("sha256.wat", sha256Wat());
  try {
    parsed.validate();
    return parsed.toBinary({}).buffer;
  } finally {
    parsed.destroy();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const binary = await compileSha256();
  writeFileSync(WASM_PATH, binary);
  console.log(`wrote ${WASM_PATH} (${binary.byteLength} bytes)`);
}

export const committedSha256Wasm = () => readFileSync(WASM_PATH);

import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { TINY_MODEL_DEFAULT_SEED, writeTinyModel } from "./generate";
import { writeScriptedModel } from "./scripted";
import { MODEL_SCRIPTS, type ScriptName } from "./scripts";
import type { WeightType } from "./tensor-data";

const USAGE = `usage: tsx gpu-runner/src/tiny-model/cli.ts --out <file> [--seed N] [--weight-type f16|f32|q8_0]
       tsx gpu-runner/src/tiny-model/cli.ts --out <file> --scripted sentence|tool`;

const WEIGHT_TYPES: readonly WeightType[] = ["f16", "f32", "q8_0"];

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    out: { type: "string" },
    seed: { type: "string" },
    scripted: { type: "string" },
    "weight-type": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});

if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!values.out) fail("--out is required");

let bytes: Uint8Array;
if (values.scripted !== undefined) {
  if (!Object.hasOwn(MODEL_SCRIPTS, values.scripted)) fail(`unknown script ${values.scripted}`);
  if (values.seed !== undefined || values["weight-type"] !== undefined) {
    fail("--seed and --weight-type do not apply to --scripted");
  }
  bytes = writeScriptedModel(values.scripted as ScriptName);
} else {
  const seed = values.seed === undefined ? TINY_MODEL_DEFAULT_SEED : Number(values.seed);
  if (!/^\d+$/.test(values.seed ?? "0") || seed > 0xffffffff) fail("--seed must be an unsigned 32-bit integer");
  const weightType = (values["weight-type"] ?? "f16") as WeightType;
  if (!WEIGHT_TYPES.includes(weightType)) fail(`unknown weight type ${weightType}`);
  bytes = writeTinyModel({ seed, weightType });
}
writeFileSync(values.out, bytes);
process.stdout.write(`wrote ${values.out} (${bytes.length} bytes)\n`);

/**
 * llama.cpp's quantizer through koffi. Loaded only in the quantize child (child.ts), never in the runner's process.
 */
import koffi from "koffi";
import { EXIT_QUANTIZE_FAILED, EXIT_SETUP_FAILED, type QuantizeChildJob } from "./child-job";

/** `enum ggml_type` GGML_TYPE_COUNT in this llama.cpp: the "no override" value of the two tensor-type fields. */
const GGML_TYPE_COUNT = 43;

/**
 * llama.h `struct llama_model_quantize_params`, field for field (enums are C ints). 64 bytes on 64-bit platforms:
 * four int32, six bools (padded to 8), four pointers, a size_t.
 */
const QuantizeParams = koffi.struct("llama_model_quantize_params", {
  nthread: "int32_t", // <= 0: std::thread::hardware_concurrency(); always set
  ftype: "int", // enum llama_ftype
  output_tensor_type: "int", // enum ggml_type
  token_embedding_type: "int", // enum ggml_type
  allow_requantize: "bool",
  quantize_output_tensor: "bool",
  only_copy: "bool",
  pure: "bool",
  keep_split: "bool",
  dry_run: "bool",
  imatrix: "const void *", // const struct llama_model_imatrix_data *
  kv_overrides: "const void *", // const struct llama_model_kv_override *
  tt_overrides: "const void *", // const struct llama_model_tensor_override *
  prune_layers: "const int32_t *",
  max_buf_size: "size_t", // 0: 8 GiB
});

export interface QuantizeParamsValue {
  nthread: number;
  ftype: number;
  output_tensor_type: number;
  token_embedding_type: number;
  allow_requantize: boolean;
  quantize_output_tensor: boolean;
  only_copy: boolean;
  pure: boolean;
  keep_split: boolean;
  dry_run: boolean;
  imatrix: unknown;
  kv_overrides: unknown;
  tt_overrides: unknown;
  prune_layers: unknown;
  max_buf_size: number | bigint;
}

/**
 * llama.cpp's defaults (quantize the output tensor, no dry run, nothing overridden), or an Error: anything else means
 * the struct above does not match the library's and the call would read garbage.
 */
export function checkDefaultParams(p: QuantizeParamsValue): void {
  const sane =
    p.quantize_output_tensor === true &&
    p.dry_run === false &&
    p.only_copy === false &&
    p.pure === false &&
    p.keep_split === false &&
    p.allow_requantize === false &&
    p.output_tensor_type === GGML_TYPE_COUNT &&
    p.token_embedding_type === GGML_TYPE_COUNT &&
    p.imatrix === null &&
    p.kv_overrides === null &&
    p.tt_overrides === null &&
    p.prune_layers === null &&
    Number(p.max_buf_size) > 0;
  if (!sane) {
    const shown = JSON.stringify(p, (_key, value) => (typeof value === "bigint" ? value.toString() : value));
    throw new Error(`llama_model_quantize_default_params looks wrong (header/library mismatch?): ${shown}`);
  }
}

/** Linux: SIGKILL this process when its parent dies (a thread blocked in the FFI call cannot notice otherwise). */
export function dieWithParent(parentPid: number): void {
  if (process.platform === "linux") {
    try {
      const prctl = koffi
        .load("libc.so.6")
        .func("int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)");
      const PR_SET_PDEATHSIG = 1;
      const SIGKILL = 9;
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    } catch {
      // Not glibc: the parent still kills the child on abort.
    }
  }
  // The parent may have died before prctl took effect.
  if (process.ppid !== parentPid) process.exit(EXIT_SETUP_FAILED);
}

export interface Quantizer {
  /** llama.cpp's defaults, checked. */
  defaultParams(): QuantizeParamsValue;
  /** Runs llama_model_quantize; 0, or EXIT_QUANTIZE_FAILED when llama.cpp returned non-zero. */
  quantize(job: Pick<QuantizeChildJob, "input" | "output" | "ftype" | "threads">): number;
}

/** dlopens libllama (its libggml* beside it) and calls llama_backend_init once. */
export function loadQuantizer(libPath: string): Quantizer {
  if (process.arch.endsWith("64") && koffi.sizeof(QuantizeParams) !== 64) {
    throw new Error(`llama_model_quantize_params is ${koffi.sizeof(QuantizeParams)} bytes here, llama.h says 64`);
  }
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(libPath);
  } catch (err) {
    throw new Error(`cannot load ${libPath}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const backendInit = lib.func("void llama_backend_init(void)");
  const defaults = lib.func("llama_model_quantize_params llama_model_quantize_default_params(void)");
  const quantize = lib.func(
    "uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, const llama_model_quantize_params *params)",
  );
  backendInit();
  const defaultParams = () => {
    const params = defaults() as QuantizeParamsValue;
    checkDefaultParams(params);
    return params;
  };
  return {
    defaultParams,
    quantize(job) {
      if (!Number.isInteger(job.threads) || job.threads < 1)
        throw new Error(`threads must be >= 1, got ${job.threads}`);
      const params = defaultParams();
      params.nthread = job.threads;
      params.ftype = job.ftype;
      return quantize(job.input, job.output, params) === 0 ? 0 : EXIT_QUANTIZE_FAILED;
    },
  };
}

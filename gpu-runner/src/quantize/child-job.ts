/** What quantize.ts and its child process agree on: the job (JSON in the child's argv[2]) and the exit statuses. */

export interface QuantizeChildJob {
  /** Absolute path of libllama. */
  lib: string;
  input: string;
  /** Where llama.cpp writes: the parent's temporary file, renamed into place on success. */
  output: string;
  /** llama.cpp's `enum llama_ftype`. */
  ftype: number;
  threads: number;
  /** The parent's pid: the child dies with it. */
  parentPid: number;
}

/** llama_model_quantize returned non-zero: the reason is in llama.cpp's log. */
export const EXIT_QUANTIZE_FAILED = 71;
/** The library could not be loaded or looked wrong: the reason is the child's last stderr line. */
export const EXIT_SETUP_FAILED = 70;
/** Prefix of the child's own diagnostics on stderr. */
export const CHILD_LOG_PREFIX = "corral-quantize:";

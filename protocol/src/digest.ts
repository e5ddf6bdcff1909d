/**
 * Blob digests. Ollama writes them `sha256:<hex>` on the wire and `sha256-<hex>` as file names, and accepts both.
 * corral accepts both separators but only lowercase hex: uppercase would give one blob two spellings (two R2 keys,
 * two ownership rows), so it is refused rather than folded.
 */
import { ApiError } from "./errors";
import { Sha256 } from "./sha256";

export { bytesToHex, Sha256, sha256Hex } from "./sha256";

/** Ollama's text for a malformed digest (manifest.ErrInvalidDigestFormat). */
export const INVALID_DIGEST_MESSAGE = "invalid digest format";

const DIGEST_PATTERN = /^sha256[:-]([0-9a-f]{64})$/;

/** Returns the canonical `sha256:<64 lowercase hex>` form, or null when `s` is not a digest corral accepts. */
export function parseDigest(s: string): string | null {
  const match = DIGEST_PATTERN.exec(s);
  return match ? `sha256:${match[1]}` : null;
}

export function isDigest(s: string): boolean {
  return DIGEST_PATTERN.test(s);
}

/** Like parseDigest, but a bad digest is the client's error: ApiError 400 `invalid digest format`. */
export function requireDigest(s: string): string {
  const digest = parseDigest(s);
  if (digest === null) throw new ApiError(400, INVALID_DIGEST_MESSAGE);
  return digest;
}

/**
 * The `sha256-<hex>` spelling Ollama uses for blob files. Safe as a single path segment: the pattern admits no
 * separators or dots, so cache paths built from it cannot escape their directory.
 */
export function digestToFileName(digest: string): string {
  return requireDigest(digest).replace(":", "-");
}

/** The hex part of a digest (for registries and S3 keys that want it bare). */
export function digestHex(digest: string): string {
  return requireDigest(digest).slice("sha256:".length);
}

/** Canonical digest of bytes held in memory. */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${new Sha256().update(bytes).hexDigest()}`;
}

export interface DigestResult {
  digest: string;
  size: number;
}

/**
 * Wraps a byte stream so that its bytes pass through unchanged while being hashed. `result` resolves with the
 * canonical digest and byte count once the wrapped stream has been read to its end, and rejects if the source
 * fails or the reader cancels — so awaiting it never hangs. The edge pipes uploads through this into R2.
 */
export function digestingStream(source: ReadableStream<Uint8Array>): {
  stream: ReadableStream<Uint8Array>;
  result: Promise<DigestResult>;
} {
  const hasher = new Sha256();
  let size = 0;
  let settle!: (value: DigestResult) => void;
  let fail!: (reason: unknown) => void;
  const result = new Promise<DigestResult>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // Without a handler, a failure nobody awaited would surface as an unhandled rejection.
  result.catch(() => {});
  const reader = source.getReader();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          settle({ digest: `sha256:${hasher.hexDigest()}`, size });
          controller.close();
          return;
        }
        hasher.update(value);
        size += value.length;
        controller.enqueue(value);
      } catch (err) {
        fail(err);
        controller.error(err);
      }
    },
    async cancel(reason) {
      fail(reason ?? new Error("digestingStream cancelled"));
      await reader.cancel(reason);
    },
  });
  return { stream, result };
}

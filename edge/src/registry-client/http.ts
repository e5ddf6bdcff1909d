/** Small HTTP helpers for talking to registries, whose answers are untrusted in size and shape. */
import { ApiError } from "@corral/protocol";

/** Reads a response body up to `max` bytes; a longer body is refused rather than buffered. */
export async function readLimitedBytes(res: Response, max: number): Promise<Uint8Array> {
  const declared = res.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    await res.body?.cancel();
    throw new ApiError(502, `registry response too large (${declared} bytes, at most ${max})`);
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new ApiError(502, `registry response too large (more than ${max} bytes)`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

export async function readLimitedText(res: Response, max: number): Promise<string> {
  return new TextDecoder().decode(await readLimitedBytes(res, max));
}

/** The first `max` bytes of a body; the rest is never read (an error page may be endless). */
async function readPrefix(res: Response, max: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const out = new Uint8Array(max);
  let filled = 0;
  const reader = res.body.getReader();
  try {
    while (filled < max) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, max - filled);
      out.set(value.subarray(0, take), filled);
      filled += take;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return out.subarray(0, filled);
}

/** A short, single-line excerpt of an error body for messages (registries answer with JSON or HTML). */
export async function errorExcerpt(res: Response): Promise<string> {
  try {
    const text = new TextDecoder().decode(await readPrefix(res, 4096));
    return text.replace(/\s+/g, " ").trim().slice(0, 300);
  } catch {
    return "";
  }
}

/** Drops a body we do not need, so the connection can be reused. */
export async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // Nothing to free.
  }
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

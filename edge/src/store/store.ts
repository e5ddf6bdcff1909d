/**
 * The bucket layout. Blob bytes live under `blobs/sha256-<hex>` (one object per digest, whoever uploaded it);
 * runners reading the bucket over the S3 API use the same key. Nothing else is ever written under `blobs/`.
 */
import { ApiError, type ByteSource } from "@corral/protocol";
import { digestToFileName } from "@corral/protocol/digest";

export function blobKey(digest: string): string {
  return `blobs/${digestToFileName(digest)}`;
}

/** A blob's bytes as text (small layers whose inline copy is missing, e.g. written by a pull). */
export async function readBlobText(bucket: R2Bucket, digest: string): Promise<string> {
  const object = await bucket.get(blobKey(digest));
  if (!object) throw new ApiError(500, `blob ${digest} is missing from the bucket`);
  return object.text();
}

/** Random access to an R2 object with ranged GETs: what the GGUF header reader consumes. */
export function r2ByteSource(bucket: R2Bucket, key: string, size: number): ByteSource {
  return {
    size,
    async read(offset, length) {
      const clamped = Math.min(length, size - offset);
      if (clamped <= 0) return new Uint8Array(0);
      const object = await bucket.get(key, { range: { offset, length: clamped } });
      if (!object) throw new ApiError(500, "blob vanished while being read");
      return new Uint8Array(await object.arrayBuffer());
    },
  };
}

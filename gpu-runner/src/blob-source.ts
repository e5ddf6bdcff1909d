/**
 * Where blob bytes come from on a cache miss: the edge's internal blob route (local stack) or the bucket
 * through the S3 API (production). Both read byte ranges so large blobs can be fetched in parallel.
 */
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { digestToFileName } from "@corral/protocol/digest";
import { blobMissing } from "./errors";

/** Inclusive byte range, as in an HTTP Range header. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobBody {
  /** Bytes from `start` on: the range asked for, or the whole blob when the source ignored the range. */
  chunks: AsyncIterable<Uint8Array>;
  start: number;
  /** Total blob size when the source said. */
  totalSize?: number;
}

export interface BlobSource {
  /** Opens a blob (or a range of it). Rejects with a 404 ApiError when the store does not have it. */
  open(digest: string, range: ByteRange | undefined, signal?: AbortSignal): Promise<BlobBody>;
}

const rangeHeader = (range: ByteRange) => `bytes=${range.start}-${range.end}`;

/** Parses `bytes a-b/total`; a source that answers a range with 200 sent everything from 0. */
function parseContentRange(header: string | null | undefined): { start: number; total?: number } | null {
  const match = header ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header.trim()) : null;
  if (!match) return null;
  return { start: Number(match[1]), total: match[2] === "*" ? undefined : Number(match[2]) };
}

export class EdgeBlobSource implements BlobSource {
  constructor(
    private readonly edgeUrl: string,
    private readonly secret: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  async open(digest: string, range: ByteRange | undefined, signal?: AbortSignal): Promise<BlobBody> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.secret}` };
    if (range) headers.range = rangeHeader(range);
    // The digest was validated by the cache; it is `sha256:<hex>`, safe in a path segment once encoded.
    const url = `${this.edgeUrl.replace(/\/+$/, "")}/internal/blobs/${encodeURIComponent(digest)}`;
    const response = await this.fetchImpl(url, { headers, signal });
    if (response.status === 404) {
      await response.body?.cancel();
      throw blobMissing(digest);
    }
    if ((response.status !== 200 && response.status !== 206) || !response.body) {
      await response.body?.cancel();
      throw new Error(`blob fetch for ${digest} failed: HTTP ${response.status}`);
    }
    const contentRange = response.status === 206 ? parseContentRange(response.headers.get("content-range")) : null;
    const length = Number(response.headers.get("content-length") ?? Number.NaN);
    return {
      chunks: response.body as unknown as AsyncIterable<Uint8Array>,
      start: contentRange?.start ?? 0,
      totalSize: contentRange?.total ?? (response.status === 200 && Number.isFinite(length) ? length : undefined),
    };
  }
}

export interface S3BlobSourceOptions {
  bucket: string;
  region?: string;
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Key prefix; the edge stores blobs under `blobs/sha256-<hex>`. */
  keyPrefix?: string;
  forcePathStyle?: boolean;
}

/** The S3 client for the blob bucket (shared by the runner's blob source and sink). */
export function s3ClientFor(options: S3BlobSourceOptions): S3Client {
  return new S3Client({
    region: options.region ?? "auto",
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    credentials:
      options.accessKeyId && options.secretAccessKey
        ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
        : undefined,
    // R2 and other S3-compatible stores reject or mis-handle the SDK's default CRC32 checksums; the sink sends
    // an explicit SHA-256 instead.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

export class S3BlobSource implements BlobSource {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly keyPrefix: string;

  constructor(options: S3BlobSourceOptions) {
    this.bucket = options.bucket;
    this.keyPrefix = options.keyPrefix ?? "blobs/";
    this.client = s3ClientFor(options);
  }

  keyFor(digest: string): string {
    return `${this.keyPrefix}${digestToFileName(digest)}`;
  }

  async open(digest: string, range: ByteRange | undefined, signal?: AbortSignal): Promise<BlobBody> {
    try {
      const result = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.keyFor(digest), Range: range && rangeHeader(range) }),
        { abortSignal: signal },
      );
      if (!result.Body) throw new Error(`blob fetch for ${digest} returned no body`);
      const contentRange = parseContentRange(result.ContentRange);
      return {
        chunks: result.Body as unknown as AsyncIterable<Uint8Array>,
        start: contentRange?.start ?? 0,
        totalSize: contentRange?.total ?? (contentRange ? undefined : result.ContentLength),
      };
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === "NoSuchKey" || name === "NotFound") throw blobMissing(digest);
      throw err;
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}

/**
 * Checks request images before anything decodes them: the format from its magic bytes (PNG, JPEG, GIF, BMP,
 * the formats llama.cpp's stb_image decodes) and the declared dimensions from the header, so a decompression
 * bomb (a small file declaring a huge picture) is refused before it can allocate anything.
 */
import { ApiError } from "@corral/protocol/errors";

/** More images than any context this runner serves could hold, with room to spare. */
export const MAX_IMAGES_PER_REQUEST = 16;
/** llama.cpp resizes every image to the projector's size; beyond this the decode alone is the cost. */
export const MAX_IMAGE_PIXELS = 32 * 1024 * 1024;
export const MAX_IMAGE_SIDE = 16_384;

export interface ImageInfo {
  format: "png" | "jpeg" | "gif" | "bmp";
  width: number;
  height: number;
}

const startsWith = (bytes: Uint8Array, prefix: readonly number[]) => prefix.every((b, i) => bytes[i] === b);

/** JPEG: the first start-of-frame segment (SOF0–SOF15 except DHT, JPG, DAC) holds height then width. */
function jpegSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) return undefined;
    const marker = bytes[pos + 1]!;
    if (marker === 0xff) {
      pos++;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) {
      pos += 2;
      continue;
    }
    const length = view.getUint16(pos + 2);
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (pos + 9 > bytes.length) return undefined;
      return { height: view.getUint16(pos + 5), width: view.getUint16(pos + 7) };
    }
    pos += 2 + length;
  }
  return undefined;
}

function sniff(bytes: Uint8Array): ImageInfo | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) && bytes.length >= 24) {
    return { format: "png", width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) {
    const size = jpegSize(bytes);
    return size && { format: "jpeg", ...size };
  }
  if (
    (startsWith(bytes, [0x47, 0x49, 0x46, 0x38, 0x37, 0x61]) ||
      startsWith(bytes, [0x47, 0x49, 0x46, 0x38, 0x39, 0x61])) &&
    bytes.length >= 10
  ) {
    return { format: "gif", width: view.getUint16(6, true), height: view.getUint16(8, true) };
  }
  if (startsWith(bytes, [0x42, 0x4d]) && bytes.length >= 26) {
    return { format: "bmp", width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
  }
  return undefined;
}

/** The image's format and size; 400 for what is not a supported image or declares a size past the limits. */
export function checkImage(bytes: Uint8Array, index: number): ImageInfo {
  const info = sniff(bytes);
  if (!info)
    throw new ApiError(
      400,
      `image ${index}: unsupported or invalid image format (PNG, JPEG, GIF and BMP are accepted)`,
    );
  const { width, height } = info;
  if (width < 1 || height < 1) throw new ApiError(400, `image ${index}: invalid dimensions ${width}x${height}`);
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
    throw new ApiError(
      400,
      `image ${index}: ${width}x${height} is too large (at most ${MAX_IMAGE_SIDE} pixels a side and ${MAX_IMAGE_PIXELS} pixels)`,
    );
  }
  return info;
}

/** Decodes the request's base64 images and checks each; 400 for too many or any bad one. */
export function checkImages(images: readonly string[]): Buffer[] {
  if (images.length > MAX_IMAGES_PER_REQUEST) {
    throw new ApiError(400, `too many images: ${images.length} (at most ${MAX_IMAGES_PER_REQUEST} per request)`);
  }
  return images.map((base64, i) => {
    const bytes = Buffer.from(base64, "base64");
    checkImage(bytes, i);
    return bytes;
  });
}

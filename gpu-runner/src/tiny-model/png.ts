/**
 * A minimal PNG encoder (8-bit RGB, no interlace, filter 0) for test images, and seeded images to feed it:
 * enough to hand real, decodable image files to llama.cpp without an image library.
 */
import { crc32, deflateSync } from "node:zlib";
import { mulberry32 } from "./tensor-data";

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** The IHDR chunk alone, for tests that declare dimensions the data does not have. */
export function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type RGB, deflate, filter 0, no interlace
  return Buffer.concat([SIGNATURE, chunk("IHDR", ihdr)]);
}

/** `rgb` holds width × height × 3 bytes, row by row. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (rgb.length !== width * height * 3) throw new Error(`encodePng: ${rgb.length} bytes for ${width}×${height}`);
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), y * (width * 3 + 1) + 1);
  return Buffer.concat([pngHeader(width, height), chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array())]);
}

/** A width × height PNG of seeded noise: different seeds give different pictures, the same seed the same bytes. */
export function noisePng(seed: number, width = 32, height = 32): Buffer {
  const next = mulberry32(seed);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = Math.floor(next() * 256);
  return encodePng(width, height, rgb);
}

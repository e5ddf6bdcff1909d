import { describe, expect, it } from "vitest";
import { encodePng, noisePng, pngHeader } from "../tiny-model/png";
import { checkImage, checkImages, MAX_IMAGES_PER_REQUEST } from "./image-check";

/** A JPEG whose only content is a start-of-frame segment (after an APP0) declaring `width` × `height`. */
function jpegHeader(width: number, height: number): Buffer {
  const app0 = [0xff, 0xe0, 0x00, 0x04, 0x00, 0x00];
  const sof0 = [0xff, 0xc0, 0x00, 0x0b, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0];
  return Buffer.from([0xff, 0xd8, ...app0, ...sof0]);
}

function gifHeader(width: number, height: number): Buffer {
  const b = Buffer.alloc(13);
  b.write("GIF89a", 0, "latin1");
  b.writeUInt16LE(width, 6);
  b.writeUInt16LE(height, 8);
  return b;
}

function bmpHeader(width: number, height: number): Buffer {
  const b = Buffer.alloc(54);
  b.write("BM", 0, "latin1");
  b.writeInt32LE(width, 18);
  b.writeInt32LE(-height, 22);
  return b;
}

describe("checkImage", () => {
  it.each([
    ["png", noisePng(1, 3, 2), { format: "png", width: 3, height: 2 }],
    ["1×1 png", encodePng(1, 1, Uint8Array.of(1, 2, 3)), { format: "png", width: 1, height: 1 }],
    ["jpeg", jpegHeader(640, 480), { format: "jpeg", width: 640, height: 480 }],
    ["gif", gifHeader(10, 20), { format: "gif", width: 10, height: 20 }],
    ["bmp (top-down)", bmpHeader(7, 9), { format: "bmp", width: 7, height: 9 }],
  ])("reads the %s header", (_, bytes, info) => {
    expect(checkImage(bytes, 0)).toEqual(info);
  });

  it.each([
    ["text", Buffer.from("hello, not an image"), /image 0: unsupported or invalid image format/],
    ["empty", Buffer.alloc(0), /unsupported or invalid image format/],
    ["a truncated png", pngHeader(4, 4).subarray(0, 20), /unsupported or invalid image format/],
    ["a jpeg without a frame", Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0, 0]), /unsupported/],
    ["a png bomb (65535² declared in 33 bytes)", pngHeader(65_535, 65_535), /65535x65535 is too large/],
    ["a jpeg bomb", jpegHeader(65_000, 65_000), /too large/],
    ["a png too wide", pngHeader(20_000, 1), /too large/],
    ["zero width", pngHeader(0, 5), /invalid dimensions 0x5/],
  ])("refuses %s with a 400", (_, bytes, message) => {
    expect(() => checkImage(bytes, 0)).toThrow(message);
    try {
      checkImage(bytes, 0);
    } catch (err) {
      expect((err as { status: number }).status).toBe(400);
    }
  });
});

describe("checkImages", () => {
  it("decodes base64 and names the bad image's index", () => {
    const good = noisePng(2).toString("base64");
    expect(checkImages([good])[0]!.equals(noisePng(2))).toBe(true);
    expect(() => checkImages([good, Buffer.from("nope").toString("base64")])).toThrow(/^image 1: /);
  });

  it("refuses more images than a request may carry", () => {
    const image = noisePng(3).toString("base64");
    expect(() => checkImages(Array(MAX_IMAGES_PER_REQUEST + 1).fill(image))).toThrow(/too many images/);
  });
});

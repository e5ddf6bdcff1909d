/**
 * Writes safetensors files for tests and benchmarks (the format in safetensors.ts). Deliberately validates nothing,
 * so tests can also build hostile files: `header` replaces the computed JSON, `headerLength` lies about its size.
 */
export interface SafetensorsInput {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

export function writeSafetensors(
  tensors: SafetensorsInput[],
  options: { header?: string; headerLength?: bigint; metadata?: Record<string, string> } = {},
): Uint8Array {
  const json: Record<string, unknown> = {};
  if (options.metadata) json.__metadata__ = options.metadata;
  let offset = 0;
  for (const t of tensors) {
    json[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  // The format pads the header with spaces to a multiple of 8, so the data starts aligned.
  let text = options.header ?? JSON.stringify(json);
  while (new TextEncoder().encode(text).length % 8 !== 0) text += " ";
  const header = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + header.length + offset);
  new DataView(out.buffer).setBigUint64(0, options.headerLength ?? BigInt(header.length), true);
  out.set(header, 8);
  let at = 8 + header.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}

/** Little-endian bytes of float32 values. */
export function f32Bytes(values: Float32Array<ArrayBufferLike>): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

/** bfloat16 bytes of float32 values, rounded to nearest-even. */
export function bf16Bytes(values: Float32Array<ArrayBufferLike>): Uint8Array {
  const bits = new Uint32Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(out.buffer);
}

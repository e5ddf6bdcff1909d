/**
 * A SentencePiece `tokenizer.model` (a protobuf `ModelProto`) read by a small bounded protobuf reader: only the
 * pieces (piece, score, type) and the trainer's model type are kept; every other field is skipped by its wire type.
 * The file is the tenant's, so every varint, length and count is checked against what is left and against caps,
 * and anything malformed is a 400 that says where. Shared: the edge checks an uploaded tokenizer.model with it
 * before any runner work, and the runner's converter reads the pieces with it.
 */
import { ApiError } from "./errors";

/** A tokenizer.model over this is not a real one (Gemma 3's, among the largest, is 4.5 MB); the edge reads it whole. */
export const MAX_TOKENIZER_MODEL_BYTES = 16 * 1024 * 1024;
export const MAX_SENTENCEPIECE_PIECES = 1 << 22;
const MAX_PIECE_BYTES = 64 * 1024;

/** SentencePiece's piece types, which are also llama.cpp's token types. */
export const PieceType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface SentencePieceModel {
  pieces: { piece: string; score: number; type: number }[];
  /** TrainerSpec.model_type: 1 unigram, 2 BPE (both run as llama.cpp's `llama` tokenizer), 3 word, 4 char. */
  modelType: number;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

/** One float's bytes, decoded without a DataView per value (a tokenizer has hundreds of thousands of scores). */
const scoreBytes = new Uint8Array(4);
const scoreView = new DataView(scoreBytes.buffer);

/** A cursor over one protobuf message's bytes. */
class ProtoReader {
  private pos = 0;
  constructor(
    private readonly bytes: Uint8Array,
    /** What the message is, for errors: a name, or a piece's index (named only when something fails). */
    private readonly what: string | number,
  ) {}

  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  fail(problem: string): never {
    const what = typeof this.what === "number" ? `piece ${this.what}` : this.what;
    throw new ApiError(400, `invalid tokenizer.model: ${what} ${problem} at byte ${this.pos}`);
  }

  /** A varint of at most 10 bytes whose value fits a safe integer. */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.bytes.length) this.fail("ends inside a varint");
      const byte = this.bytes[this.pos++]!;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) this.fail("has a varint too large");
        return value;
      }
      scale *= 128;
    }
    return this.fail("has a varint longer than 10 bytes");
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wire: number } {
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    if (field === 0) this.fail("has a field numbered 0");
    return { field, wire: tag % 8 };
  }

  take(length: number): Uint8Array {
    if (length > this.bytes.length - this.pos) this.fail(`has a length of ${length} past its end`);
    const out = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  lengthDelimited(): Uint8Array {
    return this.take(this.varint());
  }

  float32(): number {
    scoreBytes.set(this.take(4));
    return scoreView.getFloat32(0, true);
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_FIXED64) this.take(8);
    else if (wire === WIRE_BYTES) this.lengthDelimited();
    else if (wire === WIRE_FIXED32) this.take(4);
    else this.fail(`has an unsupported wire type ${wire}`);
  }

  expect(wire: number, expected: number, field: string): void {
    if (wire !== expected) this.fail(`field ${field} has wire type ${wire}, expected ${expected}`);
  }
}

// ignoreBOM keeps a leading U+FEFF in a piece, as SentencePiece (and Python's decode) does.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Parses a tokenizer.model; a 400 for anything that is not a well-formed ModelProto within the caps. */
export function readSentencePiece(bytes: Uint8Array): SentencePieceModel {
  if (bytes.length > MAX_TOKENIZER_MODEL_BYTES) {
    throw new ApiError(400, `tokenizer.model is ${bytes.length} bytes, over the limit of ${MAX_TOKENIZER_MODEL_BYTES}`);
  }
  const model = new ProtoReader(bytes, "ModelProto");
  const pieces: SentencePieceModel["pieces"] = [];
  let modelType = 1;
  while (!model.done) {
    const { field, wire } = model.tag();
    if (field === 1) {
      model.expect(wire, WIRE_BYTES, "pieces");
      if (pieces.length >= MAX_SENTENCEPIECE_PIECES) model.fail(`has over ${MAX_SENTENCEPIECE_PIECES} pieces`);
      pieces.push(readPiece(model.lengthDelimited(), pieces.length));
    } else if (field === 2) {
      model.expect(wire, WIRE_BYTES, "trainer_spec");
      modelType = readModelType(model.lengthDelimited());
    } else model.skip(wire);
  }
  if (pieces.length === 0) throw new ApiError(400, "invalid tokenizer.model: it has no pieces");
  if (modelType !== 1 && modelType !== 2) {
    throw new ApiError(400, `tokenizer.model's model type ${modelType} is not supported (unigram or BPE)`);
  }
  return { pieces, modelType };
}

function readPiece(bytes: Uint8Array, index: number): SentencePieceModel["pieces"][number] {
  const r = new ProtoReader(bytes, index);
  let piece: string | undefined;
  let score = 0;
  let type: number = PieceType.NORMAL;
  while (!r.done) {
    const { field, wire } = r.tag();
    if (field === 1) {
      r.expect(wire, WIRE_BYTES, "piece");
      const text = r.lengthDelimited();
      if (text.length > MAX_PIECE_BYTES) r.fail(`is over ${MAX_PIECE_BYTES} bytes`);
      try {
        piece = utf8.decode(text);
      } catch {
        r.fail("is not valid UTF-8");
      }
    } else if (field === 2) {
      r.expect(wire, WIRE_FIXED32, "score");
      score = r.float32();
    } else if (field === 3) {
      r.expect(wire, WIRE_VARINT, "type");
      type = r.varint();
      if (type < PieceType.NORMAL || type > PieceType.BYTE) r.fail(`has an unknown type ${type}`);
    } else r.skip(wire);
  }
  if (piece === undefined) return r.fail("has no text");
  return { piece, score, type };
}

function readModelType(bytes: Uint8Array): number {
  const r = new ProtoReader(bytes, "trainer_spec");
  let modelType = 1;
  while (!r.done) {
    const { field, wire } = r.tag();
    if (field === 3) {
      r.expect(wire, WIRE_VARINT, "model_type");
      modelType = r.varint();
    } else r.skip(wire);
  }
  return modelType;
}

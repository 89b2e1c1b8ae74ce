/**
 * Length-prefixed binary frames between the host and a native plugin's child process.
 *
 * Wire format, little-endian:
 * `u32 payloadLength | u8 type | u32 requestId | payload`, and the payload is
 * `u32 headerLength | header (UTF-8 JSON object) | body (raw bytes)`.
 * The parser is strict: an oversized length, an unknown type, a header that is not valid UTF-8,
 * not JSON or not an object, or a stream that ends inside a frame is a {@link PluginError} with
 * code `ERR_IPC`. The child never trusts the host less than this, and the host never trusts the
 * child more.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder, FRAME_TYPES } from "./frames.ts";
 * const bytes = encodeFrame({ type: FRAME_TYPES.CALL, id: 1, header: { method: "echo" } });
 * const frames = new FrameDecoder().push(bytes);
 * frames[0]?.header.method; // "echo"
 * ```
 * @module
 */
import { PluginError } from "../errors.ts";

/** Frame types; the direction is in the comment. */
export const FRAME_TYPES = {
  /** host -> child: configuration header, body = the library bytes. */
  LOAD: 1,
  /** child -> host: the library is loaded and initialised; header `{ pid, landlockAbi }`. */
  READY: 2,
  /** host -> child: header `{ method }`, body = input bytes. */
  CALL: 3,
  /** child -> host: header `{ status, message? }`, body = output bytes. */
  RESULT: 4,
  /** child -> host: header `{ key }`; answered by CONTEXT_REPLY with the same id. */
  CONTEXT_GET: 5,
  /** child -> host: header `{ key }`, body = UTF-8 JSON value; answered by CONTEXT_REPLY. */
  CONTEXT_SET: 6,
  /** host -> child: header `{ status }`, body = UTF-8 JSON value for a get. */
  CONTEXT_REPLY: 7,
  /** child -> host: header `{ level, message }`; no reply. */
  LOG: 8,
  /** host -> child: call bh_shutdown() and exit. */
  SHUTDOWN: 9,
  /** child -> host: fatal start-up error; header `{ code, message }`. The child exits after. */
  FAIL: 10,
} as const;

/** One of {@link FRAME_TYPES}. */
export type FrameType = (typeof FRAME_TYPES)[keyof typeof FRAME_TYPES];

/** A decoded frame. */
export interface Frame {
  /** What the frame means; see {@link FRAME_TYPES}. */
  type: FrameType;
  /** Request id that pairs a reply with its request (u32). */
  id: number;
  /** Small JSON metadata object. */
  header: Record<string, unknown>;
  /** Raw bytes (call input/output, library bytes, JSON context values). */
  body: Uint8Array;
}

/** Input of {@link encodeFrame}: `header` defaults to `{}`, `body` to no bytes. */
export interface FrameInit {
  /** Frame type. */
  type: FrameType;
  /** Request id (u32). */
  id: number;
  /** JSON metadata object. */
  header?: Record<string, unknown>;
  /** Raw bytes. */
  body?: Uint8Array;
}

/** Bytes before the payload: u32 length, u8 type, u32 id. */
export const FRAME_PREFIX_BYTES = 9;
/** Default largest payload accepted: 64 MiB (library bytes travel in one frame). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(FRAME_TYPES));
// Stateless between calls (decode() without `stream`), so one instance serves every header.
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes one frame.
 *
 * @param frame type, id, header and body
 * @param maxFrameBytes largest payload allowed
 * @returns the bytes to write
 * @throws {PluginError} ERR_IPC when the payload exceeds `maxFrameBytes`
 * @throws {RangeError} when the type is unknown or the id is not a u32
 * @example
 * ```ts
 * encodeFrame({ type: FRAME_TYPES.SHUTDOWN, id: 0 }).length; // 9 + 4 + 2
 * ```
 */
export function encodeFrame(
  frame: FrameInit,
  maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
): Uint8Array {
  if (!KNOWN_TYPES.has(frame.type)) throw new RangeError(`Unknown frame type ${frame.type}`);
  if (!Number.isInteger(frame.id) || frame.id < 0 || frame.id > 0xffffffff) {
    throw new RangeError(`Frame id ${frame.id} is not a u32`);
  }
  const header = new TextEncoder().encode(JSON.stringify(frame.header ?? {}));
  const body = frame.body ?? new Uint8Array(0);
  const payloadLength = 4 + header.length + body.length;
  if (payloadLength > maxFrameBytes) {
    throw new PluginError(
      "ERR_IPC",
      `Cannot send frame: payload of ${payloadLength} bytes exceeds the limit of ${maxFrameBytes}`,
      { hint: "Send smaller inputs or raise maxFrameBytes" },
    );
  }
  const out = new Uint8Array(FRAME_PREFIX_BYTES + payloadLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, payloadLength, true);
  view.setUint8(4, frame.type);
  view.setUint32(5, frame.id, true);
  view.setUint32(9, header.length, true);
  out.set(header, 13);
  out.set(body, 13 + header.length);
  return out;
}

/** The fixed prefix of a frame. */
export interface FramePrefix {
  /** Payload length in bytes. */
  length: number;
  /** Frame type. */
  type: FrameType;
  /** Request id. */
  id: number;
}

/**
 * Parses and checks the 9-byte prefix of a frame.
 *
 * @param bytes at least {@link FRAME_PREFIX_BYTES} bytes
 * @param maxFrameBytes largest payload allowed
 * @returns length, type and id
 * @throws {PluginError} ERR_IPC when the length is oversized or the type unknown
 * @example
 * ```ts
 * parseFramePrefix(encodeFrame({ type: FRAME_TYPES.LOG, id: 7 })).id; // 7
 * ```
 */
export function parseFramePrefix(
  bytes: Uint8Array,
  maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
): FramePrefix {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(0, true);
  const type = view.getUint8(4);
  const id = view.getUint32(5, true);
  if (length > maxFrameBytes) {
    throw ipcError(`frame of ${length} bytes exceeds the limit of ${maxFrameBytes}`);
  }
  if (!KNOWN_TYPES.has(type)) throw ipcError(`unknown frame type ${type}`);
  if (length < 4) throw ipcError(`payload of ${length} bytes is shorter than its header length`);
  return { length, type: type as FrameType, id };
}

/**
 * Decodes a frame's payload once its prefix was parsed. The frame's body is a copy: the caller
 * may reuse `payload`'s memory as soon as this returns.
 *
 * @param prefix result of {@link parseFramePrefix}
 * @param payload exactly `prefix.length` bytes
 * @returns the frame
 * @throws {PluginError} ERR_IPC when the header length, UTF-8 or JSON is invalid
 * @example
 * ```ts
 * const bytes = encodeFrame({ type: FRAME_TYPES.LOG, id: 1, header: { level: 1 } });
 * decodePayload(parseFramePrefix(bytes), bytes.subarray(9)).header.level; // 1
 * ```
 */
export function decodePayload(prefix: FramePrefix, payload: Uint8Array): Frame {
  if (payload.length !== prefix.length) {
    throw ipcError(`payload has ${payload.length} bytes, prefix says ${prefix.length}`);
  }
  const headerLength = readHeaderLength(payload, 0, prefix.length);
  return {
    type: prefix.type,
    id: prefix.id,
    header: parseHeader(payload.subarray(4, 4 + headerLength)),
    body: copyBytes(payload.subarray(4 + headerLength)),
  };
}

/** Options for {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest payload accepted; default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxFrameBytes?: number;
}

/** Prefix plus the payload's u32 header length: what must be known before the rest is sized. */
const HEAD_BYTES = FRAME_PREFIX_BYTES + 4;

/**
 * Incremental decoder for a byte stream of frames. After it throws once it stays failed: a
 * stream with one bad frame cannot be resynchronised.
 *
 * It never keeps a reference to a pushed chunk, so a reader may push a view of one buffer it
 * reuses for every read. Frames complete in a chunk are decoded in place (only their body is
 * copied); the tail of an incomplete frame is copied into buffers the decoder owns, sized
 * exactly from the frame's lengths. Every returned body owns its `ArrayBuffer`.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
 * const bytes = encodeFrame({ type: FRAME_TYPES.LOG, id: 1 });
 * decoder.push(bytes.subarray(0, 5)); // []
 * decoder.push(bytes.subarray(5)).length; // 1
 * decoder.end(); // no partial frame left
 * ```
 */
export class FrameDecoder {
  #max: number;
  #failed: PluginError | undefined;
  // State of the one incomplete frame, all in memory this decoder owns.
  #head = new Uint8Array(HEAD_BYTES);
  #headFilled = 0;
  #prefix: FramePrefix | undefined;
  #header: Uint8Array | undefined;
  #body: Uint8Array | undefined;
  #restFilled = 0;

  /** @param options maximum frame size */
  constructor(options: FrameDecoderOptions = {}) {
    this.#max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /**
   * Feeds bytes and returns every frame they complete. The decoder copies what it keeps, so the
   * caller may overwrite `chunk` once this returns.
   *
   * @param chunk bytes read from the stream
   * @returns complete frames, in order
   * @throws {PluginError} ERR_IPC on the first malformed or oversized frame
   */
  push(chunk: Uint8Array): Frame[] {
    if (this.#failed !== undefined) throw this.#failed;
    const frames: Frame[] = [];
    try {
      let at = 0;
      while (at < chunk.length) {
        if (this.#headFilled === 0) at = this.#decodeWhole(chunk, at, frames);
        if (at < chunk.length) at = this.#retain(chunk, at, frames);
      }
    } catch (error) {
      this.#failed = error instanceof PluginError ? error : ipcError("decoder failed", error);
      throw this.#failed;
    }
    return frames;
  }

  /**
   * Declares the end of the stream.
   *
   * @throws {PluginError} ERR_IPC when the stream ended inside a frame (truncated)
   */
  end(): void {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#headFilled > 0) {
      const pending = this.#headFilled + this.#restFilled;
      this.#failed = ipcError(`stream ended inside a frame (${pending} bytes pending)`);
      throw this.#failed;
    }
  }

  /** Decodes the frames that lie whole in `chunk` from `at` on; returns where the rest starts. */
  #decodeWhole(chunk: Uint8Array, at: number, frames: Frame[]): number {
    while (chunk.length - at >= FRAME_PREFIX_BYTES) {
      const prefix = parseFramePrefix(chunk.subarray(at, at + FRAME_PREFIX_BYTES), this.#max);
      const end = at + FRAME_PREFIX_BYTES + prefix.length;
      if (end > chunk.length) break;
      frames.push(decodePayload(prefix, chunk.subarray(at + FRAME_PREFIX_BYTES, end)));
      at = end;
    }
    return at;
  }

  /**
   * Copies bytes of the incomplete frame from `chunk` into owned memory, until the chunk is used
   * up or the frame is complete (then pushed to `frames`); returns where the chunk's rest starts.
   */
  #retain(chunk: Uint8Array, at: number, frames: Frame[]): number {
    if (this.#headFilled < HEAD_BYTES) {
      const n = Math.min(HEAD_BYTES - this.#headFilled, chunk.length - at);
      this.#head.set(chunk.subarray(at, at + n), this.#headFilled);
      this.#headFilled += n;
      at += n;
      // Check the prefix as soon as it is whole: an oversized length fails before its payload.
      if (this.#prefix === undefined && this.#headFilled >= FRAME_PREFIX_BYTES) {
        this.#prefix = parseFramePrefix(this.#head, this.#max);
      }
      if (this.#headFilled < HEAD_BYTES) return at;
      const prefix = this.#prefix as FramePrefix;
      const headerLength = readHeaderLength(this.#head, FRAME_PREFIX_BYTES, prefix.length);
      this.#header = new Uint8Array(headerLength);
      this.#body = new Uint8Array(prefix.length - 4 - headerLength);
      this.#restFilled = 0;
    }
    const header = this.#header as Uint8Array;
    const body = this.#body as Uint8Array;
    if (this.#restFilled < header.length) {
      const n = Math.min(header.length - this.#restFilled, chunk.length - at);
      header.set(chunk.subarray(at, at + n), this.#restFilled);
      this.#restFilled += n;
      at += n;
    }
    if (this.#restFilled >= header.length) {
      const filled = this.#restFilled - header.length;
      const n = Math.min(body.length - filled, chunk.length - at);
      body.set(chunk.subarray(at, at + n), filled);
      this.#restFilled += n;
      at += n;
    }
    if (this.#restFilled < header.length + body.length) return at;
    const prefix = this.#prefix as FramePrefix;
    this.#headFilled = 0;
    this.#restFilled = 0;
    this.#prefix = undefined;
    this.#header = undefined;
    this.#body = undefined;
    frames.push({ type: prefix.type, id: prefix.id, header: parseHeader(header), body });
    return at;
  }
}

/**
 * A plain `Uint8Array` copy. Not `bytes.slice()`: on a Node `Buffer` (what node:child_process
 * streams emit) `slice()` returns a view, and the body would alias the caller's memory.
 */
function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

/** Reads the u32 header length at `offset` and checks it fits a payload of `payloadLength`. */
function readHeaderLength(bytes: Uint8Array, offset: number, payloadLength: number): number {
  if (payloadLength < 4 || bytes.length - offset < 4) {
    throw ipcError(`payload of ${payloadLength} bytes is shorter than its header length`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0, true);
  if (headerLength > payloadLength - 4) {
    throw ipcError(`header length ${headerLength} exceeds the payload`);
  }
  return headerLength;
}

function parseHeader(bytes: Uint8Array): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(UTF8.decode(bytes));
  } catch (cause) {
    throw ipcError("header is not UTF-8 JSON", cause);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw ipcError("header is not a JSON object");
  }
  return header as Record<string, unknown>;
}

function ipcError(state: string, cause?: unknown): PluginError {
  return new PluginError("ERR_IPC", `Cannot decode frame: ${state}`, {
    hint: "The peer broke the frame protocol; the connection is closed",
    cause,
  });
}

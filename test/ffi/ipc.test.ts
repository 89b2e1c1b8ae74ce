import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  decodePayload,
  encodeFrame,
  FRAME_TYPES,
  FrameDecoder,
  parseFramePrefix,
} from "../../ffi/ipc.ts";

function rawFrame(type: number, id: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length, true);
  view.setUint8(4, type);
  view.setUint32(5, id, true);
  out.set(payload, 9);
  return out;
}

function payloadWithHeader(header: Uint8Array, body: Uint8Array = new Uint8Array()): Uint8Array {
  const out = new Uint8Array(4 + header.length + body.length);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 4);
  out.set(body, 4 + header.length);
  return out;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe("encodeFrame() / FrameDecoder", () => {
  it("round-trips header and body, split at every byte", () => {
    const body = new Uint8Array([0, 1, 2, 255]);
    const bytes = encodeFrame({ type: FRAME_TYPES.CALL, id: 42, header: { method: "é" }, body });
    for (let cut = 0; cut <= bytes.length; cut++) {
      const decoder = new FrameDecoder();
      const frames = [
        ...decoder.push(bytes.subarray(0, cut)),
        ...decoder.push(bytes.subarray(cut)),
      ];
      assert.equal(frames.length, 1);
      assert.equal(frames[0]?.id, 42);
      assert.equal(frames[0]?.type, FRAME_TYPES.CALL);
      assert.deepEqual(frames[0]?.header, { method: "é" });
      assert.deepEqual(frames[0]?.body, body);
      decoder.end();
    }
  });

  it("decodes several frames from one chunk", () => {
    const a = encodeFrame({ type: FRAME_TYPES.LOG, id: 1, header: { level: 1 } });
    const b = encodeFrame({ type: FRAME_TYPES.RESULT, id: 2, header: { status: 0 } });
    const joined = new Uint8Array([...a, ...b]);
    assert.deepEqual(new FrameDecoder().push(joined).map((f) => f.id), [1, 2]);
  });

  it("refuses to encode a payload over the limit with ERR_IPC", () => {
    const body = new Uint8Array(100);
    assert.equal(codeOf(() => encodeFrame({ type: FRAME_TYPES.CALL, id: 1, body }, 50)), "ERR_IPC");
  });

  it("throws RangeError for an unknown type or a bad id (caller bug)", () => {
    assert.throws(() => encodeFrame({ type: 99 as 1, id: 1 }), RangeError);
    assert.throws(() => encodeFrame({ type: FRAME_TYPES.CALL, id: -1 }), RangeError);
  });
});

describe("FrameDecoder rejects malformed input with ERR_IPC", () => {
  const header = new TextEncoder().encode("{}");

  it("rejects an oversized length before buffering the payload", () => {
    const prefix = rawFrame(FRAME_TYPES.CALL, 1, new Uint8Array()).subarray(0, 9);
    new DataView(prefix.buffer, prefix.byteOffset).setUint32(0, 2048, true);
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    assert.equal(codeOf(() => decoder.push(prefix)), "ERR_IPC");
    // stays failed: a broken stream cannot be resynchronised
    const good = encodeFrame({ type: FRAME_TYPES.LOG, id: 1 });
    assert.equal(codeOf(() => decoder.push(good)), "ERR_IPC");
  });

  it("rejects an unknown frame type", () => {
    const frame = rawFrame(200, 1, payloadWithHeader(header));
    assert.equal(codeOf(() => new FrameDecoder().push(frame)), "ERR_IPC");
  });

  it("rejects a stream truncated inside a frame", () => {
    const bytes = encodeFrame({ type: FRAME_TYPES.CALL, id: 1, header: { method: "x" } });
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(bytes.subarray(0, bytes.length - 1)), []);
    assert.equal(codeOf(() => decoder.end()), "ERR_IPC");
  });

  it("rejects a truncated prefix at end of stream", () => {
    const decoder = new FrameDecoder();
    decoder.push(new Uint8Array([1, 0, 0]));
    assert.equal(codeOf(() => decoder.end()), "ERR_IPC");
  });

  it("rejects a header length larger than the payload", () => {
    const payload = payloadWithHeader(header);
    new DataView(payload.buffer).setUint32(0, 1000, true);
    const frame = rawFrame(FRAME_TYPES.CALL, 1, payload);
    assert.equal(codeOf(() => new FrameDecoder().push(frame)), "ERR_IPC");
  });

  it("rejects a payload shorter than the header length field", () => {
    const frame = rawFrame(FRAME_TYPES.CALL, 1, new Uint8Array([1, 2]));
    assert.equal(codeOf(() => new FrameDecoder().push(frame)), "ERR_IPC");
  });

  it("rejects a header that is not UTF-8", () => {
    const bad = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);
    const frame = rawFrame(FRAME_TYPES.CALL, 1, payloadWithHeader(bad));
    assert.equal(codeOf(() => new FrameDecoder().push(frame)), "ERR_IPC");
  });

  it("rejects a header that is not JSON", () => {
    const bad = new TextEncoder().encode("{method:");
    const frame = rawFrame(FRAME_TYPES.CALL, 1, payloadWithHeader(bad));
    assert.equal(codeOf(() => new FrameDecoder().push(frame)), "ERR_IPC");
  });

  it("rejects a header that is JSON but not an object", () => {
    for (const text of ["null", "[1]", "3", '"x"']) {
      const frame = rawFrame(
        FRAME_TYPES.CALL,
        1,
        payloadWithHeader(new TextEncoder().encode(text)),
      );
      assert.equal(codeOf(() => new FrameDecoder().push(frame)), "ERR_IPC", text);
    }
  });

  it("checks the payload length in decodePayload()", () => {
    const bytes = encodeFrame({ type: FRAME_TYPES.LOG, id: 3 });
    const prefix = parseFramePrefix(bytes);
    assert.equal(
      codeOf(() => decodePayload(prefix, bytes.subarray(9, bytes.length - 1))),
      "ERR_IPC",
    );
  });
});

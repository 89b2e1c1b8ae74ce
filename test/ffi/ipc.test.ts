import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  decodePayload,
  encodeFrame,
  FRAME_TYPES,
  FrameDecoder,
  parseFramePrefix,
} from "../../lib/protocol/frames.ts";
import type { Frame } from "../../lib/protocol/frames.ts";

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

/** Deterministic xorshift32: the same "random" splits on every run and runtime. */
function random(seed: number): (below: number) => number {
  let x = seed >>> 0 || 1;
  return (below) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % below;
  };
}

function noise(length: number, seed: number): Uint8Array {
  const next = random(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = next(256);
  return out;
}

interface Sample {
  id: number;
  body: Uint8Array;
  bytes: Uint8Array;
}

function sample(id: number, bodyLength: number, maxFrameBytes?: number): Sample {
  const body = noise(bodyLength, id + 1);
  const frame = { type: FRAME_TYPES.CALL, id, header: { method: `m${id}` }, body };
  return { id, body, bytes: encodeFrame(frame, maxFrameBytes) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function assertFrames(frames: Frame[], expected: Sample[]): void {
  assert.equal(frames.length, expected.length);
  frames.forEach((frame, i) => {
    const want = expected[i] as Sample;
    assert.equal(frame.id, want.id);
    assert.equal(frame.type, FRAME_TYPES.CALL);
    assert.deepEqual(frame.header, { method: `m${want.id}` });
    // byte-wise equality, with the frame's id in the message when it fails
    assert.equal(frame.body.length, want.body.length, `frame ${want.id} body length`);
    assert.ok(frame.body.every((b, j) => b === want.body[j]), `frame ${want.id} body bytes`);
  });
}

/** Feeds `stream` in pieces whose lengths `nextLength` picks; returns every decoded frame. */
function feed(stream: Uint8Array, nextLength: () => number, decoder = new FrameDecoder()): Frame[] {
  const frames: Frame[] = [];
  for (let at = 0; at < stream.length;) {
    const n = Math.min(Math.max(1, nextLength()), stream.length - at);
    frames.push(...decoder.push(stream.subarray(at, at + n)));
    at += n;
  }
  decoder.end();
  return frames;
}

describe("FrameDecoder on split input", () => {
  it("decodes bodies of 0 to 40 bytes split at every pair of boundaries", () => {
    for (let size = 0; size <= 40; size++) {
      const s = sample(size, size);
      for (let i = 0; i <= s.bytes.length; i++) {
        for (let j = i; j <= s.bytes.length; j++) {
          const decoder = new FrameDecoder();
          const frames = [
            ...decoder.push(s.bytes.subarray(0, i)),
            ...decoder.push(s.bytes.subarray(i, j)),
            ...decoder.push(s.bytes.subarray(j)),
          ];
          assertFrames(frames, [s]);
          decoder.end();
        }
      }
    }
  });

  it("accepts a payload of exactly maxFrameBytes at every split and rejects one byte more", () => {
    const max = 256;
    const headerBytes = 4 + JSON.stringify({ method: "m7" }).length;
    const s = sample(7, max - headerBytes, max);
    assert.equal(s.bytes.length, 9 + max);
    for (let cut = 0; cut <= s.bytes.length; cut++) {
      const decoder = new FrameDecoder({ maxFrameBytes: max });
      const frames = [
        ...decoder.push(s.bytes.subarray(0, cut)),
        ...decoder.push(s.bytes.subarray(cut)),
      ];
      assertFrames(frames, [s]);
      decoder.end();
    }
    const over = sample(7, max - headerBytes + 1, max + 1);
    assert.equal(codeOf(() => sample(7, max - headerBytes + 1, max)), "ERR_IPC");
    const decoder = new FrameDecoder({ maxFrameBytes: max });
    // the prefix alone is enough to refuse it
    assert.equal(codeOf(() => decoder.push(over.bytes.subarray(0, 9))), "ERR_IPC");
  });

  it("decodes frames of 64 KiB, 200 KiB and 1 MiB split at random points", () => {
    for (const [i, size] of [64 * 1024, 200 * 1024 + 3, 1024 * 1024 + 7].entries()) {
      const s = sample(i, size);
      const next = random(size);
      for (const spread of [7, 4096, 300_000]) {
        assertFrames(feed(s.bytes, () => next(spread)), [s]);
      }
    }
  });

  it("decodes interleaved frames of different sizes in order", () => {
    const sizes = [1, 70_000, 0, 3, 300_000, 9, 65_536, 2, 150_000, 1, 1, 4096];
    const samples = sizes.map((size, id) => sample(id, size));
    const stream = concat(samples.map((s) => s.bytes));
    for (const spread of [1, 13, 9000, 200_000, stream.length]) {
      const next = random(spread);
      const frames = feed(stream, () => (spread === 1 ? 1 : next(spread) + 1));
      assertFrames(frames, samples);
    }
  });

  for (
    const [kind, alloc] of [
      ["Uint8Array", (n: number) => new Uint8Array(n)],
      // node:child_process emits Buffers, whose slice() is a view, not a copy
      ["Buffer", (n: number) => Buffer.alloc(n)],
    ] as const
  ) {
    it(`decodes intact frames when every push is a view of one reused ${kind}`, () => {
      reuseOneBuffer(alloc);
    });
  }
});

/** The child's read loop: read(2) into one buffer, push a view of it, read into it again. */
function reuseOneBuffer(alloc: (n: number) => Uint8Array): void {
  // A decoder that kept a view, or returned a body aliasing it, would see the next read's bytes.
  const sizes = [5, 100_000, 1, 0, 300_000, 7, 70_000, 2, 20, 1_000_000, 3];
  const samples = sizes.map((size, id) => sample(id, size));
  const stream = concat(samples.map((s) => s.bytes));
  for (const capacity of [1, 9, 4096, 65_536, 262_144, stream.length]) {
    const buf = alloc(capacity);
    const next = random(capacity);
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    for (let at = 0; at < stream.length;) {
      const n = Math.min(1 + next(capacity), stream.length - at);
      buf.set(stream.subarray(at, at + n));
      frames.push(...decoder.push(buf.subarray(0, n)));
      buf.fill(0xa5); // the "next read" scribbles over what was pushed
      at += n;
    }
    decoder.end();
    assertFrames(frames, samples);
    for (const frame of frames) {
      assert.equal(Object.getPrototypeOf(frame.body), Uint8Array.prototype);
      assert.notEqual(frame.body.buffer, buf.buffer);
    }
  }
}

describe("FrameDecoder rejects malformed split input with ERR_IPC", () => {
  it("rejects a header length larger than the payload fed byte by byte", () => {
    const payload = payloadWithHeader(new TextEncoder().encode("{}"), new Uint8Array(10));
    new DataView(payload.buffer).setUint32(0, 13, true);
    const frame = rawFrame(FRAME_TYPES.CALL, 1, payload);
    const decoder = new FrameDecoder();
    assert.equal(
      codeOf(() => {
        for (let i = 0; i < frame.length; i++) decoder.push(frame.subarray(i, i + 1));
      }),
      "ERR_IPC",
    );
    assert.equal(codeOf(() => decoder.end()), "ERR_IPC");
  });

  it("rejects a header that is not JSON when the frame spans pushes", () => {
    const bad = new TextEncoder().encode("{method:");
    const frame = rawFrame(FRAME_TYPES.CALL, 1, payloadWithHeader(bad, new Uint8Array(1000)));
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(frame.subarray(0, 20)), []);
    assert.equal(codeOf(() => decoder.push(frame.subarray(20))), "ERR_IPC");
  });

  it("rejects a stream that ends inside a body split across pushes", () => {
    const s = sample(1, 10_000);
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(s.bytes.subarray(0, 5000)), []);
    assert.deepEqual(decoder.push(s.bytes.subarray(5000, s.bytes.length - 1)), []);
    assert.equal(codeOf(() => decoder.end()), "ERR_IPC");
  });
});

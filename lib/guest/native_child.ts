/**
 * Entry point of a native plugin's child process (not imported by anything: the host spawns it
 * with the runtime that runs the host, see `sandbox/runtime_cmd.ts`).
 *
 * Protocol (frames from `lib/protocol/frames.ts`): fd 0 carries host -> child frames, fd 1 child -> host. At start
 * the child moves both to private close-on-exec fds, points fd 0 at /dev/null and fd 1 at stderr,
 * so a plugin's printf() cannot corrupt the channel. It then reads one LOAD frame, applies
 * Landlock, writes the library bytes into a sealed memfd (no path the plugin controls is ever
 * opened), loads `/proc/self/fd/N` with koffi, checks `bh_abi_version()`, calls `bh_init()` and
 * answers READY. From then on it serves CALL frames one at a time. Everything is synchronous on
 * the main thread: host API callbacks block in read(2) until the host answers.
 *
 * Exit codes: 0 normal, 2 start-up failure reported with a FAIL frame, 3 protocol error.
 * @module
 */
import type * as Koffi from "koffi";
import {
  decodePayload,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FRAME_PREFIX_BYTES,
  FRAME_TYPES,
  parseFramePrefix,
} from "../protocol/frames.ts";
import type { Frame, FrameInit } from "../protocol/frames.ts";
import { applyLandlock } from "../../sandbox/landlock.ts";
import type { LandlockPolicy, LandlockResult } from "../../sandbox/landlock.ts";
import { installSeccomp } from "../../sandbox/seccomp.ts";
import {
  bindLibc,
  EINTR,
  moveIpcChannel,
  seccompSyscalls,
  writeAll as writeAllTo,
} from "../../sandbox/libc.ts";

const BH_ABI_VERSION = 1;
const BH_OK = 0;
const BH_ERR_TOO_SMALL = -5;
const BH_ERR_IO = -7;
const F_ADD_SEALS = 1033;

type KoffiModule = typeof Koffi;
type NativeFn = ReturnType<Koffi.LibraryHandle["func"]>;

interface LoadHeader {
  name: string;
  maxFrameBytes: number;
  landlock: LandlockPolicy | null;
  closeFds: number[];
}

const koffi = ((await import("koffi")) as unknown as { default: KoffiModule }).default;
const c = bindLibc(koffi);

/** Exits at once, skipping the runtime's teardown (which may touch what seccomp now denies). */
function exit(status: number): never {
  c.exit(status);
  return process.exit(status);
}

let ipcIn = 0;
let ipcOut = 1;
let maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
const queued: Frame[] = [];
let nextId = 1;

function diag(text: string): void {
  const bytes = new TextEncoder().encode(`[bulkhead child] ${text}\n`);
  c.write(2, bytes, bytes.length);
}

function writeAll(bytes: Uint8Array): void {
  const errno = writeAllTo(c, () => koffi.errno(), ipcOut, bytes);
  if (errno !== 0) throw new Error(`write failed: errno ${errno}`);
}

// Buffered reader: one read(2) can carry many pipelined frames. Every read lands in inBuf, so
// readExact() hands out views that the next readExact() overwrites: readFrame() parses each view
// at once, and decodePayload() copies the body out, so no frame aliases inBuf.
const IN_BUF_BYTES = 64 * 1024;
let inBuf = new Uint8Array(IN_BUF_BYTES);
let inStart = 0;
let inEnd = 0;

/** The next `n` bytes as a view of inBuf, valid until the next call; null at EOF. */
function readExact(n: number): Uint8Array | null {
  while (inEnd - inStart < n) {
    if (inStart > 0) {
      inBuf.copyWithin(0, inStart, inEnd);
      inEnd -= inStart;
      inStart = 0;
    }
    if (inBuf.length < n) {
      const bigger = new Uint8Array(n);
      bigger.set(inBuf.subarray(0, inEnd));
      inBuf = bigger;
    }
    const got = Number(c.read(ipcIn, inBuf.subarray(inEnd), inBuf.length - inEnd));
    if (got === 0) return null; // EOF: the host is gone
    if (got < 0) {
      if (koffi.errno() === EINTR) continue;
      throw new Error(`read failed: errno ${koffi.errno()}`);
    }
    inEnd += got;
  }
  const out = inBuf.subarray(inStart, inStart + n);
  inStart += n;
  return out;
}

function readFrame(): Frame | null {
  const prefixBytes = readExact(FRAME_PREFIX_BYTES);
  if (prefixBytes === null) return null;
  const prefix = parseFramePrefix(prefixBytes, maxFrameBytes);
  const payload = readExact(prefix.length);
  if (payload === null) return null;
  const frame = decodePayload(prefix, payload);
  // A large frame (the LOAD frame carries the whole library) grew inBuf: give that memory back
  // once nothing is buffered instead of holding it for the life of the child.
  if (inStart === inEnd && inBuf.length > IN_BUF_BYTES) {
    inBuf = new Uint8Array(IN_BUF_BYTES);
    inStart = 0;
    inEnd = 0;
  }
  return frame;
}

function send(frame: FrameInit): void {
  writeAll(encodeFrame(frame, maxFrameBytes));
}

/** Sends a request and blocks until the reply with the same id; queues frames in between. */
function roundTrip(frame: FrameInit): Frame | null {
  send(frame);
  for (;;) {
    const reply = readFrame();
    if (reply === null) return null;
    if (reply.type === FRAME_TYPES.CONTEXT_REPLY && reply.id === frame.id) return reply;
    queued.push(reply);
  }
}

function landlock(policy: LandlockPolicy): LandlockResult {
  return applyLandlock({
    landlockCreateRuleset: (attr, size, flags) =>
      Number(c.syscall(444, "void*", attr, "size_t", size, "uint32_t", flags)),
    landlockAddRule: (fd, type, attr) =>
      Number(c.syscall(445, "int", fd, "int", type, "void*", attr, "uint32_t", 0)),
    landlockRestrictSelf: (fd) => Number(c.syscall(446, "int", fd, "uint32_t", 0)),
    openPath: (path) => c.open(path, 0o10000000 | 0o2000000, "int", 0),
    close: (fd) => c.close(fd),
    setNoNewPrivs: () => c.prctl(38, "unsigned long", 1, "unsigned long", 0, "unsigned long", 0),
    errno: () => koffi.errno(),
  }, policy);
}

function loadLibrary(name: string, bytes: Uint8Array): Koffi.LibraryHandle {
  if (process.platform !== "linux") throw new Error("memfd loading needs Linux");
  // memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING) then seal: the bytes the host verified
  // are the bytes dlopen maps, and nobody can change them afterwards.
  const fd = c.memfdCreate(`bulkhead:${name}`, 3) as number;
  if (fd < 0) throw new Error(`memfd_create failed: errno ${koffi.errno()}`);
  writeFd(fd, bytes);
  if (c.fcntl(fd, F_ADD_SEALS, "int", 1 | 2 | 4 | 8) < 0) {
    throw new Error(`sealing the memfd failed: errno ${koffi.errno()}`);
  }
  return koffi.load(`/proc/self/fd/${fd}`);
}

function writeFd(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) {
    const n = Number(c.write(fd, bytes.subarray(off), bytes.length - off));
    if (n < 0) throw new Error(`write to memfd failed: errno ${koffi.errno()}`);
    off += n;
  }
}

function fail(code: string, message: string): never {
  send({ type: FRAME_TYPES.FAIL, id: 0, header: { code, message } });
  exit(2);
}

function main(): void {
  ({ ipcIn, ipcOut } = moveIpcChannel(c, () => koffi.errno()));
  const load = readFrame();
  if (load === null) process.exit(0);
  if (load.type !== FRAME_TYPES.LOAD) throw new Error(`expected LOAD, got type ${load.type}`);
  const header = load.header as unknown as LoadHeader;
  maxFrameBytes = header.maxFrameBytes;
  for (const fd of header.closeFds) if (fd > 2 && fd !== ipcIn && fd !== ipcOut) c.close(fd);
  let applied: LandlockResult | null = null;
  let seccomp = false;
  if (header.landlock !== null) {
    try {
      applied = landlock(header.landlock);
      c.prctl(38, "unsigned long", 1, "unsigned long", 0, "unsigned long", 0); // no_new_privs
      seccomp = installSeccomp(seccompSyscalls(c, koffi), process.arch);
    } catch (error) {
      fail("ERR_SANDBOX", `the kernel refused a restriction: ${String(error)}`);
    }
  }
  let lib: Koffi.LibraryHandle;
  try {
    lib = loadLibrary(header.name, load.body);
  } catch (error) {
    fail("ERR_NATIVE_LOAD", `the library does not load: ${String(error)}`);
  }
  let abi: number;
  try {
    abi = lib.func("uint32_t bh_abi_version(void)")() as number;
  } catch (error) {
    fail("ERR_ABI", `the library does not export bh_abi_version(): ${String(error)}`);
  }
  if (abi !== BH_ABI_VERSION) {
    fail("ERR_ABI", `the library has ABI version ${abi}, the host speaks ${BH_ABI_VERSION}`);
  }
  let bh: {
    init: NativeFn;
    call: NativeFn;
    free: NativeFn;
    shutdown: NativeFn;
  };
  try {
    bh = {
      init: lib.func("int bh_init(void* api)"),
      call: lib.func(
        "int bh_call(const char* method, const void* input, size_t len, _Out_ void** out, _Out_ size_t* outLen)",
      ),
      free: lib.func("void bh_free(void* p)"),
      shutdown: lib.func("void bh_shutdown(void)"),
    };
  } catch (error) {
    fail("ERR_ABI", `the library lacks a bh_* export: ${String(error)}`);
  }
  const api = makeHostApi();
  const status = bh.init(api) as number;
  if (status !== BH_OK) fail("ERR_PLUGIN_INIT", `bh_init() returned ${status}`);
  send({
    type: FRAME_TYPES.READY,
    id: 0,
    header: { pid: process.pid, landlock: applied, seccomp },
  });
  for (;;) {
    const frame = queued.shift() ?? readFrame();
    if (frame === null) exit(0);
    if (frame.type === FRAME_TYPES.SHUTDOWN) {
      bh.shutdown();
      exit(0);
    }
    if (frame.type !== FRAME_TYPES.CALL) {
      diag(`unexpected frame type ${frame.type}`);
      exit(3);
    }
    const out: [bigint | null] = [null];
    const outLen: [number | bigint] = [0];
    const method = String(frame.header.method);
    const input = frame.body.length > 0 ? frame.body : null;
    const rc = bh.call(method, input, frame.body.length, out, outLen) as number;
    let body = new Uint8Array(0);
    const ptr = out[0];
    if (ptr !== null && ptr !== 0n) {
      const len = Number(outLen[0]);
      body = len > 0 ? new Uint8Array(koffi.view(ptr, len)).slice() : body;
      bh.free(ptr);
    }
    send({ type: FRAME_TYPES.RESULT, id: frame.id, header: { status: rc }, body });
  }
}

function makeHostApi(): unknown {
  const getProto = koffi.proto(
    "int bh_context_get(const char* key, void* buf, size_t cap, void* len)",
  );
  const setProto = koffi.proto("int bh_context_set(const char* key, const void* v, size_t len)");
  const logProto = koffi.proto("void bh_log(int level, const char* msg)");
  const table = koffi.struct("bh_host_api", {
    abi_version: "uint32_t",
    context_get: koffi.pointer(getProto),
    context_set: koffi.pointer(setProto),
    log: koffi.pointer(logProto),
  });
  const get = koffi.register(
    (key: string, buf: bigint | null, cap: number | bigint, lenPtr: bigint | null): number => {
      const reply = roundTrip({ type: FRAME_TYPES.CONTEXT_GET, id: nextId++, header: { key } });
      if (reply === null) return BH_ERR_IO;
      const status = Number(reply.header.status);
      if (status !== BH_OK) return status;
      if (lenPtr !== null) koffi.encode(lenPtr, "size_t", reply.body.length);
      if (reply.body.length > Number(cap)) return BH_ERR_TOO_SMALL;
      if (reply.body.length > 0 && buf !== null) {
        new Uint8Array(koffi.view(buf, reply.body.length)).set(reply.body);
      }
      return BH_OK;
    },
    koffi.pointer(getProto),
  );
  const set = koffi.register(
    (key: string, value: bigint | null, len: number | bigint): number => {
      const n = Number(len);
      const body = n > 0 && value !== null
        ? new Uint8Array(koffi.view(value, n)).slice()
        : new Uint8Array(0);
      const reply = roundTrip({
        type: FRAME_TYPES.CONTEXT_SET,
        id: nextId++,
        header: { key },
        body,
      });
      if (reply === null) return BH_ERR_IO;
      return Number(reply.header.status);
    },
    koffi.pointer(setProto),
  );
  const log = koffi.register((level: number, message: string): void => {
    send({ type: FRAME_TYPES.LOG, id: 0, header: { level, message } });
  }, koffi.pointer(logProto));
  const mem = koffi.alloc(table, 1);
  koffi.encode(mem, table, {
    abi_version: BH_ABI_VERSION,
    context_get: get,
    context_set: set,
    log,
  });
  return mem;
}

try {
  main();
} catch (error) {
  diag(error instanceof Error ? (error.stack ?? error.message) : String(error));
  exit(3);
}

/**
 * Stage 2 of a process-tier JS plugin's child: serves the worker protocol of
 * `lib/guest/serve.ts` over the frames of `lib/protocol/frames.ts`. Started (through
 * `process_stage1.ts`, which already applied Landlock and the seccomp allow-list to the whole
 * process) by the host's launcher; imported by nothing.
 *
 * Start-up, before any plugin code runs: move the channel (fd 0 in, fd 1 out) to private
 * close-on-exec fds, point fd 0 at /dev/null and fd 1 at stderr (a plugin's console.log cannot
 * corrupt the channel) and wait for LOAD; then drop the runtime's own environment variables and
 * stack the filter that denies execve (no subprocess) on the default-deny allow-list stage 1
 * installed before this runtime started (`sandbox/seccomp.ts`), on every thread.
 *
 * Frames (`lib/protocol/frames.ts` types, bodies are `node:v8` serialized; host and child run the same runtime):
 * - host -> child LOAD `{ name, version, entryUrl, maxFrameBytes, dropEnv }`
 * - host -> child CALL `{}` body `[kind, id, name, payload]` (a `Request` of protocol.ts)
 * - child -> host RESULT `{}` body `[id, ok, value]` (a `Reply`; id 0 is the load reply)
 * - child -> host CONTEXT_GET `{}` body = one Comlink message for the host's context API;
 *   host -> child CONTEXT_REPLY `{}` body = one Comlink message back (any context operation,
 *   not only get: the host's guarded endpoint checks which)
 * - host -> child SHUTDOWN: exit at once.
 * - child -> host READY `{ pid, seccomp, landlock }` right after LOAD was read (before the
 *   import), FAIL `{ code, message }` when the sandbox could not be completed.
 *
 * Exit codes: 0 on SHUTDOWN or EOF, 2 after FAIL, 3 on a protocol error.
 * @module
 */
import type * as Koffi from "koffi";
import { deserialize, serialize } from "node:v8";
import { encodeFrame, FRAME_TYPES, FrameDecoder } from "../protocol/frames.ts";
import type { FrameInit } from "../protocol/frames.ts";
import { installExecDeny } from "../../sandbox/seccomp.ts";
import { bindLibc, EINTR, moveIpcChannel, seccompSyscalls, writeAll } from "../../sandbox/libc.ts";
import { servePlugin } from "./serve.ts";
import { answerOs } from "./platform_answers.ts";
import type { PortLike } from "./serve.ts";

interface LoadHeader {
  name: string;
  version: string;
  entryUrl: string;
  maxFrameBytes: number;
  dropEnv: string[];
}

type Listener = (event: MessageEvent) => void;

const koffi = ((await import("koffi")) as unknown as { default: typeof Koffi }).default;
const c = bindLibc(koffi);

let ipcIn = 0;
let ipcOut = 1;
let maxFrameBytes = 64 * 1024 * 1024;

/** Exits at once, skipping the runtime's teardown (which may touch what seccomp now denies). */
function exit(status: number): never {
  c.exit(status);
  return process.exit(status);
}

function diag(text: string): void {
  const bytes = new TextEncoder().encode(`[bulkhead js child] ${text}\n`);
  c.write(2, bytes, bytes.length);
}

function send(frame: FrameInit): void {
  const bytes = encodeFrame(frame, maxFrameBytes);
  if (writeAll(c, () => koffi.errno(), ipcOut, bytes) !== 0) exit(0); // the host is gone
}

/** A MessagePort look-alike whose messages travel as frames of one type. */
function framePort(type: typeof FRAME_TYPES.RESULT | typeof FRAME_TYPES.CONTEXT_GET) {
  const listeners = new Set<Listener>();
  return {
    port: {
      postMessage(message: unknown): void {
        // serialize() throws for functions and symbols: serve.ts turns that into its
        // "not structured-cloneable" error, as postMessage would.
        send({ type, id: 0, body: serialize(message) });
      },
      addEventListener(_type: string, listener: Listener): void {
        listeners.add(listener);
      },
      removeEventListener(_type: string, listener: Listener): void {
        listeners.delete(listener);
      },
      start(): void {},
    },
    deliver(data: unknown): void {
      for (const l of listeners) l({ data } as MessageEvent);
    },
  };
}

function main(): void {
  ({ ipcIn, ipcOut } = moveIpcChannel(c, () => koffi.errno()));
  // process.exit() (and an uncaught error) must end the process now: Node's teardown otherwise
  // waits for the koffi read blocked in its worker thread and the child never exits.
  process.on("exit", (code) => exit(typeof code === "number" ? code : 1));
  const call = framePort(FRAME_TYPES.RESULT);
  const ctx = framePort(FRAME_TYPES.CONTEXT_GET);
  const decoder = new FrameDecoder({ maxFrameBytes });
  // Every read lands in this one buffer. That is safe only because the decoder copies whatever it
  // keeps of a frame that is still incomplete, and every frame body it returns owns its memory.
  const buf = new Uint8Array(256 * 1024);
  let loaded = false;
  const onFrame = (frame: ReturnType<FrameDecoder["push"]>[number]): void => {
    if (!loaded) {
      if (frame.type !== FRAME_TYPES.LOAD) throw new Error(`expected LOAD, got ${frame.type}`);
      loaded = true;
      void load(frame.header as unknown as LoadHeader, call.port, ctx.port);
      return;
    }
    switch (frame.type) {
      case FRAME_TYPES.CALL:
        return call.deliver(deserialize(frame.body));
      case FRAME_TYPES.CONTEXT_REPLY:
        return ctx.deliver(deserialize(frame.body));
      case FRAME_TYPES.SHUTDOWN:
        return exit(0);
      default:
        throw new Error(`unexpected frame type ${frame.type}`);
    }
  };
  // Reads run on a koffi worker thread: like every thread of this process it runs inside stage
  // 1's Landlock domain and seccomp filter, and TSYNC puts the exec filter on it too.
  const pump = (): void => {
    c.read.async(ipcIn, buf, buf.length, (error: unknown, n: number | bigint) => {
      const got = Number(n);
      if (error !== null && error !== undefined) return fatal(error);
      if (got === 0) return exit(0); // EOF: the host is gone
      if (got < 0) {
        if (koffi.errno() === EINTR) return pump();
        return fatal(new Error(`read failed: errno ${koffi.errno()}`));
      }
      try {
        for (const frame of decoder.push(buf.subarray(0, got))) onFrame(frame);
      } catch (e) {
        return fatal(e);
      }
      pump();
    });
  };
  pump();
}

async function load(header: LoadHeader, call: PortLike, ctx: PortLike): Promise<void> {
  maxFrameBytes = header.maxFrameBytes;
  // Stage 1 appends `{ landlock, seccomp }` as the last argument.
  let stage1: { landlock?: unknown; seccomp?: unknown } = {};
  try {
    stage1 = JSON.parse(process.argv.at(-1) ?? "{}") ?? {};
  } catch {
    stage1 = {};
  }
  const landlock = stage1.landlock ?? null;
  for (const name of header.dropEnv) delete process.env[name];
  // The same node:os answers as the worker tier (this child's own values would differ by tier).
  answerOs((id) => process.getBuiltinModule(id) as Record<PropertyKey, unknown>, (t, k, v) => {
    Object.defineProperty(t, k, {
      value: v,
      writable: false,
      enumerable: true,
      configurable: false,
    });
  });
  let seccomp = false;
  try {
    // Without stage 1's filter (an unsupported architecture) there is nothing to stack on.
    seccomp = stage1.seccomp === true && installExecDeny(seccompSyscalls(c, koffi), process.arch);
  } catch (error) {
    send({
      type: FRAME_TYPES.FAIL,
      id: 0,
      header: { code: "ERR_SANDBOX", message: `the kernel refused seccomp: ${String(error)}` },
    });
    exit(2);
  }
  send({ type: FRAME_TYPES.READY, id: 0, header: { pid: process.pid, seccomp, landlock } });
  await servePlugin(
    { name: header.name, version: header.version, entryUrl: header.entryUrl, importRoots: [] },
    { call, ctx },
  );
}

function fatal(error: unknown): never {
  diag(error instanceof Error ? (error.stack ?? error.message) : String(error));
  exit(3);
}

try {
  main();
} catch (error) {
  fatal(error);
}

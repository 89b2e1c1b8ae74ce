/**
 * Guest-side lockdown, run by a plugin thread's entry before any plugin code. A worker thread
 * shares its process with the host, and the permission models of Node and Deno check opening
 * paths, not the process state a thread can reach: signals, stdin, file descriptors the host
 * holds, the process title, V8 flags. This module removes that ambient authority at the root
 * (the module objects, prototypes and namespace properties every route ends at): the parts
 * both runtimes share and Deno's own (`lockdown`, for both Deno entries); the Node entry adds
 * Node's with the primitives exported here. `AUDIT.md` in this folder lists every built-in
 * module and global and what is done about each.
 *
 * Replacements are non-writable and non-configurable and the originals live only in closures
 * here. Checks call intrinsics captured when this module loads, so a plugin that later patches
 * `Set.prototype.has` or `Reflect.apply` cannot bend them. A step that cannot be applied throws,
 * so the plugin fails to start instead of running with less protection than reported.
 * @module
 */

import { PluginError } from "../errors.ts";
import { answerOs } from "../guest/platform_answers.ts";
import { isOsAnswer, lockEnv, pinOsAnswers } from "./_platform.ts";

/** A plain object whose properties are being locked. */
export type Obj = Record<PropertyKey, unknown>;
/** Any function. */
export type Fn = (...args: unknown[]) => unknown;

const { apply, construct, defineProperty, getOwnPropertyDescriptor, getPrototypeOf } = Reflect;
const freeze = Object.freeze;
const toString = String;
const ownSymbols = Object.getOwnPropertySymbols;
const symbolDescription = Object.getOwnPropertyDescriptor(Symbol.prototype, "description")?.get;

/** What the lockdown needs to know. */
export interface LockdownOptions {
  /** Plugin name, for error messages. */
  plugin: string;
  /** Deno: the declared environment variables (`permissions.env`), the only ones listed. */
  env?: readonly string[] | undefined;
}

/** What every step needs: the plugin name, `process`, and the built-in modules. */
export interface LockdownContext {
  /** Plugin name, for error messages. */
  plugin: string;
  /** The thread's `process`. */
  proc: Obj;
  /** `process.getBuiltinModule`, captured before the plugin can replace it. */
  builtin(id: string): Obj;
}

type Ctx = LockdownContext;

/** @returns the context the steps below take */
export function createContext(options: LockdownOptions): LockdownContext {
  const proc = (globalThis as Obj).process as Obj;
  const getBuiltin = proc.getBuiltinModule as Fn;
  return {
    plugin: options.plugin,
    proc,
    builtin: (id) => apply(getBuiltin, proc, [id]) as Obj,
  };
}

/** @returns the ERR_PERMISSION_DENIED error for `what` (completing "Cannot ...") */
export function denial(ctx: Ctx, what: string): PluginError {
  return new PluginError("ERR_PERMISSION_DENIED", `Cannot ${what}: not permitted for plugins`, {
    hint: "Plugins share the host's process: use ctx APIs, or run the plugin in the process tier",
    plugin: ctx.plugin,
  });
}

/** @returns a function named `name` (callable and constructible) that throws {@link denial} */
export function denier(ctx: Ctx, what: string, name: string): Fn {
  const fn = function () {
    throw denial(ctx, what);
  };
  defineProperty(fn, "name", { value: name });
  return fn;
}

/** @returns the own symbol key of `target` described as `description` (read without lookups) */
export function symbolNamed(target: object, description: string): symbol | undefined {
  const symbols = ownSymbols(target);
  for (let i = 0; i < symbols.length; i++) {
    const s = symbols[i] as symbol;
    if (symbolDescription && apply(symbolDescription, s, []) === description) return s;
  }
  return undefined;
}

/** Replaces `target[key]` for good, keeping its enumerability; throws if it cannot. */
export function pin(target: object, key: PropertyKey, value: unknown): void {
  const old = getOwnPropertyDescriptor(target, key);
  const ok = defineProperty(target, key, {
    value,
    writable: false,
    enumerable: old?.enumerable ?? false,
    configurable: false,
  });
  if (!ok) {
    throw new TypeError(`Cannot lock down "${String(key)}": the property is not configurable`);
  }
}

/** Pins a {@link denier} over each of `keys` that `target` (if any) has. */
export function deny(
  ctx: Ctx,
  target: object | undefined,
  keys: readonly string[],
  what: string,
): void {
  if (target === undefined) return;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    // An answer from platform_answers.ts replaced the function already (Node's os list).
    if (key in target && !isOsAnswer((target as Obj)[key])) {
      pin(target, key, denier(ctx, what, key));
    }
  }
}

/**
 * Wraps `fs[key]` so `check(args)` runs first; the original is kept in the closure. A refusal
 * is thrown by `*Sync` functions and passed to the callback (on the next tick) by the others,
 * the way `fs` reports errors: a stream whose read throws would never settle.
 */
export function guardFs(
  ctx: Ctx,
  fs: Obj,
  key: string,
  check: (args: IArguments) => PluginError | undefined,
): void {
  const original = fs[key];
  if (typeof original !== "function") return;
  const nextTick = ctx.proc.nextTick as Fn;
  const sync = key.endsWith("Sync");
  const wrapped = function (this: unknown) {
    const error = check(arguments);
    if (error === undefined) return apply(original as Fn, this, arguments);
    const callback = arguments[arguments.length - 1];
    if (sync || typeof callback !== "function") throw error;
    apply(nextTick, ctx.proc, [callback, error]);
  };
  defineProperty(wrapped, "name", { value: key });
  pin(fs, key, wrapped);
}

/**
 * Species and constructor lookups let code observe values inside the runtime's own async code
 * (a poisoned `Promise[Symbol.species]` receives what an internal `then` resolves, such as a
 * native file handle inside `fs.promises`). Pinning them keeps those values internal. Not done
 * for `Array`: redefining its species makes V8 drop the array fast paths (map/filter/slice ran
 * 4-5x slower in the plugin thread).
 */
function pinIntrinsics(): void {
  const species = getOwnPropertyDescriptor(Promise, Symbol.species);
  if (species?.configurable) {
    defineProperty(Promise, Symbol.species, { ...species, configurable: false });
  }
  pin(Promise.prototype, "constructor", Promise);
}

/** Functions whose first argument is a file descriptor (`close` is handled with `open`). */
const FD_FIRST = [
  "fchmod",
  "fchmodSync",
  "fchown",
  "fchownSync",
  "fdatasync",
  "fdatasyncSync",
  "fstat",
  "fstatSync",
  "fsync",
  "fsyncSync",
  "ftruncate",
  "ftruncateSync",
  "futimes",
  "futimesSync",
  "read",
  "readSync",
  "readv",
  "readvSync",
  "write",
  "writeSync",
  "writev",
  "writevSync",
] as const;
/** Functions whose first argument is a path or a file descriptor. */
const PATH_OR_FD = [
  "appendFile",
  "appendFileSync",
  "readFile",
  "readFileSync",
  "truncate",
  "truncateSync",
  "writeFile",
  "writeFileSync",
] as const;

/**
 * Makes every `node:fs` function that takes a numeric descriptor refuse the ones `allowed`
 * rejects. Streams, `Utf8Stream` and `truncate` reach descriptors through these same properties.
 */
export function guardFds(ctx: Ctx, fs: Obj, allowed: (fd: number) => boolean): void {
  const check = (args: IArguments) => {
    const fd = args[0];
    return typeof fd === "number" && !allowed(fd)
      ? denial(ctx, `use file descriptor ${fd}`)
      : undefined;
  };
  for (let i = 0; i < FD_FIRST.length; i++) guardFs(ctx, fs, FD_FIRST[i] as string, check);
  for (let i = 0; i < PATH_OR_FD.length; i++) guardFs(ctx, fs, PATH_OR_FD[i] as string, check);
}

/** Handle classes take any descriptor with `open(fd)` (what `net.Socket({ fd })` uses). */
export function lockHandle(ctx: Ctx, proto: object | undefined, name: string): void {
  if (proto === undefined) throw new TypeError(`Cannot lock down ${name}: no prototype`);
  deny(ctx, proto, ["open", "openFromRid"], `wrap a raw descriptor in a ${name} handle`);
}

/**
 * What Node and Deno share: signals, the working directory, V8 flags, cross-thread channels, and
 * the same `node:os` answers everywhere (`lib/guest/platform_answers.ts`).
 */
export function lockCommon(ctx: Ctx): void {
  pinIntrinsics();
  const { proc } = ctx;
  // _debugProcess(pid) sends SIGUSR1 (it opens the inspector of another Node process).
  deny(ctx, proc, ["kill", "_kill", "_debugProcess"], "send a signal");
  deny(ctx, proc, ["chdir"], "change the host's working directory");
  const v8 = ctx.builtin("node:v8");
  deny(ctx, v8, ["setFlagsFromString"], "set V8 flags for the host process");
  const wt = ctx.builtin("node:worker_threads");
  deny(ctx, wt, ["postMessageToThread"], "message another thread");
  deny(ctx, wt, ["getEnvironmentData"], "read the host's environment data");
  // One channel name reaches every thread of the process: other plugins, and the host.
  const bc = (globalThis as Obj).BroadcastChannel as { prototype: object } | undefined;
  deny(ctx, bc?.prototype, ["postMessage"], "broadcast to other threads");
  // Web Locks are shared by every thread of the process.
  const nav = (globalThis as Obj).navigator as Obj | undefined;
  const locks = nav?.locks as object | undefined;
  if (locks) deny(ctx, getPrototypeOf(locks) as object, ["request", "query"], "use Web Locks");
  pinOsAnswers(answerOs, { builtin: ctx.builtin, pin });
}

/**
 * Node only. Node 26 adds the process's working directory, recursively, to every worker's read
 * grant (`NODE_DEBUG_NATIVE=PERMISSION_MODEL` shows "Inserting <cwd>/*" beside the
 * `--allow-fs-read` paths): a plugin could read whatever lies under the host's cwd, `/` included.
 * Drop it, unless an explicit grant already covers it (`process.permission.drop` keeps the
 * explicit grants: https://nodejs.org/api/process.html#processpermissiondropscope-reference).
 */
export function dropWorkingDirectory(ctx: Ctx): void {
  const { proc } = ctx;
  const permission = proc.permission as { has: Fn; drop?: Fn };
  const cwd = (proc.cwd as Fn)() as string;
  const flag = "--allow-fs-read=";
  const execArgv = proc.execArgv as string[];
  for (const arg of execArgv) {
    if (!arg.startsWith(flag)) continue;
    const grant = arg.slice(flag.length).replace(/\/+$/, "");
    if (cwd === grant || cwd.startsWith(`${grant}/`)) return;
  }
  if (typeof permission.drop !== "function") {
    throw new TypeError("Cannot lock down the working directory: no process.permission.drop");
  }
  apply(permission.drop, permission, ["fs.read", cwd]);
  const probe = `${cwd === "/" ? "" : cwd}/.bulkhead-cwd-probe`;
  if (apply(permission.has, permission, ["fs.read", probe])) {
    throw new TypeError(`Cannot lock down the working directory: "${cwd}" is still readable`);
  }
}

/**
 * Deno: the namespace (`Deno.kill`, signal listeners, `Deno.chdir`, stdin, internals), stdio
 * descriptors in `node:fs`, raw handles, TTYs, the cache storage and permission prompts.
 */
function lockDeno(ctx: Ctx): void {
  const { proc } = ctx;
  const deno = (globalThis as Obj).Deno as Obj;
  // Stdio is always allowed in Deno (no permission covers it): drop stdin from this thread's
  // resource table and node:fs descriptor table (the host's own stdin stays open), then refuse
  // descriptors 0-2 outright. Other descriptors are per thread in Deno (the host's are EBADF).
  const internal = deno[deno.internal as symbol] as { core?: { tryClose(rid: number): void } };
  internal?.core?.tryClose(0);
  if (!delete deno[deno.internal as symbol]) {
    throw new TypeError("Cannot lock down Deno: Deno[Deno.internal] is not configurable");
  }
  const fs = ctx.builtin("node:fs");
  try {
    (fs.closeSync as Fn)(0);
  } catch {
    // Already closed.
  }
  const notStdio = (fd: number) => fd > 2;
  guardFds(ctx, fs, notStdio);
  for (const key of ["close", "closeSync"]) {
    guardFs(ctx, fs, key, (args) => {
      const fd = args[0];
      return typeof fd === "number" && !notStdio(fd) ? denial(ctx, "close stdio") : undefined;
    });
  }
  const binding = proc.binding as Fn;
  const tty = (apply(binding, proc, ["tty_wrap"]) as Obj).TTY as { prototype: object };
  deny(ctx, tty.prototype, ["readStart", "setRawMode", "constructor"], "read the host's terminal");
  lockHandle(ctx, ((apply(binding, proc, ["pipe_wrap"]) as Obj).Pipe as Fn).prototype, "Pipe");
  lockHandle(ctx, ((apply(binding, proc, ["tcp_wrap"]) as Obj).TCP as Fn).prototype, "TCP");
  const udp = (apply(binding, proc, ["udp_wrap"]) as Obj).UDP as Fn | undefined;
  if (udp) deny(ctx, udp.prototype, ["open"], "wrap a raw descriptor in a UDP handle");
  deny(ctx, proc, ["binding"], "reach runtime bindings");
  // A nested worker would start without this lockdown (Deno only checks that it gets no more
  // permissions than this thread).
  deny(ctx, globalThis, ["Worker"], "start a worker");
  deny(ctx, ctx.builtin("node:worker_threads"), ["Worker"], "start a worker");
  deny(ctx, deno, ["kill"], "send a signal");
  deny(ctx, deno, ["chdir"], "change the host's working directory");
  // A listener replaces the default action for the whole process (SIGTERM no longer ends the
  // host). SIGWINCH is ignored by default; node:tty listens to it.
  const addSignal = deno.addSignalListener as Fn;
  pin(deno, "addSignalListener", function addSignalListener(this: unknown) {
    if (arguments[0] !== "SIGWINCH") throw denial(ctx, `listen to ${toString(arguments[0])}`);
    return apply(addSignal, this, arguments);
  });
  const readStdin = denier(ctx, "read the host's stdin", "read");
  pin(
    deno,
    "stdin",
    freeze({
      read: readStdin,
      readSync: readStdin,
      setRaw: denier(ctx, "set the host's terminal mode", "setRaw"),
      stat: readStdin,
      statSync: readStdin,
      isTerminal: () => false,
      close: () => {},
      get readable() {
        return readStdin();
      },
    }),
  );
  let stdin: unknown;
  const emptyStdin = () => {
    const { Readable } = ctx.builtin("node:stream") as { Readable: Fn };
    stdin ??= construct(Readable, [{
      read(this: { push(v: null): void }) {
        this.push(null);
      },
    }]);
    return stdin;
  };
  defineProperty(proc, "stdin", { get: emptyStdin, enumerable: true, configurable: false });
  pin(proc, "openStdin", emptyStdin);
  // The host's command-line arguments (Deno.args is the main module's, in every worker).
  pin(deno, "args", freeze([]));
  // WebGPU hands out the host's GPU adapter with no permission.
  const gpu = (globalThis as Obj).GPU as { prototype: object } | undefined;
  deny(ctx, gpu?.prototype, ["requestAdapter"], "use the GPU");
  // Persistent, shared by every worker of every run, and written without a write grant.
  const cacheStorage = (globalThis as Obj).CacheStorage as { prototype: object } | undefined;
  deny(
    ctx,
    cacheStorage?.prototype,
    ["open", "has", "delete", "keys", "match"],
    "use CacheStorage",
  );
  // A prompt on the host's terminal would let a user's "y" grant the plugin more.
  const permissions = (deno.Permissions as { prototype: Obj } | undefined)?.prototype;
  if (permissions) {
    const query = permissions.query as Fn;
    const querySync = permissions.querySync as Fn;
    pin(permissions, "request", function request(this: unknown) {
      return apply(query, this, arguments);
    });
    pin(permissions, "requestSync", function requestSync(this: unknown) {
      return apply(querySync, this, arguments);
    });
  }
}

/**
 * Locks down the current Deno plugin thread (a Web Worker or a `worker_threads` worker). Call
 * it before importing anything that imports a `node:` module: Deno fixes a module's named
 * exports when it first evaluates.
 *
 * @param options the plugin name, for error messages, and the declared environment variables
 * @throws {TypeError} when a step cannot be applied on this Deno version
 * @example
 * ```ts
 * lockdown({ plugin: "resizer" });
 * const { servePlugin } = await import("../guest/serve.ts");
 * ```
 */
export function lockdown(options: LockdownOptions): void {
  const ctx = createContext(options);
  lockCommon(ctx);
  lockDeno(ctx);
  lockEnv(ctx.proc, (globalThis as Obj).Deno as Obj, options.env);
}

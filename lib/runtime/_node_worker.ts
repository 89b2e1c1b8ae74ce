/**
 * Node worker entry: locks down the thread's ambient authority (Node's part here, the shared
 * part in `_lockdown.ts`), restricts module loading to the plugin's roots, then serves the
 * plugin.
 *
 * Node 26's permission model does not check module loading (verified: a restricted worker can
 * `import()` any file), so `module.registerHooks` refuses `file:` URLs outside the roots, and
 * the CommonJS loaders (`Module._extensions`, callable directly) check the same roots. Hooks
 * registered later by the plugin run first but must call the next hook to load a file, so they
 * reach this check; `registerHooks` itself is wrapped so their `load` cannot skip the lazy
 * locks either.
 * @module
 */

import Module, { registerHooks } from "node:module";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";
import { workerData } from "node:worker_threads";
import { PluginError } from "../errors.ts";
import {
  createContext,
  denial,
  denier,
  deny,
  dropWorkingDirectory,
  type Fn,
  guardFds,
  guardFs,
  lockCommon,
  type LockdownContext as Ctx,
  lockHandle,
  type Obj,
  pin,
  symbolNamed,
} from "./_lockdown.ts";
import type { WorkerInitData } from "../protocol/messages.ts";
import { serveLocked } from "./_serve_locked.ts";

const data = workerData as { init: WorkerInitData; call: MessagePort; ctx: MessagePort };
const plugin = data.init.name;
const roots = data.init.importRoots.map((r) => r.endsWith(sep) ? r : r + sep);
// Captured: these run while plugin code loads modules, after it could patch the globals.
const { apply, construct, defineProperty, getOwnPropertyDescriptor, getPrototypeOf } = Reflect;
const freeze = Object.freeze;
const startsWith = String.prototype.startsWith;
const toString = String;
const setHas = Set.prototype.has;
const setAdd = Set.prototype.add;
const setDelete = Set.prototype.delete;
const mapGet = Map.prototype.get;
const promiseThen = Promise.prototype.then;

/**
 * Node: a descriptor is usable only if this thread's own `open`/`openSync` returned it and it
 * was not closed since. Wraps open and close to keep that set (closing an fd it does not own is
 * refused too: it could be the host's).
 */
function trackFds(ctx: Ctx, fs: Obj): (fd: number) => boolean {
  const owned = new Set<number>();
  const openSync = fs.openSync as Fn;
  const open = fs.open as Fn;
  const isOwned = (fd: number) => apply(setHas, owned, [fd]) as boolean;
  pin(fs, "openSync", function openSync_(this: unknown) {
    const fd = apply(openSync, this, arguments);
    if (typeof fd === "number") apply(setAdd, owned, [fd]);
    return fd;
  });
  pin(fs, "open", function open_(this: unknown) {
    const args: unknown[] = [];
    for (let i = 0; i < arguments.length; i++) args[i] = arguments[i];
    const last = args.length - 1;
    const cb = args[last];
    if (typeof cb === "function") {
      args[last] = (err: unknown, fd: unknown) => {
        if (err == null && typeof fd === "number") apply(setAdd, owned, [fd]);
        return apply(cb as Fn, undefined, [err, fd]);
      };
    }
    return apply(open, this, args);
  });
  for (const key of ["closeSync", "close"]) {
    guardFs(ctx, fs, key, (args) => {
      const fd = args[0];
      if (typeof fd !== "number") return undefined;
      if (!isOwned(fd)) return denial(ctx, `close file descriptor ${fd}`);
      apply(setDelete, owned, [fd]);
      return undefined;
    });
  }
  guardFds(ctx, fs, isOwned);
  const promises = fs.promises as Obj;
  const fspOpen = promises.open as Fn;
  let locked = false;
  // The first FileHandle the plugin opens yields the two FileHandle prototypes; the plugin
  // cannot hold one before that (fs.promises.open is the only API that returns one).
  pin(promises, "open", function open(this: unknown) {
    const pending = apply(fspOpen, this, arguments) as Promise<unknown>;
    return apply(promiseThen, pending, [(handle: object) => {
      if (!locked) {
        lockFileHandle(ctx, handle);
        locked = true;
      }
      return handle;
    }]);
  });
  return isOwned;
}

/**
 * A `FileHandle` reads `this.fd` for every operation, and both its class and the native handle
 * class it wraps are reachable through `.constructor` and take any descriptor. Hide both
 * constructors, and make `fd` answer only what the native handle really holds (its own symbol
 * fields are writable).
 */
function lockFileHandle(ctx: Ctx, handle: object): void {
  const proto = getPrototypeOf(handle) as object;
  const kHandle = symbolNamed(handle, "kHandle");
  const native = kHandle === undefined
    ? undefined
    : getOwnPropertyDescriptor(handle, kHandle)?.value;
  const nativeProto = typeof native === "object" && native !== null ? getPrototypeOf(native) : null;
  const fdGet = getOwnPropertyDescriptor(proto, "fd")?.get;
  const nativeFdGet = nativeProto === null
    ? undefined
    : getOwnPropertyDescriptor(nativeProto, "fd")?.get;
  if (kHandle === undefined || nativeProto === null || !fdGet || !nativeFdGet) {
    throw new TypeError("Cannot lock down fs.promises: unknown FileHandle layout");
  }
  pin(proto, "constructor", denier(ctx, "construct a FileHandle", "FileHandle"));
  pin(nativeProto, "constructor", denier(ctx, "construct a FileHandle", "FileHandle"));
  defineProperty(proto, "fd", {
    get(this: Obj) {
      const fd = apply(fdGet, this, []);
      if (fd === -1) return fd;
      let real: unknown;
      try {
        // A native getter: it throws for anything but a real native handle.
        real = apply(nativeFdGet, this[kHandle], []);
      } catch {
        real = undefined;
      }
      if (real !== fd) throw denial(ctx, `use file descriptor ${toString(fd)}`);
      return fd;
    },
    enumerable: false,
    configurable: false,
  });
}

/**
 * `http2` `ServerHttp2Stream.prototype.respondWithFD(fd)` streams any descriptor, and a server
 * session runs over an in-memory duplex (`performServerHandshake`), so no network grant is
 * needed to read the host's files with it. Loading `node:http2` costs 60-80 ms, so this lock
 * runs when the module first loads: a server stream is made synchronously by feeding one
 * request to a session's native handle, and its prototype is locked before the plugin gets
 * the module.
 */
function lockHttp2(ctx: Ctx, isOwned: (fd: number) => boolean): void {
  const http2 = ctx.builtin("node:http2");
  const { Duplex } = ctx.builtin("node:stream") as { Duplex: Fn };
  const dummy = construct(Duplex, [{
    read() {},
    write(_c: unknown, _e: unknown, cb: () => void) {
      cb();
    },
  }]) as { destroy(): void };
  const session = (http2.performServerHandshake as Fn)(dummy) as Obj & { on: Fn; destroy: Fn };
  session.on("error", () => {});
  const kHandle = symbolNamed(session, "kHandle");
  const kState = symbolNamed(session, "state");
  const native = kHandle && (session[kHandle] as { receive?: Fn } | undefined);
  if (!native?.receive || !kState) throw new TypeError("Cannot lock down http2: unknown layout");
  // Client preface, empty SETTINGS, HEADERS (stream 1, END_STREAM|END_HEADERS) with HPACK
  // GET / http and :authority "x".
  const fields = [0x82, 0x84, 0x86, 0x41, 0x01, 0x78];
  const bytes = [
    ...new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ...[0, 0, 0, 4, 0, 0, 0, 0, 0],
    ...[0, 0, fields.length, 1, 5, 0, 0, 0, 1],
    ...fields,
  ];
  native.receive(new Uint8Array(bytes));
  const streams = (session[kState] as { streams: Map<number, object> }).streams;
  const stream = apply(mapGet, streams, [1]) as object | undefined;
  session.destroy();
  dummy.destroy();
  const proto = stream && getPrototypeOf(stream) as Obj | null;
  if (!proto || typeof proto.respondWithFD !== "function") {
    throw new TypeError("Cannot lock down http2: no ServerHttp2Stream");
  }
  const respondWithFD = proto.respondWithFD as Fn;
  pin(proto, "respondWithFD", function respondWithFD_(this: unknown, fd: unknown) {
    // A FileHandle answers .fd through the locked getter; numbers must be the plugin's own.
    if (typeof fd === "number" && !isOwned(fd)) throw denial(ctx, `use file descriptor ${fd}`);
    return apply(respondWithFD, this, arguments);
  });
}

/**
 * Locks that run when a module first loads, and the hook every route to a built-in passes:
 * the load hook (`import`, `require`, `Module._load`, vm), plugin-registered load hooks, and
 * `process.getBuiltinModule`.
 */
function lazyLocks(ctx: Ctx, isOwned: (fd: number) => boolean): (url: string) => void {
  const { proc } = ctx;
  const locks: Record<string, () => void> = {
    "node:http2": () => lockHttp2(ctx, isOwned),
    // UDP handles take any descriptor too; Node checks that one against --allow-net only.
    "node:dgram": () => {
      const socket = (ctx.builtin("node:dgram").createSocket as Fn)("udp4") as Obj & { close: Fn };
      const state = socket[symbolNamed(socket, "state symbol") as symbol] as { handle?: object };
      lockHandle(ctx, state?.handle ? getPrototypeOf(state.handle) as object : undefined, "UDP");
      socket.close();
    },
  };
  const states: Record<string, "locked" | "failed"> = { __proto__: null } as never;
  const beforeLoad = (url: string) => {
    const lock = getOwnPropertyDescriptor(locks, url)?.value as (() => void) | undefined;
    if (lock === undefined || states[url] === "locked") return;
    if (states[url] === "failed") throw denial(ctx, `use ${url}`);
    states[url] = "failed";
    lock();
    states[url] = "locked";
  };
  const getBuiltinModule = proc.getBuiltinModule as Fn;
  pin(proc, "getBuiltinModule", function getBuiltinModule_(this: unknown, id: unknown) {
    const name = toString(id);
    beforeLoad(apply(startsWith, name, ["node:"]) ? name : `node:${name}`);
    return apply(getBuiltinModule, proc, [name]);
  });
  const moduleExports = ctx.builtin("node:module");
  const register = moduleExports.registerHooks as Fn;
  pin(moduleExports, "registerHooks", function registerHooks_(this: unknown, hooks: Obj) {
    const load = hooks?.load;
    if (typeof load !== "function") return apply(register, moduleExports, [hooks]);
    return apply(register, moduleExports, [{
      resolve: hooks.resolve,
      load(url: string, context: unknown, nextLoad: unknown) {
        beforeLoad(url);
        return apply(load as Fn, hooks, [url, context, nextLoad]);
      },
    }]);
  });
  (moduleExports.syncBuiltinESMExports as Fn)();
  return beforeLoad;
}

/**
 * Node: numeric descriptors, raw handles, TTYs, `node:sqlite`, diagnostic reports, the process
 * title, priority and system information.
 */
function lockNode(ctx: Ctx): (url: string) => void {
  const { proc } = ctx;
  dropWorkingDirectory(ctx);
  const fs = ctx.builtin("node:fs");
  const isOwned = trackFds(ctx, fs);
  deny(ctx, ctx.builtin("node:tty"), ["ReadStream", "WriteStream"], "open a terminal");
  // A TCP handle: created on connect (the connection itself is refused by --allow-net).
  const net = ctx.builtin("node:net");
  const socket = construct(net.Socket as Fn, []) as Obj & { on: Fn; connect: Fn; destroy: Fn };
  socket.on("error", () => {});
  socket.connect({ port: 1, host: "127.0.0.1" });
  const tcp = socket._handle as object | null;
  socket.destroy();
  lockHandle(ctx, tcp ? getPrototypeOf(tcp) as object : undefined, "TCP");
  // A Pipe handle: stdio pipes are created before --permission refuses the spawn.
  const cp = ctx.builtin("node:child_process");
  const child = construct(cp.ChildProcess as Fn, []) as { on: Fn; spawn: Fn };
  child.on("error", () => {});
  const spawnOptions = { file: "/nonexistent", args: [], envPairs: [], stdio: ["pipe"] };
  try {
    child.spawn(spawnOptions);
  } catch {
    // ERR_ACCESS_DENIED: no process was started.
  }
  const pipe = (spawnOptions.stdio[0] as unknown as { handle?: { close(): void } })?.handle;
  lockHandle(ctx, pipe ? getPrototypeOf(pipe) as object : undefined, "Pipe");
  pipe?.close();
  // node:sqlite opens, ATTACHes and VACUUMs INTO any path without checking --allow-fs-*.
  const sqlite = ctx.builtin("node:sqlite");
  deny(ctx, sqlite, ["DatabaseSync", "StatementSync", "Session", "backup"], "use node:sqlite");
  // The report holds the host's whole environment, command line and network connections.
  pin(
    proc,
    "report",
    freeze({
      getReport: denier(ctx, "read the diagnostic report", "getReport"),
      writeReport: denier(ctx, "write a diagnostic report", "writeReport"),
    }),
  );
  const title = proc.title;
  const setTitle = denier(ctx, "set the host's process title", "title");
  defineProperty(proc, "title", {
    get: () => title,
    set: setTitle,
    enumerable: true,
    configurable: false,
  });
  deny(ctx, proc, ["getuid", "geteuid", "getgid", "getegid", "getgroups"], "read the host's user");
  const has = (proc.permission as { has: Fn }).has;
  const permission = proc.permission;
  const resolve = ctx.builtin("node:path").resolve as Fn;
  // --permission does not check it: it would read any file into process.env. Only a string
  // path, resolved once, so a value cannot name one file to the check and another to the read.
  const loadEnvFile = proc.loadEnvFile as Fn;
  pin(proc, "loadEnvFile", function loadEnvFile_(this: unknown, file?: unknown) {
    if (file !== undefined && typeof file !== "string") {
      throw new TypeError("Cannot load an env file: plugins pass the path as a string");
    }
    const path = apply(resolve, undefined, [file ?? ".env"]);
    if (!apply(has, permission, ["fs.read", path])) throw denial(ctx, `read "${toString(path)}"`);
    return apply(loadEnvFile, this, [path]);
  });
  // The same set Deno puts behind --allow-sys; setPriority acts on any pid.
  deny(ctx, ctx.builtin("node:os"), [
    "cpus",
    "freemem",
    "getPriority",
    "homedir",
    "hostname",
    "loadavg",
    "networkInterfaces",
    "release",
    "setPriority",
    "totalmem",
    "uptime",
    "userInfo",
    "version",
  ], "read or change host system state");
  return lazyLocks(ctx, isOwned);
}

function refuse(what: string, hint: string): PluginError {
  return new PluginError("ERR_PERMISSION_DENIED", `Cannot import "${what}": ${hint}`, {
    hint:
      "Declare the directory in permissions.filesystem.read, or move the module into the plugin",
    plugin,
  });
}

function checkPath(path: string): void {
  for (let i = 0; i < roots.length; i++) {
    if (apply(startsWith, path, [roots[i]])) return;
  }
  throw refuse(path, "outside the plugin's read grant");
}

// node:sqlite reaches any path without a filesystem grant (its exports are also replaced by
// the lockdown, for routes that skip these hooks). A resolve hook is not used: with one, Node
// reads every package.json on the resolution path through the permission model.
const isSqlite = (url: string) => url === "node:sqlite";

function restrictLoading(beforeLoad: (url: string) => void): void {
  registerHooks({
    load(url, context, nextLoad) {
      if (apply(startsWith, url, ["file:"])) checkPath(fileURLToPath(url));
      else if (isSqlite(url)) throw refuse(url, "node:sqlite is not available to plugins");
      else beforeLoad(url);
      return nextLoad(url, context);
    },
  });

  // `Module._extensions[ext](module, filename)` reads and compiles any file, hooks or not.
  const extensions = (Module as unknown as { _extensions: Record<string, unknown> })._extensions;
  for (const ext of Object.keys(extensions)) {
    const original = extensions[ext] as (...args: unknown[]) => unknown;
    Object.defineProperty(extensions, ext, {
      value: function (this: unknown, _module: unknown, filename: unknown) {
        checkPath(toString(filename));
        return apply(original, this, arguments);
      },
      writable: false,
      enumerable: true,
      configurable: false,
    });
  }
}

let failure: unknown;
try {
  const ctx = createContext({ plugin });
  lockCommon(ctx);
  restrictLoading(lockNode(ctx));
} catch (error) {
  failure = error;
}
await serveLocked(data, failure);

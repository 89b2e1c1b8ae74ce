// Ambient authority a worker thread shares with its host, attacked by a real plugin: signals,
// descriptors the host holds, stdin, process-wide state and node:sqlite (lib/runtime/AUDIT.md).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect, createServer } from "node:net";
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PluginHost } from "../../mod.ts";
import type { Plugin } from "../../mod.ts";
import { removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

const repo = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const onlyNode = runtime !== "node" ? "Node only (Deno's FileHandle reads through node:fs)" : false;
const DENIED = "denied:ERR_PERMISSION_DENIED";
// Deno keeps descriptors per thread: the host's are not even visible to the plugin.
const FD = runtime === "deno" ? "denied:EBADF" : DENIED;
const SYS = runtime === "deno" ? "denied:NotCapable" : DENIED;
const FS = runtime === "deno" ? "denied:NotCapable" : "denied:ERR_ACCESS_DENIED";

/** The hostile plugin: every method returns "allowed:<detail>" or "denied:<code>". */
const HOSTILE = String.raw`
import * as fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const D = globalThis.Deno;

function denied(e) {
  return "denied:" + (e?.cause?.code ?? e?.code ?? e?.name ?? "Error");
}
async function attempt(fn) {
  try {
    const r = await fn();
    return "allowed:" + (typeof r === "string" ? r : JSON.stringify(r))?.slice(0, 80);
  } catch (e) {
    return denied(e);
  }
}
function load(route, id) {
  if (route === "import") return import(id);
  if (route === "nested") return import("./nested.mjs").then((m) => m.load(id));
  if (route === "require") return require(id);
  return process.getBuiltinModule(id);
}
function within(ms, fn) {
  return new Promise((resolve, reject) => {
    setTimeout(() => resolve("empty"), ms);
    fn(resolve, reject);
  });
}

export default {
  methods: {
    signal: (pid, sig) => attempt(() => (D ? D.kill(pid, sig) : process.kill(pid, sig), "sent")),
    signalNode: (pid, sig) => attempt(() => (process.kill(pid, sig), "sent")),
    readFd: (fd) => attempt(() => {
      const b = Buffer.alloc(64);
      return b.subarray(0, fs.readSync(fd, b, 0, 64, 0)).toString();
    }),
    streamFd: (fd) => attempt(() => new Promise((resolve, reject) => {
      fs.createReadStream(null, { fd, start: 0, autoClose: false })
        .on("data", (d) => resolve(String(d)))
        .on("error", reject);
    })),
    writeFd: (fd) => attempt(() => fs.writeSync(fd, "FORGED\n")),
    truncateFd: (fd) => attempt(() => fs.ftruncateSync(fd, 0)),
    closeFd: (fd) => attempt(() => fs.closeSync(fd)),
    ownFd: (path) => attempt(() => {
      const fd = fs.openSync(path, "r+");
      try {
        fs.writeSync(fd, "own", 0);
        fs.ftruncateSync(fd, 3);
        const b = Buffer.alloc(8);
        const n = fs.readSync(fd, b, 0, 8, 0);
        return b.subarray(0, n).toString() + ":" + fs.fstatSync(fd).size;
      } finally {
        fs.closeSync(fd);
      }
    }),
    ownHandle: (path) => attempt(async () => {
      const h = await fs.promises.open(path);
      try {
        return (await h.readFile("utf8")) + ":" + (await h.stat()).size;
      } finally {
        await h.close();
      }
    }),
    forgeHandle: (path, fd) => attempt(async () => {
      const h = await fs.promises.open(path);
      const kFd = Object.getOwnPropertySymbols(h).find((s) => s.description === "kFd");
      const own = h[kFd];
      try {
        h[kFd] = fd;
        const b = Buffer.alloc(64);
        const { bytesRead } = await h.read(b, 0, 64, 0);
        return b.subarray(0, bytesRead).toString();
      } finally {
        h[kFd] = own;
        await h.close();
      }
    }),
    constructHandle: (path, fd) => attempt(async () => {
      const h = await fs.promises.open(path);
      try {
        const kHandle = Object.getOwnPropertySymbols(h).find((s) => s.description === "kHandle");
        const Native = Object.getPrototypeOf(h[kHandle]).constructor;
        const forged = new h.constructor(new Native(fd));
        const b = Buffer.alloc(64);
        const { bytesRead } = await forged.read(b, 0, 64, 0);
        return b.subarray(0, bytesRead).toString();
      } finally {
        await h.close();
      }
    }),
    read: (path) => attempt(() => fs.readFileSync(path, "utf8")),
    report: () => attempt(() => Object.keys(process.report.getReport().environmentVariables ?? {})),
    v8Flags: (route) => attempt(async () => {
      (await load(route, "node:v8")).setFlagsFromString("--allow-natives-syntax");
      return "set";
    }),
    setPriority: (pid) => attempt(async () => {
      (await load("import", "node:os")).setPriority(pid, 19);
      return "set";
    }),
    sqlite: (route, sql) => attempt(async () => {
      const { DatabaseSync } = await load(route, "node:sqlite");
      const db = new DatabaseSync(":memory:");
      try {
        db.exec(sql);
      } finally {
        db.close();
      }
      return "ran";
    }),
    readStdin: async () => {
      const out = [];
      out.push(await attempt(() => {
        const b = Buffer.alloc(64);
        return b.subarray(0, fs.readSync(0, b, 0, 64, null)).toString();
      }));
      if (D) {
        out.push(await attempt(async () => {
          const b = new Uint8Array(64);
          const n = await D.stdin.read(b);
          return new TextDecoder().decode(b.subarray(0, n ?? 0));
        }));
      }
      out.push(await attempt(async () => {
        const tty = await import("node:tty");
        return within(300, (resolve, reject) => {
          const s = new tty.ReadStream(0);
          s.on("data", (d) => resolve(String(d))).on("error", reject);
        });
      }));
      out.push(await attempt(async () => {
        const net = await import("node:net");
        return within(300, (resolve, reject) => {
          const s = new net.Socket({ fd: 0, readable: true });
          s.on("data", (d) => resolve(String(d))).on("error", reject);
        });
      }));
      out.push(await attempt(() => within(300, (resolve, reject) => {
        process.stdin.on("data", (d) => resolve(String(d))).on("error", reject);
        process.stdin.on("end", () => resolve("empty"));
      })));
      return out;
    },
    listenSignal: () => attempt(() => {
      if (D) D.addSignalListener("SIGTERM", () => {});
      else process.on("SIGTERM", () => {});
      return "listening";
    }),
    setTitle: (title) => attempt(() => ((process.title = title), "set")),
    http2Fd: (fd) => attempt(async () => {
      // An HTTP/2 session over an in-memory duplex: no network grant involved.
      const http2 = await import("node:http2");
      const { Duplex } = await import("node:stream");
      let a, b;
      a = new Duplex({ read() {}, write(c, _e, cb) { b.push(c); cb(); } });
      b = new Duplex({ read() {}, write(c, _e, cb) { a.push(c); cb(); } });
      const server = http2.performServerHandshake(a);
      const client = http2.connect("http://bulkhead.invalid", { createConnection: () => b });
      try {
        return await new Promise((resolve, reject) => {
          server.on("error", reject);
          client.on("error", reject);
          server.on("stream", (stream) => {
            stream.on("error", reject);
            try {
              stream.respondWithFD(fd, { ":status": 200 });
            } catch (e) {
              reject(e);
            }
          });
          let body = "";
          const req = client.request({ ":path": "/" });
          req.on("data", (d) => (body += d)).on("end", () => resolve(body)).on("error", reject);
        });
      } finally {
        client.destroy();
        server.destroy();
      }
    }),
    socketFd: (fd) => attempt(async () => {
      const net = await import("node:net");
      const socket = new net.Socket({ fd, readable: false });
      socket.write("FORGED");
      socket.destroy();
      return "wrapped";
    }),
    udpFd: (fd) => attempt(async () => {
      const dgram = await import("node:dgram");
      const socket = dgram.createSocket("udp4");
      try {
        await new Promise((resolve, reject) => socket.once("error", reject).bind({ fd }, resolve));
        return "bound";
      } finally {
        socket.close();
      }
    }),
    // A poisoned species sees what the runtime's own promises resolve (a native file handle).
    poisonSpecies: () => attempt(() => {
      class Spy extends Promise {}
      Object.defineProperty(Promise, Symbol.species, { get: () => Spy });
      Object.defineProperty(Promise.prototype, "constructor", { value: Spy });
      return "poisoned";
    }),
    startWorker: () => attempt(async () => {
      const url = new URL("./nested.mjs", import.meta.url);
      if (typeof Worker === "function") new Worker(url, { type: "module" }).terminate();
      const { Worker: ThreadWorker } = await import("node:worker_threads");
      await new ThreadWorker(url).terminate();
      return "started";
    }),
  },
};
`;

const NESTED = "export const load = (id) => import(id);\n";

function writeHostile(root: string, name: string, network: "none" | "full" = "none"): string {
  // The worker tier under attack: explicit, and hosts allow what it leaves unenforced (Bun, Deno).
  return writePlugin(root, name, {
    entry: "./mod.mjs",
    isolation: "worker",
    permissions: { network, filesystem: { read: ["./data"], write: ["./out"] } },
    limits: { cpuTimeMs: 10000 },
  }, {
    "mod.mjs": HOSTILE,
    "nested.mjs": NESTED,
    "data/ok.txt": "public data",
    "out/own.txt": "old content",
  });
}

/** Bun cannot close these: the report must say so (requireEnforcement then refuses). */
function reportedOnBun(p: Plugin, area: "filesystem" | "process" | "env"): boolean {
  if (runtime !== "bun") return false;
  assert.equal(p.info.enforcement?.[area]?.enforced, false);
  return true;
}

/** The descriptor this process holds for `path` (found through /proc/self/fd). */
function fdOf(path: string): number {
  for (const name of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === path) return Number(name);
    } catch {
      // Closed while listing.
    }
  }
  throw new Error(`no descriptor for ${path}`);
}

describe("worker plugins and the host process they share", () => {
  let root: string;
  let dir: string;
  let host: PluginHost;
  let p: Plugin;
  let secretFd: number;
  let auditPath: string;
  let sleeper: ChildProcess;

  before(async () => {
    root = tempDir();
    writeFileSync(join(root, "secret.txt"), "TOP SECRET");
    secretFd = openSync(join(root, "secret.txt"), "r");
    auditPath = join(root, "audit.log");
    sleeper = spawn("sleep", ["60"], { stdio: "ignore" });
    dir = writeHostile(join(root, "plugins"), "hostile");
    host = new PluginHost({
      pluginDirs: [join(root, "plugins")],
      audit: auditPath,
      allowUnenforced: true,
    });
    await host.discover();
    p = await host.load("hostile");
  });

  after(async () => {
    await host?.close();
    sleeper?.kill("SIGKILL");
    closeSync(secretFd);
    removeDir(root);
  });

  it("reports signals and process state as this runtime enforces them", () => {
    const e = p.info.enforcement;
    assert.ok(e?.signals && e.process);
    assert.equal(e.signals.enforced, runtime !== "bun");
    // Deno: process.title is not configurable and still rewrites the host's command line.
    assert.equal(e.process.enforced, runtime === "node");
  });

  it("cannot signal the host or another process", async () => {
    assert.equal(await p.call("signal", process.pid, 0), DENIED);
    assert.equal(await p.call("signalNode", process.pid, 0), DENIED);
    assert.equal(await p.call("signal", sleeper.pid, "SIGKILL"), DENIED);
    assert.equal(await p.call("signalNode", sleeper.pid, "SIGKILL"), DENIED);
    assert.equal(sleeper.exitCode, null);
    assert.equal(process.kill(sleeper.pid as number, 0), true);
  });

  it("cannot read a file through a descriptor the host holds", async () => {
    if (reportedOnBun(p, "filesystem")) return;
    assert.equal(await p.call("readFd", secretFd), FD);
    assert.equal(await p.call("streamFd", secretFd), FD);
  });

  it(
    "cannot write, truncate or close the host's audit log descriptor",
    async () => {
      if (reportedOnBun(p, "filesystem")) return;
      const fd = fdOf(auditPath);
      const before = readFileSync(auditPath, "utf8");
      assert.ok(before.length > 0);
      assert.equal(await p.call("writeFd", fd), FD);
      assert.equal(await p.call("truncateFd", fd), FD);
      assert.equal(await p.call("closeFd", fd), FD);
      assert.equal(readFileSync(auditPath, "utf8").startsWith(before), true);
      assert.equal(readFileSync(auditPath, "utf8").includes("FORGED"), false);
    },
  );

  it("still uses descriptors and file handles it opened itself", async () => {
    assert.equal(await p.call("read", join(dir, "data", "ok.txt")), "allowed:public data");
    assert.equal(await p.call("ownFd", join(dir, "out", "own.txt")), "allowed:own:3");
    assert.equal(await p.call("ownHandle", join(dir, "data", "ok.txt")), "allowed:public data:11");
  });

  it("cannot point its own FileHandle at a host descriptor", { skip: onlyNode }, async () => {
    const own = join(dir, "data", "ok.txt");
    assert.equal(await p.call("forgeHandle", own, secretFd), DENIED);
    assert.equal(await p.call("constructHandle", own, secretFd), DENIED);
  });

  it("cannot stream a host descriptor over an in-memory HTTP/2 session", async () => {
    if (reportedOnBun(p, "filesystem")) return;
    // Node: respondWithFD is refused; Deno: the host's descriptor does not exist in the plugin.
    const r = String(await p.call("http2Fd", secretFd));
    if (runtime === "node") assert.equal(r, DENIED);
    assert.match(r, /^denied:/);
  });

  it("cannot poison Promise species to observe the runtime's internal values", async () => {
    if (reportedOnBun(p, "filesystem")) return;
    assert.equal(await p.call("poisonSpecies"), "denied:TypeError");
  });

  it("cannot start a worker (it would run without the lockdown)", async () => {
    // Node refuses it by --permission, Deno by the lockdown; Bun's guard stops the global only.
    if (reportedOnBun(p, "process")) return;
    const expected = runtime === "node" ? "denied:ERR_ACCESS_DENIED" : DENIED;
    assert.equal(await p.call("startWorker"), expected);
  });

  it("cannot read the host's working directory", async () => {
    if (reportedOnBun(p, "filesystem")) return;
    // Node 26 grants every worker read access to the cwd; the lockdown drops it. (The test runs
    // from the checkout, whose package.json is the framework's own and granted on purpose.)
    assert.equal(await p.call("read", join(process.cwd(), "README.md")), FS);
  });

  it("cannot read the diagnostic report (the host's environment)", async () => {
    if (reportedOnBun(p, "env")) return;
    assert.equal(await p.call("report"), SYS);
  });

  it("cannot set V8 flags by any import route", async () => {
    if (reportedOnBun(p, "process")) return;
    for (const route of ["import", "nested", "require", "builtin"]) {
      assert.equal(await p.call("v8Flags", route), DENIED, route);
    }
  });

  it("cannot change another process's priority", async () => {
    if (reportedOnBun(p, "process")) return;
    assert.equal(await p.call("setPriority", sleeper.pid), SYS);
    assert.equal(await p.call("setPriority", process.pid), SYS);
  });

  it("cannot ATTACH or VACUUM INTO a path outside its grants with node:sqlite", async () => {
    if (reportedOnBun(p, "filesystem")) return;
    for (const route of ["import", "nested", "require", "builtin"]) {
      const attach = join(root, `attach-${route}.db`);
      const vacuum = join(root, `vacuum-${route}.db`);
      const a = String(
        await p.call("sqlite", route, `ATTACH '${attach}' AS x; CREATE TABLE x.t(a)`),
      );
      const v = String(await p.call("sqlite", route, `CREATE TABLE t(a); VACUUM INTO '${vacuum}'`));
      // Node: the lockdown refuses the module; Deno: its permissions refuse the path.
      if (runtime === "node") {
        assert.equal(a, DENIED, route);
        assert.equal(v, DENIED, route);
      }
      assert.match(a, /^denied:/, route);
      assert.match(v, /^denied:/, route);
      assert.equal(existsSync(attach), false, route);
      assert.equal(existsSync(vacuum), false, route);
    }
  });
});

describe("a plugin with full network and the host's own sockets", () => {
  it("cannot wrap the host's TCP or UDP socket descriptors", {
    skip: runtime !== "node"
      ? "Node only (the host's socket descriptors come from _handle.fd)"
      : false,
  }, async () => {
    const root = tempDir();
    writeHostile(join(root, "plugins"), "netter", "full");
    const server = createServer((s) => s.on("data", (d) => received.push(String(d))));
    const received: string[] = [];
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const address = server.address() as { port: number };
    const client = connect(address.port, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    const udp = createSocket("udp4");
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
    const fdOfHandle = (o: unknown) => (o as { _handle: { fd: number } })._handle.fd;
    const host = new PluginHost({ pluginDirs: [join(root, "plugins")], allowUnenforced: true });
    try {
      await host.discover();
      const p = await host.load("netter");
      // --allow-net is on: only the lockdown stands between the plugin and these descriptors.
      assert.equal(await p.call("socketFd", fdOfHandle(client)), DENIED);
      const state = Object.getOwnPropertySymbols(udp).find((k) => k.description === "state symbol");
      const udpFd = (udp as unknown as Record<symbol, { handle: { fd: number } }>)[state as symbol];
      assert.equal(await p.call("udpFd", udpFd?.handle.fd), DENIED);
      assert.deepEqual(received, []);
    } finally {
      await host.close();
      client.destroy();
      udp.close();
      await new Promise((r) => server.close(r));
      removeDir(root);
    }
  });
});

describe("Deno without the heap limit (denoHeapLimit: false)", () => {
  it("locks down the plugin's Web Worker the same way", {
    skip: runtime !== "deno" ? "Deno only" : false,
  }, async () => {
    const root = tempDir();
    writeFileSync(join(root, "secret.txt"), "TOP SECRET");
    const fd = openSync(join(root, "secret.txt"), "r");
    const dir = writeHostile(join(root, "plugins"), "quick");
    const host = new PluginHost({
      pluginDirs: [join(root, "plugins")],
      denoHeapLimit: false,
      allowUnenforced: true,
    });
    try {
      await host.discover();
      const p = await host.load("quick");
      assert.equal(await p.call("signal", process.pid, 0), DENIED);
      assert.equal(await p.call("v8Flags", "nested"), DENIED);
      assert.equal(await p.call("startWorker"), DENIED);
      assert.equal(await p.call("readFd", fd), FD);
      assert.equal(await p.call("read", join(dir, "data", "ok.txt")), "allowed:public data");
    } finally {
      await host.close();
      closeSync(fd);
      removeDir(root);
    }
  });
});

/** Runs a host in a child process (the attacked host must not be the test runner). */
function runChildHost(root: string, stdin: string): { status: number | null; out: Child } {
  const script = join(root, "host.mjs");
  writeFileSync(
    script,
    `import { PluginHost } from ${JSON.stringify(pathToFileURL(join(repo, "mod.ts")).href)};
import { readFileSync } from "node:fs";
const host = new PluginHost({
  pluginDirs: [${JSON.stringify(join(root, "plugins"))}],
  allowUnenforced: true,
});
await host.discover();
const p = await host.load("hostile");
const out = { enforcement: p.info.enforcement };
out.kill = await p.call("signal", process.pid, "SIGKILL");
out.killNode = await p.call("signalNode", process.pid, "SIGKILL");
out.stdin = await p.call("readStdin");
out.listen = await p.call("listenSignal");
if (globalThis.Deno) {
  out.title = await p.call("setTitle", "bh-title-probe");
  out.cmdline = readFileSync("/proc/self/cmdline", "latin1").split("\\0")[0];
}
await host.close();
out.hostStdin = readFileSync(0, "utf8");
process.stdout.write(JSON.stringify(out));
process.exit(0);
`,
  );
  const args = runtime === "deno"
    ? [
      "run",
      "-A",
      "--unstable-worker-options",
      "--no-prompt",
      `--config=${repo}/deno.json`,
      script,
    ]
    : [script];
  const r = spawnSync(process.execPath, args, { input: stdin, encoding: "utf8", timeout: 60_000 });
  let out: Child;
  try {
    out = JSON.parse(r.stdout) as Child;
  } catch {
    throw new Error(`child host printed no report (status ${r.status}): ${r.stderr}`);
  }
  return { status: r.status, out };
}

interface Child {
  enforcement: { signals?: { enforced: boolean }; process?: { enforced: boolean } };
  kill: string;
  killNode: string;
  stdin: string[];
  listen: string;
  title?: string;
  cmdline?: string;
  hostStdin: string;
}

describe("a host attacked by its own plugin (child host process)", () => {
  it("survives a SIGKILL of its pid, keeps its stdin and reports the denials", () => {
    const root = tempDir();
    try {
      writeHostile(join(root, "plugins"), "hostile");
      const token = "stdin-token-4f2a";
      const { status, out } = runChildHost(root, token);
      assert.equal(status, 0);
      assert.equal(out.kill, DENIED);
      assert.equal(out.killNode, DENIED);
      if (runtime === "bun") {
        assert.equal(out.enforcement.process?.enforced, false);
        return;
      }
      for (const r of out.stdin) assert.match(r, /^(denied:|allowed:empty$)/);
      assert.equal(out.hostStdin, token);
      if (runtime === "deno") {
        // A SIGTERM listener in a plugin thread would replace the host's default action.
        assert.equal(out.listen, DENIED);
        // Not closable in Deno 2.9, and reported: the host's command line is rewritten.
        assert.equal(out.title, "allowed:set");
        assert.equal(out.cmdline, "bh-title-probe");
        assert.equal(out.enforcement.process?.enforced, false);
      }
    } finally {
      removeDir(root);
    }
  });
});

describe("requireEnforcement with the signals and process areas", () => {
  it("refuses a plugin where a required area is not enforced, and loads it elsewhere", async () => {
    const root = tempDir();
    // The worker tier's report decides: auto would take the process tier where it falls short.
    writePlugin(root, "plain", { entry: "./mod.mjs", isolation: "worker" }, {
      "mod.mjs": "export default { methods: { ping: () => 'pong' } };",
    });
    const strict = new PluginHost({
      pluginDirs: [root],
      requireEnforcement: ["signals", "process"],
      allowUnenforced: true,
    });
    const signals = new PluginHost({
      pluginDirs: [root],
      requireEnforcement: ["signals"],
      allowUnenforced: true,
    });
    try {
      await strict.discover();
      await signals.discover();
      if (runtime === "node") {
        assert.equal(await (await strict.load("plain")).call("ping"), "pong");
      } else {
        await assert.rejects(strict.load("plain"), { code: "ERR_RUNTIME_UNSUPPORTED" });
      }
      if (runtime === "bun") {
        await assert.rejects(signals.load("plain"), { code: "ERR_RUNTIME_UNSUPPORTED" });
      } else {
        assert.equal(await (await signals.load("plain")).call("ping"), "pong");
      }
    } finally {
      await strict.close();
      await signals.close();
      removeDir(root);
    }
  });
});

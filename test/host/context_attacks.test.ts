// The host side of ctx under attack from a real plugin: read-only values it tries to mutate, hook
// registration floods, and brokered fetches that are too large, too slow, or outlive the plugin.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import { PluginHost } from "../../mod.ts";
import type { Denial, Plugin } from "../../mod.ts";
import { createContextApi } from "../../lib/broker/context.ts";
import { DISPOSE } from "../../lib/broker/guarded_endpoint.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const linux = process.platform === "linux" ? false : "the process tier needs Linux";
const MiB = 1024 * 1024;
/** What the test server streams for the large responses (the broker's cap is 32 MiB). */
const TOTAL = 96 * MiB;
const CHUNK = new Uint8Array(256 * 1024);

const PLUGIN = `
let ctx;
let hookCalls = 0;
let pending;
const code = (e) => e?.code ?? e?.name ?? "Error";
async function attempt(fn) {
  try { await fn(); return "done"; } catch (e) { return "refused:" + code(e); }
}
const KEYS = ["list", "map", "set", "date", "bytes", "nested", "re", "view", "err", "buf"];
export default {
  init(c) { ctx = c; },
  methods: {
    async readAll() {
      const v = {};
      for (const k of KEYS) v[k] = await ctx.get(k);
      const n = v.nested;
      return {
        list: Array.isArray(v.list) ? [...v.list] : typeof v.list,
        map: v.map instanceof Map ? [...v.map] : typeof v.map,
        set: v.set instanceof Set ? [...v.set] : typeof v.set,
        date: v.date instanceof Date ? v.date.getTime() : typeof v.date,
        bytes: v.bytes instanceof Uint8Array ? [...v.bytes] : typeof v.bytes,
        nested: n?.inner?.list instanceof Array && n.inner.map instanceof Map &&
            n.inner.when instanceof Date && n.inner.buf instanceof Uint8Array
          ? [n.name, [...n.inner.list], [...n.inner.map], n.inner.when.getTime(), [...n.inner.buf]]
          : typeof n,
        re: v.re instanceof RegExp ? v.re.source + "/" + v.re.flags : typeof v.re,
        view: v.view instanceof DataView ? v.view.getUint8(0) : typeof v.view,
        err: v.err instanceof Error ? v.err.message : typeof v.err,
        buf: v.buf instanceof ArrayBuffer ? v.buf.byteLength : typeof v.buf,
      };
    },
    async mutateAll() {
      const v = {};
      for (const k of KEYS) v[k] = await ctx.get(k);
      const n = v.nested;
      const steps = [
        () => v.list.push(99), () => v.list.fill(0), () => v.list.splice(0), () => v.list.reverse(),
        () => v.map.set("b", 2), () => v.map.delete("a"), () => v.map.clear(),
        () => v.set.add(3), () => v.set.delete(1), () => v.set.clear(),
        () => v.date.setTime(123), () => v.date.setFullYear(1999),
        () => v.bytes.fill(9), () => v.bytes.set([7], 0), () => v.bytes.reverse(),
        () => n.inner.list.push(9), () => n.inner.map.set("k", "evil"), () => n.inner.when.setTime(5),
        () => n.inner.buf.fill(7), () => { n.name = "evil"; }, () => { n.inner = null; },
        () => v.re.compile("evil", "i"), () => { v.re.lastIndex = 3; },
        () => v.view.setUint8(0, 255), () => { v.err.message = "pwned"; },
        () => new Uint8Array(v.buf).fill(1),
      ];
      const out = [];
      for (const step of steps) out.push(await attempt(step));
      return out;
    },
    async attackProxies() {
      const reg = await ctx.get("registry");
      const counter = await ctx.get("counter");
      const fn = await ctx.get("fn");
      return {
        label: await reg.label(),
        mapSet: await attempt(() => reg.set("x", 1)),
        mapClear: await attempt(() => reg.clear()),
        mapDelete: await attempt(() => reg.delete("a")),
        size: await attempt(() => reg.size),
        ctor: await attempt(() => reg.label.constructor("return 1")),
        hitsRead: await attempt(() => counter.hits),
        hitsAdd: await attempt(() => counter.hits.valueOf()),
        count: await counter.count(),
        called: await fn.call(2, 3),
        fnProp: await attempt(() => fn.secret),
        fnApply: await attempt(() => fn.call.apply(null, [1, 2])),
      };
    },
    async registerSame(n) {
      for (let i = 0; i < n; i++) {
        await ctx.hooks.on("on_request", () => { hookCalls++; }, { priority: 10 });
      }
      return n;
    },
    async registerDistinct(n) {
      let ok = 0;
      for (let i = 0; i < n; i++) {
        try { await ctx.hooks.on("flood:" + i, () => {}); ok++; }
        catch (e) { return { ok, code: code(e) }; }
      }
      return { ok, code: null };
    },
    async probe(key) {
      try { return typeof (await ctx.get(key)); } catch (e) { return "refused:" + code(e); }
    },
    hookCalls: () => hookCalls,
    async fetchStatus(url) {
      try {
        const r = await ctx.fetch(url);
        return "ok:" + (await r.arrayBuffer()).byteLength;
      } catch (e) {
        return "refused:" + code(e);
      }
    },
    startSlow(url) {
      pending = ctx.fetch(url).then((r) => r.text()).then(() => "done", (e) => "refused:" + code(e));
      return "started";
    },
  },
};`;

class Registry extends Map<string, number> {
  label(): string {
    return `registry:${this.size}`;
  }
}

function hostValues() {
  return {
    list: [1, 2, 3],
    map: new Map([["a", 1]]),
    set: new Set([1, 2]),
    date: new Date(0),
    bytes: new Uint8Array([1, 2, 3]),
    nested: {
      name: "n",
      inner: {
        list: [1],
        map: new Map([["k", "v"]]),
        when: new Date(0),
        buf: new Uint8Array([1]),
      },
    },
    re: /abc/g,
    view: new DataView(new Uint8Array([42]).buffer),
    err: new Error("boom"),
    buf: new Uint8Array([0, 0]).buffer,
    registry: new Registry([["a", 1]]),
    counter: {
      hits: 0,
      count(): number {
        return this.hits;
      },
    },
    fn: Object.assign((a: number, b: number) => a + b, { secret: "s3cret" }),
  };
}

interface Seen {
  sent: number;
  closed: boolean;
  ended: boolean;
}

/** Streams TOTAL bytes in chunks, a little at a time and with backpressure; stops on close. */
async function pump(res: ServerResponse, seen: Seen): Promise<void> {
  for (let i = 0; i < TOTAL / CHUNK.byteLength && !res.destroyed; i++) {
    const more = res.write(CHUNK);
    seen.sent += CHUNK.byteLength;
    await new Promise<void>((resolve) => {
      if (more) return void setTimeout(resolve, 1);
      const done = () => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.on("drain", done);
      res.on("close", done);
    });
  }
  if (!res.destroyed) {
    seen.ended = true;
    res.end();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!check() && Date.now() < end) await sleep(20);
  return check();
}

describe("ctx under attack from a real plugin", () => {
  let root: string;
  let server: Server;
  let base: string;
  let host: PluginHost;
  // One plugin per concern, so a crash in one attack cannot fail the others.
  let p: Plugin;
  let proxied: Plugin;
  let hooker: Plugin;
  let fetcher: Plugin;
  let values: ReturnType<typeof hostValues>;
  const seen = new Map<string, Seen>();
  const denials: Denial[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const url = req.url ?? "/";
      const s: Seen = { sent: 0, closed: false, ended: false };
      seen.set(url, s);
      res.on("close", () => {
        if (!s.ended) s.closed = true;
      });
      const path = new URL(url, "http://x").pathname;
      if (path === "/big" || path === "/declared") {
        res.writeHead(200, path === "/declared" ? { "content-length": String(TOTAL) } : {});
        void pump(res, s);
      } else if (path === "/slow") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("x");
        s.sent = 1;
        const timer = setTimeout(() => {
          s.ended = true;
          res.end();
        }, 20_000);
        res.on("close", () => clearTimeout(timer));
      } else {
        s.ended = true;
        res.end("ok");
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    root = tempDir();
    const keys = Object.keys(hostValues());
    for (const name of ["prober", "proxied", "hooker", "hoarder", "fetcher", "sleeper"]) {
      // The worker tier's ctx (values with methods cannot cross to the process tier): explicit.
      writePlugin(root, name, {
        entry: "./mod.ts",
        isolation: "worker",
        permissions: { network: [new URL(base).host], context: { read: keys } },
        limits: { cpuTimeMs: 20_000 },
      }, { "mod.ts": PLUGIN });
    }
    values = hostValues();
    host = new PluginHost({
      pluginDirs: [root],
      allowUnenforced: true,
      context: values,
      onDenied: (d) => denials.push(d),
    });
    await host.discover();
    p = await host.load("prober");
    proxied = await host.load("proxied");
    hooker = await host.load("hooker");
    fetcher = await host.load("fetcher");
  });

  after(async () => {
    await host?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    removeDir(root);
  });

  it("hands read-only plain data over as a structured-clone copy", async () => {
    assert.deepEqual(await p.call("readAll"), {
      list: [1, 2, 3],
      map: [["a", 1]],
      set: [1, 2],
      date: 0,
      bytes: [1, 2, 3],
      nested: ["n", [1], [["k", "v"]], 0, [1]],
      re: "abc/g",
      view: 42,
      err: "boom",
      buf: 2,
    });
  });

  it("leaves host Arrays, Maps, Sets, Dates, bytes and nested objects unchanged on mutation", async () => {
    const outcomes = await p.call("mutateAll") as string[];
    assert.ok(outcomes.length > 20);
    const fresh = hostValues();
    for (const key of Object.keys(fresh) as (keyof typeof fresh)[]) {
      if (key === "fn" || key === "registry" || key === "counter") continue;
      assert.equal(host.context.get(key), values[key], `${key} is the same host object`);
      assert.deepEqual(values[key], fresh[key], `${key} is unchanged`);
    }
    assert.equal(values.re.source, "abc");
    assert.equal(values.re.lastIndex, 0);
    assert.equal(values.date.getTime(), 0);
    assert.equal(values.view.getUint8(0), 42);
    assert.equal(values.err.message, "boom");
    assert.deepEqual([...new Uint8Array(values.buf)], [0, 0]);
  });

  it("lets a proxy call declared methods only, never built-in mutators or properties", async () => {
    const r = await proxied.call("attackProxies") as Record<string, unknown>;
    assert.equal(r.label, "registry:1");
    for (const k of ["mapSet", "mapClear", "mapDelete", "size", "ctor", "hitsRead", "hitsAdd"]) {
      assert.equal(r[k], "refused:ERR_PERMISSION_DENIED", k);
    }
    assert.equal(r.fnProp, "refused:ERR_PERMISSION_DENIED");
    assert.equal(r.fnApply, "refused:ERR_PERMISSION_DENIED");
    assert.equal(r.count, 0);
    assert.equal(r.called, 5);
    assert.deepEqual([...values.registry], [["a", 1]]);
    assert.equal(values.counter.hits, 0);
    assert.equal(values.fn.secret, "s3cret");
    assert.ok(denials.some((d) => d.what === "proxy" && d.target.startsWith("registry.set")));
  });

  it("calls a plugin once per hooks.run after 300 registrations of the same hook", async () => {
    assert.equal(await hooker.call("registerSame", 300), 300);
    assert.equal(host.hooks.handlers("on_request").filter((h) => h.plugin === "hooker").length, 1);
    await host.hooks.run("on_request", {});
    assert.equal(await hooker.call("hookCalls"), 1);
  });

  it("refuses hook names past 256 per plugin with ERR_PERMISSION_DENIED", async () => {
    const hoarder = await host.load("hoarder");
    const before = denials.length;
    assert.deepEqual(await hoarder.call("registerDistinct", 300), {
      ok: 256,
      code: "ERR_PERMISSION_DENIED",
    });
    const mine = host.hooks.hooks().filter((h) =>
      host.hooks.handlers(h).some((x) => x.plugin === "hoarder")
    );
    assert.equal(mine.length, 256);
    assert.deepEqual(denials.slice(before), [
      { plugin: "hoarder", what: "hook", target: "flood:256" },
    ]);
  });

  it("stops a streamed body at the 32 MiB cap and closes the connection early", async () => {
    const url = `${base}/big?n=1`;
    assert.equal(await fetcher.call("fetchStatus", url), "refused:ERR_RESOURCE_LIMIT");
    const s = seen.get("/big?n=1");
    assert.ok(s);
    assert.ok(await waitFor(() => s.closed, 5000), "the server saw the connection close");
    assert.equal(s.ended, false);
    assert.ok(s.sent < 48 * MiB, `sent ${s.sent} bytes of ${TOTAL}`);
  });

  it("refuses a declared Content-Length over the cap before reading the body", async () => {
    assert.equal(
      await fetcher.call("fetchStatus", `${base}/declared`),
      "refused:ERR_RESOURCE_LIMIT",
    );
    const s = seen.get("/declared");
    assert.ok(s);
    assert.ok(await waitFor(() => s.closed, 5000), "the server saw the connection close");
    assert.ok(s.sent < 8 * MiB, `sent ${s.sent} bytes of ${TOTAL}`);
  });

  it("aborts a slow response when the plugin is unloaded", async () => {
    const sleeper = await host.load("sleeper");
    assert.equal(await sleeper.call("startSlow", `${base}/slow`), "started");
    assert.ok(await waitFor(() => seen.has("/slow"), 5000), "the request reached the server");
    const s = seen.get("/slow") as Seen;
    assert.equal(s.closed, false);
    await host.unload("sleeper");
    assert.ok(await waitFor(() => s.closed, 5000), "the server saw the connection close");
    assert.equal(s.ended, false);
  });

  it("answers a malformed URL with ERR_INVALID_INPUT, not a permission denial", async () => {
    const before = denials.length;
    assert.equal(await fetcher.call("fetchStatus", "not a url"), "refused:ERR_INVALID_INPUT");
    assert.equal(await fetcher.call("fetchStatus", "http://"), "refused:ERR_INVALID_INPUT");
    assert.deepEqual(denials.slice(before), []);
    assert.equal(await fetcher.call("fetchStatus", `${base}/`), "ok:2");
  });
});

describe("ctx of a process-tier plugin under attack", { skip: linux }, () => {
  let root: string;
  let server: Server;
  let base: string;
  let host: PluginHost;
  let values: ReturnType<typeof hostValues>;
  const seen = new Map<string, Seen>();

  before(async () => {
    server = createServer((req, res) => {
      const s: Seen = { sent: 0, closed: false, ended: false };
      seen.set(req.url ?? "/", s);
      res.on("close", () => {
        if (!s.ended) s.closed = true;
      });
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("x");
      const timer = setTimeout(() => {
        s.ended = true;
        res.end();
      }, 20_000);
      res.on("close", () => clearTimeout(timer));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    root = tempDir();
    // The sandboxed child runs as its own uid: the plugin directory must be world-readable.
    chmodSync(root, 0o755);
    for (const name of ["boxed", "boxed-sleeper"]) {
      writePlugin(root, name, {
        entry: "./mod.ts",
        isolation: "process",
        permissions: {
          network: [new URL(base).host],
          context: { read: Object.keys(hostValues()) },
        },
        limits: { cpuTimeMs: 10_000 },
      }, { "mod.ts": PLUGIN });
    }
    values = hostValues();
    host = new PluginHost({ pluginDirs: [root], context: values });
    await host.discover();
  });

  after(async () => {
    await host?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    removeDir(root);
  });

  it("gets plain data as a copy that leaves the host's objects unchanged", async () => {
    const p = await host.load("boxed");
    assert.equal((await p.call("readAll") as { nested: unknown[] }).nested.length, 5);
    assert.ok((await p.call("mutateAll") as string[]).length > 20);
    const fresh = hostValues();
    for (const key of ["list", "map", "set", "date", "bytes", "nested", "view", "buf"] as const) {
      assert.deepEqual(values[key], fresh[key], `${key} is unchanged`);
    }
    assert.equal(values.re.source, "abc");
    assert.equal(await p.call("probe", "registry"), "refused:ERR_RUNTIME_UNSUPPORTED");
  });

  it("aborts a slow brokered fetch when the plugin is unloaded", async () => {
    const p = await host.load("boxed-sleeper");
    assert.equal(await p.call("startSlow", `${base}/slow`), "started");
    assert.ok(await waitFor(() => seen.has("/slow"), 5000), "the request reached the server");
    const s = seen.get("/slow") as Seen;
    await host.unload("boxed-sleeper");
    assert.ok(await waitFor(() => s.closed, 5000), "the server saw the connection close");
    assert.equal(s.ended, false);
  });
});

describe("createContextApi() fetch deadline and dispose", () => {
  let server: Server;
  let base: string;
  const arrived: string[] = [];
  const closed: string[] = [];
  const logger = { debug() {}, info() {}, warn() {}, error() {} };

  before(async () => {
    server = createServer((req, res) => {
      arrived.push(req.url ?? "");
      res.writeHead(200);
      res.write("x");
      const timer = setTimeout(() => res.end(), 20_000);
      res.on("close", () => {
        clearTimeout(timer);
        if (!res.writableFinished) closed.push(req.url ?? "");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  const api = (fetchTimeoutMs: number) =>
    createContextApi({
      plugin: "t",
      read: [],
      write: [],
      network: { mode: "full", patterns: [] },
      connections: 4,
      store: new Map(),
      logger,
      fetchTimeoutMs,
    });

  it("aborts a request past fetchTimeoutMs with ERR_CALL_TIMEOUT and closes it", async () => {
    const t0 = Date.now();
    await assert.rejects(api(300).fetch(`${base}/deadline`, {}), { code: "ERR_CALL_TIMEOUT" });
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(await waitFor(() => closed.includes("/deadline"), 5000));
  });

  it("aborts in-flight requests with ERR_PLUGIN_NOT_ACTIVE on dispose, and refuses new ones", async () => {
    const a = api(30_000);
    const pending = a.fetch(`${base}/dispose`, {});
    assert.ok(await waitFor(() => arrived.includes("/dispose"), 5000));
    await sleep(50);
    a[DISPOSE]();
    await assert.rejects(pending, { code: "ERR_PLUGIN_NOT_ACTIVE" });
    await assert.rejects(a.fetch(`${base}/again`, {}), { code: "ERR_PLUGIN_NOT_ACTIVE" });
    assert.ok(await waitFor(() => closed.includes("/dispose"), 5000));
  });
});

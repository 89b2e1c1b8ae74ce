// Concurrent writers of one trust list: real child processes, the real CLI, a real PluginHost.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PluginHost } from "../../mod.ts";
import { PluginError } from "../../lib/errors.ts";
import {
  addTrustedKey,
  createSignature,
  createTrustStore,
  encodeSignatureFile,
  formatPublicKey,
  generateKeyPair,
  hasTrustListMarker,
  openTrustList,
  readPackage,
  recordVersion,
  removeTrustedKey,
  revokeKey,
  type TrustList,
} from "../../lib/trust/mod.ts";
import { removeDir, runtimeCommand, tempDir } from "../fixtures/trust/make_package.ts";
import { writePlugin } from "../_helpers.ts";
import { raceDigest } from "./_race_child.ts";

const CHILD = fileURLToPath(new URL("./_race_child.ts", import.meta.url));
const CLI = fileURLToPath(new URL("../../lib/cli.ts", import.meta.url));
const isListError = (e: unknown) => e instanceof PluginError && e.code === "ERR_TRUST_LIST";

const cleanup: string[] = [];
after(async () => {
  for (const dir of cleanup) await removeDir(dir);
});

interface NewList {
  dir: string;
  path: string;
  secret: { key: Uint8Array };
  hex: string;
  keyFile: string;
}

async function newList(seed: (list: TrustList) => TrustList = (l) => l): Promise<NewList> {
  const dir = await tempDir("bulkhead-race-");
  cleanup.push(dir);
  const path = join(dir, "trust.bin");
  const key = new Uint8Array(randomBytes(32));
  const keyFile = join(dir, "list.key");
  await writeFile(keyFile, key, { mode: 0o600 });
  const file = await openTrustList(path, { key }, { create: true });
  await file.update(seed);
  return { dir, path, secret: { key }, hex: Buffer.from(key).toString("hex"), keyFile };
}

function start(script: string, args: string[]): ChildProcess {
  const [cmd, argv] = runtimeCommand(script, args);
  return spawn(cmd, argv, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env } });
}

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess): Promise<Exit> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => stdout += d);
  child.stderr!.on("data", (d) => stderr += d);
  return new Promise((ok) => child.on("close", (code) => ok({ code, stdout, stderr })));
}

function waitForLine(child: ChildProcess, line: string): Promise<void> {
  let buffer = "";
  return new Promise((ok, fail) => {
    const onData = (d: Buffer) => {
      buffer += d;
      if (buffer.split("\n").includes(line)) {
        child.stdout!.off("data", onData);
        ok();
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => fail(new Error(`child exited (${code}) before "${line}"`)));
  });
}

function cli(args: string[], list: NewList): Promise<Exit> {
  return collect(start(CLI, [...args, "--list", list.path, "--list-key-file", list.keyFile]));
}

async function sideFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.startsWith(".trust.bin.") || f.endsWith(".lock"));
}

describe("trust list writers in separate processes", () => {
  it("keeps all 100 distinct updates of two processes saving 50 times each", async () => {
    const list = await newList();
    // One writer derives every save from the list it read at open (like a long-running host),
    // the other from its handle's current list.
    const kids = ["a", "b"].map((tag) =>
      start(CHILD, ["saves", list.path, list.hex, tag, "50", tag === "a" ? "stale" : "fresh"])
    );
    const exits = kids.map(collect);
    try {
      await Promise.all(kids.map((k) => waitForLine(k, "ready")));
      for (const k of kids) k.stdin!.write("go\n");
      for (const e of await Promise.all(exits)) assert.equal(e.code, 0, e.stderr);
    } finally {
      for (const k of kids) if (k.exitCode === null) k.kill("SIGKILL");
    }
    const result = (await openTrustList(list.path, list.secret)).list;
    for (const tag of ["a", "b"]) {
      for (let i = 0; i < 50; i++) {
        const kept = i % 3 === 0
          ? result.revokedDigests.some((d) => d.digest === raceDigest(tag, i))
          : i % 3 === 1
          ? result.highestVersions[`${tag}-${i}`] === `1.0.${i}`
          : result.keys.some((k) => k.note === `${tag} ${i}`);
        assert.ok(kept, `update ${tag} ${i} was lost`);
      }
    }
    assert.equal(result.revokedDigests.length + result.keys.length, 2 * (17 + 16));
    assert.deepEqual(await sideFiles(list.dir), []);
  });

  it("keeps every revocation of two concurrent CLI loops", async () => {
    const list = await newList();
    // One loop spells it as the README does (`trust revoke <id>`), the other with --digest.
    const loop = async (tag: string) => {
      for (let i = 0; i < 5; i++) {
        const target = tag === "x" ? [raceDigest(tag, i)] : ["--digest", raceDigest(tag, i)];
        const r = await cli(["trust", "revoke", ...target, "--reason", tag], list);
        assert.equal(r.code, 0, r.stderr);
      }
    };
    await Promise.all([loop("x"), loop("y")]);
    const result = (await openTrustList(list.path, list.secret)).list;
    const revoked = new Set(result.revokedDigests.map((d) => d.digest));
    for (const tag of ["x", "y"]) {
      for (let i = 0; i < 5; i++) assert.ok(revoked.has(raceDigest(tag, i)), `${tag} ${i} lost`);
    }
    assert.equal(revoked.size, 10);
  });

  it("leaves a readable list after SIGKILL mid-write; the next open removes the temp file and the dead writer's lock", async () => {
    const list = await newList();
    let caught = false;
    for (let round = 0; round < 8 && !caught; round++) {
      const child = start(CHILD, ["loop", list.path, list.hex]);
      const exited = collect(child);
      try {
        await waitForLine(child, "wrote 1");
        const deadline = Date.now() + 3_000;
        while (!caught && Date.now() < deadline) {
          if ((await sideFiles(list.dir)).some((f) => f.endsWith(".tmp"))) {
            // Freeze the writer, then kill it only if it is still between temp file and rename.
            process.kill(child.pid!, "SIGSTOP");
            caught = (await sideFiles(list.dir)).some((f) => f.endsWith(".tmp"));
            if (!caught) process.kill(child.pid!, "SIGCONT");
          }
        }
      } finally {
        process.kill(child.pid!, "SIGKILL");
        await exited;
      }
    }
    assert.ok(caught, "no kill landed while a temp file existed");
    const left = await sideFiles(list.dir);
    assert.ok(left.some((f) => f.endsWith(".tmp")), left.join());
    assert.ok(left.includes("trust.bin.lock"), left.join());
    const file = await openTrustList(list.path, list.secret, { lockTimeoutMs: 2_000 });
    assert.equal(file.list.revokedDigests.length, 20_000);
    assert.match(file.list.highestVersions.loop ?? "", /^\d+\.0\.0$/);
    assert.deepEqual(await sideFiles(list.dir), []);
    // The lock is free again: a write does not wait for the dead writer.
    const t0 = Date.now();
    await file.save(recordVersion(file.list, "after", "1.0.0"));
    assert.ok(Date.now() - t0 < 1_500);
    assert.equal((await openTrustList(list.path, list.secret)).list.highestVersions.after, "1.0.0");
  });
});

describe("TrustListFile merge and lock rules", () => {
  const k1 = generateKeyPair();
  const k2 = generateKeyPair();
  const seed = (l: TrustList) => addTrustedKey(addTrustedKey(l, k1.publicKey), k2.publicKey);

  it("save() of a stale copy keeps another writer's revocation and removal", async () => {
    const list = await newList(seed);
    const host = await openTrustList(list.path, list.secret);
    const stale = host.list;
    const other = await openTrustList(list.path, list.secret);
    await other.update((l) => revokeKey(l, k1.keyId, { reason: "leaked" }));
    await other.update((l) => removeTrustedKey(l, k2.keyId).list);
    await host.save(recordVersion(stale, "resizer", "2.0.0"));
    const onDisk = (await openTrustList(list.path, list.secret)).list;
    assert.deepEqual(onDisk.revokedKeys.map((k) => k.keyId), [k1.keyId]);
    assert.deepEqual(onDisk.keys.map((k) => k.keyId), [k1.keyId]);
    assert.equal(onDisk.highestVersions.resizer, "2.0.0");
    assert.deepEqual(host.list, onDisk);
  });

  it("update() removes from the current list but never drops a revocation or lowers a version", async () => {
    const list = await newList((l) => recordVersion(revokeKey(seed(l), k1.keyId), "p", "2.0.0"));
    const file = await openTrustList(list.path, list.secret);
    const written = await file.update((l) => ({
      ...l,
      keys: [],
      revokedKeys: [],
      highestVersions: { p: "1.0.0" },
    }));
    assert.deepEqual(written.keys, []);
    assert.deepEqual(written.revokedKeys.map((k) => k.keyId), [k1.keyId]);
    assert.equal(written.highestVersions.p, "2.0.0");
    assert.deepEqual((await openTrustList(list.path, list.secret)).list, written);
    // A throwing edit writes nothing.
    await assert.rejects(
      file.update(() => {
        throw new RangeError("no");
      }),
      RangeError,
    );
  });

  it("a store built from file.list sees another writer's revocation at its next lookup", async () => {
    const list = await newList(seed);
    const file = await openTrustList(list.path, list.secret);
    const store = createTrustStore({ list: file.list });
    assert.equal(store.isKeyRevoked(k2.keyId), false);
    assert.equal(store.trustedKey(k2.keyId)?.source, "list");
    const cliRun = await cli(["trust", "revoke", "--key", k2.keyId], list);
    assert.equal(cliRun.code, 0, cliRun.stderr);
    assert.equal(store.isKeyRevoked(k2.keyId), true);
    assert.equal(file.list.revokedKeys.length, 1);
    await rm(list.path);
    assert.throws(() => store.isKeyRevoked(k2.keyId), isListError);
  });

  it("waits for a live lock holder, then fails with ERR_TRUST_LIST after lockTimeoutMs", async () => {
    const list = await newList();
    const file = await openTrustList(list.path, list.secret, { lockTimeoutMs: 300 });
    const live = start(CHILD, ["wait"]);
    const exited = collect(live);
    try {
      await waitForLine(live, "ready");
      const holder = { pid: live.pid, host: hostname(), token: "t", createdAt: "now" };
      await writeFile(`${list.path}.lock`, JSON.stringify(holder));
      const t0 = Date.now();
      await assert.rejects(file.save(recordVersion(file.list, "p", "1.0.0")), isListError);
      assert.ok(Date.now() - t0 >= 300);
    } finally {
      live.stdin!.write("bye\n");
      await exited;
    }
    await rm(`${list.path}.lock`);
    await file.save(recordVersion(file.list, "p", "1.0.0"));
    assert.equal((await openTrustList(list.path, list.secret)).list.highestVersions.p, "1.0.0");
  });

  it("breaks at once the lock of a dead holder or of an earlier process with our pid, and an untouched foreign lock after 10 s", async () => {
    const list = await newList();
    const file = await openTrustList(list.path, list.secret, { lockTimeoutMs: 2_000 });
    const dead = start(CHILD, ["exit"]);
    await collect(dead);
    const locks = [
      { pid: dead.pid, host: hostname(), token: "dead", createdAt: "then" },
      { pid: process.pid, host: hostname(), token: "reused", createdAt: "then" },
      { pid: 1, host: `not-${hostname()}`, token: "old", createdAt: "then" },
    ];
    for (const [i, holder] of locks.entries()) {
      await writeFile(`${list.path}.lock`, JSON.stringify(holder));
      if (holder.token === "old") {
        const old = new Date(Date.now() - 60_000);
        await utimes(`${list.path}.lock`, old, old);
      }
      const t0 = Date.now();
      await file.save(recordVersion(file.list, `p${i}`, "1.0.0"));
      assert.ok(Date.now() - t0 < 1_500, `lock ${holder.token} was not broken at once`);
      await assert.rejects(stat(`${list.path}.lock`), { code: "ENOENT" });
    }
  });
});

async function sign(dir: string, name: string, version: string, secretKey: Uint8Array) {
  const snap = await readPackage(dir);
  await writeFile(
    join(dir, "plugin.sig"),
    encodeSignatureFile(createSignature({ name, version, digest: snap.digest }, secretKey)),
  );
  return dir;
}

const code = (word: string) => `export default { methods: { word: () => "${word}" } };`;

describe("a PluginHost and the CLI sharing one trust list", () => {
  const k1 = generateKeyPair();
  const k2 = generateKeyPair();
  let root = "";

  function plugin(name: string, key: typeof k1, version = "1.0.0"): Promise<string> {
    const dir = writePlugin(join(root, name), name, { version, entry: "./mod.ts" }, {
      "mod.ts": code(name),
    });
    return sign(dir, name, version, key.secretKey);
  }

  before(async () => {
    root = await tempDir("bulkhead-race-host-");
    cleanup.push(root);
  });

  // Versions already recorded: loading these saves nothing, so the host keeps its open list and
  // store, as a long-running host does between saves.
  const recorded = (l: TrustList) => {
    let v = seed2(l);
    for (const n of ["alpha", "gamma"]) v = recordVersion(v, n, "1.0.0");
    return v;
  };

  it("honours a CLI revocation at the next load, without a restart", async () => {
    const list = await newList(recorded);
    const [alpha, gamma] = await Promise.all([plugin("alpha", k1), plugin("gamma", k1)]);
    const host = new PluginHost({ trust: { listPath: list.path, secret: list.secret } });
    try {
      assert.equal(await (await host.load(alpha)).call("word"), "alpha");
      const r = await cli(["trust", "revoke", "--key", k1.keyId, "--reason", "leaked"], list);
      assert.equal(r.code, 0, r.stderr);
      await assert.rejects(host.load(gamma), { code: "ERR_UNTRUSTED" });
      assert.equal(host.info("gamma")?.trust?.state, "revoked");
      await host.unload("alpha");
      await assert.rejects(host.load(alpha), { code: "ERR_UNTRUSTED" });
    } finally {
      await host.close();
    }
  });

  it("never erases a CLI revocation when it next saves the list", async () => {
    const list = await newList(recorded);
    const [alpha, delta] = await Promise.all([plugin("alpha", k1), plugin("delta", k2)]);
    const host = new PluginHost({ trust: { listPath: list.path, secret: list.secret } });
    try {
      await host.load(alpha);
      const r = await cli(["trust", "revoke", "--digest", raceDigest("evil", 1)], list);
      assert.equal(r.code, 0, r.stderr);
      // A new plugin: the host records its version and saves.
      assert.equal(await (await host.load(delta)).call("word"), "delta");
    } finally {
      await host.close();
    }
    const onDisk = (await openTrustList(list.path, list.secret)).list;
    assert.deepEqual(onDisk.revokedDigests.map((d) => d.digest), [raceDigest("evil", 1)]);
    assert.equal(onDisk.highestVersions.delta, "1.0.0");
  });

  it("keeps every revocation the CLI makes while the host loads plugins and records versions", async () => {
    const list = await newList(seed2);
    const dirs = await Promise.all([0, 1, 2, 3].map((i) => plugin(`p${i}`, k2, `1.${i}.0`)));
    const host = new PluginHost({ trust: { listPath: list.path, secret: list.secret } });
    try {
      const loads = (async () => {
        for (const dir of dirs) await host.load(dir);
      })();
      const revokes = (async () => {
        for (let i = 0; i < 4; i++) {
          const r = await cli(["trust", "revoke", "--digest", raceDigest("host", i)], list);
          assert.equal(r.code, 0, r.stderr);
        }
      })();
      await Promise.all([loads, revokes]);
    } finally {
      await host.close();
    }
    const onDisk = (await openTrustList(list.path, list.secret)).list;
    const revoked = new Set(onDisk.revokedDigests.map((d) => d.digest));
    for (let i = 0; i < 4; i++) {
      assert.ok(revoked.has(raceDigest("host", i)), `revocation ${i} lost`);
      assert.equal(onDisk.highestVersions[`p${i}`], `1.${i}.0`);
    }
  });

  it("first use: a new list path starts empty and is created with its marker", async () => {
    const dir = await tempDir("bulkhead-race-first-");
    cleanup.push(dir);
    const listPath = join(dir, "config", "trust.bin");
    const secret = { key: new Uint8Array(randomBytes(32)) };
    const beta = await plugin("beta", k2);
    const host = new PluginHost({
      trust: { listPath, secret, pinnedKeys: [formatPublicKey(k2.publicKey)] },
    });
    try {
      assert.equal(host.policy.requireSignature, true);
      assert.equal(await (await host.load(beta)).call("word"), "beta");
    } finally {
      await host.close();
    }
    assert.equal((await openTrustList(listPath, secret)).list.highestVersions.beta, "1.0.0");
    assert.deepEqual((await readdir(join(dir, "config"))).sort(), [
      "trust.bin",
      "trust.bin.created",
    ]);
  });

  it("refuses a list that existed and is gone (ERR_TRUST_LIST): running host, new host, open, CLI", async () => {
    const list = await newList((l) => recordVersion(seed2(l), "eps", "1.0.0"));
    const [eps, zeta] = await Promise.all([plugin("eps", k2), plugin("zeta", k2)]);
    const host = new PluginHost({ trust: { listPath: list.path, secret: list.secret } });
    try {
      await host.load(eps);
      await rm(list.path);
      await assert.rejects(host.load(zeta), { code: "ERR_TRUST_LIST" });
    } finally {
      await host.close();
    }
    const fresh = new PluginHost({ trust: { listPath: list.path, secret: list.secret } });
    try {
      await assert.rejects(fresh.load(zeta), { code: "ERR_TRUST_LIST" });
    } finally {
      await fresh.close();
    }
    await assert.rejects(openTrustList(list.path, list.secret, { create: true }), isListError);
    assert.equal(await hasTrustListMarker(list.path), true);
    const r = await cli(["trust", "revoke", "--digest", raceDigest("gone", 0), "--json"], list);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.code, "ERR_TRUST_LIST");
    // Starting over is explicit: remove the marker.
    await rm(`${list.path}.created`);
    assert.equal(await hasTrustListMarker(list.path), false);
    const again = await openTrustList(list.path, list.secret, { create: true });
    assert.equal(again.existed, false);
  });

  function seed2(l: TrustList): TrustList {
    return addTrustedKey(addTrustedKey(l, k1.publicKey), k2.publicKey);
  }
});

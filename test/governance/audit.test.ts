import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog, redactSecrets, SECRET_KEY_PATTERN } from "../../lib/audit.ts";

const FIXED = new Date("2025-01-02T03:04:05.678Z");

describe("redactSecrets()", () => {
  it("redacts credential-looking keys at any depth, in objects and arrays", () => {
    const out = redactSecrets({
      user: "alice",
      password: "hunter2",
      nested: {
        Authorization: "Bearer abc",
        deeper: [{ apiKey: "k1", clientSecret: "s", refresh_token: "t", keyId: "kid-1" }],
      },
      passphrase: "x",
      keys: ["a", "b"],
    });
    assert.deepEqual(out, {
      user: "alice",
      password: "[REDACTED]",
      nested: {
        Authorization: "[REDACTED]",
        deeper: [{
          apiKey: "[REDACTED]",
          clientSecret: "[REDACTED]",
          refresh_token: "[REDACTED]",
          keyId: "kid-1",
        }],
      },
      passphrase: "[REDACTED]",
      keys: "[REDACTED]",
    });
    assert.ok(!JSON.stringify(out).includes("hunter2"));
  });

  it("matches the documented pattern, keeping keyId but not publicKey", () => {
    for (const k of ["PASSWORD", "db_pass", "token", "x-api-key", "privateKey", "authorization"]) {
      assert.ok(SECRET_KEY_PATTERN.test(k), k);
    }
    for (const k of ["keyId", "signingKeyId", "user", "plugin", "version", "digest"]) {
      assert.ok(!SECRET_KEY_PATTERN.test(k), k);
    }
  });

  it("keeps env variable names but never their values", () => {
    const out = redactSecrets({ env: { HOME: "/root", DB_URL: "postgres://u:p@h/db" } }) as {
      env: Record<string, string>;
    };
    assert.deepEqual(Object.keys(out.env), ["HOME", "DB_URL"]);
    assert.ok(!JSON.stringify(out).includes("postgres"));
    assert.ok(!JSON.stringify(out).includes("/root"));
    assert.deepEqual(redactSecrets({ environment: "A=1" }), { environment: "[REDACTED]" });
  });

  it("survives cycles, deep nesting, errors, dates, bigints and functions", () => {
    const cyc: Record<string, unknown> = { a: 1 };
    cyc.self = cyc;
    let deep: Record<string, unknown> = { v: 1 };
    for (let i = 0; i < 20; i++) deep = { d: deep };
    const err = Object.assign(new Error("boom"), { code: "ERR_X", token: "t" });
    const out = redactSecrets({
      cyc,
      deep,
      err,
      when: FIXED,
      big: 10n,
      fn: () => 1,
      nan: NaN,
    }) as Record<string, unknown>;
    assert.deepEqual(out.cyc, { a: 1, self: "[Circular]" });
    assert.ok(JSON.stringify(out.deep).includes("[Truncated]"));
    assert.deepEqual(out.err, { name: "Error", message: "boom", code: "ERR_X" });
    assert.equal(out.when, FIXED.toISOString());
    assert.equal(out.big, "10");
    assert.ok(!("fn" in out));
    assert.equal(out.nan, "NaN");
    // Shared (non-cyclic) references are not mistaken for cycles.
    const shared = { x: 1 };
    assert.deepEqual(redactSecrets({ a: shared, b: shared }), { a: { x: 1 }, b: { x: 1 } });
  });
});

describe("AuditLog", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "bulkhead-audit-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes one redacted JSON line per event to a function sink", () => {
    const lines: string[] = [];
    const log = new AuditLog((l) => lines.push(l), { now: () => FIXED });
    const rec = log.write("permission_denied", "resizer", {
      permission: "net",
      target: "evil.example",
      headers: { authorization: "Bearer x" },
    });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes("\n"));
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown> & {
      headers: Record<string, unknown>;
    };
    assert.deepEqual(parsed, rec);
    assert.deepEqual(Object.keys(parsed).slice(0, 3), ["ts", "event", "plugin"]);
    assert.equal(parsed.ts, "2025-01-02T03:04:05.678Z");
    assert.equal(parsed.headers.authorization, "[REDACTED]");
    assert.ok(!lines[0]!.includes("Bearer"));
  });

  it("appends to a file (mode 0600) and never truncates existing content", () => {
    const path = join(dir, "audit.jsonl");
    writeFileSync(path, '{"previous":true}\n');
    const a = new AuditLog(path);
    const b = new AuditLog(path); // a second writer on the same file
    try {
      a.write("load", "p1", { version: "1.0.0" });
      b.write("unload", "p1");
      a.write("crash", "p1", { error: new Error("segfault"), env: { SECRET_THING: "v" } });
    } finally {
      a.close();
      b.close();
    }
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    assert.equal(lines.length, 4);
    assert.deepEqual(JSON.parse(lines[0]!), { previous: true });
    assert.deepEqual(lines.slice(1).map((l) => JSON.parse(l).event), ["load", "unload", "crash"]);
    assert.ok(!lines[3]!.includes('"v"'));
    const fresh = join(dir, "fresh.jsonl");
    new AuditLog(fresh).close();
    assert.equal(statSync(fresh).mode & 0o777, 0o600);
  });

  it("rejects bad event names, reserved detail keys and writes after close", () => {
    const log = new AuditLog(() => {});
    assert.throws(() => log.write("Load!", "p"), TypeError);
    assert.throws(() => log.write("load", "p", { plugin: "other" }), TypeError);
    assert.throws(() => new AuditLog(42 as unknown as string), TypeError);
    log.close();
    assert.throws(() => log.write("load", "p"), Error);
  });

  it("propagates sink failures instead of swallowing them", () => {
    const log = new AuditLog(() => {
      throw new Error("disk full");
    });
    assert.throws(() => log.write("load", "p"), /disk full/);
  });
});

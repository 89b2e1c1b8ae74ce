// A small host for faults.test.ts: loads the fixture in the process tier, lets a busy loop time
// out, checks the plugin process is gone, and then simply returns: the process must exit by itself.
import { existsSync } from "node:fs";
import { KIND_CALL } from "../../lib/protocol/messages.ts";
import { startFixture } from "./_start.ts";

const s = await startFixture({ name: "busy" });
const pid = (s.instance as unknown as { pid: number }).pid;
const code = await s.instance.send(KIND_CALL, "spinForever", [], 500).then(
  () => "resolved",
  (e: { code?: string }) => e.code,
);
await new Promise((r) => setTimeout(r, 200));
process.stdout.write(
  `${code} failure:${s.failures[0]?.kind} dead:${s.instance.dead} gone:${!existsSync(
    `/proc/${pid}`,
  )}\n`,
);

// A host for nonroot_host.test.ts, run as an unprivileged uid: loads one process-tier plugin from
// the directory given, calls it, tries a write outside its grant, and prints what happened.
import { PluginHost } from "../../mod.ts";

const dir = process.argv[process.argv.length - 1] as string;
const host = new PluginHost({ logger: { debug() {}, info() {}, warn() {}, error() {} } });
try {
  const p = await host.load(dir);
  const e = p.info.enforcement;
  const out = {
    uid: process.getuid?.(),
    answer: await p.call("ping"),
    escape: await p.call("escape"),
    tier: e?.tier,
    filesystem: e?.filesystem.mechanism,
    enforced: e === undefined ? [] : Object.entries(e)
      .filter(([, v]) =>
        typeof v === "object" && v !== null && (v as { enforced?: boolean }).enforced
      )
      .map(([k]) => k),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await host.close();
}

// The README's derived guarantee table, computed from the enforcement describers: the worker tier
// per runtime, and the process tier as the launcher reports it on Linux with every layer applied.
// Private to test/docs.
import { describeEnforcement, ENFORCEMENT_AREAS } from "../../permissions/enforcement.ts";
import { describeProcessTier } from "../../permissions/child_enforcement.ts";

/** The table rows (without header), one per area. */
export function guaranteeRows(): string[] {
  const network = ["api.example.com"];
  const reports = [
    describeEnforcement("deno", { network, heapLimit: true }),
    describeEnforcement("node", { network, heapLimit: true }),
    describeEnforcement("bun", { network, heapLimit: true }),
    describeProcessTier("bun", {
      landlock: true,
      seccomp: true,
      namespaces: ["user", "pid", "net", "mount", "ipc", "uts"],
      network,
      notes: [],
    }),
  ];
  return ENFORCEMENT_AREAS.map((area) => {
    const cells = reports.map((r) => {
      const e = r[area];
      return `\`${e.mechanism}\` ${e.enforced ? "enforced" : "**not enforced**"}`;
    });
    return `| ${area} | ${cells.join(" | ")} |`;
  });
}

/**
 * Pure permission policy: manifest requirements in, grant sets and enforcement reports out.
 *
 * @example
 * ```ts
 * import { deriveGrants } from "@bulkhead/core/permissions";
 * const grants = deriveGrants({
 *   pluginDir: "/srv/plugins/hello",
 *   network: "none",
 *   filesystem: { read: [], write: [] },
 *   env: [],
 * });
 * console.log(grants.nodeExecArgv);
 * ```
 * @module
 */

export {
  type DenoPermissions,
  deriveGrants,
  type DeriveOptions,
  type Grants,
  type NetworkGrant,
  type PermissionRequirements,
} from "./grants.ts";
export {
  type HostPattern,
  matchesHost,
  parseHostPattern,
  tryParseHostPattern,
} from "./host_pattern.ts";
export {
  describeEnforcement,
  type Enforcement,
  type EnforcementArea,
  type EnforcementEntry,
  type EnforcementInput,
  type RuntimeName,
  unenforcedAreas,
} from "./enforcement.ts";
export {
  describeNativeTier,
  describeProcessTier,
  type NetworkDeclaration,
  type SandboxSummary,
} from "./child_enforcement.ts";

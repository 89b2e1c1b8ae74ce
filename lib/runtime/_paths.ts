/**
 * Path helpers shared by the adapters.
 * @module
 */

export { dirname } from "node:path";
export { fileURLToPath } from "node:url";

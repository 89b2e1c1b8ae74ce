/**
 * Keeps `code`, `hint` and `issues` on errors that cross a Comlink boundary. Comlink's default
 * "throw" handler copies only name, message and stack.
 * @module
 */

import * as Comlink from "comlink";
import { deserializeError, type SerializedError, serializeError } from "../errors.ts";

let installed = false;

interface ThrowWire {
  isError: boolean;
  value: unknown;
}

/**
 * Replaces Comlink's global "throw" transfer handler with one that keeps bulkhead error fields.
 * Idempotent. It is a superset of the default (same fields plus `code`/`hint`/`issues`), so other
 * Comlink users in the same process are unaffected.
 *
 * @returns nothing
 * @example
 * ```ts
 * installComlinkErrorHandler();
 * ```
 */
export function installComlinkErrorHandler(): void {
  if (installed) return;
  const base = Comlink.transferHandlers.get("throw");
  if (base === undefined) return;
  Comlink.transferHandlers.set("throw", {
    canHandle: base.canHandle,
    serialize(thrown: unknown): [ThrowWire, Transferable[]] {
      const value = (thrown as { value: unknown }).value;
      if (value instanceof Error) return [{ isError: true, value: serializeError(value) }, []];
      return [{ isError: false, value }, []];
    },
    deserialize(wire: unknown): never {
      const w = wire as ThrowWire;
      if (w.isError) throw deserializeError(w.value as SerializedError);
      throw w.value;
    },
  } as Comlink.TransferHandler<unknown, unknown>);
  installed = true;
}

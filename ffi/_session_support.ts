/**
 * Helpers of `_session.ts`: answering the plugin's context requests, signal names, socket counts.
 * @module
 */
import { readdirSync, readlinkSync } from "node:fs";
import { constants } from "node:os";
import { PluginError } from "../lib/errors.ts";
import { FRAME_TYPES } from "../lib/protocol/frames.ts";
import type { Frame } from "../lib/protocol/frames.ts";

/** Host callback for context get/set (the host does the ACL). */
export type ContextCallback = (op: "get" | "set", key: string, value?: unknown) => Promise<unknown>;

/**
 * Answers a CONTEXT_GET/CONTEXT_SET frame with a BH_* status and, for a get, the JSON value.
 * A PluginError ERR_PERMISSION_DENIED from the callback (or no callback) gives BH_ERR_DENIED,
 * undefined from a get BH_ERR_NOT_FOUND, a set value that is not JSON BH_ERR_INVALID, any other
 * error BH_ERR_INTERNAL.
 *
 * @param frame the request
 * @param context the host callback
 * @returns header and body of the CONTEXT_REPLY
 */
export async function answerContext(
  frame: Frame,
  context: ContextCallback | undefined,
): Promise<{ header: { status: number }; body: Uint8Array }> {
  const key = String(frame.header.key);
  let status = 0;
  let body: Uint8Array = new Uint8Array(0);
  try {
    if (context === undefined) {
      throw new PluginError("ERR_PERMISSION_DENIED", "Cannot read context: none was given");
    }
    if (frame.type === FRAME_TYPES.CONTEXT_GET) {
      const value = await context("get", key);
      if (value === undefined) status = -4;
      else body = new TextEncoder().encode(JSON.stringify(value));
    } else {
      let value: unknown;
      try {
        value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(frame.body));
      } catch {
        status = -2;
      }
      if (status === 0) await context("set", key, value);
    }
  } catch (error) {
    status = error instanceof PluginError && error.code === "ERR_PERMISSION_DENIED" ? -3 : -6;
  }
  return { header: { status }, body };
}

/**
 * Name of a signal number.
 *
 * @param n signal number
 * @returns e.g. "SIGSEGV", or null
 */
export function signalName(n: number): string | null {
  for (const [name, value] of Object.entries(constants.signals)) if (value === n) return name;
  return null;
}

/**
 * Counts the socket fds of a process (0 when unreadable).
 *
 * @param pid process id
 * @returns number of sockets
 */
export function countSockets(pid: number): number {
  let n = 0;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) n++;
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return 0;
  }
  return n;
}

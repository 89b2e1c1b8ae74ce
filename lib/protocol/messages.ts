/**
 * The call protocol between the host and a plugin worker: small arrays over a dedicated
 * MessagePort, so a call costs one structured clone each way (leaner than a Comlink proxy call).
 *
 * Host to worker: `[kind, id, name, payload]`. Worker to host: `[id, ok, value]`, where `value` is
 * the result, or a {@link SerializedError} when `ok` is 0. Id 0 is the load reply.
 * @module
 */

import type { SerializedError } from "../errors.ts";

/** Message kinds sent by the host. */
export const KIND_CALL = 0;
/** Run one of the plugin's hook handlers: name is the hook, payload is the data. */
export const KIND_HOOK = 1;
/** Lifecycle callback: name is `start`, `stop`, `pause`, `resume`, `shutdown`, `snapshot`,
 * `restore`. */
export const KIND_LIFECYCLE = 2;
/** Resource sample: the worker tier's guest reports its heap; child tiers answer host-side from
 * procfs without a round trip. */
export const KIND_STATS = 3;

/** A request from the host. */
export type Request = [kind: number, id: number, name: string, payload: unknown];

/** A reply from the worker. */
export type Reply = [id: number, ok: 0 | 1, value: unknown];

/** What the worker reports once the plugin module is imported and `init` returned. */
export interface ReadyInfo {
  /** Names of the plugin's methods. */
  methods: string[];
  /** Hook names the module exports in its `hooks` object. */
  hooks: string[];
  /** Lifecycle callbacks the module defines. */
  lifecycle: string[];
}

/** Plain data the host sends to start a plugin worker (ports travel alongside). */
export interface WorkerInitData {
  name: string;
  version: string;
  /** file: URL of the plugin's entry module. */
  entryUrl: string;
  /** Absolute directories from which the plugin may import modules (Node import hooks). */
  importRoots: string[];
}

/** The load reply when loading failed. */
export type LoadFailure = SerializedError;

/** Marker key for a context value handed over as a proxy on its own port. */
export const PROXY_PORT = "__bulkheadProxyPort";

/**
 * A fetch request reduced to structured-clone-safe fields. The plugin side builds it from a
 * `Request` (or fetch's `(url, init)`), so `headers` already hold the content type a FormData,
 * URLSearchParams or Blob body implies, and `body` holds that body's bytes.
 */
export interface SerializedRequestInit {
  method?: string;
  headers?: [string, string][];
  body?: string | ArrayBuffer | Uint8Array;
  /** `manual` and `error` stop at the first redirect (the plugin side turns `error` into a TypeError). */
  redirect?: "follow" | "manual" | "error";
}

/** A fetch response reduced to structured-clone-safe fields. */
export interface SerializedResponse {
  url: string;
  status: number;
  statusText: string;
  headers: [string, string][];
  body: ArrayBuffer;
  /** Whether the broker followed at least one redirect to reach `url`. */
  redirected: boolean;
}

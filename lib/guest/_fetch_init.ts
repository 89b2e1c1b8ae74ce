/**
 * The plugin side of `ctx.fetch`: turns fetch()'s arguments into the plain request the host's
 * broker makes, and the broker's plain answer back into a `Response`. Private to lib/guest.
 *
 * The arguments go through `new Request(input, init)`, so the Fetch standard does the merging
 * (init overrides the input Request) and the body encoding (URLSearchParams, FormData with its
 * multipart boundary, Blob type, text) exactly as `fetch` would; only the bytes cross.
 * @module
 */

import { PluginError } from "../errors.ts";
import type { SerializedRequestInit, SerializedResponse } from "../protocol/messages.ts";

/** Largest request body sent to the host, in bytes: the broker's default cap. */
export const MAX_REQUEST_BYTES = 32 * 1024 * 1024;

/** Statuses whose Response has a null body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** The host's fetch, as the plugin side reaches it. */
export type BrokerFetch = (url: string, init: SerializedRequestInit) => Promise<SerializedResponse>;

/**
 * Fetches through the host's broker with fetch()'s signature.
 *
 * @param remote the host's brokered fetch
 * @param input a URL or a Request (its method, headers, body and redirect mode are kept)
 * @param init fetch's init; overrides what `input` carries
 * @returns a Response with the final `url`, `redirected`, status, headers and the whole body
 * @throws {PluginError} ERR_INVALID_INPUT when the body is larger than {@link MAX_REQUEST_BYTES}
 * @throws {TypeError} what `new Request(input, init)` throws, or when `redirect` is "error" and
 *   the server redirected
 * @example
 * ```ts
 * const res = await brokeredFetch(remote.fetch, new Request(url, { method: "POST", body: "x" }));
 * ```
 */
export async function brokeredFetch(
  remote: BrokerFetch,
  input: string | URL | Request,
  init?: RequestInit,
): Promise<Response> {
  const signal = init?.signal !== undefined
    ? init.signal
    : input instanceof Request
    ? input.signal
    : null;
  signal?.throwIfAborted();
  if (!(input instanceof Request) && !URL.canParse(String(input))) {
    // No Request can be built: the broker answers with its ERR_INVALID_INPUT.
    return toResponse(await remote(String(input), {}), "GET");
  }
  const { signal: _signal, ...rest } = init ?? {};
  // Node requires `duplex: "half"` for a stream body; the others ignore it.
  const request = new Request(input, { duplex: "half", ...rest } as RequestInit);
  const url = request.url;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    if (signal === null) return;
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => undefined); // raced below; a late abort must not be an unhandled rejection
  try {
    const headers = [...request.headers];
    // Bun leaves a text body's content type to send time, where the broker's own fetch would not
    // know it was text: add what the Fetch standard puts on the Request.
    if (typeof rest.body === "string" && !request.headers.has("content-type")) {
      headers.push(["content-type", "text/plain;charset=UTF-8"]);
    }
    const out: SerializedRequestInit = {
      method: request.method,
      headers,
      redirect: request.redirect,
    };
    if (request.body !== null) out.body = await readBody(url, request.body, aborted);
    // The host keeps going until its own deadline: Comlink has no cancel message.
    const r = await Promise.race([remote(url, out), aborted]);
    if (request.redirect === "error" && r.status >= 300 && r.status < 400) {
      throw new TypeError(`Cannot fetch "${url}": redirected while the redirect mode is "error"`);
    }
    return toResponse(r, request.method);
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
  }
}

/** Reads a request body in full, refusing it past {@link MAX_REQUEST_BYTES}. */
async function readBody(
  url: string,
  body: ReadableStream<Uint8Array>,
  aborted: Promise<never>,
): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) break;
      total += value.byteLength;
      if (total > MAX_REQUEST_BYTES) {
        throw new PluginError(
          "ERR_INVALID_INPUT",
          `Cannot fetch "${url}": the request body exceeds ${MAX_REQUEST_BYTES} bytes`,
          { hint: "Send a smaller body, or split it into several requests" },
        );
      }
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel(error).catch(() => undefined);
    throw error;
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** Rebuilds the broker's answer as a Response, with the `url` and `redirected` fetch gives. */
function toResponse(r: SerializedResponse, method: string): Response {
  const empty = NULL_BODY.has(r.status) || method === "HEAD";
  const res = new Response(empty ? null : r.body, {
    status: r.status,
    statusText: r.statusText,
    headers: r.headers,
  });
  // Own data properties shadow the prototype's getters (a constructed Response has url "").
  Object.defineProperties(res, {
    url: { value: r.url, enumerable: true },
    redirected: { value: r.redirected === true, enumerable: true },
  });
  return res;
}

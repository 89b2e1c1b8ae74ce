/**
 * The host side of `ctx.fetch`: a plugin's requests are made here, on its behalf, and checked
 * against its network grant at every hop. The broker follows redirects itself (each target is
 * checked again), bounds the concurrent connections, streams the body and stops at a size cap,
 * and gives every request one deadline for redirects and body together.
 *
 * @example
 * ```ts
 * const broker = createFetchBroker({ plugin: "p", network, connections: 4 });
 * await broker.fetch("https://api.example.com/v1", {}); // allowed when the grant names the host
 * broker.abortAll(new PluginError("ERR_PLUGIN_NOT_ACTIVE", "Cannot fetch: closed"));
 * ```
 * @module
 */

import { PluginError } from "../errors.ts";
import { matchesHost } from "../../permissions/host_pattern.ts";
import type { NetworkGrant } from "../../permissions/grants.ts";
import type { SerializedRequestInit, SerializedResponse } from "../protocol/messages.ts";

/** Options for {@link createFetchBroker}. */
export interface FetchBrokerOptions {
  /** Name of the plugin the requests are made for. */
  plugin: string;
  /** Network grant checked for the first URL and every redirect target. */
  network: NetworkGrant;
  /** Concurrent brokered fetches allowed. */
  connections: number;
  /** Called with the refused URL (a non-http scheme) or host before the refusal is thrown. */
  onDenied?: ((target: string) => void) | undefined;
  /** Called when the plugin hits the concurrent connection limit. */
  onLimit?: ((detail: { type: "connections"; used: number; limit: number }) => void) | undefined;
  /** Redirects followed at most (default 10). */
  maxRedirects?: number | undefined;
  /** Largest response body accepted, in bytes (default 32 MiB); the download stops there. */
  maxResponseBytes?: number | undefined;
  /** Largest request body accepted, in bytes (default 32 MiB, what the plugin side allows). */
  maxRequestBytes?: number | undefined;
  /** Deadline of one brokered fetch, redirects and body included, in ms (default 30 000). */
  fetchTimeoutMs?: number | undefined;
}

/** The fetch broker of one plugin. */
export interface FetchBroker {
  /**
   * Fetches `url` on the plugin's behalf.
   *
   * @param url absolute http(s) URL
   * @param init method, header pairs, body and redirect mode, as they crossed the boundary
   * @returns the final response, its body read in full
   */
  fetch(url: string, init: SerializedRequestInit): Promise<SerializedResponse>;
  /**
   * Aborts every fetch in flight; each rejects with `reason`.
   *
   * @param reason the error the aborted fetches reject with
   */
  abortAll(reason: PluginError): void;
}

/**
 * Builds the fetch broker of one plugin.
 *
 * @param options the plugin's network grant, connection limit and fetch bounds
 * @returns the broker
 * @throws {PluginError} ERR_PERMISSION_DENIED from `fetch` when a URL or redirect target is not
 *   http(s) or outside the grant, or past `maxRedirects`
 * @throws {PluginError} ERR_INVALID_INPUT from `fetch` when the URL or init is malformed: a
 *   method that is not an HTTP token (or CONNECT, TRACE, TRACK), a header name or value that is
 *   not valid HTTP, a `host` header, a body that is not a string or bytes, is over
 *   `maxRequestBytes` or comes with GET/HEAD, an unknown redirect mode
 * @throws {PluginError} ERR_RESOURCE_LIMIT from `fetch` past `connections` concurrent requests or
 *   when a body exceeds `maxResponseBytes`
 * @throws {PluginError} ERR_CALL_TIMEOUT from `fetch` when it takes longer than `fetchTimeoutMs`
 * @example
 * ```ts
 * const broker = createFetchBroker({ plugin: "p", network: { mode: "full" }, connections: 1 });
 * ```
 */
export function createFetchBroker(options: FetchBrokerOptions): FetchBroker {
  const { plugin } = options;
  const maxRedirects = options.maxRedirects ?? 10;
  const maxBytes = options.maxResponseBytes ?? 32 * 1024 * 1024;
  const maxRequestBytes = options.maxRequestBytes ?? 32 * 1024 * 1024;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 30_000;
  const requests = new Set<AbortController>();
  const deny = (target: string, message: string, hint: string): never => {
    options.onDenied?.(target);
    throw new PluginError("ERR_PERMISSION_DENIED", message, { hint, plugin });
  };
  const invalid = (message: string, hint: string) =>
    new PluginError("ERR_INVALID_INPUT", message, { hint, plugin });
  const checkUrl = (url: URL, hop: string) => {
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      deny(
        url.href,
        `Cannot fetch "${url.href}"${hop}: only http and https are brokered`,
        "Use an http(s) URL",
      );
    }
    const g = options.network;
    if (g.mode === "full") return;
    if (g.mode === "none") {
      deny(
        url.host,
        `Cannot fetch "${url.href}"${hop}: plugin "${plugin}" declares no network access`,
        "Add the host to permissions.network in plugin.json",
      );
    }
    if (!matchesHost(g.patterns, url)) {
      deny(
        url.host,
        `Cannot fetch "${url.href}"${hop}: host "${url.host}" is not in the network allow-list of plugin "${plugin}"`,
        `Add "${url.hostname}" to permissions.network in plugin.json`,
      );
    }
  };
  const tooLarge = (url: string, detail: string) =>
    new PluginError("ERR_RESOURCE_LIMIT", `Cannot fetch "${url}": the response ${detail}`, {
      hint: "Fetch smaller resources",
      plugin,
    });
  /** Reads the body up to the cap; past it, cancels the reader and aborts the connection. */
  const readBody = async (url: string, res: Response, request: AbortController) => {
    const stop = async (error: PluginError, cancel: Promise<void> | undefined): Promise<never> => {
      try {
        await cancel;
      } finally {
        request.abort(error);
      }
      throw error;
    };
    const declared = Number(res.headers.get("content-length") ?? 0);
    if (declared > maxBytes) {
      const error = tooLarge(url, `declares ${declared} bytes, more than ${maxBytes}`);
      await stop(error, res.body?.cancel(error));
    }
    const reader = res.body?.getReader();
    if (reader === undefined) return new ArrayBuffer(0);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        const error = tooLarge(url, `exceeds ${maxBytes} bytes`);
        await stop(error, reader.cancel(error));
      }
      chunks.push(value);
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    return out.buffer;
  };
  const send = async (
    url: string,
    first: URL,
    init: SerializedRequestInit,
    request: AbortController,
  ): Promise<SerializedResponse> => {
    let current = first;
    let method = init.method ?? "GET";
    let body = init.body;
    let headers = init.headers ?? [];
    for (let hop = 0;; hop++) {
      const res = await fetch(current, {
        method,
        headers,
        ...(body !== undefined ? { body: body as BodyInit } : {}),
        redirect: "manual",
        signal: request.signal,
      });
      const location = res.headers.get("location");
      const follow = (init.redirect ?? "follow") === "follow";
      if (follow && res.status >= 300 && res.status < 400 && location !== null) {
        await res.body?.cancel();
        if (hop >= maxRedirects) {
          throw new PluginError(
            "ERR_PERMISSION_DENIED",
            `Cannot fetch "${url}": more than ${maxRedirects} redirects`,
            { hint: "Fetch the final URL directly", plugin },
          );
        }
        const next = new URL(location, current);
        checkUrl(next, ` (redirected from "${current.href}")`);
        if (
          res.status === 303 ||
          ((res.status === 301 || res.status === 302) && method === "POST")
        ) {
          method = "GET";
          body = undefined;
          headers = headers.filter(([name]) => !BODY_HEADERS.has(name.toLowerCase()));
        }
        if (next.origin !== current.origin) {
          // As fetch does: credentials meant for one origin are not sent to another.
          headers = headers.filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase()));
        }
        current = next;
        continue;
      }
      return {
        url: current.href,
        status: res.status,
        statusText: res.statusText,
        headers: [...res.headers.entries()],
        body: await readBody(url, res, request),
        redirected: hop > 0,
      };
    }
  };
  return {
    async fetch(url: string, init: SerializedRequestInit): Promise<SerializedResponse> {
      if (typeof url !== "string" || !URL.canParse(url)) {
        throw invalid(
          `Cannot fetch "${String(url)}": not an absolute URL`,
          "Pass an absolute http(s) URL",
        );
      }
      const first = new URL(url);
      const request = checkInit(url, init ?? {}, { invalid, maxRequestBytes });
      checkUrl(first, "");
      if (requests.size >= options.connections) {
        const used = requests.size;
        options.onLimit?.({ type: "connections", used: used + 1, limit: options.connections });
        throw new PluginError(
          "ERR_RESOURCE_LIMIT",
          `Cannot fetch "${url}": plugin "${plugin}" already has ${used} connections open (limit ${options.connections})`,
          { hint: "Raise limits.connections or await earlier requests", plugin },
        );
      }
      const controller = new AbortController();
      const timer = setTimeout(() =>
        controller.abort(
          new PluginError(
            "ERR_CALL_TIMEOUT",
            `Cannot fetch "${url}": no complete response within ${fetchTimeoutMs} ms`,
            { hint: "Fetch from a faster server, or smaller resources", plugin },
          ),
        ), fetchTimeoutMs);
      requests.add(controller);
      try {
        return await send(url, first, request, controller);
      } catch (error) {
        // An abort (deadline, size cap, dispose) carries the PluginError that explains it; any
        // other failure also aborts, so no half-read connection outlives the call.
        if (!controller.signal.aborted) controller.abort(error);
        throw controller.signal.reason;
      } finally {
        clearTimeout(timer);
        requests.delete(controller);
      }
    },
    abortAll(reason: PluginError): void {
      for (const controller of requests) controller.abort(reason);
    },
  };
}

/** Headers that describe a body: dropped with it when a redirect turns the request into a GET. */
const BODY_HEADERS = new Set([
  "content-encoding",
  "content-language",
  "content-location",
  "content-type",
  "content-length",
]);
/** Headers dropped on a redirect to another origin (the Fetch standard's list, and cookies). */
const CREDENTIAL_HEADERS = new Set(["authorization", "proxy-authorization", "cookie"]);
/** An HTTP token (RFC 9110 section 5.6.2): methods and header names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$/;
/** Header values: no CR, LF or NUL (they would split or cut the header). */
const BAD_VALUE = /[\r\n\0]/;
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
const MAX_HEADERS = 256;
const MAX_HEADER_BYTES = 64 * 1024;
const REDIRECTS = new Set(["follow", "manual", "error"]);

/**
 * Checks a plugin's fetch init and returns a fresh copy of it (it crossed a boundary: trust no
 * field, keep nothing but what was checked).
 */
function checkInit(
  url: string,
  init: SerializedRequestInit,
  o: {
    invalid: (message: string, hint: string) => PluginError;
    maxRequestBytes: number;
  },
): SerializedRequestInit {
  const hint = "Pass a method string, [name, value] header pairs and a string or bytes body";
  function fail(what: string, h = hint): never {
    throw o.invalid(`Cannot fetch "${url}": ${what}`, h);
  }
  if (typeof init !== "object" || init === null) fail("init is not an object");
  const { method, headers, body, redirect } = init;
  const out: SerializedRequestInit = {};
  if (method !== undefined) {
    if (typeof method !== "string" || !TOKEN.test(method)) fail("the method is not an HTTP token");
    if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
      fail(`the method "${method}" is not allowed`, "Use GET, POST, PUT, PATCH, DELETE, ...");
    }
    out.method = method;
  }
  if (headers !== undefined) {
    if (!Array.isArray(headers) || headers.length > MAX_HEADERS) {
      fail(`the headers are not at most ${MAX_HEADERS} [name, value] pairs`);
    }
    let size = 0;
    out.headers = [];
    for (const h of headers as unknown[]) {
      if (!Array.isArray(h) || h.length !== 2) fail("the headers are not [name, value] pairs");
      const [name, value] = h as unknown[];
      if (typeof name !== "string" || !TOKEN.test(name)) {
        fail(`the header name "${String(name).slice(0, 64)}" is not an HTTP token`);
      }
      if (typeof value !== "string" || BAD_VALUE.test(value)) {
        fail(`the value of header "${name}" is not a string without CR, LF or NUL`);
      }
      if (name.toLowerCase() === "host") {
        fail('a "host" header is not allowed', "The URL names the host; the grant checks it");
      }
      size += name.length + value.length;
      if (size > MAX_HEADER_BYTES) fail(`the headers exceed ${MAX_HEADER_BYTES} bytes`);
      out.headers.push([name, value]);
    }
  }
  if (body !== undefined) {
    let bytes: number;
    if (typeof body === "string") {
      bytes = body.length > o.maxRequestBytes || body.length * 3 <= o.maxRequestBytes
        ? body.length // over for sure, or under for sure (UTF-8 needs at most 3 bytes a unit)
        : new TextEncoder().encode(body).byteLength;
    } else if (body instanceof ArrayBuffer) {
      bytes = body.byteLength;
    } else if (ArrayBuffer.isView(body) && (body as Uint8Array).buffer instanceof ArrayBuffer) {
      bytes = (body as Uint8Array).byteLength;
    } else {
      return fail("the body is not a string or bytes");
    }
    if (bytes > o.maxRequestBytes) {
      fail(
        `the request body exceeds ${o.maxRequestBytes} bytes`,
        "Send a smaller body, or split it into several requests",
      );
    }
    const m = (out.method ?? "GET").toUpperCase();
    if (m === "GET" || m === "HEAD") fail(`a ${m} request cannot have a body`, "Use POST or PUT");
    out.body = body;
  }
  if (redirect !== undefined) {
    if (typeof redirect !== "string" || !REDIRECTS.has(redirect)) {
      fail("the redirect mode is not follow, manual or error");
    }
    out.redirect = redirect;
  }
  return out;
}

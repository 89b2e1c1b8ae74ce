/**
 * Network host patterns: parsing a manifest's allow-list and matching URLs against it.
 *
 * Accepted forms (the same ones Deno's `--allow-net` accepts, so a list can be handed to Deno as is):
 * `host`, `host:port`, `*.example.com` (the apex and every subdomain), an IPv4 address, an IPv4 CIDR
 * block (`10.0.0.0/8`), and a bracketed IPv6 address (`[::1]`, `[::1]:8080`). Matching is by name,
 * as in Deno: `localhost` does not match `127.0.0.1` and no DNS lookup is made.
 *
 * @example
 * ```ts
 * import { parseHostPattern, matchesHost } from "./host_pattern.ts";
 * const list = ["api.example.com:443", "*.cdn.example.com"].map((p) => parseHostPattern(p));
 * matchesHost(list, new URL("https://img.cdn.example.com/a.png")); // true
 * ```
 * @module
 */

/** A parsed host pattern. */
export interface HostPattern {
  /** The pattern as written (normalised to lower case). */
  source: string;
  /** What kind of host it names. */
  kind: "name" | "wildcard" | "ipv4" | "cidr" | "ipv6";
  /** Host name, suffix (for wildcards, without `*.`), address, or network address. */
  host: string;
  /** Port, or `undefined` for every port. */
  port: number | undefined;
  /** CIDR prefix length, for `cidr`. */
  prefix: number | undefined;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseIpv4(text: string): number | undefined {
  const m = IPV4.exec(text);
  if (m === null) return undefined;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i] as string;
    if (part.length > 1 && part.startsWith("0")) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

function isHostName(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  const labels = text.split(".");
  if (labels.every((l) => /^\d+$/.test(l))) return false; // looks numeric: must be a valid IPv4
  return labels.every((l) => LABEL.test(l));
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * Parses one host pattern, or explains why it is not one.
 *
 * @param source the pattern as written in a manifest
 * @returns the parsed pattern, or a string saying what is wrong
 * @example
 * ```ts
 * tryParseHostPattern("api.example.com:443"); // { kind: "name", host: "api.example.com", port: 443, ... }
 * tryParseHostPattern("https://x"); // "is a URL; write the host name only"
 * ```
 */
export function tryParseHostPattern(source: string): HostPattern | string {
  if (source !== source.trim()) return "has surrounding spaces";
  const text = source.toLowerCase();
  if (text.length === 0) return "is empty";
  if (text.includes("://")) return "is a URL; write the host name only";
  if (text === "*") return 'is "*"; use "full" for unrestricted network';
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end < 0) return "has an unclosed IPv6 bracket";
    const addr = text.slice(1, end);
    if (!/^[0-9a-f:.]+$/.test(addr) || !addr.includes(":")) return "is not a valid IPv6 address";
    try {
      new URL(`http://[${addr}]/`);
    } catch {
      return "is not a valid IPv6 address";
    }
    const rest = text.slice(end + 1);
    let port: number | undefined;
    if (rest.length > 0) {
      if (!rest.startsWith(":")) return "has text after the IPv6 address";
      port = parsePort(rest.slice(1));
      if (port === undefined) return "has a port that is not 1-65535";
    }
    const host = new URL(`http://[${addr}]/`).hostname;
    return { source: text, kind: "ipv6", host, port, prefix: undefined };
  }
  if (text.includes("::")) return 'is an unbracketed IPv6 address; write "[::1]"';
  if (text.includes("/")) {
    const [addr = "", bits = "", ...more] = text.split("/");
    if (more.length > 0 || !/^\d{1,2}$/.test(bits)) return "is not a valid CIDR block";
    const prefix = Number(bits);
    const value = parseIpv4(addr);
    if (value === undefined || prefix > 32) return "is not a valid IPv4 CIDR block";
    return { source: text, kind: "cidr", host: addr, port: undefined, prefix };
  }
  const colon = text.lastIndexOf(":");
  let hostPart = text;
  let port: number | undefined;
  if (colon >= 0) {
    hostPart = text.slice(0, colon);
    const portText = text.slice(colon + 1);
    if (portText.includes("-")) return "has a port range; list each port";
    port = parsePort(portText);
    if (port === undefined) return "has a port that is not 1-65535";
  }
  if (hostPart.startsWith("*.")) {
    const suffix = hostPart.slice(2);
    if (!isHostName(suffix) || !suffix.includes(".")) {
      return "has a wildcard that is not followed by a domain with at least two labels";
    }
    return { source: text, kind: "wildcard", host: suffix, port, prefix: undefined };
  }
  if (hostPart.includes("*")) return 'has "*" somewhere other than a leading "*."';
  if (parseIpv4(hostPart) !== undefined) {
    return { source: text, kind: "ipv4", host: hostPart, port, prefix: undefined };
  }
  if (!isHostName(hostPart)) return "is not a valid host name";
  return { source: text, kind: "name", host: hostPart, port, prefix: undefined };
}

/**
 * Parses one host pattern.
 *
 * @param source the pattern
 * @returns the parsed pattern
 * @throws {TypeError} when the pattern is malformed (validate manifests with the manifest parser
 * to get field paths instead)
 * @example
 * ```ts
 * parseHostPattern("10.0.0.0/8").kind; // "cidr"
 * ```
 */
export function parseHostPattern(source: string): HostPattern {
  const result = tryParseHostPattern(source);
  if (typeof result === "string") {
    throw new TypeError(`Cannot parse host pattern "${source}": it ${result}`);
  }
  return result;
}

function defaultPort(url: URL): number | undefined {
  if (url.port !== "") return Number(url.port);
  if (url.protocol === "https:" || url.protocol === "wss:") return 443;
  if (url.protocol === "http:" || url.protocol === "ws:") return 80;
  return undefined;
}

/**
 * Whether a URL's host and port are allowed by any pattern in the list.
 *
 * @param patterns parsed allow-list
 * @param url the URL to check
 * @returns true when some pattern matches
 * @example
 * ```ts
 * matchesHost([parseHostPattern("example.com:443")], new URL("https://example.com/")); // true
 * ```
 */
export function matchesHost(patterns: readonly HostPattern[], url: URL): boolean {
  const host = url.hostname.toLowerCase();
  const port = defaultPort(url);
  const ipv4 = parseIpv4(host);
  for (const p of patterns) {
    if (p.port !== undefined && p.port !== port) continue;
    switch (p.kind) {
      case "name":
      case "ipv4":
      case "ipv6":
        if (host === p.host) return true;
        break;
      case "wildcard":
        if (host === p.host || host.endsWith(`.${p.host}`)) return true;
        break;
      case "cidr": {
        const net = parseIpv4(p.host);
        if (ipv4 === undefined || net === undefined || p.prefix === undefined) break;
        const size = 2 ** (32 - p.prefix);
        if (Math.floor(ipv4 / size) === Math.floor(net / size)) return true;
        break;
      }
    }
  }
  return false;
}

/**
 * Private byte and text helpers shared by the trust modules: hex, base64, UTF-8 and canonical JSON.
 *
 * @module
 */

const HEX = /^[0-9a-f]*$/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Encodes bytes as lowercase hex.
 *
 * @param bytes input
 * @returns hex text
 */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/**
 * Decodes hex text, or returns undefined when the text is not even-length hex.
 *
 * @param text hex text
 * @returns bytes, or undefined
 */
export function fromHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !HEX.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, "hex"));
}

/**
 * Encodes bytes as standard padded base64.
 *
 * @param bytes input
 * @returns base64 text
 */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/**
 * Decodes standard or URL-safe base64 strictly (re-encoding must give the same text), or returns
 * undefined.
 *
 * @param text base64 text
 * @returns bytes, or undefined
 */
export function fromBase64(text: string): Uint8Array | undefined {
  if (BASE64.test(text) && text.length % 4 === 0) {
    const bytes = Buffer.from(text, "base64");
    return bytes.toString("base64") === text ? new Uint8Array(bytes) : undefined;
  }
  if (BASE64URL.test(text)) {
    const bytes = Buffer.from(text, "base64url");
    return bytes.toString("base64url") === text ? new Uint8Array(bytes) : undefined;
  }
  return undefined;
}

/**
 * Decodes a fixed-length binary value written as hex or base64.
 *
 * @param text hex or base64 text
 * @param length expected byte length
 * @returns bytes, or undefined when the text is neither or has the wrong length
 */
export function decodeFixed(text: string, length: number): Uint8Array | undefined {
  const trimmed = text.trim();
  const bytes = trimmed.length === length * 2 ? fromHex(trimmed) : fromBase64(trimmed);
  return bytes !== undefined && bytes.length === length ? bytes : undefined;
}

/**
 * UTF-8 encodes a string.
 *
 * @param text input
 * @returns bytes
 */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/**
 * Serializes a JSON value with object keys sorted by code unit and no whitespace, so the same
 * value always gives the same text.
 *
 * @param value plain JSON value (no undefined, functions or non-finite numbers)
 * @returns canonical JSON text
 * @throws {TypeError} when the value is not plain JSON
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "string" || typeof value === "boolean") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("Cannot serialize: number is not finite");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
  }
  throw new TypeError(`Cannot serialize: value of type "${typeof value}" is not JSON`);
}

/**
 * Compares two byte arrays for equality.
 *
 * @param a first
 * @param b second
 * @returns true when equal
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

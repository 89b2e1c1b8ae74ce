// Shared test helpers: temp plugin directories, a local HTTP server, the current runtime.
import { cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const runtime: "deno" | "bun" | "node" = process.versions.deno
  ? "deno"
  : process.versions.bun
  ? "bun"
  : "node";

export const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

export function tempDir(prefix = "bulkhead-test-"): string {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Writes a plugin directory: plugin.json plus files (copied from fixtures or given text). */
export function writePlugin(
  root: string,
  name: string,
  manifest: Record<string, unknown>,
  files: Record<string, string | { copy: string }>,
): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "plugin.json"), JSON.stringify({ name, version: "1.0.0", ...manifest }));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    if (typeof content === "string") writeFileSync(join(dir, path), content);
    else cpSync(content.copy, join(dir, path));
  }
  return dir;
}

export interface TestServer {
  port: number;
  close(): Promise<void>;
}

/** A local HTTP server: `/` says hello, `/redirect?to=URL` redirects. */
export function startServer(): Promise<TestServer> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/redirect") {
      res.writeHead(302, { location: url.searchParams.get("to") ?? "/" });
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`hello from ${req.headers.host}`);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      resolve({
        port,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

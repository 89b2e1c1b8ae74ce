import { readFileSync } from "node:fs";

interface Ctx {
  get(key: string): Promise<unknown>;
  fetch(url: string): Promise<Response>;
}
let ctx: Ctx;

async function attempt(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return "ESCAPED";
  } catch (e) {
    const err = e as { code?: string; name?: string; cause?: { code?: string } };
    return `denied (${err.cause?.code ?? err.code ?? err.name})`;
  }
}

export default {
  init(c: Ctx) {
    ctx = c;
  },
  methods: {
    async escape() {
      return {
        "read /etc/passwd": await attempt(() => readFileSync("/etc/passwd", "utf8")),
        "env HOME": await attempt(() => {
          if (process.env.HOME === undefined) throw Object.assign(new Error(), { code: "ABSENT" });
        }),
        "subprocess": await attempt(async () =>
          (await import("node:child_process")).execSync("id")
        ),
        "ctx.get(database)": await attempt(() => ctx.get("database")),
        "ctx.fetch(example.com)": await attempt(() => ctx.fetch("https://example.com/")),
      };
    },
  },
};

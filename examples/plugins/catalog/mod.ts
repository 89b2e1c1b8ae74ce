import { readFileSync, writeFileSync } from "node:fs";

const data = new URL("./data/products.json", import.meta.url);

export default {
  methods: {
    find(sku: string) {
      const all = JSON.parse(readFileSync(data, "utf8")) as { sku: string }[];
      return all.find((p) => p.sku === sku) ?? null;
    },
    // The data directory is read-only: this is denied on Deno and Node.
    vandalize() {
      try {
        writeFileSync(data, "[]");
        return "written";
      } catch (e) {
        return `denied (${(e as { code?: string; name?: string }).code ?? (e as Error).name})`;
      }
    },
  },
};

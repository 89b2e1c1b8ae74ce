import { readFileSync } from "node:fs";

export default {
  methods: {
    /** Words, lines and characters of a text. */
    count(text: string) {
      const words = text.split(/\s+/).filter((w) => w !== "").length;
      return { words, lines: text.split("\n").length, chars: [...text].length };
    },
    /** Tries to read a file outside the plugin's grants: under `strict` the kernel says no. */
    peek(path: string) {
      try {
        return `read ${readFileSync(path, "utf8").length} bytes (this is a bug)`;
      } catch (e) {
        return `denied (${(e as { code?: string }).code ?? (e as Error).name})`;
      }
    },
  },
};

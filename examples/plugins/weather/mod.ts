// A plugin needs nothing from bulkhead at run time: a default export with methods is enough.
// (definePlugin from "@bulkhead/core/plugin" adds types.)
interface Ctx {
  get(key: string): Promise<unknown>;
  fetch(url: string): Promise<Response>;
}

let ctx: Ctx;

export default {
  init(c: Ctx) {
    ctx = c;
  },
  hooks: {
    on_request: (req: { path: string; tags?: string[] }) => ({
      ...req,
      tags: [...(req.tags ?? []), "weather"],
    }),
  },
  methods: {
    async forecast(city: string) {
      const { forecastUrl } = (await ctx.get("config")) as { forecastUrl: string };
      const res = await ctx.fetch(`${forecastUrl}?city=${encodeURIComponent(city)}`);
      return await res.json();
    },
  },
};

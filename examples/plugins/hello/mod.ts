interface Ctx {
  get(key: string): Promise<unknown>;
}
let ctx: Ctx;

export default {
  init(c: Ctx) {
    ctx = c;
  },
  methods: {
    async greet(name: string) {
      const { greeting } = (await ctx.get("config")) as { greeting: string };
      return `${greeting}, ${name}`;
    },
  },
};

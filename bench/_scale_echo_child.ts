// Raw baseline of the process tier in bench/scale.bench.ts: a child of the same runtime that says
// "ready" once, then echoes every chunk it reads on stdin back on stdout.
process.stdin.on("data", (chunk: Uint8Array) => process.stdout.write(chunk));
process.stdout.write("ready\n");

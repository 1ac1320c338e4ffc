/**
 * bench/scale-gc.ts: preloaded by bench/scale.ts into every server process (node --expose-gc
 * --import), so that memory is read after a full garbage collection, not at whatever point the
 * heap happens to be: SIGUSR2 makes the process collect, then write its process.memoryUsage() to
 * SCALE_MEMORY_DIR/<pid>.json (the heap, less noisy than RSS, which keeps what malloc and V8 have
 * not returned). The kit's own code has no such hook and needs none; the floor gets the same preload.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

process.on("SIGUSR2", () => {
  (globalThis as { gc?: () => void }).gc?.();
  const dir = process.env.SCALE_MEMORY_DIR;
  if (dir) writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(process.memoryUsage()));
});

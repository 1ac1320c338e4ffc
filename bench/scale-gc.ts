/**
 * bench/scale-gc.ts: preloaded by bench/scale.ts into every server process (node --expose-gc
 * --import), so that memory is read after a full garbage collection, not at whatever point the
 * heap happens to be: SIGUSR2 makes the process collect. The kit's own code has no such hook and
 * needs none; the floor gets the same preload.
 */
process.on("SIGUSR2", () => (globalThis as { gc?: () => void }).gc?.());

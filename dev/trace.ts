/**
 * dev/trace.ts: `npm run trace`. Runs the post's scenario on a private Redis under MONITOR and
 * writes what Redis saw, step by step and decoded, to docs/captures/trace-<adapter>.md.
 *
 *   npm run trace
 *   npm run trace -- classic
 */
import { writeFile } from "node:fs/promises";
import { type Adapter, captureTrace, renderTrace } from "./capture.ts";

const ADAPTERS: Adapter[] = ["classic"];
const adapter = (process.argv[2] ?? "classic") as Adapter;
if (!ADAPTERS.includes(adapter)) {
  console.error(`unknown adapter "${adapter}": expected one of ${ADAPTERS.join(", ")}`);
  process.exit(2);
}

const file = new URL(`../docs/captures/trace-${adapter}.md`, import.meta.url);
try {
  const trace = await captureTrace(adapter);
  await writeFile(file, renderTrace(trace));
  console.log(`wrote ${file.pathname}`);
} catch (err) {
  console.error(`trace failed: ${(err as Error).message}`);
  process.exit(1);
}

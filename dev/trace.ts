/**
 * dev/trace.ts: `npm run trace`. Runs a scenario on a private Redis under MONITOR and writes what
 * Redis saw, step by step and decoded, to docs/captures/ (see dev/capture.ts).
 *
 *   npm run trace                       the post's scenario (classic adapter): captures/trace-classic.md
 *   npm run trace -- sharded            the adapter tour on one adapter: captures/adapters-sharded.md
 *   npm run trace -- post classic sharded streams     several, one after the other
 */
import { writeFile } from "node:fs/promises";
import { ADAPTERS, isAdapterName } from "../shared.ts";
import { captureAdapterTour, captureTrace, renderTour, renderTrace } from "./capture.ts";

const chosen = process.argv.length > 2 ? process.argv.slice(2) : ["post"];
const unknown = chosen.find((name) => name !== "post" && !isAdapterName(name));
if (unknown) {
  console.error(`unknown scenario "${unknown}": expected post, or an adapter (${ADAPTERS.join(", ")})`);
  process.exit(2);
}

for (const name of chosen) {
  const file = new URL(`../docs/captures/${name === "post" ? "trace-classic" : `adapters-${name}`}.md`, import.meta.url);
  try {
    const text = isAdapterName(name) ? renderTour(await captureAdapterTour(name)) : renderTrace(await captureTrace());
    await writeFile(file, text);
    console.log(`wrote ${file.pathname}`);
  } catch (err) {
    console.error(`trace ${name} failed: ${(err as Error).message}`);
    process.exit(1);
  }
}

/**
 * tools/trace.ts: `npm run trace`. Runs a scenario on a private Redis under MONITOR and prints
 * what Redis saw, step by step and decoded (see support/capture.ts). A capture is also saved in a
 * scratch folder; `--write` updates the committed captures in docs/captures/ instead.
 *
 *   npm run trace                       the post's scenario (classic adapter)
 *   npm run trace -- sharded            the adapter tour on one adapter
 *   npm run trace -- post classic sharded streams     several, one after the other
 *   npm run trace -- --write            re-write docs/captures/trace-classic.md (and so on)
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ADAPTERS, isAdapterName } from "../lib/config.ts";
import { EXIT_USAGE } from "../lib/failures.ts";
import { captureAdapterTour, captureTrace, renderTour, renderTrace } from "../support/capture.ts";

const args = process.argv.slice(2);
const write = args.includes("--write");
const named = args.filter((arg) => arg !== "--write");
const chosen = named.length > 0 ? named : ["post"];
const unknown = chosen.find((name) => name !== "post" && !isAdapterName(name));
if (unknown) {
  console.error(`unknown scenario "${unknown}": expected post, or an adapter (${ADAPTERS.join(", ")}), and --write`);
  process.exit(EXIT_USAGE);
}

const folder = write ? fileURLToPath(new URL("../docs/captures/", import.meta.url)) : await mkdtemp(join(tmpdir(), "kit-trace-"));
for (const name of chosen) {
  const file = join(folder, `${name === "post" ? "trace-classic" : `adapters-${name}`}.md`);
  try {
    const text = isAdapterName(name) ? renderTour(await captureAdapterTour(name)) : renderTrace(await captureTrace());
    await writeFile(file, text);
    if (!write) console.log(text);
    console.log(`wrote ${file}${write ? "" : " (npm run trace -- --write updates docs/captures/)"}`);
  } catch (err) {
    console.error(`trace ${name} failed: ${(err as Error).message}`);
    process.exit(1);
  }
}

/**
 * bench/profile.ts: where the CPU time of a set of V8 CPU profiles went, by package and by function.
 *
 *   npm run bench -- --repetitions 1 --profile /tmp/prof
 *   npx tsx bench/profile.ts /tmp/prof/cluster-server      (all .cpuprofile files in the folder)
 *   npx tsx bench/profile.ts /tmp/prof/kit 20 onmessage    only samples with onmessage on their stack
 *                                                          (a broadcast from Redis: bench/scale.ts --profile)
 *
 * Self time only (the time spent in a function's own code), summed over the files; idle time and
 * garbage collection are listed by V8 as "(idle)" and "(garbage collector)".
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const folder = process.argv[2];
if (!folder) {
  console.error("usage: npx tsx bench/profile.ts <folder with .cpuprofile files> [rows (15)]");
  process.exit(2);
}
const ROWS = Number(process.argv[3] ?? 15);
/** Only the samples taken under a function of this name (a broadcast's entry point), when given. */
const UNDER = process.argv[4];

let files: string[];
try {
  files = readdirSync(folder).filter((name) => name.endsWith(".cpuprofile"));
} catch (err) {
  console.error(`cannot read ${folder}: ${(err as Error).message}`);
  process.exit(1);
}
if (files.length === 0) {
  console.error(`no .cpuprofile files in ${folder}`);
  process.exit(1);
}

const byPackage = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(join(folder, file), "utf8")) as Profile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map(profile.nodes.flatMap((node) => (node.children ?? []).map((child) => [child, node.id] as const)));
  const under = (id: number | undefined): boolean => id !== undefined && (nodes.get(id)!.callFrame.functionName === UNDER || under(parents.get(id)));
  profile.samples.forEach((id, i) => {
    if (UNDER && !under(id)) return;
    const microseconds = profile.timeDeltas[i] ?? 0;
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    const where = packageOf(url);
    add(byPackage, where, microseconds);
    add(byFunction, `${functionName || "(anonymous)"} ${where}${url ? `:${lineNumber + 1}` : ""}`, microseconds);
    total += microseconds;
  });
}

console.log(`${files.length} profiles, ${(total / 1e6).toFixed(1)} s sampled${UNDER ? ` under ${UNDER}` : ""}\n`);
print("by package (self time)", byPackage);
print("by function (self time)", byFunction);

/** node_modules/<package> (scoped too), node: internals, the kit's own files, or V8's pseudo-frames. */
function packageOf(url: string): string {
  if (!url) return "(native/V8)";
  if (url.startsWith("node:")) return "node internals";
  const match = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/g);
  if (match) return match.at(-1)!.replace("node_modules/", "");
  return url.replace(/^file:\/\//, "").split("/").slice(-2).join("/");
}

function add(map: Map<string, number>, key: string, value: number) {
  map.set(key, (map.get(key) ?? 0) + value);
}

function print(title: string, map: Map<string, number>) {
  console.log(title);
  for (const [key, value] of [...map].sort((a, b) => b[1] - a[1]).slice(0, ROWS)) {
    console.log(`  ${((100 * value) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
  console.log();
}

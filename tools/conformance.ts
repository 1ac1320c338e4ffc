/**
 * tools/conformance.ts: `npm run conformance`. Checks a publisher, any program that reaches the
 * kit's clients through Redis, against the real cluster: one run of its command per case, and a
 * table of who got what (support/conformance.ts; docs/learn/any-language.md says how to point it at
 * a third-party emitter).
 *
 *   npm run conformance -- -- npx tsx emitter.ts --nsp={nsp} --room={socket} --room={room} --user={user} --except={except} --message={message}
 *   npm run conformance -- --adapter sharded -- /usr/bin/python3 publishers/publish.py --nsp={nsp} ...
 *   npm run conformance -- --unsupported except,namespace --sent -- bash my-emitter.sh {message} {target}
 *
 * Exit 0 when no case fails (each passes, or fails while --unsupported names it), 1 when a case
 * fails or the check cannot run, 2 for a wrong command line; 130 when interrupted.
 */
import { existsSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import { parseArgs } from "node:util";
import { ADAPTERS, isAdapterName } from "../lib/config.ts";
import { Failure, onUncaught, UsageError } from "../lib/failures.ts";
import { renderSent } from "../support/capture.ts";
import { CASE_NAMES, type CaseName, placeholderProblem, renderReport, type Rig, startRig } from "../support/conformance.ts";
import { ROOT } from "../support/scripts.ts";

const USAGE = `usage: npm run conformance -- [--adapter ${ADAPTERS.join("|")}] [--unsupported CASE,...] [--sent] -- COMMAND [ARG...]
  COMMAND runs once per case (${CASE_NAMES.join(", ")}), without a shell, from the kit's folder, with
  REDIS_URL and ADAPTER set; in its arguments {message} {nsp} {socket} {room} {user} {except} {target}
  are filled in, and an argument whose placeholders a case leaves unset is left out.
  --adapter       the server's adapter (default classic)
  --unsupported   cases the publisher cannot do: reported as "not supported by this publisher", not as failures
  --sent          also print what the command sent to Redis for each case`;

// The cluster runs in a process group of its own, which Ctrl-C does not reach: whatever ends this
// process stops the rig first, once it has started (or failed to, having cleaned up after itself).
let starting: Promise<Rig> | undefined;
const stopRig = async () => void (await (await starting?.catch(() => undefined))?.stop().catch(() => {}));
onUncaught(async (failure) => {
  console.error(failure.line.split("\n")[0]);
  await stopRig();
  process.exit(failure.code);
});
// `on`, not `once`: signal-exit (loaded with testcontainers) kills the process again with the
// signal as soon as it sees no other listener, which `once` would leave it after the first call.
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (interrupted) return;
    interrupted = true;
    await stopRig();
    process.exit(130);
  });
}

const argv = process.argv.slice(2);
const separator = argv.indexOf("--");
if (argv.includes("--help")) {
  console.log(USAGE);
  process.exit(0);
}
if (separator === -1 || separator === argv.length - 1) throw new UsageError(`the publisher's command goes after "--" (see --help)`);
const command = argv.slice(separator + 1);
const { values } = (() => {
  try {
    return parseArgs({
      args: argv.slice(0, separator),
      options: { adapter: { type: "string", default: "classic" }, unsupported: { type: "string", default: "" }, sent: { type: "boolean", default: false } },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split(". ")[0]} (see --help)`);
  }
})();
const adapter = values.adapter;
if (!isAdapterName(adapter)) throw new UsageError(`--adapter takes ${ADAPTERS.join(", ")}, got "${adapter}"`);
const unsupported = values.unsupported.split(",").filter(Boolean);
const unknownCase = unsupported.find((name) => !(CASE_NAMES as readonly string[]).includes(name));
if (unknownCase) throw new UsageError(`--unsupported takes cases among ${CASE_NAMES.join(", ")}, got "${unknownCase}"`);
const problem = placeholderProblem(command) ?? programProblem(command[0]!);
if (problem) throw new UsageError(problem);

console.error(`starting a private Redis, index.ts with 2 workers (ADAPTER=${adapter}) and 6 sockets...`);
starting = startRig(adapter);
const rig = await starting.catch((err: Error) => {
  throw new Failure(`the check could not start: ${err.message.split("\n")[0]}`);
});
try {
  const report = await rig.check({ command, unsupported: unsupported as CaseName[] });
  console.log(renderReport(report));
  if (values.sent) console.log(`\n${renderSent(report)}`);
  process.exitCode = report.passed ? 0 : 1;
} catch (err) {
  throw new Failure(`the check stopped: ${(err as Error).message.split("\n")[0]}`);
} finally {
  await rig.stop();
}

/** Why `program` cannot be started (no such file, not on PATH), or null; found before the cluster is started for nothing. */
function programProblem(program: string): string | null {
  const executable = (path: string) => existsSync(path) && statSync(path).isFile() && (statSync(path).mode & 0o111) !== 0;
  if (program.includes("/")) return executable(isAbsolute(program) ? program : join(ROOT, program)) ? null : `${program}: no such executable (paths are from the kit's folder)`;
  const found = (process.env.PATH ?? "").split(delimiter).some((folder) => folder && executable(join(folder, program)));
  return found ? null : `${program}: not found on PATH`;
}

/**
 * Every publisher through the conformance check (support/conformance.ts), on every adapter it
 * supports, its table printed: emitter.ts, publishers/publish.py and publishers/publish.php on the
 * classic, sharded and streams adapters pass every case; the post's socket.io-emitter 3.2.0
 * (test/fixtures/emitter-2017.ts) and the redis-cli recipe of docs/learn/any-language.md, run as the
 * page writes it, pass on classic every case but those they cannot do, which the check reports as
 * not supported, with what arrived. The check can fail, and does where a publisher reaches no one:
 * the 2017 emitter under ADAPTER=streams, publish.py told the wrong adapter. And the command line of
 * `npm run conformance`: one line and exit code 2 for what cannot be checked, 1 for a failure.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, test, type TestContext } from "node:test";
import { ADAPTERS, type AdapterName } from "../lib/config.ts";
import { CASE_NAMES, type CaseName, type Publisher, PUBLISHER_ARGUMENTS, type Report, renderReport, type Rig, startRig } from "../support/conformance.ts";
import { commandFor, ROOT, runToEnd } from "../support/scripts.ts";

// Outside CI a missing interpreter or extension skips its publisher with how to get it; in CI
// (CI=true, where .ci/run installs them) those tests run and fail instead.
const inCI = process.env.CI === "true";
const missing = (command: string[], install: string) => (spawnSync(command[0]!, command.slice(1)).status === 0 ? null : `not installed: apt-get install -y ${install}`);
const noPython = missing(["/usr/bin/python3", "-c", "import redis, msgpack"], "python3-redis python3-msgpack");
const noPhp = missing(["php", "-r", 'exit(extension_loaded("redis") && extension_loaded("msgpack") ? 0 : 1);'], "php-cli php-redis php-msgpack");
const skipUnlessCI = (problem: string | null) => (problem !== null && !inCI ? problem : false);

interface Checked extends Publisher {
  name: string;
  adapters: readonly AdapterName[];
  /** Why it cannot run here, or null. */
  missing: string | null;
}

const PUBLISHERS: Checked[] = [
  { name: "emitter.ts", command: commandFor("node", "emitter.ts", PUBLISHER_ARGUMENTS), adapters: ADAPTERS, missing: null },
  { name: "publishers/publish.py", command: ["/usr/bin/python3", "publishers/publish.py", ...PUBLISHER_ARGUMENTS], adapters: ADAPTERS, missing: noPython },
  { name: "publishers/publish.php", command: ["php", "publishers/publish.php", ...PUBLISHER_ARGUMENTS], adapters: ADAPTERS, missing: noPhp },
  // The post's emitter speaks the classic format only; it has no except.
  { name: "socket.io-emitter 3.2.0", command: commandFor("node", "test/fixtures/emitter-2017.ts", PUBLISHER_ARGUMENTS), adapters: ["classic"], unsupported: ["except"], missing: null },
];

for (const adapter of ADAPTERS) {
  describe(`ADAPTER=${adapter}: the publishers through the conformance check`, () => {
    let rig: Rig;
    const reports = new Map<string, Report>();

    before(async () => {
      rig = await startRig(adapter);
    });

    after(async () => {
      await rig?.stop();
    });

    for (const publisher of PUBLISHERS.filter((p) => p.adapters.includes(adapter))) {
      const lacks = publisher.unsupported ?? [];
      test(`${publisher.name}: ${lacks.length === 0 ? "every case passes" : `every case passes but ${lacks.join(", ")}, reported as not supported`}`, { skip: skipUnlessCI(publisher.missing) }, async (t) => {
        if (publisher.missing) throw new Error(`CI=true: ${publisher.missing}`);
        const report = await rig.check(publisher);
        printed(t, report);
        reports.set(publisher.name, report);
        assert.deepEqual(outcomes(report), Object.fromEntries(CASE_NAMES.map((name) => [name, lacks.includes(name) ? "not supported" : "pass"])));
        assert.equal(report.passed, true);
      });
    }

    test("publish.php sends to Redis, case by case, the very bytes publish.py sends", { skip: skipUnlessCI(noPython ?? noPhp) }, () => {
      const [python, php] = ["publishers/publish.py", "publishers/publish.php"].map((name) => reports.get(name));
      assert.ok(python && php, "both publishers ran above");
      for (const [i, result] of python.results.entries()) {
        assert.equal(result.sent.length, 1, `${result.name}: one command`);
        assert.deepEqual(php.results[i]!.sent.map((c) => c.args), result.sent.map((c) => c.args), result.name);
      }
    });

    if (adapter === "sharded") {
      test("the check fails a publisher that writes another adapter's format: publish.py with ADAPTER=classic reaches no one", { skip: skipUnlessCI(noPython) }, async (t) => {
        if (noPython) throw new Error(`CI=true: ${noPython}`);
        const report = await rig.check({ command: ["env", "ADAPTER=classic", "/usr/bin/python3", "publishers/publish.py", ...PUBLISHER_ARGUMENTS] });
        printed(t, report);
        assert.equal(report.passed, false);
        assert.deepEqual(outcomes(report), Object.fromEntries(CASE_NAMES.map((name) => [name, "fail"])));
        assert.deepEqual(report.results.map((r) => r.got), CASE_NAMES.map(() => []));
        assert.ok(report.results.every((r) => r.sent.length === 1 && r.sent[0]!.args.startsWith('"PUBLISH"')), "it did publish, where no worker listens");
      });
    }
  });
}

describe("npm run conformance", () => {
  const conformance = (args: string[]) => spawnSync("npm", ["run", "-s", "conformance", "--", ...args], { cwd: ROOT, encoding: "utf8", timeout: 150_000 });
  const pasted = (shell: string) => spawnSync("bash", ["-euc", shell], { cwd: ROOT, encoding: "utf8", timeout: 150_000 });

  test("what cannot be checked is one line and exit code 2, before anything starts", async () => {
    const cases: [string[], RegExp][] = [
      [["emitter.ts"], /^the publisher's command goes after "--"/],
      [["--adapter", "cluster", "--", "true", "{message}"], /^--adapter takes classic, sharded, streams, got "cluster"$/],
      [["--unsupported", "acks", "--", "true", "{message}"], /^--unsupported takes cases among broadcast, socket, room, except, namespace, user, got "acks"$/],
      [["--", "true", "--to={room}"], /^the command must pass \{message\} on/],
      [["--", "true", "{message}", "{rooms}"], /^unknown placeholder \{rooms\}: the placeholders are \{message\} \{nsp\}/],
      [["--", "no-such-publisher", "{message}"], /^no-such-publisher: not found on PATH$/],
      [["--", "publishers/nothing.py", "{message}"], /^publishers\/nothing\.py: no such executable/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runToEnd("tools/conformance.ts", args, {}, "node", 60_000)));
    for (const [i, { code, stderr }] of runs.entries()) {
      assert.equal(code, 2, cases[i]![0].join(" "));
      assert.equal(stderr.length, 1, stderr.join("\n"));
      assert.match(stderr[0]!, cases[i]![1]);
    }
  });

  test("the redis-cli recipe, pasted as docs/learn/any-language.md writes it: exit 0, except and namespace not supported, and what they did", (t) => {
    const page = readFileSync(`${ROOT}docs/learn/any-language.md`, "utf8");
    const blocks = [...page.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
    const definition = blocks.find((block) => /^publish\(\) \{$/m.test(block));
    const check = blocks.find((block) => block.includes("run -s conformance") && block.includes("declare -f publish"));
    assert.ok(definition && check, "the page defines publish() and shows how to check it");
    const { status, stdout, stderr } = pasted(`${definition}\n${check}`);
    for (const line of stdout.trimEnd().split("\n")) t.diagnostic(line);
    assert.equal(status, 0, stderr);
    const rows = tableRows(stdout);
    assert.deepEqual(Object.fromEntries(rows.map(([name, , , , result]) => [name, result])), {
      broadcast: "pass", socket: "pass", room: "pass", user: "pass", except: "not supported by this publisher", namespace: "not supported by this publisher",
    });
    // Without except and namespaces, the recipe sends both to every socket of "/": what the table shows.
    const everyone = rows.find(([name]) => name === "broadcast")![3];
    assert.equal(rows.find(([name]) => name === "except")![3], everyone);
    assert.equal(rows.find(([name]) => name === "namespace")![3], everyone);
  });

  test("a publisher that reaches no one: socket.io-emitter 3.2.0 under ADAPTER=streams fails every case it has, exit 1", (t) => {
    const command = ["--adapter", "streams", "--unsupported", "except", "--", "node", "--import", "tsx", "test/fixtures/emitter-2017.ts", ...PUBLISHER_ARGUMENTS];
    const { status, stdout, stderr } = conformance(command);
    for (const line of stdout.trimEnd().split("\n")) t.diagnostic(line);
    assert.equal(status, 1, stderr);
    const rows = tableRows(stdout);
    assert.deepEqual(rows.map(([name, , , got, result]) => [name, got, result]), CASE_NAMES.map((name) => [name, "nobody", name === "except" ? "not supported by this publisher" : "fail"]));
    assert.match(stdout, /^broadcast: exit 0; sent to Redis: "publish" "socket\.io#\/#" /m);
  });
});

function outcomes(report: Report): Record<CaseName, string> {
  return Object.fromEntries(report.results.map((result) => [result.name, result.outcome])) as Record<CaseName, string>;
}

function printed(t: TestContext, report: Report) {
  for (const line of renderReport(report).split("\n")) t.diagnostic(line);
}

/** The rows of the check's table: case name, placeholders, expected, got, result. */
function tableRows(stdout: string): string[][] {
  return stdout
    .split("\n")
    .filter((line) => /^\| \w+: /.test(line))
    .map((line) => line.slice(2, -2).split(" | "))
    .map(([about, ...rest]) => [about!.split(":")[0]!, ...rest]);
}

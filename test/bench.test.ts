/**
 * npm run bench, run small: it must print the whole table with the cluster and the baseline side by
 * side, count every message, and refuse bad options with one line. No timing is asserted: the
 * figures are the benchmark's business, not the test's.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { ROOT } from "../support/scripts.ts";

const bench = (args: string[], timeout = 180_000) =>
  spawnSync(process.execPath, ["--import", "tsx", "bench/bench.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout, env: { ...process.env, NO_COLOR: "1" } });

describe("npm run bench", () => {
  test("a small run prints the table for the baseline and the cluster", () => {
    const { status, stdout, stderr } = bench(["--clients", "20", "--messages", "20", "--rate", "20", "--seconds", "1", "--repetitions", "1", "--client-processes", "2"]);
    assert.equal(status, 0, `bench failed:\n${stdout}\n${stderr}`);
    const row = (label: string) => {
      const line = stdout.split("\n").find((l) => l.startsWith(label));
      assert.ok(line, `no "${label}" row in:\n${stdout}`);
      return line.slice(label.length).trim().split(/\s+/);
    };
    assert.match(stdout, /^\s+baseline\s+cluster$/m, "one column for each configuration");
    // 20 clients x (20 + 20) messages each, for both configurations: nothing missing, nothing extra.
    assert.deepEqual(row("lost messages"), ["0", "0"]);
    assert.deepEqual(row("duplicated messages"), ["0", "0"]);
    assert.deepEqual(row("reordered messages"), ["0", "0"]);
    assert.deepEqual(row("clients not connected"), ["0", "0"]);
    for (const value of row("delivered/s")) assert.ok(Number(value) > 0, `delivered/s is ${value}`);
    assert.equal(row("  ratio to baseline").length, 1, "the ratio is printed for the cluster only");
    for (const value of row("server KiB per connection")) assert.ok(Number.isFinite(Number(value)));
  });

  test("bad options get one line and exit code 2", () => {
    for (const args of [["--clients", "lots"], ["--runtime", "python"], ["--adapter", "mongo"], ["--nope"], ["--variant", "=1"]]) {
      const { status, stdout, stderr } = bench(args, 30_000);
      assert.equal(status, 2, `${args.join(" ")}: exit ${status}`);
      assert.equal(stdout, "");
      assert.match(stderr, /^bench: .+\nusage: npm run bench/, `${args.join(" ")}: ${stderr}`);
      assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
    }
  });
});

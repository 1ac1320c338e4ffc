/**
 * npm run bench:scale, run small (2,000 connections) so that it cannot rot: the light clients all
 * connect to the floor and to the kit, every broadcast reaches every one of them, the table and the
 * ratios are printed, bursts and the kit on Bun reach every client, and bad options get one line and
 * exit code 2. No timing is asserted: the figures are the benchmark's business (docs/reference/performance.md#connections-on-one-machine).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { ROOT } from "../support/scripts.ts";

const scale = (args: string[], timeout = 300_000) =>
  spawnSync(process.execPath, ["--import", "tsx", "bench/scale.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout, env: { ...process.env, NO_COLOR: "1" } });

describe("npm run bench:scale", () => {
  test("2,000 light clients: all connect to the floor and the kit, every broadcast reaches all", () => {
    const { status, stdout, stderr } = scale(["--n", "1000,2000", "--idle-seconds", "1", "--broadcasts", "2"]);
    assert.equal(status, 0, `bench:scale failed:\n${stdout}\n${stderr}`);
    for (const server of ["floor", "kit"]) {
      for (const n of [1000, 2000]) {
        const row = stdout.split("\n").find((line) => new RegExp(`^${server}\\s+${n}\\s`).test(line));
        assert.ok(row, `no ${server} row for N=${n} in:\n${stdout}`);
        const lost = row.trim().split(/\s+/).at(-1);
        assert.equal(lost, "0", `${server} N=${n}: lost or not connected ${lost}`);
        assert.match(stdout, new RegExp(`^${server} N=${n}: ${n} connected in .*lost 0, dropped 0$`, "m"));
      }
    }
    assert.match(stdout, /^ {2}kit: RSS -?[\d.]+ KiB \(-?[\d.]+x the floor\), heap [\d.]+ KiB$/m, "the memory slope beside the floor");
    assert.match(stdout, /^ {2}kit N=2000: CPU per delivery [\d.]+x, median [\d.]+x, last [\d.]+x/m, "the ratios at each N");
  });

  test("bursts, and the kit on Bun beside Node: every message of every burst reaches every client", () => {
    const { status, stdout, stderr } = scale(["--servers", "kit", "--variant", "bun", "--n", "500", "--idle-seconds", "1", "--broadcasts", "2", "--burst", "5"]);
    assert.equal(status, 0, `bench:scale failed:\n${stdout}\n${stderr}`);
    assert.match(stdout, /2 broadcasts of 5 messages each/);
    for (const server of ["kit", "kit on bun"]) assert.match(stdout, new RegExp(`^${server} N=500: 500 connected in .*lost 0, dropped 0$`, "m"));
  });

  test("bad options get one line and exit code 2", () => {
    for (const args of [["--n", "2000,1000"], ["--n", "lots"], ["--workers", "1", "--n", "40000"], ["--servers", "nginx"], ["--nope"], ["--variant", "NOEQUALS"], ["--burst", "0"], ["--variant", "bun,--max-semi-space-size=64"]]) {
      const { status, stdout, stderr } = scale(args, 30_000);
      assert.equal(status, 2, `${args.join(" ")}: exit ${status}`);
      assert.equal(stdout, "");
      assert.match(stderr, /^scale: .+\nusage: npm run bench:scale/, `${args.join(" ")}: ${stderr}`);
      assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
    }
  });
});


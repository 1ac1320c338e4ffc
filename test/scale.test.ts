/**
 * npm run bench:scale, run small (2,000 connections) so that it cannot rot: the light clients all
 * connect to the floor and to the kit, every broadcast reaches every one of them, the table and the
 * ratios are printed, and bad options get one line and exit code 2. No timing is asserted: the
 * figures are the benchmark's business (docs/reference/performance.md#connections-on-one-machine).
 * Also: the handshake request that lib/worker/handshake-request.ts lets go of leaves socket.io's
 * handshakes as they were.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";
import { Manager } from "socket.io-client";
import { startCluster } from "../support/cluster.ts";
import { ROOT, sleep } from "../support/scripts.ts";

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
    assert.match(stdout, /^ {2}kit: [\d.]+ KiB, [\d.]+x the floor$/m, "the memory slope beside the floor");
    assert.match(stdout, /^ {2}kit N=2000: CPU per delivery [\d.]+x, median [\d.]+x, last [\d.]+x/m, "the ratios at each N");
  });

  test("bad options get one line and exit code 2", () => {
    for (const args of [["--n", "2000,1000"], ["--n", "lots"], ["--workers", "1", "--n", "40000"], ["--servers", "nginx"], ["--nope"], ["--variant", "NOEQUALS"]]) {
      const { status, stdout, stderr } = scale(args, 30_000);
      assert.equal(status, 2, `${args.join(" ")}: exit ${status}`);
      assert.equal(stdout, "");
      assert.match(stderr, /^scale: .+\nusage: npm run bench:scale/, `${args.join(" ")}: ${stderr}`);
      assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
    }
  });
});

// lib/worker/handshake-request.ts lets go of engine.io's request: what socket.io builds from it must
// not change, also for a namespace joined after the request was swapped.
describe("the handshake request, released", () => {
  test("a namespace joined later still has the headers, url and query, on both transports", async (t) => {
    const cluster = await startCluster();
    const pub = createClient({ url: cluster.redis.url });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    // Another server on the same Redis lists the kit's sockets with their handshakes (fetchSockets).
    const io = new Server({ adapter: createAdapter(pub, sub, { publishOnSpecificResponseChannel: true }) });
    const managers: Manager[] = [];
    t.after(async () => {
      for (const manager of managers) manager.engine?.close();
      await io.of("/").adapter.close();
      await io.of("/lounge").adapter.close();
      await Promise.allSettled([pub.close(), sub.close()]);
      await cluster.stop();
    });
    for (const transports of [["websocket"], ["polling"]]) {
      const manager = new Manager(cluster.url, { transports, extraHeaders: { "x-probe": transports[0]! }, query: { probe: transports[0]! }, reconnection: false });
      managers.push(manager);
      const main = manager.socket("/", { auth: { name: "main" } });
      await new Promise((connected) => main.once("connect", () => connected(null)));
      await sleep(500); // the request is swapped by now
      const lounge = manager.socket("/lounge", { auth: { name: "lounge" } });
      await new Promise((connected) => lounge.once("connect", () => connected(null)));
      for (const [nsp, socket] of [["/", main], ["/lounge", lounge]] as const) {
        const found = (await io.of(nsp).fetchSockets()).find((s) => s.id === socket.id);
        assert.ok(found, `${transports[0]} ${nsp}: socket not listed`);
        const { headers, url, query, secure, xdomain } = found.handshake;
        assert.equal(headers["x-probe"], transports[0], `${transports[0]} ${nsp}: headers ${JSON.stringify(headers)}`);
        assert.match(url, /^\/socket\.io\/\?/);
        assert.equal(query.probe, transports[0]);
        assert.equal(query.EIO, "4");
        assert.equal(secure, false);
        assert.equal(xdomain, false);
      }
    }
  });
});

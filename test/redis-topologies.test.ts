/**
 * Every adapter on a Redis Cluster (3 masters + 3 replicas) and on a Sentinel group (1 master,
 * 1 replica, 3 sentinels), with index.ts on two hosts (network namespaces, support/topology/):
 * a client on each host chat with each other, both get the emitter's broadcast and only the
 * targeted one its message; emitter.ts --list and --ack hear both hosts. Then the master that carries the adapter's traffic is killed (kill -9):
 * nothing crashes, each worker logs the outage once, the emitter ends in one line rather than
 * hanging, and delivery comes back by itself. The time it took is printed (docs/reference/production.md).
 * One topology serves every case; the killed node is started again (it rejoins as a replica).
 *
 * Needs root for `ip netns`; skipped with the reason when that fails, except under CI=true.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createSentinel } from "redis";
import { Server } from "socket.io";
import { ADAPTERS, readRedisConfig } from "../lib/config.ts";
import { createRedisClient } from "../lib/redis/client.ts";
import { run, runToEnd, type Script, sleep, stopAll } from "../support/scripts.ts";
import { type Topology, up } from "../support/topology/hosts.ts";
import { cannotCreateNamespaces, type Namespace } from "../support/topology/namespaces.ts";

const unavailable = cannotCreateNamespaces();
const skip = unavailable && process.env.CI !== "true" ? `cannot run hosts here: ${unavailable}` : false;

describe("Redis Cluster and Sentinel, two hosts, every adapter", { skip }, () => {
  let topology: Topology;
  const figures: string[] = [];

  before(async () => {
    if (unavailable) throw new Error(`CI=true, and hosts cannot run here: ${unavailable}`);
    topology = await up({ hosts: 2, clients: 2, cluster: true, sentinel: true });
  });

  after(async () => {
    await stopAll();
    await topology?.down();
    if (figures.length) console.log(`failover, kill -9 of the master to delivery back:\n${figures.join("\n")}`);
  });

  test("Sentinel: the adapters' sendCommand(args) reaches the master through the shim, and fails without it", async () => {
    const { REDIS_SENTINEL_URLS, REDIS_SENTINEL_MASTER } = topology.redis.sentinel!;
    const { redis } = readRedisConfig({ REDIS_SENTINEL_URLS, REDIS_SENTINEL_MASTER });
    const options = { connectTimeout: 5000, reconnectStrategy: false as const, commandFailed: () => {} };
    const pub = createRedisClient(redis, options);
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    // The form the adapters use for PUBSUB NUMSUB (fetchSockets, serverSideEmit with an ack).
    assert.deepEqual(await pub.sendCommand(["PUBSUB", "NUMSUB", "nobody"]), ["nobody", 0]);
    // fetchSockets() first counts the servers with PUBSUB NUMSUB (SHARDNUMSUB): through sendCommand(args).
    // (The streams adapter's count is the same code; its reader loop is not worth starting here.)
    for (const adapter of [createAdapter(pub, sub, { publishOnSpecificResponseChannel: true }), createShardedAdapter(pub, sub)]) {
      const io = new Server({ adapter });
      assert.deepEqual(await io.fetchSockets(), []);
      await Promise.allSettled([io.of("/").adapter.close()]);
    }
    // Without the shim, node-redis's own client takes the array as isReadonly and has no command.
    const plain = createSentinel({ name: REDIS_SENTINEL_MASTER, sentinelRootNodes: [{ host: topology.redis.ip, port: 26381 }] });
    await plain.connect();
    await assert.rejects(async () => (plain.sendCommand as unknown as (args: string[]) => Promise<unknown>)(["PUBSUB", "NUMSUB", "nobody"]));
    await Promise.all([pub.close(), sub.close(), plain.close()]);
  });

  for (const kind of ["cluster", "sentinel"] as const) {
    for (const adapter of ADAPTERS) {
      test(`${kind}, ADAPTER=${adapter}: chat across hosts, emitter, a master killed`, async () => {
        await topology.redis.waitHealthy(); // the node killed by the case before is back and linked
        const env = { ...(kind === "cluster" ? topology.redis.cluster! : topology.redis.sentinel!), ADAPTER: adapter };
        // One worker per host: then "the master this host's subscriber uses" is one node.
        const hosts = await topology.startHosts(env, 1);
        const [c1, c2] = topology.clients as [Namespace, Namespace];
        const [h1, h2] = topology.hosts as [Namespace, Namespace];
        const a = run("client.ts", ["A"], { SERVER_URL: `http://${h1.ip}:3000` }, "node", { netns: c1.netns });
        const b = run("client.ts", ["B"], { SERVER_URL: `http://${h2.ip}:3000` }, "node", { netns: c2.netns });
        let victim: number | undefined;
        try {
        const idA = (await a.waitFor(/^connected, id: (\S+)$/, 15_000))[1]!;
        const idB = (await b.waitFor(/^connected, id: (\S+)$/, 15_000))[1]!;
        assert.equal(await topology.hostOf(hosts, idA), 0);
        assert.equal(await topology.hostOf(hosts, idB), 1);

        await chatAndEmit(a, b, idB, env, "before");
        // The questions count the servers on every node (lib/emitter/requests.ts): both hosts answer.
        const listed = await runToEnd("emitter.ts", ["--list"], env, "node", 30_000);
        assert.deepEqual([listed.code, listed.stdout.at(-1)], [0, "2 sockets, 2 of 2 servers answered"], listed.stderr.join("\n"));
        const acked = await runToEnd("emitter.ts", ["--ack", "--user", "B", "--message", "ack from B?"], env, "node", 30_000);
        assert.deepEqual([acked.code, acked.stdout], [0, ["acknowledged by 1 of 1 client, 2 of 2 servers answered"]], `${acked.stderr.join("\n")}; B printed ${JSON.stringify(b.stdout.slice(-3))}, B's host ${JSON.stringify(hosts[1]!.stdout.slice(-5))} ${JSON.stringify(hosts[1]!.stderr.slice(-5))}`);

        // The node that carries this adapter's traffic for host 2: the sharded channel's master, the
        // stream's master, the node host 2's classic subscriber sits on, or Sentinel's master.
        victim =
          kind === "sentinel"
            ? await topology.redis.sentinelMasterPort()
            : adapter === "classic"
              ? await topology.redis.clusterMasterOfSubscribers(h2.ip)
              : await topology.redis.clusterMasterOf(adapter === "streams" ? "socket.io" : "socket.io#/#");
        const killedAt = Date.now();
        await topology.redis.kill(victim);

        // The emitter while the master is away: an answer (sent, or one line and exit 1), never a hang.
        const during = runToEnd("emitter.ts", ["--message", "during the outage"], env, "node", 20_000);

        // A and B keep writing; delivery is back once a line has crossed each way after the kill.
        // Each host's connections switch to the new master on their own retry schedule, so one
        // direction may come back seconds before the other (a PUBLISH in between is lost, counted).
        let back = -1;
        const crossed = (to: Script, from: string) => to.stdout.some((line) => new RegExp(`^seq \\d+ from ${from}$`).test(line));
        const firstWay: string[] = [];
        for (let i = 0; Date.now() - killedAt < 30_000; i++) {
          a.send(`seq ${i}`);
          b.send(`seq ${i}`);
          await sleep(250);
          if (firstWay.length === 0 && (crossed(b, "A") || crossed(a, "B"))) firstWay.push(`${crossed(b, "A") ? "A to B" : "B to A"} after ${Date.now() - killedAt} ms`);
          if (crossed(b, "A") && crossed(a, "B")) {
            back = Date.now() - killedAt;
            break;
          }
        }
        const emitted = await during;
        assert.ok(back > 0, `delivery did not come back within 30 s; host 2 said:\n${hosts[1]!.stderr.join("\n")}`);
        assert.ok(emitted.ms < 20_000 && emitted.code !== null, "the emitter hung while the master was away");
        assert.ok(emitted.code === 0 || (emitted.code === 1 && emitted.stderr.length === 1), `emitter: ${emitted.code} ${emitted.stderr.join("\n")}`);

        await chatAndEmit(a, b, idB, env, "after");
        figures.push(`  ${kind.padEnd(8)} ${adapter.padEnd(7)} ${back} ms, ${firstWay[0]} (emitter meanwhile: exit ${emitted.code} after ${emitted.ms} ms${emitted.stderr[0] ? `, "${emitted.stderr[0]}"` : ""})`);

        // Nothing crashed, and the outage is one line per worker, not one per retry or node.
        for (const host of hosts) {
          assert.equal(host.child.exitCode, null, "a host stopped");
          assert.ok(!host.stdout.some((line) => /died/.test(line)), `a worker died:\n${host.stdout.join("\n")}`);
          const lost = host.stderr.filter((line) => /lost Redis/.test(line));
          assert.ok(lost.length <= 1, `more than one line for one outage:\n${host.stderr.join("\n")}`);
          const other = host.stderr.filter((line) => line && !/lost Redis|Redis refused a command/.test(line));
          assert.deepEqual(other, []);
        }
        for (const client of [a, b]) assert.equal(client.child.exitCode, null);

        } finally {
          await a.stop();
          await b.stop();
          await topology.stopHosts();
          if (victim !== undefined) await topology.redis.restart(victim); // rejoins as a replica; the next case waits for it
        }
      });
    }
  }
});

/** A and B chat both ways; the emitter reaches both, then B alone; nothing else arrives. */
async function chatAndEmit(a: Script, b: Script, idB: string, env: Record<string, string>, tag: string) {
  const fromA = b.stdout.length;
  const fromB = a.stdout.length;
  a.send(`hello ${tag} from A`);
  await b.waitFor(`hello ${tag} from A from A`, 10_000, fromA);
  b.send(`hello ${tag} from B`);
  await a.waitFor(`hello ${tag} from B from B`, 10_000, fromB);

  const everyone = await runToEnd("emitter.ts", ["--message", `to everyone ${tag}`], env);
  assert.equal(everyone.code, 0, everyone.stderr.join("\n"));
  await Promise.all([a.waitFor(`to everyone ${tag}`, 10_000, fromB), b.waitFor(`to everyone ${tag}`, 10_000, fromA)]);

  const toB = await runToEnd("emitter.ts", [idB, "--message", `to B only ${tag}`], env);
  assert.equal(toB.code, 0, toB.stderr.join("\n"));
  await b.waitFor(`to B only ${tag}`, 10_000, fromA);
  // A last broadcast: once A has it, anything meant for A has arrived too (same path, in order).
  const last = await runToEnd("emitter.ts", ["--message", `last ${tag}`], env);
  assert.equal(last.code, 0, last.stderr.join("\n"));
  await a.waitFor(`last ${tag}`, 10_000, fromB);
  assert.ok(!a.stdout.slice(fromB).some((line) => line.includes("to B only")), "A got B's message");
}


describe("Redis topology settings", () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ["two topologies", { REDIS_URL: "redis://a:1", REDIS_CLUSTER_URLS: "redis://b:2" }, /REDIS_URL and REDIS_CLUSTER_URLS are both set/],
    ["cluster and sentinel", { REDIS_CLUSTER_URLS: "redis://b:2", REDIS_SENTINEL_URLS: "redis://c:3", REDIS_SENTINEL_MASTER: "m" }, /both set/],
    ["a bad seed", { REDIS_CLUSTER_URLS: "redis://b:2,http://c:3" }, /REDIS_CLUSTER_URLS must be comma-separated redis:\/\/ or rediss:\/\/ URLs, got "http:\/\/c:3\/?"/],
    ["mixed TLS", { REDIS_CLUSTER_URLS: "redis://b:2,rediss://c:3" }, /mixes redis:\/\/ and rediss:\/\//],
    ["no master name", { REDIS_SENTINEL_URLS: "redis://c:26379" }, /REDIS_SENTINEL_MASTER must name the master/],
    ["a master name alone", { REDIS_SENTINEL_MASTER: "kit" }, /REDIS_SENTINEL_MASTER goes with REDIS_SENTINEL_URLS/],
    ["a password in a bad URL", { REDIS_SENTINEL_URLS: "redis://:secret@c:1,nope://:secret@d", REDIS_SENTINEL_MASTER: "kit" }, /got "nope:\/\/:\*\*\*@d"/],
  ];
  for (const script of ["index.ts", "emitter.ts"]) {
    test(`${script}: bad or conflicting Redis settings are one line and exit code 2`, async () => {
      for (const [what, env, expected] of cases) {
        const clean = { REDIS_URL: "", REDIS_CLUSTER_URLS: "", REDIS_SENTINEL_URLS: "", REDIS_SENTINEL_MASTER: "", ...env };
        const result = await runToEnd(script, [], clean);
        assert.equal(result.code, 2, `${what}: ${result.stderr.join("\n")}`);
        assert.equal(result.stderr.length, 1, `${what}: ${result.stderr.join("\n")}`);
        assert.match(result.stderr[0]!, expected, what);
        assert.ok(!result.stderr[0]!.includes("secret"), `${what}: a password in the log`);
      }
    });
  }
});

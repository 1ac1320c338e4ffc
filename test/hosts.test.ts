/**
 * Two hosts (network namespaces, each running index.ts with 2 workers) behind the three load
 * balancers of hosts/: nginx hashing the client address, HAProxy's cookie, nginx round robin.
 * Through each, a client that landed on host 1 and one that landed on host 2 chat with each
 * other, both get the emitter's broadcast and only the targeted one its message. Round robin in
 * front of a long-polling client fails the way docs/reference/production.md says (HTTP 400
 * "Session ID unknown"), and so does HAProxy for a client that keeps no cookie; websocket-only
 * clients need no stickiness. Each client runs in its own namespace: its own source address;
 * clients that share one (as behind a NAT) all land on one host under address hashing. HAProxy
 * health-checks /readyz: a host whose path to Redis is down gets no new session until it is back.
 *
 * Needs root for `ip netns`; skipped with the reason when that fails, except under CI=true.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { run, runToEnd, type Script, sleep, stopAll } from "../support/scripts.ts";
import type { BalancerName } from "../support/topology/balancers.ts";
import { type Topology, up } from "../support/topology/hosts.ts";
import { cannotCreateNamespaces } from "../support/topology/namespaces.ts";

const unavailable = cannotCreateNamespaces();
const skip = unavailable && process.env.CI !== "true" ? `cannot run hosts here: ${unavailable}` : false;

describe("two hosts behind nginx, HAProxy and round robin", { skip }, () => {
  let topology: Topology;
  let balancers: Record<BalancerName, string>;
  let hosts: Script[];
  let env: Record<string, string>;
  const matrix: string[] = [];

  before(async () => {
    if (unavailable) throw new Error(`CI=true, and hosts cannot run here: ${unavailable}`);
    topology = await up({ hosts: 2, clients: 6, single: true, balancers: true });
    balancers = topology.balancers!;
    env = topology.redis.single!;
    hosts = await topology.startHosts(env, 2);
  });

  after(async () => {
    await stopAll();
    await topology?.down();
    if (matrix.length) console.log(`balancer matrix:\n${matrix.join("\n")}`);
  });

  /** Starts client.ts in one client namespace after another until one sits on each host. */
  async function clientOnEachHost(balancer: BalancerName, clientEnv: Record<string, string>) {
    const byHost = new Map<number, { script: Script; id: string }>();
    const landed: number[] = [];
    for (const ns of topology.clients) {
      const script = run("client.ts", [`U${ns.name}`], { SERVER_URL: balancers[balancer], ...clientEnv }, "node", { netns: ns.netns });
      const id = (await script.waitFor(/^connected, id: (\S+)$/, 15_000))[1]!;
      const host = await topology.hostOf(hosts, id);
      assert.ok(host >= 0, `no host logged the connection of ${id}`);
      landed.push(host);
      if (byHost.has(host)) await script.stop();
      else byHost.set(host, { script, id });
      if (byHost.size === 2) break;
    }
    assert.equal(byHost.size, 2, `every client landed on one host (${landed.join(", ")})`);
    return { one: byHost.get(0)!, two: byHost.get(1)!, tried: landed.length };
  }

  const cases: { balancer: BalancerName; clientEnv: Record<string, string>; label: string }[] = [
    { balancer: "nginx", clientEnv: {}, label: "nginx hash $remote_addr, default transports" },
    { balancer: "haproxy", clientEnv: { WITH_CREDENTIALS: "1" }, label: "HAProxy cookie, default transports, WITH_CREDENTIALS=1" },
    { balancer: "roundRobin", clientEnv: { TRANSPORTS: "websocket" }, label: "round robin, TRANSPORTS=websocket" },
  ];
  for (const { balancer, clientEnv, label } of cases) {
    test(`${label}: a client on each host chat, the emitter reaches both, then one`, async () => {
      const started = Date.now();
      const { one, two, tried } = await clientOnEachHost(balancer, clientEnv);
      const [a, b] = [one.script, two.script];
      const fromA = b.stdout.length;
      const fromB = a.stdout.length;
      a.send("hello from host 1");
      await b.waitFor("hello from host 1 from U", 10_000, fromA);
      b.send("hello from host 2");
      await a.waitFor("hello from host 2 from U", 10_000, fromB);

      const everyone = await runToEnd("emitter.ts", ["--message", `everyone via ${balancer}`], env);
      assert.equal(everyone.code, 0, everyone.stderr.join("\n"));
      await Promise.all([a.waitFor(`everyone via ${balancer}`, 10_000, fromB), b.waitFor(`everyone via ${balancer}`, 10_000, fromA)]);
      const toB = await runToEnd("emitter.ts", [two.id, "--message", `only B via ${balancer}`], env);
      assert.equal(toB.code, 0, toB.stderr.join("\n"));
      await b.waitFor(`only B via ${balancer}`, 10_000, fromA);
      const last = await runToEnd("emitter.ts", ["--message", `last via ${balancer}`], env);
      assert.equal(last.code, 0);
      await a.waitFor(`last via ${balancer}`, 10_000, fromB);
      assert.ok(!a.stdout.some((line) => line.includes("only B")), "the other client got the targeted message");
      for (const client of [a, b]) assert.deepEqual(client.stderr.filter(Boolean), []);
      matrix.push(`  ${label.padEnd(58)} works (${tried} clients tried to cover both hosts, ${Date.now() - started} ms)`);
      await a.stop();
      await b.stop();
    });
  }

  test("nginx address hashing: clients sharing one address (one NAT) all land on one host", async () => {
    const landed: number[] = [];
    for (let i = 0; i < 3; i++) {
      const script = run("client.ts", [`N${i}`], { SERVER_URL: balancers.nginx }, "node", { netns: topology.clients[0]!.netns });
      const id = (await script.waitFor(/^connected, id: (\S+)$/, 15_000))[1]!;
      landed.push(await topology.hostOf(hosts, id));
      await script.stop();
    }
    assert.equal(new Set(landed).size, 1, `landed on hosts ${landed.join(", ")}`);
    matrix.push(`  ${"nginx hash, 3 clients behind one address".padEnd(58)} all on host ${landed[0]! + 1}`);
  });

  test("round robin in front of long-polling: the second request reaches the other host, HTTP 400 Session ID unknown", async () => {
    const base = `${balancers.roundRobin}/socket.io/?EIO=4&transport=polling`;
    const handshake = await fetch(base);
    const { sid } = JSON.parse((await handshake.text()).slice(1)) as { sid: string }; // "0{...}": an open packet
    const answers = [];
    for (let i = 0; i < 2; i++) {
      const answer = await fetch(`${base}&sid=${sid}`, { method: "POST", body: "40" });
      answers.push({ status: answer.status, body: await answer.text() });
    }
    // Of two requests in a row, one lands on the host that does not know the session.
    assert.ok(
      answers.some((a) => a.status === 400 && a.body === '{"code":1,"message":"Session ID unknown"}'),
      JSON.stringify(answers),
    );
    // client.ts with default transports through it does not get connected.
    const client = await runToEnd("client.ts", ["P"], { SERVER_URL: balancers.roundRobin }, "node", 20_000, { netns: topology.clients[0]!.netns });
    assert.equal(client.code, 1);
    assert.ok(!client.stdout.some((line) => line.startsWith("connected")), client.stdout.join("\n"));
    matrix.push(`  ${"round robin, default transports (long-polling first)".padEnd(58)} fails: HTTP 400 ${answers.find((a) => a.status === 400)?.body}; client.ts: "${client.stderr[0]}"`);
  });

  test("HAProxy for a client that keeps no cookie: its requests are spread like round robin's", async () => {
    const results: string[] = [];
    for (const ns of topology.clients.slice(0, 2)) {
      const client = await runToEnd("client.ts", ["N"], { SERVER_URL: balancers.haproxy }, "node", 20_000, { netns: ns.netns });
      results.push(client.stdout.some((line) => line.startsWith("connected")) ? "connected" : `failed: ${client.stderr[0]}`);
    }
    assert.ok(results.some((result) => result.startsWith("failed")), results.join("; "));
    matrix.push(`  ${"HAProxy cookie, default transports, no WITH_CREDENTIALS".padEnd(58)} fails: ${results.join("; ")}`);
  });

  test("HAProxy checks /readyz: a host whose path to Redis is down gets no new session, then gets them again", async (t) => {
    const [h1] = topology.hosts;
    const redisAddress = new URL(env.REDIS_URL!).hostname;
    /** Which hosts HAProxy picks for new sessions: the cookie of each of 8 requests without one. */
    const picked = async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 8; i++) {
        const answer = await fetch(`${balancers.haproxy}/`).catch(() => undefined);
        await answer?.text();
        const cookie = answer?.headers.get("set-cookie")?.match(/SERVERID=(h\d)/)?.[1];
        if (cookie) seen.add(cookie);
      }
      return [...seen].sort().join(",");
    };
    const route = (action: "add" | "del") => {
      const result = spawnSync("ip", ["-n", h1!.netns, "route", action, "blackhole", `${redisAddress}/32`], { encoding: "utf8" });
      assert.equal(result.status, 0, result.stderr);
    };
    const waitPicked = async (expected: string, ms: number) => {
      const started = Date.now();
      let last = "";
      while ((last = await picked()) !== expected) {
        if (Date.now() - started > ms) assert.fail(`HAProxy picks ${last}, not ${expected}, after ${ms} ms`);
        await sleep(500);
      }
      return Date.now() - started;
    };
    assert.equal(await picked(), "h1,h2");
    route("add"); // host 1's packets to Redis go nowhere: a path that died without a word
    try {
      const after = await waitPicked("h2", 60_000);
      t.diagnostic(`HAProxy stopped picking host 1 ${after} ms after its path to Redis died (REDIS_TIMEOUT 5 s, checks 2 s apart, fall 2)`);
      assert.match(hosts[0]!.stderr.join("\n"), /has not answered the/);
      for (const ns of topology.clients.slice(0, 3)) {
        const client = run("client.ts", [`R${ns.name}`], { SERVER_URL: balancers.haproxy, WITH_CREDENTIALS: "1" }, "node", { netns: ns.netns });
        const id = (await client.waitFor(/^connected, id: (\S+)$/, 15_000))[1]!;
        assert.equal(await topology.hostOf(hosts, id), 1, "a new session lands on host 2");
        await client.stop();
      }
    } finally {
      route("del");
    }
    const back = await waitPicked("h1,h2", 90_000);
    t.diagnostic(`host 1 picked again ${back} ms after its path was repaired`);
    matrix.push(`  ${"HAProxy httpchk /readyz, host 1's Redis path down".padEnd(58)} new sessions all on host 2; host 1 back ${back} ms after the repair`);
  });
});

/**
 * The chat page (public/, served by lib/worker/page.ts) in a real Chromium (support/browser.ts), against
 * the real clustered index.ts (2 workers), a private Redis, real client.ts and emitter.ts processes,
 * a second local origin and a real nginx on loopback. docs/learn/browser.md tells what it shows.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { roomNameProblem } from "../lib/chat.ts";
import { CHROME, launchBrowser, missingBrowser } from "../support/browser.ts";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import { ROOT, run, runToEnd, type Script, sleep, stopAll } from "../support/scripts.ts";
import { startLoopbackNginx } from "../support/topology/balancers.ts";

/** How long "nothing arrived" is watched for. */
const QUIET_MS = 1000;

// Outside CI a missing browser (or nginx) skips with how to get it; in CI (CI=true) the suite
// runs and fails instead.
const inCI = process.env.CI === "true";
const noBrowser = missingBrowser();
const skipAll = noBrowser !== null && !inCI ? noBrowser : false;
const noNginx = spawnSync("sh", ["-c", "command -v nginx"]).status === 0 ? null : "no nginx on PATH: apt-get install -y nginx";
const skipNginx = skipAll || (noNginx !== null && !inCI ? noNginx : false);

test("ALLOWED_ORIGINS that is not a list of origins: one line, exit code 2", async () => {
  const values = ["localhost:8080", "http://a.example/chat", "ftp://a.example", "http://ok.example, *"];
  const runs = await Promise.all(values.map((value) => runToEnd("index.ts", [], { ALLOWED_ORIGINS: value, PORT: "0", WORKERS: "1" })));
  for (const [i, { code, stderr }] of runs.entries()) {
    assert.equal(code, 2, values[i]);
    assert.equal(stderr.length, 1, stderr.join("\n"));
    assert.match(stderr[0]!, /^ALLOWED_ORIGINS takes origins such as https:\/\/chat\.example\.com/);
  }
});

describe("the chat page in a real Chromium", { skip: skipAll }, () => {
  let cluster: Cluster;
  let browser: Browser;
  let context: BrowserContext;
  let server: Script;
  let port: number;
  let serverUrl: string;
  let env: Record<string, string>;
  let elsewhere: Server;
  let elsewhereOrigin: string;
  let carol: Script;
  let ann: Page;
  let bob: Page;
  let eve: Page; // the page from another origin
  let idAnn: string;
  let idBob: string;
  const pageErrors: string[] = [];
  const consoleErrors: string[] = [];

  before(async () => {
    if (noBrowser) throw new Error(`CI=true: ${noBrowser}`);
    const started = Date.now();
    // The cluster and the browser start side by side; the cluster is kept (for after()) whatever happens.
    const starting = startCluster();
    try {
      elsewhere = await serveElsewhere();
      elsewhereOrigin = `http://127.0.0.1:${(elsewhere.address() as { port: number }).port}`;
      browser = await launchBrowser();
      console.log(`# browser: Chromium ${browser.version()} (${CHROME}), playwright-core ${playwrightVersion()}`);
      context = await browser.newContext(); // one profile, as two windows of one browser
    } finally {
      cluster = await starting;
    }
    ({ server, port, url: serverUrl, env } = cluster);
    console.log(`# set-up: ${Date.now() - started} ms`);
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    elsewhere?.close();
    await stopAll();
    await cluster?.stop();
  });

  async function openPage(url: string, name: string): Promise<Page> {
    const page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
    page.on("console", (message) => message.type() === "error" && consoleErrors.push(`${name}: ${message.text()}`));
    await page.goto(url);
    await page.fill("#name", name);
    return page;
  }

  test("curl gets the post's answer, a browser gets the page with its Content-Security-Policy", async () => {
    const plain = await fetch(serverUrl);
    assert.match(await plain.text(), /^worker: [12]$/);
    const page = await fetch(serverUrl, { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(page.headers.get("content-security-policy") ?? "", /^default-src 'self';/);
    const html = await page.text();
    assert.match(html, /<meta name="served-by" content="[12]">/);
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)[^>]*>|\son\w+=/, "no inline script or handler");
    const script = await fetch(`${serverUrl}/chat.js`);
    assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
  });

  test("two pages opened one after the other land on different workers, then upgrade to WebSocket", async () => {
    ann = await openPage(serverUrl, "Ann");
    await connected(ann);
    bob = await openPage(serverUrl, "Bob");
    await connected(bob);
    idAnn = (await fact(ann, "socket-id"))!;
    idBob = (await fact(bob, "socket-id"))!;
    const workerOfAnn = await fact(ann, "socket-worker");
    const workerOfBob = await fact(bob, "socket-worker");
    assert.notEqual(workerOfAnn, workerOfBob);
    // What each page says about its socket is what the server logged.
    assert.equal(await workerOf(server, idAnn, 10_000), workerOfAnn);
    assert.equal(await workerOf(server, idBob, 10_000), workerOfBob);
    for (const page of [ann, bob]) {
      assert.match((await fact(page, "page-worker")) ?? "", /^[12]$/);
      await waitForFact(page, "transport", "polling websocket");
    }
  });

  test("the pages chat with each other and with client.ts; nobody gets its own line back", async () => {
    carol = run("client.ts", ["Carol"], env);
    await carol.waitFor(/^connected, id: \S+$/);
    await say(ann, "hello from a browser");
    await waitForLine(bob, "hello from a browser from Ann");
    await carol.waitFor(/^hello from a browser from Ann$/);
    carol.send("hi pages");
    await waitForLine(ann, "hi pages from Carol");
    await waitForLine(bob, "hi pages from Carol");
    await say(bob, "hi Ann");
    await waitForLine(ann, "hi Ann from Bob");
    await carol.waitFor(/^hi Ann from Bob$/);
    await sleep(QUIET_MS);
    assert.deepEqual(await lines(ann), ["hi pages from Carol", "hi Ann from Bob"]);
    assert.deepEqual(await lines(bob), ["hello from a browser from Ann", "hi pages from Carol"]);
    assert.deepEqual(await lines(ann, "own"), ["hello from a browser from Ann"]); // shown by the page itself
    assert.ok(!carol.stdout.includes("hi pages from Carol"), "Carol got her own line back");
  });

  test("emitter.ts reaches both pages, --event too; with a page's socket id only that page", async () => {
    assert.equal((await runToEnd("emitter.ts", [], env)).code, 0);
    await waitForLine(ann, "message from outside");
    await waitForLine(bob, "message from outside");
    assert.equal((await runToEnd("emitter.ts", ["--event", "news", "--message", "read all about it"], env)).code, 0);
    await waitForLine(ann, "news: read all about it", "event");
    await waitForLine(bob, "news: read all about it", "event");
    await carol.waitFor(/^news: read all about it$/);
    assert.equal((await runToEnd("emitter.ts", [idAnn], env)).code, 0);
    await waitForLine(ann, "Hi guys from Emitter");
    await sleep(QUIET_MS);
    assert.ok(!(await lines(bob)).includes("Hi guys from Emitter"), "Bob got Ann's private message");
    assert.ok(!carol.stdout.includes("Hi guys from Emitter"), "Carol got Ann's private message");
  });

  test("emitter.ts --user reaches a page by the name typed in it (open mode), and no one else", async () => {
    assert.equal((await runToEnd("emitter.ts", ["--user", "Ann", "--message", "for Ann by name"], env)).code, 0);
    await waitForLine(ann, "for Ann by name");
    assert.equal((await runToEnd("emitter.ts", ["--user", "Carol", "--message", "for Carol by name"], env)).code, 0);
    await carol.waitFor(/^for Carol by name$/);
    await sleep(QUIET_MS);
    assert.ok(!(await lines(bob)).includes("for Ann by name"), "Bob got Ann's message");
    assert.ok(!(await lines(ann)).includes("for Carol by name"), "Ann got Carol's message");
  });

  test("/join then emitter.ts --room reaches the member only; /leave and refused names work as in client.ts", async () => {
    await say(bob, "/join lobby");
    await waitForLine(bob, "joined lobby", "info");
    assert.equal(await fact(bob, "rooms"), "lobby");
    assert.equal((await runToEnd("emitter.ts", ["--room", "lobby", "--message", "hi lobby"], env)).code, 0);
    await waitForLine(bob, "hi lobby");
    await say(bob, "/leave lobby");
    await waitForLine(bob, "left lobby", "info");
    assert.equal((await runToEnd("emitter.ts", ["--room", "lobby", "--message", "anyone in the lobby?"], env)).code, 0);
    await say(ann, `/join ${idBob}`); // a room named like a socket id would be Bob's private line
    await waitForLine(ann, `cannot join ${idBob}: ${roomNameProblem(idBob)}`, "info");
    await sleep(QUIET_MS);
    assert.ok(!(await lines(ann)).includes("hi lobby"), "Ann got the lobby's message");
    assert.ok(!carol.stdout.includes("hi lobby"), "Carol got the lobby's message");
    assert.ok(!(await lines(bob)).includes("anyone in the lobby?"), "Bob still got the lobby's messages after /leave");
    assert.equal(await fact(ann, "rooms"), "-");
  });

  test("text with markup from a peer is shown as text", async () => {
    const markup = `<img src=x onerror="document.title='owned'"><b>bold</b> & <script>document.title='owned'</script>`;
    carol.send(markup);
    await waitForLine(ann, `${markup} from Carol`);
    await say(bob, markup);
    await waitForLine(ann, `${markup} from Bob`);
    assert.equal(await ann.locator("#messages img, #messages b, #messages script").count(), 0);
    assert.notEqual(await ann.title(), "owned");
  });

  test("a page from another origin cannot connect by any transport", async () => {
    const refusedLines = () => server.stdout.filter((line) => line.includes(`refused a connection: origin ${elsewhereOrigin} `));
    eve = await openPage(`${elsewhereOrigin}/?server=${encodeURIComponent(serverUrl)}`, "Eve");
    await waitForStatus(eve, "cannot connect");
    assert.deepEqual(await tryTransports(eve, serverUrl), { polling: "refused", websocket: "refused", default: "refused" });
    // The same refusal without a browser: HTTP 403 to a long-polling handshake with that Origin.
    const handshake = (headers: Record<string, string>) => fetch(`${serverUrl}/socket.io/?EIO=4&transport=polling`, { headers }).then((res) => res.status);
    assert.equal(await handshake({ origin: elsewhereOrigin }), 403);
    // The scheme is part of the origin; behind a proxy that ends TLS, X-Forwarded-Proto names it.
    assert.equal(await handshake({ origin: serverUrl }), 200);
    assert.equal(await handshake({ origin: serverUrl.replace("http:", "https:") }), 403);
    assert.equal(await handshake({ origin: serverUrl.replace("http:", "https:"), "x-forwarded-proto": "https" }), 200);
    carol.send("is a stranger listening?");
    await waitForLine(ann, "is a stranger listening? from Carol");
    await sleep(QUIET_MS);
    assert.deepEqual(await lines(eve), []);
    assert.equal(await fact(eve, "socket-id"), undefined);
    // At least 6 refusals (the page's own tries, three more, two fetches), logged at most once per worker.
    const logged = refusedLines().length;
    assert.ok(logged >= 1 && logged <= 2, `${logged} log lines:\n${refusedLines().join("\n")}`);
  });

  test("after the server restarts the pages reconnect by themselves; with ALLOWED_ORIGINS the other origin's page gets in", async () => {
    const started = Date.now();
    await server.stop();
    await waitIn(ann, "not connected", () => document.getElementById("status")?.dataset.state !== "connected", undefined);
    ({ server } = await startCluster({ redis: cluster.redis, port, env: { ALLOWED_ORIGINS: elsewhereOrigin } }));
    await connected(ann, 20_000);
    await connected(bob, 20_000);
    console.log(`# both pages back ${Date.now() - started} ms after the stop`);
    assert.notEqual(await fact(ann, "socket-id"), idAnn);
    await waitForFact(ann, "transport", "polling websocket");
    await carol.waitFor(/^connected, id: \S+$/, 20_000, carol.stdout.indexOf("disconnected"));
    await say(ann, "back again");
    await waitForLine(bob, "back again from Ann");
    await carol.waitFor(/^back again from Ann$/, 20_000);
    // Eve's page kept trying on its own and is now let in, and so is every transport from there.
    await connected(eve, 20_000);
    await say(eve, "hello from elsewhere");
    await waitForLine(ann, "hello from elsewhere from Eve");
    assert.deepEqual(await tryTransports(eve, serverUrl), { polling: "connected", websocket: "connected", default: "connected" });
  });

  test("behind nginx: the own-origin rule holds when the proxy forwards the browser's Host header", { skip: skipNginx }, async () => {
    // hosts/nginx.conf as it is, and once more with the one line this test is about changed.
    const keepsHost = await startLoopbackNginx(port);
    const dropsPort = await startLoopbackNginx(port, { "proxy_set_header Host $http_host;": "proxy_set_header Host $host;" }).catch(async (err) => {
      await keepsHost.stop();
      throw err;
    });
    try {
      // proxy_set_header Host $http_host: the server sees the host:port the browser used, so a
      // WebSocket-only connection, whose handshake always carries Origin, is let in too.
      const proxied = `http://127.0.0.1:${keepsHost.port}`;
      const nia = await openPage(`${proxied}/`, "Nia");
      await connected(nia);
      assert.match((await fact(nia, "page-worker")) ?? "", /^[12]$/);
      await waitForFact(nia, "transport", "polling websocket");
      await say(nia, "through nginx");
      await waitForLine(ann, "through nginx from Nia");
      assert.deepEqual(await tryTransports(nia, proxied), { polling: "connected", websocket: "connected", default: "connected" });
      // proxy_set_header Host $host drops the port: the page's own WebSocket handshake no longer
      // matches. Its long-polling handshake still passes, as a same-origin GET carries no Origin
      // (and the upgrade that follows carries the session id): only WebSocket-only clients break.
      const dropped = `http://127.0.0.1:${dropsPort.port}`;
      const hal = await openPage(`${dropped}/`, "Hal");
      await connected(hal);
      assert.deepEqual(await tryTransports(hal, dropped), { polling: "connected", websocket: "refused", default: "connected" });
      await server.waitFor(`refused a connection: origin ${dropped} is neither this server's (http://127.0.0.1) nor in ALLOWED_ORIGINS`);
      // Another origin through the same proxy is refused. http://localhost:P is not the
      // http://127.0.0.1:P of ALLOWED_ORIGINS: an origin is a name, not an address.
      const stranger = elsewhereOrigin.replace("127.0.0.1", "localhost");
      const mal = await openPage(`${stranger}/?server=${encodeURIComponent(proxied)}`, "Mal");
      await waitForStatus(mal, "cannot connect");
      assert.deepEqual(await tryTransports(mal, proxied), { polling: "refused", websocket: "refused", default: "refused" });
    } finally {
      await keepsHost.stop();
      await dropsPort.stop();
    }
  });

  test("no page threw, and the Content-Security-Policy blocked nothing", () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(consoleErrors.filter((line) => /Content Security Policy/i.test(line)), []);
  });
});

describe("the chat page in auth mode (AUTH_SECRET) in a real Chromium", { skip: skipAll }, () => {
  const SECRET = "the browser test's secret, long enough for HS256";
  let cluster: Cluster;
  let browser: Browser;
  let context: BrowserContext;
  const pageErrors: string[] = [];

  before(async () => {
    if (noBrowser) throw new Error(`CI=true: ${noBrowser}`);
    cluster = await startCluster({ env: { AUTH_SECRET: SECRET } });
    browser = await launchBrowser();
    context = await browser.newContext();
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await stopAll();
    await cluster?.stop();
  });

  const token = async (name: string, ttl = "1h") => {
    const minted = await runToEnd("tools/token.ts", [name, "--ttl", ttl], { AUTH_SECRET: SECRET });
    assert.equal(minted.code, 0, minted.stderr.join("\n"));
    return minted.stdout[0]!;
  };

  async function open(url: string): Promise<Page> {
    const page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await page.goto(url);
    return page;
  }

  test("a token in the address's fragment: the page connects as its user, and the fragment is gone from the address", async () => {
    const page = await open(`${cluster.url}/#token=${await token("alice")}`);
    await connected(page);
    assert.equal(new URL(page.url()).hash, "", "the token stayed in the address bar");
    assert.equal(await page.inputValue("#name"), "alice");
    assert.equal(await page.getAttribute("#name", "readonly"), "");
    const dave = run("client.ts", ["dave"], { ...cluster.env, AUTH_TOKEN: await token("dave") });
    await dave.waitFor(/^connected, id: /);
    await say(page, "signed in");
    await dave.waitFor(/^signed in from alice$/);
    assert.equal((await runToEnd("emitter.ts", ["--user", "alice", "--message", "for alice"], cluster.env)).code, 0);
    await waitForLine(page, "for alice");
    await page.close();
  });

  test("without a token the page is refused and asks for one; a pasted token gets it in", async () => {
    const page = await open(cluster.url);
    await waitForStatus(page, "refused by the server (unauthorized: no token");
    assert.equal(await page.isVisible("#auth"), true);
    await page.fill("#token", await token("bea"));
    await page.press("#token", "Enter");
    await connected(page);
    assert.equal(await page.isVisible("#auth"), false);
    assert.equal(await page.inputValue("#name"), "bea");
    await page.close();
  });

  test("at the token's expiry the page says so and asks for a new one", async () => {
    const page = await open(`${cluster.url}/#token=${await token("brief", "3s")}`);
    await connected(page);
    await waitForLine(page, "the token expired", "info", 10_000);
    await waitForStatus(page, "the token expired");
    assert.equal(await page.isVisible("#auth"), true);
    assert.deepEqual(pageErrors, []);
    await page.close();
  });
});

/** A fact from the page's panel (the data-value the page sets), undefined while it has none. */
async function fact(page: Page, id: string): Promise<string | undefined> {
  return (await page.getAttribute(`#${id}`, "data-value")) || undefined;
}

/** page.waitForFunction, with what the page shows when it times out. */
async function waitIn<A>(page: Page, what: string, condition: (arg: A) => unknown, arg: A, ms = 10_000): Promise<void> {
  try {
    // playwright's types cannot follow a generic argument through; the call is the same.
    await page.waitForFunction(condition as never, arg, { polling: 50, timeout: ms });
  } catch (err) {
    const status = await page.textContent("#status").catch(() => "?");
    const shown = await page.$$eval("#messages li", (items) => items.slice(-5).map((item) => item.textContent)).catch(() => []);
    throw new Error(`${page.url()}: not within ${ms} ms: ${what}; status "${status}", last lines: ${JSON.stringify(shown)}`, { cause: err });
  }
}

async function waitForStatus(page: Page, prefix: string, ms = 10_000) {
  await waitIn(page, `status starting "${prefix}"`, (prefix) => document.getElementById("status")?.textContent?.startsWith(prefix), prefix, ms);
}

async function waitForFact(page: Page, id: string, value: string, ms = 10_000) {
  await waitIn(page, `${id} "${value}"`, ([id, value]) => document.getElementById(id)?.dataset.value === value, [id, value], ms);
}

/** Connected, and the worker holding the socket has answered. */
async function connected(page: Page, ms = 10_000) {
  await waitIn(
    page,
    "connected",
    () => document.getElementById("status")?.dataset.state === "connected" && /^\d+$/.test(document.getElementById("socket-worker")?.dataset.value ?? ""),
    undefined,
    ms,
  );
}

async function say(page: Page, text: string) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

/** The conversation's lines of one kind: received (from others), own, event or info. */
async function lines(page: Page, kind = "received"): Promise<string[]> {
  return page.$$eval(`#messages li[data-kind="${kind}"]`, (items) => items.map((item) => item.textContent ?? ""));
}

async function waitForLine(page: Page, text: string, kind = "received", ms = 10_000) {
  await waitIn(
    page,
    `${kind} line "${text}"`,
    ([kind, text]) => [...document.querySelectorAll(`#messages li[data-kind="${kind}"]`)].some((item) => item.textContent === text),
    [kind, text],
    ms,
  );
}

/** New sockets from inside the page, one per transport choice: did each connect, or was it refused? */
async function tryTransports(page: Page, url: string): Promise<Record<string, string>> {
  // No named inner functions: tsx would wrap them in a helper the page does not have.
  return page.evaluate(async (url) => {
    const { io } = window as unknown as { io: (url: string, options: object) => { on(event: string, listener: () => void): void; close(): void } };
    const results: Record<string, string> = {};
    for (const [name, transports] of [["polling", ["polling"]], ["websocket", ["websocket"]], ["default", ["polling", "websocket"]]] as const) {
      const socket = io(url, { transports, forceNew: true, reconnection: false, timeout: 5000 });
      results[name] = await new Promise<string>((resolve) => {
        socket.on("connect", () => resolve("connected"));
        socket.on("connect_error", () => resolve("refused"));
        setTimeout(() => resolve("no answer"), 6000);
      });
      socket.close();
    }
    return results;
  }, url);
}

/**
 * The page's files served from another origin (a second local port) without a
 * Content-Security-Policy, as any other site could: the page then connects, or not, as the server decides.
 */
async function serveElsewhere(): Promise<Server> {
  const types: Record<string, string> = { "index.html": "text/html", "chat.js": "text/javascript", "chat.css": "text/css" };
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const name = path === "/" ? "index.html" : path.slice(1);
    if (!(name in types)) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": `${types[name]}; charset=utf-8` }).end(readFileSync(join(ROOT, "public", name)));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

function playwrightVersion(): string {
  return JSON.parse(readFileSync(join(ROOT, "node_modules", "playwright-core", "package.json"), "utf8")).version;
}

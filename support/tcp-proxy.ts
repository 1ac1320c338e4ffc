/**
 * support/tcp-proxy.ts: a TCP proxy on loopback that can break a path the way a network does.
 *
 * A half-open path (a NAT or firewall that forgot the connection, a cable pulled between two
 * switches) closes nothing: both ends keep a socket that looks fine, and what they send goes
 * nowhere. blackholeExisting() does that to every connection the proxy carries, in both
 * directions; holdNew() makes the proxy accept new connections without forwarding them (no path
 * yet), until holdNew(false) lets them through. For test/sick-redis.test.ts and bench/sick-redis.ts.
 */
import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";

export interface TcpProxy {
  port: number;
  /** The connections carried so far stop forwarding, both ways, and stay open. */
  blackholeExisting(): void;
  /** While true, new connections are accepted and held, not forwarded; false sends them on. */
  holdNew(hold: boolean): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const links = new Set<{ client: Socket; upstream?: Socket; dead: boolean }>();
  const held: Socket[] = [];
  let holding = false;

  const forward = (client: Socket) => {
    const link: { client: Socket; upstream?: Socket; dead: boolean } = { client, dead: false };
    links.add(link);
    const upstream = connect(targetPort, targetHost);
    link.upstream = upstream;
    upstream.on("error", () => client.destroy());
    client.on("data", (chunk) => void (link.dead || upstream.write(chunk)));
    upstream.on("data", (chunk) => void (link.dead || client.write(chunk)));
    client.on("close", () => {
      links.delete(link);
      upstream.destroy();
    });
    upstream.on("close", () => link.dead || client.destroy());
    client.resume();
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    client.on("error", () => {});
    if (holding) held.push(client);
    else forward(client);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");

  return {
    port: (server.address() as AddressInfo).port,
    blackholeExisting() {
      for (const link of links) link.dead = true;
    },
    holdNew(hold) {
      holding = hold;
      if (!hold) for (const client of held.splice(0)) if (!client.destroyed) forward(client);
    },
    async close() {
      for (const { client, upstream } of links) {
        client.destroy();
        upstream?.destroy();
      }
      for (const client of held.splice(0)) client.destroy();
      server.close();
    },
  };
}

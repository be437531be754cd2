// The peer proxies of `etcd-dst real` (src/real/proxy.ts) on plain sockets: a delayed pair
// keeps every byte in order while its delay comes and goes (a reordered rafthttp stream
// decodes into wrong raft messages: a follower panicked on "tocommit out of range"), and a
// blackholed pair passes nothing until it heals.
import net from "node:net";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PeerProxies } from "../../src/real/proxy.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A sink server on its own port, a proxy in front of it for member 1, sender member 0. */
async function setup() {
  const received: Buffer[] = [];
  const sinkPort = await freePort();
  const proxyPort = await freePort();
  const sink = net.createServer((s) => s.on("data", (d: Buffer) => received.push(d)));
  await new Promise<void>((r) => sink.listen(sinkPort, "127.0.0.1", () => r()));
  const proxies = await PeerProxies.start([await freePort(), proxyPort], [await freePort(), sinkPort]);
  proxies.learn(["a0", "b1"]);
  const sock = net.connect(proxyPort, "127.0.0.1");
  await new Promise<void>((r) => sock.once("connect", () => r()));
  const head = "POST /raft/stream/msgapp/b1 HTTP/1.1\r\nX-Server-From: a0\r\n\r\n";
  sock.write(head);
  await sleep(30);
  const body = () => Buffer.concat(received).toString("latin1").slice(head.length);
  const close = async () => {
    sock.destroy();
    await proxies.close();
    await new Promise<void>((r) => sink.close(() => r()));
  };
  return { proxies, sock, body, close };
}

test("a delay that comes and goes never reorders a stream's bytes", async () => {
  const { proxies, sock, body, close } = await setup();
  try {
    let sent = "";
    for (let k = 0; k < 60; k++) {
      // the delay changes every few chunks: 40 ms, none, 5 ms, none ...
      if (k % 5 === 0) proxies.setDelay(0, 1, [40, 0, 5, 0][(k / 5) % 4] as number);
      const chunk = `<${k}>`;
      sent += chunk;
      sock.write(chunk);
      await sleep(k % 3 === 0 ? 0 : 2);
    }
    proxies.healAll();
    await sleep(150);
    assert.is(body(), sent);
  } finally {
    await close();
  }
});

test("a blackholed pair passes nothing while it lasts", async () => {
  const { proxies, sock, body, close } = await setup();
  try {
    sock.write("before;");
    await sleep(30);
    proxies.setBlocked(1, 0, true);
    sock.write("during;");
    await sleep(30);
    assert.is(body(), "before;");
  } finally {
    await close();
  }
});

test.run();

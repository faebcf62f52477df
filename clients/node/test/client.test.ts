/** srtpd-client against the real srtpd binary. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { BinaryNode, ErrorCode, SrtpdClient, SrtpdError, forwardCallNode, sdes, toSrtpdNode } from "../src/index.js";
import { ContractChecker } from "./contract.js";
import { Daemon } from "./daemon.js";

const KEY_A = Buffer.alloc(30, 1).toString("base64");
const KEY_B = Buffer.alloc(30, 2).toString("base64");
const AUDIO = { payload_type: 111, clock_rate: 48000 };

let daemon: Daemon;
/** Every message the tests exchange is checked against docs/srtpd.openrpc.json. */
const contract = new ContractChecker();
const traced = { trace: contract.trace };
before(async () => {
  daemon = await Daemon.start();
});
after(async () => {
  await daemon.stop();
  assert.deepEqual(contract.problems, []);
  assert.ok(contract.checked >= 100, `${contract.checked} messages checked`);
});

test("the contract checker catches a departure", () => {
  const c = new ContractChecker();
  c.trace("send", { jsonrpc: "2.0", id: 1, method: "daemon.status", params: {} });
  c.trace("recv", { jsonrpc: "2.0", id: 1, result: { version: 1 } });
  c.trace("recv", { jsonrpc: "2.0", method: "event", params: { event: "call.dtmf", call_id: "x", digit: "Z" } });
  assert.equal(c.problems.length, 2, c.problems.join("\n"));
});

test("status, and errors that carry their JSON-RPC code", async () => {
  const srtpd = await SrtpdClient.connect(daemon.socket, traced);
  const status = (await srtpd.status()) as { calls: number; version: string };
  assert.equal(status.calls, 0);
  await assert.rejects(srtpd.stats("nope"), (e: unknown) => {
    assert.ok(e instanceof SrtpdError);
    assert.equal(e.code, ErrorCode.NoSuchCall);
    assert.match(e.message, /nope/);
    return true;
  });
  await assert.rejects(srtpd.call("call.nothing"), { code: ErrorCode.MethodNotFound });
  await assert.rejects(
    srtpd.start("bad", { keying: sdes("AES_CM_128_HMAC_SHA1_80", KEY_A, KEY_B), audio: { payload_type: 200, clock_rate: 48000 } }),
    (e: unknown) => e instanceof SrtpdError && e.code === ErrorCode.InvalidParams && /payload_type/.test(e.message),
  );
  assert.deepEqual(await srtpd.listCalls(), []);
  srtpd.close();
});

test("a request's events are queued before its answer", async () => {
  const srtpd = await SrtpdClient.connect(daemon.socket, traced);
  await srtpd.subscribe();
  for (let i = 0; i < 20; i++) {
    const id = `order-${i}`;
    await srtpd.start(id, {
      keying: sdes("AES_CM_128_HMAC_SHA1_80", KEY_A, KEY_B),
      candidates: [{ ip: "127.0.0.1", port: 20988 }],
      audio: AUDIO,
    });
    assert.equal((await srtpd.nextEvent("call.started", 1)).call_id, id);
    const final = await srtpd.terminate(id, "hangup");
    const ended = await srtpd.nextEvent("call.ended", 1);
    assert.equal(ended.call_id, id);
    assert.equal(ended["reason"], "hangup");
    assert.deepEqual(ended["stats"], final);
  }
  srtpd.close();
});

test("Baileys nodes are forwarded with their bytes as base64", async () => {
  const te2: BinaryNode = { tag: "te2", attrs: { priority: "1" }, content: Uint8Array.from([127, 0, 0, 1, 0x51, 0xfc]) };
  assert.deepEqual(toSrtpdNode(te2), { tag: "te2", attrs: { priority: "1" }, content: "fwAAAVH8" });
  const offer: BinaryNode = {
    tag: "call",
    attrs: { from: "111111111111111:0@lid", to: "222222222222222@lid", id: "N1" },
    content: [
      {
        tag: "offer",
        attrs: { "call-id": "NODE-1", "call-creator": "111111111111111:0@lid" },
        content: [{ tag: "audio", attrs: { enc: "opus", rate: "16000" } }, { tag: "relay", attrs: {}, content: [te2] }],
      },
    ],
  };
  const srtpd = await SrtpdClient.connect(daemon.socket, traced);
  const done = (await forwardCallNode(srtpd, offer, {
    self: "222222222222222:3@lid",
    callKey: Buffer.alloc(32, 7).toString("base64"),
  })) as { action: string; call_id: string };
  assert.equal(done.action, "ringing");
  const stats = (await srtpd.stats("NODE-1")) as { remote: string; state: string };
  assert.equal(stats.remote, "127.0.0.1:20988");
  assert.equal(stats.state, "ringing");
  await srtpd.terminate("NODE-1");
  srtpd.close();
});

test("the example forwards a recorded offer, accept, mute and terminate", async () => {
  const example = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../examples/forward-calls.js");
  const { stdout } = await promisify(execFile)(process.execPath, [example, "--socket", daemon.socket]);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 5, stdout);
  assert.match(lines[0] ?? "", /^<offer> from 111111111111111:0@lid -> ringing local 127\.0\.0\.1:\d+$/);
  assert.match(lines[1] ?? "", /^<accept> from 222222222222222:3@lid -> started/);
  assert.match(lines[2] ?? "", /^<mute_v2> from 111111111111111:0@lid -> muted by peer$/);
  assert.match(lines[3] ?? "", /^<terminate> from 111111111111111:0@lid -> ended by peer$/);
  assert.equal(lines[4], "call.ended REC-CALL-1 reason hangup");
});

test("the events end when srtpd shuts down", async () => {
  const own = await Daemon.start();
  const srtpd = await SrtpdClient.connect(own.socket, traced);
  await srtpd.subscribe();
  await srtpd.start("last-1", { keying: sdes("AES_CM_128_HMAC_SHA1_80", KEY_A, KEY_B), audio: AUDIO });
  await srtpd.shutdown();
  const seen: string[] = [];
  for await (const e of srtpd.events()) seen.push(`${e.event} ${String(e["reason"] ?? "")}`.trim());
  assert.deepEqual(seen, ["call.started", "call.ended shutdown"]);
  await assert.rejects(srtpd.status(), { name: "ConnectionClosed" });
  await own.stop();
});

test("a missing daemon is explained", async () => {
  const missing = path.join(daemon.dir, "nobody.sock");
  await assert.rejects(SrtpdClient.connect(missing), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.ok(e.message.includes(missing) && e.message.includes("SRTPD_SOCKET"), e.message);
    return true;
  });
});

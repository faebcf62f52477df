/**
 * A client for srtpd's control socket (docs/PROTOCOL.md, docs/srtpd.openrpc.json), for
 * signaling clients on Node.js (Baileys and the like). No run-time dependencies.
 *
 * One connection carries requests, their answers and (after `subscribe`) events; answers are
 * matched to requests by id, and events come out of `events()` in the order srtpd sent them.
 * srtpd sends the events a request causes before its answer: once `await terminate(...)`
 * resolves, its `call.ended` is already queued.
 */
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export * from "./stanza.js";

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** An event srtpd sent: `{event: "call.ended", call_id, reason, stats}` and the like. */
export interface SrtpdEvent {
  event: string;
  call_id?: string;
  [field: string]: Json | undefined;
}

/** The JSON-RPC codes srtpd answers with. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  NoSuchCall: -32001,
  CallExists: -32002,
  NoFreePort: -32003,
  BadKeying: -32004,
  TooManyCalls: -32005,
  ServerBusy: -32006,
} as const;

/** An error answer from srtpd, with its JSON-RPC `code`. */
export class SrtpdError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(`${message} (${code})`);
    this.name = "SrtpdError";
  }
}

/** The connection closed (srtpd shut down, or refused the connection). */
export class ConnectionClosed extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConnectionClosed";
  }
}

/** Events kept for a reader that does not keep up; beyond it the oldest are dropped and
 * counted in an `events.lost` event, as srtpd itself does. */
export const EVENT_QUEUE = 10_000;
/** The longest line accepted from srtpd. */
export const MAX_LINE = 64 * 1024 * 1024;

/** srtpd's default socket: `$SRTPD_SOCKET`, else `$XDG_RUNTIME_DIR/srtpd.sock`, else
 * `/tmp/srtpd-UID/srtpd.sock`. */
export function defaultSocket(): string {
  const given = process.env["SRTPD_SOCKET"];
  if (given) return given;
  const runtime = process.env["XDG_RUNTIME_DIR"];
  if (runtime) return path.join(runtime, "srtpd.sock");
  return path.join("/tmp", `srtpd-${os.userInfo().uid}`, "srtpd.sock");
}

/** SDES keying: our base64 key||salt (`tx`) and the peer's (`rx`). */
export function sdes(profile: string, tx: string, rx: string): { [k: string]: Json } {
  return { scheme: "sdes", profile, tx, rx };
}

/** Sees every message: `("send", request)` and `("recv", message)`; for logging the
 * protocol, or checking it against docs/srtpd.openrpc.json. */
export type Trace = (direction: "send" | "recv", message: { [k: string]: Json }) => void;

/** Options of `SrtpdClient.connect`. */
export interface ConnectOptions {
  trace?: Trace;
}

interface Pending {
  resolve: (v: Json) => void;
  reject: (e: Error) => void;
}

/** One connection to srtpd. */
export class SrtpdClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: SrtpdEvent[] = [];
  private lost = 0;
  private waiter: (() => void) | null = null;
  private closed: Error | null = null;
  private buffered = "";

  private constructor(
    private readonly socket: net.Socket,
    private readonly trace?: Trace,
  ) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", (e) => this.finish(new ConnectionClosed(`srtpd connection: ${e.message}`)));
    socket.on("close", () => this.finish(new ConnectionClosed("srtpd closed the connection")));
  }

  /** Connects to srtpd's control socket (default: `defaultSocket()`). */
  static connect(socketPath: string = defaultSocket(), options: ConnectOptions = {}): Promise<SrtpdClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path: socketPath });
      socket.once("connect", () => {
        socket.removeAllListeners("error");
        resolve(new SrtpdClient(socket, options.trace));
      });
      socket.once("error", (e: NodeJS.ErrnoException) =>
        reject(
          new Error(
            `cannot connect to srtpd at ${socketPath}: ${e.code ?? e.message}; is srtpd running? ` +
              "Pass its socket path, or set $SRTPD_SOCKET",
          ),
        ),
      );
    });
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    if (this.buffered.length > MAX_LINE) {
      this.socket.destroy();
      this.finish(new ConnectionClosed(`a line from srtpd is longer than ${MAX_LINE} bytes`));
      return;
    }
    let end: number;
    while ((end = this.buffered.indexOf("\n")) >= 0) {
      const line = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 1);
      if (line.trim() !== "") this.onMessage(JSON.parse(line) as { [k: string]: Json });
    }
  }

  private onMessage(msg: { [k: string]: Json }): void {
    this.trace?.("recv", msg);
    if (msg["method"] === "event") {
      this.pushEvent(msg["params"] as unknown as SrtpdEvent);
      return;
    }
    const id = msg["id"];
    const error = msg["error"] as { code?: number; message?: string } | undefined;
    if (typeof id !== "number") {
      if (error) this.finish(new SrtpdError(error.code ?? 0, error.message ?? "error"));
      return;
    }
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (error) p.reject(new SrtpdError(error.code ?? 0, error.message ?? "error"));
    else p.resolve(msg["result"] ?? null);
  }

  private pushEvent(event: SrtpdEvent): void {
    if (this.queue.length >= EVENT_QUEUE) {
      this.lost += 1;
      return;
    }
    if (this.lost > 0) {
      this.queue.push({ event: "events.lost", count: this.lost });
      this.lost = 0;
    }
    this.queue.push(event);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private finish(why: Error): void {
    if (this.closed) return;
    this.closed = why;
    for (const p of this.pending.values()) p.reject(why);
    this.pending.clear();
    this.wake();
  }

  /** Calls any method; resolves to its result, or rejects with `SrtpdError`. */
  call(method: string, params: { [k: string]: Json | undefined } = {}): Promise<Json> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request = { jsonrpc: "2.0", id, method, params };
      this.trace?.("send", JSON.parse(JSON.stringify(request)) as { [k: string]: Json });
      this.socket.write(JSON.stringify(request) + "\n");
    });
  }

  /** The events srtpd sends this connection (call `subscribe` first), in order, until the
   * connection closes. */
  async *events(): AsyncGenerator<SrtpdEvent> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** The next event named `name` (others before it are dropped), within `timeoutMs`. */
  async nextEvent(name: string, timeoutMs = 10_000): Promise<SrtpdEvent> {
    const timer = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no ${name} within ${timeoutMs} ms`)), timeoutMs).unref(),
    );
    const found = (async () => {
      for await (const e of this.events()) if (e.event === name) return e;
      throw this.closed ?? new ConnectionClosed("srtpd closed the connection");
    })();
    return Promise.race([found, timer]);
  }

  /** Closes the connection. */
  close(): void {
    this.socket.end();
    this.finish(new ConnectionClosed("closed by the client"));
  }

  subscribe(): Promise<Json> {
    return this.call("events.subscribe");
  }
  /** `call.start`: `keying`, `candidates`, `bind`, `audio`, `video`, `bridge`, ... */
  start(callId: string, params: { [k: string]: Json | undefined }): Promise<Json> {
    return this.call("call.start", { call_id: callId, ...params });
  }
  /** `call.stanza` with the parameters as srtpd names them (`self`, `node` or `xml`, ...);
   * see `forwardCallNode` for a Baileys node. */
  stanza(params: { [k: string]: Json | undefined }): Promise<Json> {
    return this.call("call.stanza", params);
  }
  mute(callId: string, muted = true, media: "audio" | "video" = "audio"): Promise<Json> {
    return this.call("call.mute", { call_id: callId, media, muted });
  }
  video(callId: string, enabled: boolean): Promise<Json> {
    return this.call("call.video", { call_id: callId, enabled });
  }
  dtmf(callId: string, digits: string, durationMs = 100): Promise<Json> {
    return this.call("call.dtmf", { call_id: callId, digits, duration_ms: durationMs });
  }
  bridge(callId: string, url: string | null, options: { [k: string]: Json } = {}): Promise<Json> {
    return this.call("call.bridge", { call_id: callId, url, ...options });
  }
  /** `call.play`; a relative path is made absolute here (srtpd would take it to be inside
   * its `media.files_dir`). */
  play(callId: string, file: string, loop = false): Promise<Json> {
    return this.call("call.play", { call_id: callId, path: path.resolve(file), loop });
  }
  /** `call.record`; `null` stops. A relative path is made absolute here. */
  record(callId: string, file: string | null, overwrite = false): Promise<Json> {
    return this.call("call.record", {
      call_id: callId,
      path: file === null ? null : path.resolve(file),
      overwrite,
    });
  }
  stats(callId: string): Promise<Json> {
    return this.call("call.stats", { call_id: callId });
  }
  listCalls(): Promise<Json> {
    return this.call("call.list");
  }
  /** Ends a call; resolves to its final stats (its `call.ended` came before). */
  terminate(callId: string, reason?: string): Promise<Json> {
    return this.call("call.terminate", { call_id: callId, reason });
  }
  status(): Promise<Json> {
    return this.call("daemon.status");
  }
  shutdown(): Promise<Json> {
    return this.call("daemon.shutdown");
  }
}

/**
 * `<call>` stanzas as the signaling library already holds them: Baileys' `BinaryNode`
 * (`{tag, attrs, content}` with child nodes, a string, or bytes), forwarded to srtpd's
 * `call.stanza` in its JSON node form, bytes as base64.
 */
import type { Json } from "./index.js";

/** A node as Baileys (and whatsmeow's JSON) give it. */
export interface BinaryNode {
  tag: string;
  attrs: { [key: string]: string };
  content?: BinaryNode[] | string | Uint8Array;
}

/** The node in srtpd's JSON form: the same tree, bytes as base64 strings. */
export function toSrtpdNode(node: BinaryNode): { [k: string]: Json } {
  const out: { [k: string]: Json } = { tag: node.tag, attrs: { ...node.attrs } };
  const c = node.content;
  if (Array.isArray(c)) out["content"] = c.map(toSrtpdNode);
  else if (c instanceof Uint8Array) out["content"] = Buffer.from(c).toString("base64");
  else if (typeof c === "string") out["content"] = Buffer.from(c, "utf8").toString("base64");
  return out;
}

/** Keys and options for forwarding a node. */
export interface ForwardOptions {
  /** Our device id (the JID the signaling library is logged in as). */
  self: string;
  /** Base64 of the call key, once decrypted from the offer's `<enc>`. */
  callKey?: string;
  /** Base64 of the decrypted `<enc>` payload (instead of `callKey`). */
  encPlaintext?: string;
  /** Bind address of the call's media socket. */
  bind?: string;
  /** Tracks instead of srtpd's `[stanza]` defaults. */
  audio?: { [k: string]: Json };
  video?: { [k: string]: Json };
}

/** Anything with srtpd's `stanza` method (an `SrtpdClient`). */
export interface StanzaTarget {
  stanza(params: { [k: string]: Json | undefined }): Promise<Json>;
}

/** Forwards a `<call>` node to srtpd (`call.stanza`); resolves to what srtpd did with it
 * (`{action: "ringing" | "started" | "muted" | "ended" | ...}`). */
export function forwardCallNode(
  srtpd: StanzaTarget,
  node: BinaryNode,
  options: ForwardOptions,
): Promise<Json> {
  return srtpd.stanza({
    node: toSrtpdNode(node),
    self: options.self,
    call_key: options.callKey,
    enc_plaintext: options.encPlaintext,
    bind: options.bind,
    audio: options.audio,
    video: options.video,
  });
}

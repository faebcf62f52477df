/**
 * Forwards `<call>` nodes to srtpd, as a Baileys-based client does from its `CB:call`
 * handler: here from a recorded sequence (examples/calls.json: an offer, our accept, the
 * caller muting, the caller hanging up), with Buffers as Baileys holds them.
 *
 *     npm run build && node dist/examples/forward-calls.js [--socket PATH] [--call-key B64]
 *
 * In a real client, the call key comes from decrypting the offer's <enc> with the Signal
 * session; here it is random (or --call-key).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { BinaryNode, SrtpdClient, forwardCallNode } from "../src/index.js";

/** A node from JSON, its `{type: "Buffer", data}` contents revived to bytes. */
function revive(node: BinaryNode): BinaryNode {
  const c = node.content as unknown;
  if (Array.isArray(c)) return { ...node, content: (c as BinaryNode[]).map(revive) };
  if (c && typeof c === "object" && (c as { type?: string }).type === "Buffer") {
    return { ...node, content: Uint8Array.from((c as { data: number[] }).data) };
  }
  return node;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { socket: { type: "string" }, "call-key": { type: "string" } },
  });
  const recorded = JSON.parse(
    readFileSync(new URL("../../examples/calls.json", import.meta.url), "utf8"),
  ) as { self: string; nodes: BinaryNode[] };
  const callKey = values["call-key"] ?? randomBytes(32).toString("base64");

  const srtpd = await SrtpdClient.connect(values.socket);
  await srtpd.subscribe();
  for (const node of recorded.nodes.map(revive)) {
    const child = Array.isArray(node.content) ? node.content[0] : undefined;
    const done = (await forwardCallNode(srtpd, node, { self: recorded.self, callKey })) as {
      [k: string]: unknown;
    };
    const where = typeof done["local"] === "string" ? ` local ${done["local"]}` : "";
    const by = typeof done["by"] === "string" ? ` by ${done["by"]}` : "";
    console.log(`<${child?.tag}> from ${node.attrs["from"]} -> ${done["action"]}${by}${where}`);
  }
  const ended = await srtpd.nextEvent("call.ended");
  console.log(`call.ended ${ended.call_id} reason ${String(ended["reason"])}`);
  srtpd.close();
}

main().catch((e: unknown) => {
  console.error(`forward-calls: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});

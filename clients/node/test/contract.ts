/** Checks the messages a client exchanges against docs/srtpd.openrpc.json (ajv, a dev
 * dependency): every request srtpd accepted with its result, every error, every event. */
import { readFileSync } from "node:fs";
import * as path from "node:path";

import Ajv2020 from "ajv/dist/2020.js";
import type { ValidateFunction } from "ajv";

import type { Json, Trace } from "../src/index.js";
import { ROOT } from "./daemon.js";

type Obj = { [k: string]: Json };

const DOC = JSON.parse(readFileSync(path.join(ROOT, "docs", "srtpd.openrpc.json"), "utf8")) as Obj;
const ajv = new Ajv2020.default({ strict: false, allErrors: true });
const rooted = (schema: Json): ValidateFunction =>
  ajv.compile({ ...(schema as Obj), components: DOC["components"] as Obj });

const methods = new Map<string, { params: ValidateFunction; result?: ValidateFunction }>();
for (const m of DOC["methods"] as Obj[]) {
  const params = (m["params"] as Obj[]) ?? [];
  const schema: Json = m["x-params-schema"] ?? {
    type: "object",
    properties: Object.fromEntries(params.map((p) => [p["name"] as string, p["schema"] as Json])),
    required: params.filter((p) => p["required"] === true).map((p) => p["name"] as string),
    additionalProperties: false,
  };
  const result = m["result"] as Obj | undefined;
  methods.set(m["name"] as string, {
    params: rooted(schema),
    result: result ? rooted(result["schema"] as Json) : undefined,
  });
}
const event = rooted({ $ref: "#/components/schemas/Event" });
const error = rooted({ $ref: "#/components/schemas/Error" });

/** A client's `trace` that collects every way a message departs from the contract. */
export class ContractChecker {
  readonly problems: string[] = [];
  checked = 0;
  private readonly sent = new Map<number, [string, Json]>();

  private check(v: ValidateFunction, what: string, instance: Json): void {
    this.checked += 1;
    if (!v(instance)) this.problems.push(`${what}: ${ajv.errorsText(v.errors)}: ${JSON.stringify(instance).slice(0, 300)}`);
  }

  readonly trace: Trace = (direction, msg) => {
    if (direction === "send") {
      this.sent.set(msg["id"] as number, [msg["method"] as string, msg["params"] ?? {}]);
      return;
    }
    if (msg["method"] === "event") this.check(event, "an event", msg["params"] ?? null);
    else if (msg["error"] !== undefined) this.check(error, "an error", msg["error"]);
    else if (typeof msg["id"] === "number" && this.sent.has(msg["id"])) {
      const [name, params] = this.sent.get(msg["id"])!;
      this.sent.delete(msg["id"]);
      const m = methods.get(name);
      if (!m) {
        this.problems.push(`${name} is not in docs/srtpd.openrpc.json`);
        return;
      }
      this.check(m.params, `${name}'s params`, params);
      if (m.result) this.check(m.result, `${name}'s result`, msg["result"] ?? null);
    }
  };
}

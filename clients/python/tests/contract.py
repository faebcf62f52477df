"""Checks the messages a client exchanges against docs/srtpd.openrpc.json (python3-jsonschema,
test-only): every request srtpd accepted with its result, every error, every event."""
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import jsonschema

DOC = json.loads((Path(__file__).resolve().parents[3] / "docs" / "srtpd.openrpc.json").read_text())


def _validator(schema: Dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**schema, "components": DOC["components"]})


def _params_schema(method: Dict[str, Any]) -> Dict[str, Any]:
    if "x-params-schema" in method:
        return method["x-params-schema"]
    return {
        "type": "object",
        "properties": {p["name"]: p["schema"] for p in method["params"]},
        "required": [p["name"] for p in method["params"] if p.get("required")],
        "additionalProperties": False,
    }


METHODS = {
    m["name"]: (_validator(_params_schema(m)), _validator(m["result"]["schema"]) if "result" in m else None)
    for m in DOC["methods"]
}
EVENT = _validator({"$ref": "#/components/schemas/Event"})
ERROR = _validator({"$ref": "#/components/schemas/Error"})


class ContractChecker:
    """A client's ``trace``: collects every way a message departs from the contract."""

    def __init__(self) -> None:
        self.sent: Dict[int, Tuple[str, Any]] = {}
        self.problems: List[str] = []
        self.checked = 0

    def _check(self, validator: jsonschema.Draft202012Validator, what: str, instance: Any) -> None:
        self.checked += 1
        for e in validator.iter_errors(instance):
            self.problems.append(f"{what}: {e.message} at {list(e.absolute_path)}: {json.dumps(instance)[:300]}")

    def __call__(self, direction: str, msg: Dict[str, Any]) -> None:
        if direction == "send":
            self.sent[msg["id"]] = (msg["method"], msg.get("params", {}))
            return
        if msg.get("method") == "event":
            self._check(EVENT, "an event", msg["params"])
        elif "error" in msg:
            self._check(ERROR, "an error", msg["error"])
        elif msg.get("id") in self.sent:
            method, params = self.sent.pop(msg["id"])
            if method not in METHODS:
                self.problems.append(f"{method} is not in docs/srtpd.openrpc.json")
                return
            params_v, result_v = METHODS[method]
            self._check(params_v, f"{method}'s params", params)
            if result_v is not None:
                self._check(result_v, f"{method}'s result", msg["result"])

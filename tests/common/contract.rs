//! The control protocol's contract, docs/srtpd.openrpc.json, as validators: every request
//! the daemon accepts, every result and error it answers and every event it sends in the
//! integration tests is checked against it (through `Client`), so contract and code cannot
//! drift apart unnoticed.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// One method's validators.
struct Method {
    params: jsonschema::Validator,
    result: Option<jsonschema::Validator>,
}

struct Contract {
    methods: HashMap<String, Method>,
    event: jsonschema::Validator,
    error: jsonschema::Validator,
}

/// The document.
pub fn document() -> Value {
    let text = include_str!("../../docs/srtpd.openrpc.json");
    serde_json::from_str(text).expect("docs/srtpd.openrpc.json is JSON")
}

/// `schema` with the document's components beside it, so `#/components/...` resolves.
fn rooted(schema: &Value, components: &Value) -> jsonschema::Validator {
    let mut root = match schema {
        Value::Object(o) => o.clone(),
        other => panic!("a schema must be an object: {other}"),
    };
    root.insert("components".into(), components.clone());
    jsonschema::validator_for(&Value::Object(root)).expect("a valid JSON Schema")
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let doc = document();
        let components = &doc["components"];
        let mut methods = HashMap::new();
        for m in doc["methods"].as_array().expect("methods") {
            let name = m["name"].as_str().expect("a method name").to_owned();
            let mut properties = Map::new();
            let mut required = Vec::new();
            for p in m["params"].as_array().expect("params") {
                let pname = p["name"].as_str().expect("a param name");
                properties.insert(pname.into(), p["schema"].clone());
                if p["required"] == true {
                    required.push(json!(pname));
                }
            }
            let params = match m.get("x-params-schema") {
                Some(exact) => exact.clone(),
                None => json!({"type": "object", "properties": properties,
                               "required": required, "additionalProperties": false}),
            };
            methods.insert(
                name,
                Method {
                    params: rooted(&params, components),
                    result: m.get("result").map(|r| rooted(&r["schema"], components)),
                },
            );
        }
        Contract {
            methods,
            event: rooted(&json!({"$ref": "#/components/schemas/Event"}), components),
            error: rooted(&json!({"$ref": "#/components/schemas/Error"}), components),
        }
    })
}

fn check(validator: &jsonschema::Validator, what: &str, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match docs/srtpd.openrpc.json: {errors:?}\n{instance}"
    );
}

fn method(name: &str) -> &'static Method {
    contract()
        .methods
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in docs/srtpd.openrpc.json"))
}

/// A request the daemon accepted, and its result.
pub fn check_exchange(name: &str, params: &Value, result: &Value) {
    let m = method(name);
    let params = if params.is_null() {
        json!({})
    } else {
        params.clone()
    };
    check(&m.params, &format!("{name}'s params"), &params);
    check_result(name, result);
}

/// A result of `name`, whatever its request was (srtpctl's, say).
pub fn check_result(name: &str, result: &Value) {
    let validator = method(name)
        .result
        .as_ref()
        .unwrap_or_else(|| panic!("{name} has no result"));
    check(validator, &format!("{name}'s result"), result);
}

/// An error response's `error` object.
pub fn check_error(error: &Value) {
    check(&contract().error, "an error", error);
}

/// An event notification's params.
pub fn check_event(params: &Value) {
    check(&contract().event, "an event", params);
}

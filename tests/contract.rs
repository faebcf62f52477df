//! docs/srtpd.openrpc.json is a valid OpenRPC document (against the OpenRPC meta-schema,
//! tests/fixtures/openrpc-meta-schema.json, from the npm package @open-rpc/meta-schema
//! 1.14.9, Apache-2.0, with its two references to the external JSON Schema meta-schema
//! replaced by "any schema"), names every method srtpd answers and no other, and its error
//! codes are srtpd's. The messages themselves are checked in every daemon test (through
//! `common::daemon::Client`).

mod common;

use std::collections::BTreeSet;

use common::contract::document;
use serde_json::Value;
use srtpd::control as protocol;

#[test]
fn the_document_is_valid_openrpc() {
    let meta: Value =
        serde_json::from_str(include_str!("fixtures/openrpc-meta-schema.json")).unwrap();
    let validator = jsonschema::validator_for(&meta).expect("the meta-schema compiles");
    let doc = document();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // Every schema in it compiles, with the components beside it for references.
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let mut rooted = schema.as_object().unwrap().clone();
        rooted.insert("components".into(), doc["components"].clone());
        jsonschema::validator_for(&Value::Object(rooted)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn it_names_exactly_the_methods_srtpd_answers() {
    let doc = document();
    let documented: BTreeSet<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .filter(|n| *n != "event")
        .collect();
    let answered: BTreeSet<&str> = srtpd::control::dispatch::METHODS.iter().copied().collect();
    assert_eq!(documented, answered);
    // The notification srtpd sends has no result: OpenRPC's mark of a notification.
    let event = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "event")
        .expect("the event notification");
    assert!(event.get("result").is_none());
}

#[test]
fn its_error_codes_are_srtpds() {
    let doc = document();
    let documented: BTreeSet<i64> = doc["components"]["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e["code"].as_i64().unwrap())
        .collect();
    let srtpd: BTreeSet<i64> = [
        protocol::PARSE_ERROR,
        protocol::INVALID_REQUEST,
        protocol::METHOD_NOT_FOUND,
        protocol::INVALID_PARAMS,
        protocol::INTERNAL_ERROR,
        protocol::NO_SUCH_CALL,
        protocol::CALL_EXISTS,
        protocol::NO_FREE_PORT,
        protocol::BAD_KEYING,
        protocol::TOO_MANY_CALLS,
        protocol::SERVER_BUSY,
    ]
    .into();
    assert_eq!(documented, srtpd);
    let in_error_schema: BTreeSet<i64> =
        doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_i64().unwrap())
            .collect();
    assert_eq!(in_error_schema, srtpd);
}

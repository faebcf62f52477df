//! JSON-RPC 2.0 over newline-delimited JSON: request parsing, error codes, responses and
//! event notifications.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Parameters missing or wrong; the message names the field.
pub const INVALID_PARAMS: i64 = -32602;
/// The daemon failed to do something it should have been able to.
pub const INTERNAL_ERROR: i64 = -32603;
/// No call with that id.
pub const NO_SUCH_CALL: i64 = -32001;
/// A call with that id already exists.
pub const CALL_EXISTS: i64 = -32002;
/// No media port could be bound.
pub const NO_FREE_PORT: i64 = -32003;
/// Keying material refused.
pub const BAD_KEYING: i64 = -32004;
/// The daemon carries its maximum number of calls.
pub const TOO_MANY_CALLS: i64 = -32005;
/// The control socket has its maximum number of clients (`control.max_connections`).
pub const SERVER_BUSY: i64 = -32006;

/// A JSON-RPC error: a code and a message naming what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    /// The JSON-RPC error code.
    pub code: i64,
    /// Human-readable reason.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// -32602 naming `field` and what is wrong with it.
    pub fn invalid_param(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("invalid params: {field}: {reason}"))
    }

    /// -32001 for `call_id`.
    pub fn no_such_call(call_id: &str) -> Self {
        Self::new(NO_SUCH_CALL, format!("no such call: {call_id:?}"))
    }

    /// The error object of a response.
    pub fn to_json(&self) -> Value {
        json!({"code": self.code, "message": self.message})
    }
}

/// A request's id exactly as the client wrote it (a string, a number or null): echoed byte
/// for byte, so that an id such as 18446744073709551615 comes back as sent, not rounded.
#[derive(Debug, Clone)]
pub struct RequestId(Box<RawValue>);

impl RequestId {
    /// `null`: the id of a response to a line whose id could not be read.
    pub fn null() -> Self {
        RequestId(RawValue::from_string("null".to_owned()).expect("null is JSON"))
    }

    /// The id's JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A parsed request. `id` is `None` for a notification (no response is sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The request id, echoed in the response.
    pub id: Option<RequestId>,
    /// The method name.
    pub method: String,
    /// The parameters (an empty object when absent).
    pub params: Value,
}

/// The id of a request line as written, read beside the parse into a [`Value`] (which keeps
/// numbers as f64 beyond 2^64 and would round them).
#[derive(Deserialize)]
struct RawId<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

/// Parses one line. On failure returns the id (when one could be read) and the error.
pub fn parse_request(line: &[u8]) -> Result<Request, (RequestId, RpcError)> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        (
            RequestId::null(),
            RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err((
            RequestId::null(),
            RpcError::new(INVALID_REQUEST, "invalid request: expected a JSON object"),
        ));
    };
    let id = match obj.remove("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => {
            let raw = serde_json::from_slice::<RawId>(line)
                .ok()
                .and_then(|r| r.id);
            Some(match raw {
                Some(raw) => RequestId(raw.to_owned()),
                // A duplicated "id" member: the one the parse kept.
                None => RequestId(RawValue::from_string(id.to_string()).map_err(|e| {
                    (
                        RequestId::null(),
                        RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
                    )
                })?),
            })
        }
        Some(Value::Null) => Some(RequestId::null()),
        None => None,
        Some(_) => {
            return Err((
                RequestId::null(),
                RpcError::new(
                    INVALID_REQUEST,
                    "invalid request: id must be a string, a number or null",
                ),
            ));
        }
    };
    let id_for_error = id.clone().unwrap_or_else(RequestId::null);
    let invalid = |msg: &str| {
        (
            id_for_error.clone(),
            RpcError::new(INVALID_REQUEST, format!("invalid request: {msg}")),
        )
    };
    if obj.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid("jsonrpc must be \"2.0\""));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(invalid("method must be a string")),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(invalid("params must be an object")),
    };
    Ok(Request { id, method, params })
}

/// Decodes `params` into `T`, turning serde's complaint into -32602 with the field's path.
pub fn decode_params<T: DeserializeOwned>(params: &Value) -> Result<T, RpcError> {
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde reports a missing field at the parent's path with the name in the message.
        let inner = inner.split(" at line").next().unwrap_or(&inner).to_owned();
        if path == "." {
            RpcError::new(INVALID_PARAMS, format!("invalid params: {inner}"))
        } else {
            RpcError::invalid_param(&path, inner)
        }
    })
}

/// Overwrites every string in `value` (request params can carry key material) before it is
/// dropped.
pub fn wipe_strings(value: &mut Value) {
    match value {
        Value::String(s) => zeroize::Zeroize::zeroize(s),
        Value::Array(items) => items.iter_mut().for_each(wipe_strings),
        Value::Object(map) => map.values_mut().for_each(wipe_strings),
        _ => {}
    }
}

/// A success response line (without its newline).
pub fn response(id: &RequestId, result: &Value) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
        id.as_str()
    )
}

/// An error response line (without its newline).
pub fn error_response(id: &RequestId, error: &RpcError) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{}}}"#,
        id.as_str(),
        error.to_json()
    )
}

/// An event notification line: `{"jsonrpc":"2.0","method":"event","params":{"event":...}}`.
pub fn event_notification(params: &Value) -> String {
    json!({"jsonrpc": "2.0", "method": "event", "params": params}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_bad_lines() {
        assert_eq!(parse_request(b"{nope").unwrap_err().1.code, PARSE_ERROR);
        assert_eq!(parse_request(b"[1]").unwrap_err().1.code, INVALID_REQUEST);
        let (id, e) = parse_request(br#"{"jsonrpc":"1.0","id":4,"method":"x"}"#).unwrap_err();
        assert_eq!((id.as_str(), e.code), ("4", INVALID_REQUEST));
        let (id, e) = parse_request(br#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#).unwrap_err();
        assert_eq!((id.as_str(), e.code), ("null", INVALID_REQUEST));
        let r = parse_request(br#"{"jsonrpc":"2.0","id":"a","method":"call.list"}"#).unwrap();
        assert_eq!(r.params, json!({}));
        let n = parse_request(br#"{"jsonrpc":"2.0","method":"daemon.status"}"#).unwrap();
        assert_eq!(n.id, None);
    }

    #[test]
    fn ids_come_back_exactly_as_sent() {
        for (line, id) in [
            (
                r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"m"}"#,
                "18446744073709551615",
            ),
            (
                r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"m"}"#,
                "123456789012345678901234567890",
            ),
            (r#"{"id": 1.50, "jsonrpc":"2.0","method":"m"}"#, "1.50"),
            (
                r#"{"jsonrpc":"2.0","id":"a\u0041\"b","method":"m"}"#,
                r#""a\u0041\"b""#,
            ),
            (r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#, "null"),
        ] {
            let r = parse_request(line.as_bytes()).unwrap();
            let id_text = r.id.as_ref().unwrap().as_str();
            assert_eq!(id_text, id);
            let reply = response(r.id.as_ref().unwrap(), &json!({"ok": true}));
            assert_eq!(
                reply,
                format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"ok":true}}}}"#)
            );
            let error = error_response(r.id.as_ref().unwrap(), &RpcError::new(-1, "x"));
            assert!(error.contains(&format!(r#""id":{id},"#)), "{error}");
        }
    }

    #[test]
    fn params_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct P {
            call_id: String,
            audio: Option<A>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct A {
            payload_type: u8,
        }
        let e = decode_params::<P>(&json!({})).unwrap_err();
        assert!(
            e.message.contains("missing field `call_id`"),
            "{}",
            e.message
        );
        let e = decode_params::<P>(&json!({"call_id": "x", "audio": {"payload_type": 300}}))
            .unwrap_err();
        assert!(
            e.message.starts_with("invalid params: audio.payload_type:"),
            "{}",
            e.message
        );
    }

    #[test]
    fn wipes_every_string() {
        let mut v = json!({"keying": {"tx": "c2VjcmV0", "list": ["a", {"rx": "b"}]}, "n": 1});
        wipe_strings(&mut v);
        assert_eq!(
            v,
            json!({"keying": {"tx": "", "list": ["", {"rx": ""}]}, "n": 1})
        );
    }
}

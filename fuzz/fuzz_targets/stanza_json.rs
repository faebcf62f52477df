//! `<call>` stanzas as JSON nodes: any JSON value parses to a stanza or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = srtpd::stanza::parse_json(&node);
    }
});

//! `<call>` stanzas as XML: any text parses to a stanza or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = srtpd::stanza::parse_xml(text);
    }
});

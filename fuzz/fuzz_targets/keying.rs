//! Keying material from outside: SDES inline keys (any profile name, any text) and the
//! wa-e2e call key and decrypted enc payload, raw and as base64.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srtpd::keying::{sdes, wa_e2e::CallKey};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (profile, tx, rx) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let _ = sdes::call_keys(profile, tx, rx);
    let _ = sdes::call_keys("AES_CM_128_HMAC_SHA1_80", &text, &text);
    let _ = CallKey::from_bytes(data);
    let _ = CallKey::from_base64(&text);
    if let Ok(key) = CallKey::from_enc_plaintext(data) {
        let _ = key.master_key("device");
    }
    let _ = CallKey::from_enc_plaintext_base64(&text);
});

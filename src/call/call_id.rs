//! What a call id may be: it names the call in every log line, event and table, so it is
//! short printable text.

/// The longest call id accepted, in bytes.
pub const MAX_CALL_ID_BYTES: usize = 128;

/// The longest reason a `call.terminate` may give, in bytes.
pub const MAX_REASON_BYTES: usize = 256;

/// Checks a call id from outside (a request or a stanza): 1 to [`MAX_CALL_ID_BYTES`] bytes of
/// printable text, not only spaces. The error says what is wrong.
pub fn check_call_id(id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err("must not be empty".into());
    }
    check_text(id, MAX_CALL_ID_BYTES)
}

/// Checks a short text from outside that will be logged and shown (a call id, a reason): at
/// most `max` bytes, no control characters.
pub fn check_text(text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!(
            "is {} bytes; at most {max} are accepted",
            text.len()
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains the control character {:?}; only printable text is accepted",
            c
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_short_ids_only() {
        assert!(check_call_id("1F0A3B7C9D2E4F60").is_ok());
        assert!(check_call_id("appel-é-42").is_ok());
        assert!(check_call_id(&"x".repeat(128)).is_ok());
        assert!(
            check_call_id(&"x".repeat(129))
                .unwrap_err()
                .contains("129 bytes")
        );
        assert!(check_call_id(" ").unwrap_err().contains("empty"));
        assert!(check_call_id("").unwrap_err().contains("empty"));
        for bad in ["a\nb", "a\u{1b}[31m", "a\0", "a\r", "a\u{7f}", "a\u{9b}"] {
            assert!(
                check_call_id(bad).unwrap_err().contains("control"),
                "{bad:?}"
            );
        }
    }
}

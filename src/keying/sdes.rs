//! SDES keying (RFC 4568): a crypto suite and an inline base64 key‖salt per direction.

use super::error::decode_base64;
use super::{CallKeys, KeyingError};
use crate::srtp::{MasterKey, SrtpError, SrtpProfile};

/// Parses one direction's key parameter: bare base64 key‖salt or `inline:` followed by it.
/// Lifetime (`|2^31`) and MKI (`|1:4`) fields are refused: srtpd does not rekey by lifetime
/// or carry an MKI, and silently ignoring them would break against a peer that does.
pub fn parse_inline(
    profile: SrtpProfile,
    field: &'static str,
    text: &str,
) -> Result<MasterKey, KeyingError> {
    let text = text.trim();
    let text = text.strip_prefix("inline:").unwrap_or(text);
    if text.contains('|') {
        return Err(KeyingError::Unsupported {
            field,
            reason: "lifetime and MKI parameters are not supported; give only inline:<base64 key||salt>",
        });
    }
    let bytes = decode_base64(field, text)?;
    MasterKey::from_concatenated(profile, &bytes).map_err(|e| match e {
        SrtpError::BadKeyLength { expected, got, .. } => KeyingError::BadLength {
            field,
            expected,
            got,
        },
        other => KeyingError::Srtp(other),
    })
}

/// The call keys of an SDES session: `profile` by its RFC 4568 name, and the base64 key‖salt
/// we send with (`tx`) and receive with (`rx`).
pub fn call_keys(profile: &str, tx: &str, rx: &str) -> Result<CallKeys, KeyingError> {
    let profile: SrtpProfile = profile.parse()?;
    Ok(CallKeys {
        profile,
        rtp_tag_len: None,
        tx: parse_inline(profile, "tx", tx)?,
        rx: parse_inline(profile, "rx", rx)?,
    })
}

/// Base64 of key‖salt, the form [`parse_inline`] reads (for writing an `a=crypto` line).
pub fn encode_inline(key: &MasterKey) -> String {
    use base64::Engine;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(key.key().len() + key.salt().len()));
    bytes.extend_from_slice(key.key());
    bytes.extend_from_slice(key.salt());
    base64::engine::general_purpose::STANDARD.encode(&*bytes)
}

//! Errors from keying material: each names the field and what is wrong, never the key bytes.

use crate::srtp::{SrtpError, UnknownProfile};

/// Why keying material was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyingError {
    /// The field is not valid base64.
    #[error("{field}: invalid base64 ({reason})")]
    BadBase64 {
        /// Which field.
        field: &'static str,
        /// What is wrong, without the input's bytes.
        reason: String,
    },
    /// The decoded material has the wrong length.
    #[error("{field}: {got} bytes, expected {expected}")]
    BadLength {
        /// Which field.
        field: &'static str,
        /// What the scheme or profile needs.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The field uses a feature srtpd does not implement.
    #[error("{field}: {reason}")]
    Unsupported {
        /// Which field.
        field: &'static str,
        /// What is not supported.
        reason: &'static str,
    },
    /// The profile name is not one srtpd implements.
    #[error(transparent)]
    UnknownProfile(#[from] UnknownProfile),
    /// The decrypted enc payload does not carry a call key.
    #[error("enc_plaintext: {0}")]
    BadEncPlaintext(String),
    /// A device id needed for key derivation is empty.
    #[error("{0}: device id must not be empty")]
    MissingDeviceId(&'static str),
    /// The SRTP layer refused the derived keys or options.
    #[error(transparent)]
    Srtp(#[from] SrtpError),
}

/// Decodes standard base64 (padding optional), mapping errors to a message that names the
/// field and the position of the problem but never echoes the input.
pub(crate) fn decode_base64(
    field: &'static str,
    text: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyingError> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    ENGINE
        .decode(text.trim())
        .map(zeroize::Zeroizing::new)
        .map_err(|e| {
            let reason = match e {
                base64::DecodeError::InvalidByte(at, _) => {
                    format!("invalid character at offset {at}")
                }
                base64::DecodeError::InvalidLength(n) => format!("invalid length {n}"),
                base64::DecodeError::InvalidLastSymbol(at, _) => {
                    format!("invalid last symbol at offset {at}")
                }
                base64::DecodeError::InvalidPadding => "invalid padding".to_owned(),
            };
            KeyingError::BadBase64 { field, reason }
        })
}

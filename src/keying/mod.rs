//! Keying schemes: turn a call's keying material into per-direction SRTP master keys.
//!
//! - [`sdes`]: a profile and base64 key‖salt per direction, as RFC 4568 `a=crypto` carries
//!   them, for talking to any SRTP peer.
//! - [`wa_e2e`]: the 32-byte call key of a WhatsApp-style call, expanded per sender device
//!   with HKDF-SHA256.

mod error;
pub mod sdes;
pub mod wa_e2e;

pub use error::KeyingError;

use crate::srtp::{MasterKey, SrtpOptions, SrtpProfile};

/// The keys of one call: the profile and a master key for each direction.
#[derive(Clone, Debug)]
pub struct CallKeys {
    /// The protection profile both directions use.
    pub profile: SrtpProfile,
    /// RTP tag length if the scheme fixes one that differs from the profile's.
    pub rtp_tag_len: Option<usize>,
    /// Protects what we send.
    pub tx: MasterKey,
    /// Unprotects what we receive.
    pub rx: MasterKey,
}

impl CallKeys {
    /// Context options for these keys, starting from `base` (replay window, stream limit).
    pub fn options(&self, base: &SrtpOptions) -> SrtpOptions {
        SrtpOptions {
            rtp_tag_len: self.rtp_tag_len.or(base.rtp_tag_len),
            ..base.clone()
        }
    }
}

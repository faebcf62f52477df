//! The errors SRTP and SRTCP processing can return.

use crate::rtp::{PacketError, Ssrc};

/// Why a packet could not be protected or unprotected, or a context not built.
///
/// A failed `unprotect` never changes the context's state, whatever the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The packet is not a well-formed RTP or RTCP packet.
    #[error("malformed packet: {0}")]
    Malformed(#[from] PacketError),
    /// The packet is shorter than its header plus the trailer SRTP adds.
    #[error("packet too short: {len} bytes, need at least {needed}")]
    TooShort {
        /// Bytes given.
        len: usize,
        /// Header plus tag (and SRTCP index).
        needed: usize,
    },
    /// The buffer has no room behind the packet for the tag (and SRTCP index).
    #[error(
        "buffer too small: the protected packet needs {needed} bytes, the buffer has {capacity}"
    )]
    BufferTooSmall {
        /// Bytes the protected packet needs.
        needed: usize,
        /// Bytes the buffer holds.
        capacity: usize,
    },
    /// The authentication tag does not match: forged, corrupted or wrongly keyed.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The packet index was already received.
    #[error("replayed packet: SSRC {ssrc}, index {index}")]
    Replayed {
        /// The stream.
        ssrc: Ssrc,
        /// The packet index (SRTP) or SRTCP index.
        index: u64,
    },
    /// The packet index is behind the replay window.
    #[error("packet too old for the replay window: SSRC {ssrc}, index {index}")]
    TooOld {
        /// The stream.
        ssrc: Ssrc,
        /// The packet index (SRTP) or SRTCP index.
        index: u64,
    },
    /// The stream has used every packet index this key allows (2^48 SRTP, 2^31 SRTCP).
    #[error("packet index exhausted for SSRC {ssrc}: the key must be changed")]
    IndexExhausted {
        /// The stream.
        ssrc: Ssrc,
    },
    /// The context already tracks as many SSRCs as it is configured to.
    #[error("too many streams: the context tracks at most {limit} SSRCs")]
    TooManyStreams {
        /// The configured limit.
        limit: usize,
    },
    /// A key, salt or parameter does not fit the profile.
    #[error("bad {what} length: {got} bytes, expected {expected}")]
    BadKeyLength {
        /// Which item.
        what: &'static str,
        /// What the profile needs.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A context option is out of range.
    #[error("invalid SRTP option: {0}")]
    InvalidOption(&'static str),
}

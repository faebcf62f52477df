//! Settings of an SRTP or SRTCP context.

use super::{ReplayWindow, SrtpError, SrtpProfile};

/// Context settings beyond the profile and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpOptions {
    /// Replay window size in packets (at least 64). 1024 covers the reordering a video burst
    /// of ~1000 packets/s sees across a jittery path for about a second, for 136 bytes per stream.
    pub replay_window: usize,
    /// RTP tag length for HMAC-SHA1 profiles, 4 to 10 bytes; `None` takes the profile's
    /// (10 or 4). wa-e2e uses 4. AEAD profiles always use 16 and reject any other value.
    pub rtp_tag_len: Option<usize>,
    /// How many SSRCs one context tracks in each direction; an authenticated packet from one
    /// more SSRC is refused.
    pub max_streams: usize,
}

impl Default for SrtpOptions {
    fn default() -> Self {
        SrtpOptions {
            replay_window: 1024,
            rtp_tag_len: None,
            max_streams: 32,
        }
    }
}

impl SrtpOptions {
    /// The RTP tag length these options give `profile`, or why they cannot.
    pub(crate) fn rtp_tag_len_for(&self, profile: SrtpProfile) -> Result<usize, SrtpError> {
        match self.rtp_tag_len {
            None => Ok(profile.rtp_tag_len()),
            Some(n) if profile.is_aead() && n == profile.rtp_tag_len() => Ok(n),
            Some(_) if profile.is_aead() => Err(SrtpError::InvalidOption(
                "AEAD profiles use a 16-byte tag; rtp_tag_len must be unset or 16",
            )),
            Some(n) if (4..=10).contains(&n) => Ok(n),
            Some(_) => Err(SrtpError::InvalidOption(
                "rtp_tag_len must be between 4 and 10 bytes for HMAC-SHA1 profiles",
            )),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SrtpError> {
        if self.replay_window < ReplayWindow::MIN_SIZE {
            return Err(SrtpError::InvalidOption(
                "replay_window must be at least 64",
            ));
        }
        if self.replay_window > 1 << 20 {
            return Err(SrtpError::InvalidOption(
                "replay_window must be at most 1048576",
            ));
        }
        if self.max_streams == 0 {
            return Err(SrtpError::InvalidOption("max_streams must be at least 1"));
        }
        Ok(())
    }
}

//! SRTP protection profiles (RFC 3711, RFC 6188, RFC 7714) and their parameters.

use std::fmt;
use std::str::FromStr;

/// An SRTP protection profile: cipher, key sizes and authentication tag lengths.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SrtpProfile {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 3711).
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit RTP tag (80-bit on SRTCP).
    AesCm128HmacSha1_32,
    /// AES-256 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 6188).
    AesCm256HmacSha1_80,
    /// AES-256 counter mode, HMAC-SHA1 with a 32-bit RTP tag (RFC 6188).
    AesCm256HmacSha1_32,
    /// AES-128 in Galois/counter mode with a 16-byte tag (RFC 7714).
    AeadAes128Gcm,
    /// AES-256 in Galois/counter mode with a 16-byte tag (RFC 7714).
    AeadAes256Gcm,
}

/// Length of the HMAC-SHA1 session authentication key.
pub(crate) const AUTH_KEY_LEN: usize = 20;
/// Length of the AEAD authentication tag.
pub(crate) const AEAD_TAG_LEN: usize = 16;

impl SrtpProfile {
    /// Every profile, in the order of their RFC 4568 / RFC 5764 registrations.
    pub const ALL: [SrtpProfile; 6] = [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
        SrtpProfile::AesCm256HmacSha1_80,
        SrtpProfile::AesCm256HmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
    ];

    /// The crypto-suite name used by SDES (`a=crypto`) and in srtpd's configuration.
    pub const fn name(self) -> &'static str {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpProfile::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpProfile::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            SrtpProfile::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            SrtpProfile::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpProfile::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Whether this is an AEAD (GCM) profile, which has no separate HMAC.
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm
        )
    }

    /// Master (and session) cipher key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            SrtpProfile::AesCm128HmacSha1_80
            | SrtpProfile::AesCm128HmacSha1_32
            | SrtpProfile::AeadAes128Gcm => 16,
            SrtpProfile::AesCm256HmacSha1_80
            | SrtpProfile::AesCm256HmacSha1_32
            | SrtpProfile::AeadAes256Gcm => 32,
        }
    }

    /// Master (and session) salt length in bytes: 14 for counter mode, 12 for GCM.
    pub const fn salt_len(self) -> usize {
        if self.is_aead() { 12 } else { 14 }
    }

    /// The RTP authentication tag length the profile defines.
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 | SrtpProfile::AesCm256HmacSha1_80 => 10,
            SrtpProfile::AesCm128HmacSha1_32 | SrtpProfile::AesCm256HmacSha1_32 => 4,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => AEAD_TAG_LEN,
        }
    }

    /// The SRTCP authentication tag length (80 bits for every HMAC profile).
    pub const fn rtcp_tag_len(self) -> usize {
        if self.is_aead() { AEAD_TAG_LEN } else { 10 }
    }
}

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a crypto-suite name srtpd does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown SRTP profile {0:?}; expected one of AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AES_256_CM_HMAC_SHA1_80, AES_256_CM_HMAC_SHA1_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM"
)]
pub struct UnknownProfile(pub String);

impl FromStr for SrtpProfile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        SrtpProfile::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            // The DTLS-SRTP registry spells the profiles with an SRTP_ prefix.
            .or_else(|| {
                let bare = s
                    .get(5..)
                    .filter(|_| s[..5].eq_ignore_ascii_case("SRTP_"))?;
                SrtpProfile::ALL
                    .into_iter()
                    .find(|p| p.name().eq_ignore_ascii_case(bare))
            })
            .ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in SrtpProfile::ALL {
            assert_eq!(p.name().parse::<SrtpProfile>().unwrap(), p);
        }
        assert_eq!(
            "SRTP_AEAD_AES_128_GCM".parse::<SrtpProfile>().unwrap(),
            SrtpProfile::AeadAes128Gcm
        );
        assert!("AES_CM_192_HMAC_SHA1_80".parse::<SrtpProfile>().is_err());
        assert!("SRTP".parse::<SrtpProfile>().is_err());
    }
}

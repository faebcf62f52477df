//! SRTP master key and salt, the input every keying scheme produces.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{SrtpError, SrtpProfile};

/// A master key and master salt for one direction of one SRTP session.
///
/// The bytes are zeroized on drop and `Debug` never prints them.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    key: [u8; 32],
    key_len: u8,
    salt: [u8; 14],
    salt_len: u8,
}

impl MasterKey {
    /// A master key for `profile` from its key and salt.
    pub fn new(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        if key.len() != profile.key_len() {
            return Err(SrtpError::BadKeyLength {
                what: "master key",
                expected: profile.key_len(),
                got: key.len(),
            });
        }
        if salt.len() != profile.salt_len() {
            return Err(SrtpError::BadKeyLength {
                what: "master salt",
                expected: profile.salt_len(),
                got: salt.len(),
            });
        }
        let mut m = MasterKey {
            key: [0; 32],
            key_len: key.len() as u8,
            salt: [0; 14],
            salt_len: salt.len() as u8,
        };
        m.key[..key.len()].copy_from_slice(key);
        m.salt[..salt.len()].copy_from_slice(salt);
        Ok(m)
    }

    /// A master key for `profile` from the concatenation key‖salt (as SDES carries it).
    pub fn from_concatenated(profile: SrtpProfile, key_salt: &[u8]) -> Result<Self, SrtpError> {
        let want = profile.key_len() + profile.salt_len();
        if key_salt.len() != want {
            return Err(SrtpError::BadKeyLength {
                what: "master key||salt",
                expected: want,
                got: key_salt.len(),
            });
        }
        let (key, salt) = key_salt.split_at(profile.key_len());
        Self::new(profile, key, salt)
    }

    /// The master key bytes.
    pub fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len)]
    }

    /// The master salt bytes.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..usize::from(self.salt_len)]
    }

    /// Whether this key's lengths match `profile`.
    pub fn fits(&self, profile: SrtpProfile) -> bool {
        self.key().len() == profile.key_len() && self.salt().len() == profile.salt_len()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MasterKey {{ {}-byte key, {}-byte salt: redacted }}",
            self.key_len, self.salt_len
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_lengths_are_checked() {
        let k = MasterKey::new(SrtpProfile::AesCm128HmacSha1_80, &[0xab; 16], &[0xcd; 14]).unwrap();
        let shown = format!("{k:?}");
        assert!(!shown.contains("ab") && !shown.contains("171") && shown.contains("redacted"));
        assert_eq!(
            MasterKey::new(SrtpProfile::AeadAes128Gcm, &[0; 16], &[0; 14]).unwrap_err(),
            SrtpError::BadKeyLength {
                what: "master salt",
                expected: 12,
                got: 14
            }
        );
        assert!(MasterKey::from_concatenated(SrtpProfile::AesCm256HmacSha1_80, &[0; 46]).is_ok());
        assert!(MasterKey::from_concatenated(SrtpProfile::AesCm256HmacSha1_80, &[0; 30]).is_err());
    }
}

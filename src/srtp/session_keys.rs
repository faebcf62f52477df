//! RFC 3711 section 4.3 key derivation (AES-CM PRF, key derivation rate 0), also used by
//! RFC 6188 (AES-256) and RFC 7714 (GCM, whose 12-byte master salt is zero-padded to 14).

use std::fmt;

use aes::{Aes128, Aes256};
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::profile::AUTH_KEY_LEN;
use super::{MasterKey, SrtpError, SrtpProfile};

/// Which packets a set of session keys protects: the KDF labels differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyUse {
    /// SRTP (labels 0, 1, 2).
    Rtp,
    /// SRTCP (labels 3, 4, 5).
    Rtcp,
}

impl KeyUse {
    fn labels(self) -> (u8, u8, u8) {
        match self {
            KeyUse::Rtp => (0, 1, 2),
            KeyUse::Rtcp => (3, 4, 5),
        }
    }
}

/// The session cipher key, salt and (for HMAC profiles) authentication key.
///
/// Zeroized on drop; `Debug` redacts the bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    profile: SrtpProfile,
    cipher_key: [u8; 32],
    salt: [u8; 14],
    auth_key: [u8; AUTH_KEY_LEN],
}

impl Zeroize for SrtpProfile {
    fn zeroize(&mut self) {}
}

impl SessionKeys {
    /// Derives the session keys for `key_use` from a master key (RFC 3711 section 4.3.1).
    pub fn derive(
        profile: SrtpProfile,
        master: &MasterKey,
        key_use: KeyUse,
    ) -> Result<Self, SrtpError> {
        if !master.fits(profile) {
            return Err(SrtpError::BadKeyLength {
                what: "master key",
                expected: profile.key_len(),
                got: master.key().len(),
            });
        }
        let (enc, auth, salt) = key_use.labels();
        let mut keys = SessionKeys {
            profile,
            cipher_key: [0; 32],
            salt: [0; 14],
            auth_key: [0; AUTH_KEY_LEN],
        };
        prf(master, enc, &mut keys.cipher_key[..profile.key_len()]);
        prf(master, salt, &mut keys.salt[..profile.salt_len()]);
        if !profile.is_aead() {
            prf(master, auth, &mut keys.auth_key);
        }
        Ok(keys)
    }

    /// Session keys given directly, as known-answer tests (RFC 3711 B.2, RFC 7714 section 16)
    /// state them. `auth_key` is required for HMAC profiles and must be absent for AEAD ones.
    pub fn from_raw(
        profile: SrtpProfile,
        cipher_key: &[u8],
        salt: &[u8],
        auth_key: Option<&[u8]>,
    ) -> Result<Self, SrtpError> {
        let check = |what, expected: usize, got: usize| {
            if expected == got {
                Ok(())
            } else {
                Err(SrtpError::BadKeyLength {
                    what,
                    expected,
                    got,
                })
            }
        };
        check("session key", profile.key_len(), cipher_key.len())?;
        check("session salt", profile.salt_len(), salt.len())?;
        let auth = auth_key.unwrap_or(&[]);
        check(
            "session auth key",
            if profile.is_aead() { 0 } else { AUTH_KEY_LEN },
            auth.len(),
        )?;
        let mut keys = SessionKeys {
            profile,
            cipher_key: [0; 32],
            salt: [0; 14],
            auth_key: [0; AUTH_KEY_LEN],
        };
        keys.cipher_key[..cipher_key.len()].copy_from_slice(cipher_key);
        keys.salt[..salt.len()].copy_from_slice(salt);
        keys.auth_key[..auth.len()].copy_from_slice(auth);
        Ok(keys)
    }

    /// The profile these keys are for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The session cipher key.
    pub fn cipher_key(&self) -> &[u8] {
        &self.cipher_key[..self.profile.key_len()]
    }

    /// The session salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..self.profile.salt_len()]
    }

    /// The session authentication key (empty for AEAD profiles).
    pub fn auth_key(&self) -> &[u8] {
        if self.profile.is_aead() {
            &[]
        } else {
            &self.auth_key
        }
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKeys {{ {}: redacted }}", self.profile)
    }
}

/// The AES-CM PRF: keystream under the master key from IV = (label ⊕ salt) · 2^16.
fn prf(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..master.salt().len()].copy_from_slice(master.salt());
    // key_id = label || (index DIV kdr) is 56 bits aligned to the right of the 112-bit salt;
    // with kdr = 0 only the label byte is non-zero.
    iv[7] ^= label;
    out.fill(0);
    match master.key().len() {
        16 => Ctr128BE::<Aes128>::new(master.key().into(), &iv.into()).apply_keystream(out),
        _ => Ctr128BE::<Aes256>::new(master.key().into(), &iv.into()).apply_keystream(out),
    }
    iv.zeroize();
}

//! The keyed cipher and authenticator of one context, set up once and used per packet.

use aes::cipher::KeyInit;
use aes::{Aes128, Aes256};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use ctr::CtrCore;
use ctr::cipher::{BlockCipher, BlockEncrypt, InnerIvInit, StreamCipher, StreamCipherCoreWrapper};
use ctr::flavors::Ctr128BE;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::profile::AEAD_TAG_LEN;
use super::{SessionKeys, SrtpError};
use crate::rtp::Ssrc;

/// HMAC-SHA1 with the key already absorbed into its inner and outer hash states, so a packet
/// costs only the hashing of its own bytes. The states are key-equivalent: wiped on drop.
struct KeyedMac(Hmac<Sha1>);

impl Drop for KeyedMac {
    fn drop(&mut self) {
        // SAFETY: `Hmac<Sha1>` is a flat value (hash states and a block buffer, no pointers
        // or heap), and it is never read after being zeroed here.
        unsafe { zeroize::zeroize_flat_type(&mut self.0) }
    }
}

enum Cipher {
    Cm128(Aes128),
    Cm256(Aes256),
    Gcm128(Aes128Gcm),
    Gcm256(Aes256Gcm),
}

/// A keyed primitive from a key whose length the profile already fixed.
fn new_keyed<T: KeyInit>(key: &[u8]) -> T {
    T::new_from_slice(key).expect("session key length matches the profile")
}

/// A GCM instance (aes-gcm 0.11, whose GHASH is twice as fast as 0.10's) from a key whose
/// length the profile already fixed.
fn new_gcm<T: aes_gcm::KeyInit>(key: &[u8]) -> T {
    T::new_from_slice(key).expect("session key length matches the profile")
}

/// Runs AES-CTR over a borrowed key schedule: nothing is expanded or copied per packet.
fn ctr_over<C: BlockEncrypt + BlockCipher<BlockSize = aes::cipher::consts::U16>>(
    cipher: &C,
    iv: [u8; 16],
    data: &mut [u8],
) {
    let core = CtrCore::<&C, Ctr128BE>::inner_iv_init(cipher, &iv.into());
    StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
}

/// The per-context crypto state: AES key schedule (or GCM instance), session salt and, for
/// counter-mode profiles, the keyed HMAC.
pub(crate) struct Transform {
    cipher: Cipher,
    salt: Salt,
    mac: Option<KeyedMac>,
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct Salt([u8; 14]);

impl Transform {
    pub(crate) fn new(keys: &SessionKeys) -> Self {
        let key = keys.cipher_key();
        let cipher = match (keys.profile().is_aead(), key.len()) {
            (false, 16) => Cipher::Cm128(new_keyed(key)),
            (false, _) => Cipher::Cm256(new_keyed(key)),
            (true, 16) => Cipher::Gcm128(new_gcm(key)),
            (true, _) => Cipher::Gcm256(new_gcm(key)),
        };
        let mut salt = Salt([0; 14]);
        salt.0[..keys.salt().len()].copy_from_slice(keys.salt());
        let mac = (!keys.profile().is_aead()).then(|| KeyedMac(new_keyed(keys.auth_key())));
        Transform { cipher, salt, mac }
    }

    /// Hints the cache lines of the key schedule, the salt and the keyed MAC.
    pub(crate) fn prefetch(&self) {
        use crate::prefetch::{prefetch, prefetch_bytes};
        match &self.cipher {
            Cipher::Cm128(aes) => prefetch_bytes(aes, 192),
            Cipher::Cm256(aes) => prefetch_bytes(aes, 256),
            Cipher::Gcm128(gcm) => prefetch_bytes(gcm, 512),
            Cipher::Gcm256(gcm) => prefetch_bytes(gcm, 512),
        }
        prefetch(&self.salt);
        if let Some(mac) = &self.mac {
            prefetch_bytes(mac, 256);
        }
    }

    /// Hints the fields that tell [`Self::prefetch`] which cipher and MAC there are.
    pub(crate) fn prefetch_outer(&self) {
        crate::prefetch::prefetch(&self.cipher);
        crate::prefetch::prefetch(&self.mac);
    }

    /// Whether this is an AEAD transform (GCM) rather than AES-CM with HMAC-SHA1.
    pub(crate) fn is_aead(&self) -> bool {
        self.mac.is_none()
    }

    /// XORs the AES-CM keystream for (`ssrc`, `index`) into `data` (RFC 3711 section 4.1.1):
    /// IV = (salt · 2^16) ⊕ (SSRC · 2^64) ⊕ (index · 2^16).
    pub(crate) fn apply_keystream(&self, ssrc: Ssrc, index: u64, data: &mut [u8]) {
        let iv = self.cm_iv(ssrc, index);
        match &self.cipher {
            Cipher::Cm128(aes) => ctr_over(aes, iv, data),
            Cipher::Cm256(aes) => ctr_over(aes, iv, data),
            Cipher::Gcm128(_) | Cipher::Gcm256(_) => unreachable!("keystream on an AEAD transform"),
        }
    }

    fn cm_iv(&self, ssrc: Ssrc, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt.0);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.0.to_be_bytes()) {
            *b ^= s;
        }
        for (b, i) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= i;
        }
        iv
    }

    /// HMAC-SHA1 over `data || trailer`, the full 20 bytes.
    pub(crate) fn mac(&self, data: &[u8], trailer: &[u8]) -> [u8; 20] {
        let mut mac = self.keyed_mac().clone();
        mac.update(data);
        mac.update(trailer);
        mac.finalize().into_bytes().into()
    }

    /// Checks a (truncated) HMAC-SHA1 tag over `data || trailer` in constant time.
    pub(crate) fn verify_mac(
        &self,
        data: &[u8],
        trailer: &[u8],
        tag: &[u8],
    ) -> Result<(), SrtpError> {
        let mut mac = self.keyed_mac().clone();
        mac.update(data);
        mac.update(trailer);
        mac.verify_truncated_left(tag)
            .map_err(|_| SrtpError::AuthenticationFailed)
    }

    fn keyed_mac(&self) -> &Hmac<Sha1> {
        &self.mac.as_ref().expect("MAC on an AEAD transform").0
    }

    /// The RFC 7714 section 8.1 SRTP nonce: (0x0000 ‖ SSRC ‖ ROC ‖ SEQ) ⊕ salt.
    pub(crate) fn rtp_nonce(&self, ssrc: Ssrc, roc: u32, seq: u16) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.0.to_be_bytes());
        iv[6..10].copy_from_slice(&roc.to_be_bytes());
        iv[10..12].copy_from_slice(&seq.to_be_bytes());
        self.xor_salt(iv)
    }

    /// The RFC 7714 section 9.1 SRTCP nonce: (0x0000 ‖ SSRC ‖ 0x0000 ‖ 0 ‖ index) ⊕ salt.
    pub(crate) fn rtcp_nonce(&self, ssrc: Ssrc, index: u32) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.0.to_be_bytes());
        iv[8..12].copy_from_slice(&index.to_be_bytes());
        self.xor_salt(iv)
    }

    fn xor_salt(&self, mut iv: [u8; 12]) -> [u8; 12] {
        for (b, s) in iv.iter_mut().zip(&self.salt.0) {
            *b ^= s;
        }
        iv
    }

    /// Encrypts `data` in place and returns the GCM tag.
    pub(crate) fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; AEAD_TAG_LEN] {
        let tag = match &self.cipher {
            Cipher::Gcm128(g) => g.encrypt_inout_detached(nonce.into(), aad, data.into()),
            Cipher::Gcm256(g) => g.encrypt_inout_detached(nonce.into(), aad, data.into()),
            Cipher::Cm128(_) | Cipher::Cm256(_) => unreachable!("seal on a counter-mode transform"),
        };
        // Only a plaintext longer than 2^36 bytes can fail; a UDP payload never is.
        tag.expect("GCM plaintext within limits").into()
    }

    /// Verifies the GCM tag and, only if it matches, decrypts `data` in place.
    pub(crate) fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), SrtpError> {
        let tag = tag
            .try_into()
            .map_err(|_| SrtpError::AuthenticationFailed)?;
        let result = match &self.cipher {
            Cipher::Gcm128(g) => g.decrypt_inout_detached(nonce.into(), aad, data.into(), tag),
            Cipher::Gcm256(g) => g.decrypt_inout_detached(nonce.into(), aad, data.into(), tag),
            Cipher::Cm128(_) | Cipher::Cm256(_) => unreachable!("open on a counter-mode transform"),
        };
        result.map_err(|_| SrtpError::AuthenticationFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::SrtpProfile;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The wa-e2e vector's peer RTP session keys.
    fn wa_peer() -> Transform {
        let keys = SessionKeys::from_raw(
            SrtpProfile::AesCm128HmacSha1_32,
            &unhex("747055a9d18be0fcdc0e29d871309081"),
            &unhex("10fb8133eff7639cc0d06788f49c"),
            Some(&unhex("8eff4bb04971d92512b034ce0ebc466059bfc6ea")),
        )
        .unwrap();
        Transform::new(&keys)
    }

    #[test]
    fn wa_e2e_tag_over_the_sample_packet() {
        let sample = unhex("90780007000003c012345678deadbeef");
        let roc = 0u32.to_be_bytes();
        assert_eq!(wa_peer().mac(&sample, &roc)[..4], unhex("53fada83")[..]);
        assert!(
            wa_peer()
                .verify_mac(&sample, &roc, &unhex("53fada83"))
                .is_ok()
        );
        assert!(
            wa_peer()
                .verify_mac(&sample, &roc, &unhex("53fada82"))
                .is_err()
        );
    }

    #[test]
    fn wa_e2e_iv_and_keystream() {
        assert_eq!(
            wa_peer().cm_iv(Ssrc(0x1234_5678), 7)[..],
            unhex("10fb8133fdc335e4c0d06788f49b0000")[..]
        );
        let mut data = unhex("102132435465768798a9bacb");
        wa_peer().apply_keystream(Ssrc(0x1234_5678), 7, &mut data);
        assert_eq!(data, unhex("17b30591a2650ed7bbae9c5a"));
    }

    #[test]
    fn rfc7714_nonces() {
        let keys = SessionKeys::from_raw(
            SrtpProfile::AeadAes128Gcm,
            &[0; 16],
            &unhex("517569642070726f2071756f"),
            None,
        )
        .unwrap();
        let t = Transform::new(&keys);
        assert_eq!(
            t.rtp_nonce(Ssrc(0x5501_a0b2), 0, 0xf17b)[..],
            unhex("51753c6580c2726f20718414")[..]
        );
        assert_eq!(
            t.rtcp_nonce(Ssrc(0x4d61_7273), 0x5d4)[..],
            unhex("517524055203726f207170bb")[..]
        );
    }
}

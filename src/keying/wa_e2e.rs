//! The wa-e2e keying scheme: a 32-byte call key shared through the E2E-encrypted `<enc>`
//! payload, expanded per sender device into SRTP master keys.
//!
//! Master key and salt of the packets a device sends: HKDF-SHA256 with a salt of 32 zero
//! bytes, the call key as input and the device id (LID, normalised) as info, 46 bytes:
//! key = okm[0..16], salt = okm[16..30]. The profile is AES_CM_128_HMAC_SHA1 with a 4-byte
//! RTP tag and the usual 10-byte SRTCP tag.

use std::borrow::Cow;
use std::fmt;

use hkdf::Hkdf;
use prost::Message;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::decode_base64;
use super::{CallKeys, KeyingError};
use crate::rtp::Ssrc;
use crate::srtp::{MasterKey, SrtpProfile};

/// The SRTP profile of wa-e2e calls (its RTP tag is cut to [`RTP_TAG_LEN`]).
pub const PROFILE: SrtpProfile = SrtpProfile::AesCm128HmacSha1_32;
/// The default RTP authentication tag length of wa-e2e calls.
pub const RTP_TAG_LEN: usize = 4;

/// The 32-byte call key. Zeroized on drop; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct CallKey([u8; 32]);

impl CallKey {
    /// Length of a call key.
    pub const LEN: usize = 32;

    /// The call key from its raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyingError> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyingError::BadLength {
            field: "call_key",
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        Ok(CallKey(key))
    }

    /// The call key from base64 (the control protocol's `call_key`).
    pub fn from_base64(text: &str) -> Result<Self, KeyingError> {
        Self::from_bytes(&decode_base64("call_key", text)?)
    }

    /// The call key from the decrypted `<enc>` payload: a protobuf `Message` whose field 10
    /// (`call`) holds a `Call` whose field 1 is `callKey`. Random padding left on the
    /// plaintext (n bytes of value n, n ≤ 16) is removed if the signaling client did not.
    pub fn from_enc_plaintext(plaintext: &[u8]) -> Result<Self, KeyingError> {
        match decode_call_key(plaintext) {
            Ok(key) => Ok(key),
            Err(first) => match strip_padding(plaintext) {
                Some(unpadded) => decode_call_key(unpadded).map_err(|_| first),
                None => Err(first),
            },
        }
    }

    /// The call key from the base64 of the decrypted `<enc>` payload.
    pub fn from_enc_plaintext_base64(text: &str) -> Result<Self, KeyingError> {
        Self::from_enc_plaintext(&decode_base64("enc_plaintext", text)?)
    }

    /// The master key and salt protecting what `sender_device` sends.
    pub fn master_key(&self, sender_device: &str) -> MasterKey {
        let okm = self.expand(sender_device);
        MasterKey::new(PROFILE, &okm[..16], &okm[16..30]).expect("lengths fit the profile")
    }

    /// The 46 bytes of HKDF output for `sender_device`; the scheme uses the first 30.
    fn expand(&self, sender_device: &str) -> Zeroizing<[u8; 46]> {
        let info = normalize_device_id(sender_device);
        let mut okm = Zeroizing::new([0u8; 46]);
        Hkdf::<Sha256>::new(Some(&[0u8; 32]), &self.0)
            .expand(info.as_bytes(), &mut *okm)
            .expect("46 bytes is a valid HKDF-SHA256 length");
        okm
    }

    /// The call keys between `self_device` (we send with its keys) and `peer_device` (we
    /// receive with its keys). `rtp_tag_len` defaults to [`RTP_TAG_LEN`].
    pub fn call_keys(
        &self,
        self_device: &str,
        peer_device: &str,
        rtp_tag_len: Option<usize>,
    ) -> Result<CallKeys, KeyingError> {
        if self_device.trim().is_empty() {
            return Err(KeyingError::MissingDeviceId("self"));
        }
        if peer_device.trim().is_empty() {
            return Err(KeyingError::MissingDeviceId("peer"));
        }
        Ok(CallKeys {
            profile: PROFILE,
            rtp_tag_len: Some(rtp_tag_len.unwrap_or(RTP_TAG_LEN)),
            tx: self.master_key(self_device),
            rx: self.master_key(peer_device),
        })
    }
}

impl fmt::Debug for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallKey(redacted)")
    }
}

/// The `Message` of the decrypted enc payload, reduced to the one field srtpd reads.
#[derive(Clone, PartialEq, Message)]
struct EncMessage {
    #[prost(message, optional, tag = "10")]
    call: Option<CallMessage>,
}

/// The `Call` message, reduced to the call key.
#[derive(Clone, PartialEq, Message)]
struct CallMessage {
    #[prost(bytes = "vec", optional, tag = "1")]
    call_key: Option<Vec<u8>>,
}

fn decode_call_key(bytes: &[u8]) -> Result<CallKey, KeyingError> {
    let message = EncMessage::decode(bytes)
        .map_err(|e| KeyingError::BadEncPlaintext(format!("not a protobuf Message: {e}")))?;
    let mut key = message
        .call
        .ok_or_else(|| KeyingError::BadEncPlaintext("no call (field 10) in the Message".into()))?
        .call_key
        .ok_or_else(|| KeyingError::BadEncPlaintext("no callKey (field 1) in the Call".into()))?;
    let result = CallKey::from_bytes(&key).map_err(|_| {
        KeyingError::BadEncPlaintext(format!("callKey is {} bytes, expected 32", key.len()))
    });
    key.zeroize();
    result
}

fn strip_padding(bytes: &[u8]) -> Option<&[u8]> {
    let n = usize::from(*bytes.last()?);
    if n == 0 || n > 16 || n > bytes.len() {
        return None;
    }
    let (body, pad) = bytes.split_at(bytes.len() - n);
    pad.iter().all(|&b| usize::from(b) == n).then_some(body)
}

/// The device id as HKDF info: a `/resource` suffix dropped, an existing `:N@lid` kept, a
/// bare `X@lid` made `X:0@lid`; other JIDs pass through unchanged.
pub fn normalize_device_id(id: &str) -> Cow<'_, str> {
    let id = id.trim();
    let id = id.split_once('/').map_or(id, |(jid, _)| jid);
    match id.strip_suffix("@lid") {
        Some(user) if !user.contains(':') => Cow::Owned(format!("{user}:0@lid")),
        _ => Cow::Borrowed(id),
    }
}

/// Which stream of a device an SSRC belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SsrcSlot {
    /// Audio.
    Audio = 0,
    /// Audio forward error correction.
    AudioFec = 1,
    /// Video.
    Video = 2,
}

/// The SSRC `device_id` uses for `slot` in call `call_id`: the little-endian u32 of
/// HKDF-SHA256(salt = slot as u32 LE, ikm = call id, info = device id, 4 bytes).
pub fn derive_ssrc(call_id: &str, device_id: &str, slot: SsrcSlot) -> Ssrc {
    let info = normalize_device_id(device_id);
    let mut okm = [0u8; 4];
    Hkdf::<Sha256>::new(Some(&(slot as u32).to_le_bytes()), call_id.as_bytes())
        .expand(info.as_bytes(), &mut okm)
        .expect("4 bytes is a valid HKDF-SHA256 length");
    Ssrc(u32::from_le_bytes(okm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_hkdf_output_of_the_peer() {
        let key: Vec<u8> = (0u8..32).collect();
        let okm = CallKey::from_bytes(&key)
            .unwrap()
            .expand("222222222222222:0@lid");
        let expected = "3f5423fb6f67e4c588bf5741a3a4e92c749ee99101a47c82bb5dacec40cfc7b95d387fe9ff466f78db6cc4fdaa30";
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }
}

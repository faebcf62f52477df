//! The SRTCP context: protects and unprotects RTCP packets in place (RFC 3711 section 3.4,
//! RFC 7714 section 9).

use super::profile::AEAD_TAG_LEN;
use super::rtp_context::replay_error;
use super::streams::StreamTable;
use super::transform::Transform;
use super::{KeyUse, MasterKey, ReplayWindow, SessionKeys, SrtpError, SrtpOptions, SrtpProfile};
use crate::rtp::{RTCP_HEADER_LEN, RtcpPacket, Ssrc};

/// Length of the E flag and SRTCP index word.
const INDEX_LEN: usize = 4;
/// The E (encrypted) flag of the SRTCP index word.
const E_FLAG: u32 = 0x8000_0000;
/// The largest SRTCP index (31 bits).
pub const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// One direction of SRTCP under one master key. Every packet it protects is encrypted (E=1);
/// on receipt, unencrypted (E=0) packets are authenticated and accepted too.
pub struct SrtcpContext {
    profile: SrtpProfile,
    transform: Transform,
    tag_len: usize,
    replay_window: usize,
    /// The next SRTCP index to send, per SSRC.
    senders: StreamTable<u32>,
    receivers: StreamTable<ReplayWindow>,
}

impl SrtcpContext {
    /// A context for `profile` keyed by `master` (the SRTCP labels of RFC 3711 section 4.3).
    pub fn new(
        profile: SrtpProfile,
        master: &MasterKey,
        options: &SrtpOptions,
    ) -> Result<Self, SrtpError> {
        Self::from_session_keys(
            &SessionKeys::derive(profile, master, KeyUse::Rtcp)?,
            options,
        )
    }

    /// A context from already-derived SRTCP session keys.
    pub fn from_session_keys(keys: &SessionKeys, options: &SrtpOptions) -> Result<Self, SrtpError> {
        options.validate()?;
        Ok(SrtcpContext {
            profile: keys.profile(),
            transform: Transform::new(keys),
            tag_len: keys.profile().rtcp_tag_len(),
            replay_window: options.replay_window,
            senders: StreamTable::new(options.max_streams),
            receivers: StreamTable::new(options.max_streams),
        })
    }

    /// The protection profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Bytes `protect` appends: the SRTCP index word and the tag.
    pub fn overhead(&self) -> usize {
        INDEX_LEN + self.tag_len
    }

    /// Protects the (compound) RTCP packet in `buf[..len]` in place, appending the index word
    /// and tag. Returns the protected length.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let needed = len + self.overhead();
        if buf.len() < needed {
            return Err(SrtpError::BufferTooSmall {
                needed,
                capacity: buf.len(),
            });
        }
        let ssrc = RtcpPacket::new_checked(&buf[..len])?.sender_ssrc();
        self.senders.ensure_room(ssrc)?;
        let index = self.senders.get(ssrc).copied().unwrap_or(0);
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::IndexExhausted { ssrc });
        }
        let word = (E_FLAG | index).to_be_bytes();

        if self.transform.is_aead() {
            let nonce = self.transform.rtcp_nonce(ssrc, index);
            let (header, body) = buf.split_at_mut(RTCP_HEADER_LEN);
            let aad = aad_with_index(header, word);
            let body_len = len - RTCP_HEADER_LEN;
            let tag = self.transform.seal(&nonce, &aad, &mut body[..body_len]);
            buf[len..len + AEAD_TAG_LEN].copy_from_slice(&tag);
            buf[len + AEAD_TAG_LEN..needed].copy_from_slice(&word);
        } else {
            self.transform
                .apply_keystream(ssrc, u64::from(index), &mut buf[RTCP_HEADER_LEN..len]);
            buf[len..len + INDEX_LEN].copy_from_slice(&word);
            let tag = self.transform.mac(&buf[..len + INDEX_LEN], &[]);
            buf[len + INDEX_LEN..needed].copy_from_slice(&tag[..self.tag_len]);
        }

        *self.senders.get_or_insert_with(ssrc, || 0) = index + 1;
        Ok(needed)
    }

    /// Authenticates the SRTCP packet filling `buf`, checks its index against the replay
    /// window and decrypts it in place. Returns the length of the RTCP packet now at the
    /// front of `buf`. On any error the buffer and the context are left as they were. A
    /// packet is called a replay only once it authenticated.
    pub fn unprotect(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf.len();
        let ssrc = RtcpPacket::new_checked(&*buf)?.sender_ssrc();
        let needed = RTCP_HEADER_LEN + self.overhead();
        if len < needed {
            return Err(SrtpError::TooShort { len, needed });
        }
        let plain_len = len - self.overhead();
        let word_at = if self.transform.is_aead() {
            len - INDEX_LEN
        } else {
            plain_len
        };
        let word: [u8; 4] = buf[word_at..word_at + INDEX_LEN]
            .try_into()
            .expect("4 bytes");
        let encrypted = u32::from_be_bytes(word) & E_FLAG != 0;
        let index = u32::from_be_bytes(word) & MAX_SRTCP_INDEX;

        let replayed = match self.receivers.get(ssrc) {
            Some(w) => w
                .check(u64::from(index))
                .err()
                .map(|v| replay_error(v, ssrc, u64::from(index))),
            None => {
                self.receivers.ensure_room(ssrc)?;
                None
            }
        };

        if self.transform.is_aead() {
            let nonce = self.transform.rtcp_nonce(ssrc, index);
            if encrypted {
                let (header, rest) = buf.split_at_mut(RTCP_HEADER_LEN);
                let aad = aad_with_index(header, word);
                let (body, tail) = rest.split_at_mut(plain_len - RTCP_HEADER_LEN);
                self.transform
                    .open(&nonce, &aad, body, &tail[..AEAD_TAG_LEN])?;
                if let Some(e) = replayed {
                    // Sealing again with the same nonce gives back the packet as it came.
                    let tag = self.transform.seal(&nonce, &aad, body);
                    tail[..AEAD_TAG_LEN].copy_from_slice(&tag);
                    return Err(e);
                }
            } else {
                // E=0: the whole packet and the index word are associated data, in that order.
                // Put the word right behind the packet (over the tag, saved first) so the
                // associated data is one slice, and restore the tag if authentication fails.
                let tag: [u8; AEAD_TAG_LEN] = buf[plain_len..plain_len + AEAD_TAG_LEN]
                    .try_into()
                    .expect("16 bytes");
                buf[plain_len..plain_len + INDEX_LEN].copy_from_slice(&word);
                let result =
                    self.transform
                        .open(&nonce, &buf[..plain_len + INDEX_LEN], &mut [], &tag);
                if result.is_err() || replayed.is_some() {
                    buf[plain_len..plain_len + AEAD_TAG_LEN].copy_from_slice(&tag);
                }
                result?;
                if let Some(e) = replayed {
                    return Err(e);
                }
            }
        } else {
            let (authenticated, tag) = buf.split_at(plain_len + INDEX_LEN);
            self.transform.verify_mac(authenticated, &[], tag)?;
            if let Some(e) = replayed {
                return Err(e);
            }
            if encrypted {
                self.transform.apply_keystream(
                    ssrc,
                    u64::from(index),
                    &mut buf[RTCP_HEADER_LEN..plain_len],
                );
            }
        }

        let window = self.replay_window;
        self.receivers
            .get_or_insert_with(ssrc, || ReplayWindow::new(window))
            .accept(u64::from(index));
        Ok(plain_len)
    }

    /// Sets the next SRTCP index the sending stream `ssrc` uses (to resume it).
    pub fn set_send_index(&mut self, ssrc: Ssrc, index: u32) -> Result<(), SrtpError> {
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::IndexExhausted { ssrc });
        }
        self.senders.insert(ssrc, index)
    }

    /// The next SRTCP index the sending stream `ssrc` will use.
    pub fn next_send_index(&self, ssrc: Ssrc) -> u32 {
        self.senders.get(ssrc).copied().unwrap_or(0)
    }
}

/// The GCM associated data of an encrypted SRTCP packet: first header and SSRC, then the
/// E flag and index word (RFC 7714 section 9.2).
fn aad_with_index(header: &[u8], word: [u8; 4]) -> [u8; RTCP_HEADER_LEN + INDEX_LEN] {
    let mut aad = [0u8; RTCP_HEADER_LEN + INDEX_LEN];
    aad[..RTCP_HEADER_LEN].copy_from_slice(&header[..RTCP_HEADER_LEN]);
    aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
    aad
}

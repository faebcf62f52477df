//! The SRTP context: protects and unprotects RTP packets in place (RFC 3711, RFC 7714).

use super::index::PacketIndex;
use super::streams::StreamTable;
use super::transform::Transform;
use super::{
    KeyUse, MasterKey, ReplayVerdict, ReplayWindow, SessionKeys, SrtpError, SrtpOptions,
    SrtpProfile,
};
use crate::rtp::{RtpPacket, Ssrc};

/// Receive-side state of one SSRC.
#[derive(Clone, Debug)]
struct RecvStream {
    /// Where index estimation starts before any packet authenticated (set explicitly).
    reference: Option<PacketIndex>,
    window: ReplayWindow,
}

impl RecvStream {
    fn highest(&self) -> Option<PacketIndex> {
        self.window
            .top()
            .and_then(PacketIndex::from_u64)
            .or(self.reference)
    }
}

/// One direction of SRTP under one master key.
///
/// `protect` and `unprotect` work on the caller's buffer: no allocation and no copy per
/// packet. State per SSRC (rollover counter, highest index, replay window) changes only when
/// a packet is protected, or after an unprotected packet authenticated.
pub struct SrtpContext {
    profile: SrtpProfile,
    transform: Transform,
    tag_len: usize,
    replay_window: usize,
    senders: StreamTable<PacketIndex>,
    receivers: StreamTable<RecvStream>,
}

impl SrtpContext {
    /// A context for `profile` keyed by `master` (RFC 3711 key derivation, rate 0).
    pub fn new(
        profile: SrtpProfile,
        master: &MasterKey,
        options: &SrtpOptions,
    ) -> Result<Self, SrtpError> {
        Self::from_session_keys(&SessionKeys::derive(profile, master, KeyUse::Rtp)?, options)
    }

    /// A context from already-derived session keys.
    pub fn from_session_keys(keys: &SessionKeys, options: &SrtpOptions) -> Result<Self, SrtpError> {
        options.validate()?;
        let profile = keys.profile();
        Ok(SrtpContext {
            profile,
            transform: Transform::new(keys),
            tag_len: options.rtp_tag_len_for(profile)?,
            replay_window: options.replay_window,
            senders: StreamTable::new(options.max_streams),
            receivers: StreamTable::new(options.max_streams),
        })
    }

    /// The protection profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Bytes `protect` appends to a packet: the authentication tag.
    pub fn overhead(&self) -> usize {
        self.tag_len
    }

    /// Hints to the CPU the state that protecting or unprotecting the next packet reads (key
    /// schedule, MAC, stream indexes and replay windows), so that a caller working through a
    /// batch of many calls' packets can overlap the cache misses of the next few with the
    /// work on this one. Changes nothing.
    /// Reads the context's own fields that lead there (the cipher's variant, the tables'
    /// pointers): hint them a little earlier with [`Self::prefetch_outer`].
    pub fn prefetch(&self) {
        self.transform.prefetch();
        self.senders.prefetch(|_| {});
        self.receivers.prefetch(|r| r.window.prefetch());
    }

    /// Hints the context's own fields that [`Self::prefetch`] reads to find the rest, which
    /// needs no memory read of its own. Changes nothing.
    pub fn prefetch_outer(&self) {
        use crate::prefetch::prefetch;
        prefetch(self);
        prefetch(&self.senders);
        prefetch(&self.receivers);
        self.transform.prefetch_outer();
    }

    /// Protects the RTP packet in `buf[..len]` in place and appends the tag. `buf` must have
    /// [`Self::overhead`] bytes of room behind the packet. Returns the protected length.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let needed = len + self.tag_len;
        if buf.len() < needed {
            return Err(SrtpError::BufferTooSmall {
                needed,
                capacity: buf.len(),
            });
        }
        let (packet, rest) = buf.split_at_mut(len);
        self.protect_detached(packet, &mut rest[..self.tag_len])?;
        Ok(needed)
    }

    /// Protects the RTP packet filling `packet` in place and writes its tag into
    /// `tag[..overhead]` instead of behind it: for packets that sit back to back in a batch
    /// buffer and go out with the tag gathered from elsewhere.
    pub fn protect_detached(&mut self, packet: &mut [u8], tag: &mut [u8]) -> Result<(), SrtpError> {
        let len = packet.len();
        if tag.len() < self.tag_len {
            return Err(SrtpError::BufferTooSmall {
                needed: self.tag_len,
                capacity: tag.len(),
            });
        }
        let (header_len, ssrc, seq) = {
            let p = RtpPacket::new_checked(&*packet)?;
            (p.header_len(), p.ssrc(), p.seq())
        };
        self.senders.ensure_room(ssrc)?;
        let index = match self.senders.get(ssrc) {
            Some(&last) => estimate(last, seq, ssrc)?,
            None => PacketIndex::new(0, seq.0),
        };

        if self.transform.is_aead() {
            let nonce = self.transform.rtp_nonce(ssrc, index.roc(), seq.0);
            let (header, body) = packet.split_at_mut(header_len);
            let sealed = self.transform.seal(&nonce, header, body);
            tag[..self.tag_len].copy_from_slice(&sealed);
        } else {
            self.transform
                .apply_keystream(ssrc, index.value(), &mut packet[header_len..len]);
            let mac = self.transform.mac(packet, &index.roc().to_be_bytes());
            tag[..self.tag_len].copy_from_slice(&mac[..self.tag_len]);
        }

        let last = self.senders.get_or_insert_with(ssrc, || index);
        *last = (*last).max(index);
        Ok(())
    }

    /// Authenticates the SRTP packet filling `buf`, checks it against the replay window and
    /// decrypts it in place. Returns the length of the RTP packet now at the front of `buf`.
    /// On any error the buffer and the context are left as they were. A packet is called a
    /// replay only once it authenticated: a forgery with a used index fails authentication.
    pub fn unprotect(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf.len();
        let (header_len, ssrc, seq) = {
            let p = RtpPacket::new_checked(&*buf)?;
            (p.header_len(), p.ssrc(), p.seq())
        };
        let body_end = len
            .checked_sub(self.tag_len)
            .filter(|&end| end >= header_len)
            .ok_or(SrtpError::TooShort {
                len,
                needed: header_len + self.tag_len,
            })?;

        let stream = self.receivers.get(ssrc);
        let index = match stream.and_then(RecvStream::highest) {
            Some(highest) => estimate(highest, seq, ssrc)?,
            None => PacketIndex::new(0, seq.0),
        };
        let replayed = match stream {
            Some(s) => s
                .window
                .check(index.value())
                .err()
                .map(|v| replay_error(v, ssrc, index.value())),
            None => {
                self.receivers.ensure_room(ssrc)?;
                None
            }
        };

        if self.transform.is_aead() {
            let nonce = self.transform.rtp_nonce(ssrc, index.roc(), seq.0);
            let (header, rest) = buf.split_at_mut(header_len);
            let (body, tag) = rest.split_at_mut(body_end - header_len);
            self.transform.open(&nonce, header, body, tag)?;
            if let Some(e) = replayed {
                // Sealing again with the same nonce gives back the packet as it came.
                tag.copy_from_slice(&self.transform.seal(&nonce, header, body));
                return Err(e);
            }
        } else {
            let (authenticated, tag) = buf.split_at(body_end);
            self.transform
                .verify_mac(authenticated, &index.roc().to_be_bytes(), tag)?;
            if let Some(e) = replayed {
                return Err(e);
            }
            self.transform
                .apply_keystream(ssrc, index.value(), &mut buf[header_len..body_end]);
        }

        let window = self.replay_window;
        let stream = self.receivers.get_or_insert_with(ssrc, || RecvStream {
            reference: None,
            window: ReplayWindow::new(window),
        });
        stream.window.accept(index.value());
        Ok(body_end)
    }

    /// Sets where the sending stream `ssrc` stands, to resume it: a packet with sequence
    /// number `index.seq()` is protected with exactly this index, later ones follow from it.
    pub fn set_send_index(&mut self, ssrc: Ssrc, index: PacketIndex) -> Result<(), SrtpError> {
        self.senders.insert(ssrc, index)
    }

    /// Sets where the receiving stream `ssrc` stands (for a peer that resumes a stream with
    /// a known rollover counter). Clears that stream's replay window.
    pub fn set_recv_index(&mut self, ssrc: Ssrc, index: PacketIndex) -> Result<(), SrtpError> {
        let stream = RecvStream {
            reference: Some(index),
            window: ReplayWindow::new(self.replay_window),
        };
        self.receivers.insert(ssrc, stream)
    }

    /// The highest index protected on the sending stream `ssrc`.
    pub fn send_index(&self, ssrc: Ssrc) -> Option<PacketIndex> {
        self.senders.get(ssrc).copied()
    }

    /// The highest authenticated index on the receiving stream `ssrc`.
    pub fn recv_index(&self, ssrc: Ssrc) -> Option<PacketIndex> {
        self.receivers
            .get(ssrc)
            .and_then(|s| s.window.top())
            .and_then(PacketIndex::from_u64)
    }

    /// The SSRCs this context has received authenticated packets from.
    pub fn recv_ssrcs(&self) -> impl Iterator<Item = Ssrc> + '_ {
        self.receivers.ssrcs()
    }
}

fn estimate(
    highest: PacketIndex,
    seq: crate::rtp::SeqNo,
    ssrc: Ssrc,
) -> Result<PacketIndex, SrtpError> {
    PacketIndex::estimate(highest, seq).ok_or(if highest.roc() == 0 {
        SrtpError::TooOld {
            ssrc,
            index: u64::from(seq.0),
        }
    } else {
        SrtpError::IndexExhausted { ssrc }
    })
}

pub(crate) fn replay_error(verdict: ReplayVerdict, ssrc: Ssrc, index: u64) -> SrtpError {
    match verdict {
        ReplayVerdict::Replayed => SrtpError::Replayed { ssrc, index },
        ReplayVerdict::TooOld => SrtpError::TooOld { ssrc, index },
    }
}

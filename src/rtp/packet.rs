//! The RTP packet view (RFC 3550 section 5.1, RFC 8285 header extensions).

use super::types::{PacketError, SeqNo, Ssrc};

/// The only RTP version in use.
pub const RTP_VERSION: u8 = 2;
/// Length of the fixed RTP header, before CSRCs and extensions.
pub const RTP_FIXED_HEADER_LEN: usize = 12;

/// A view of an RTP packet over a byte buffer.
///
/// `new_checked` guarantees the version is 2 and that the header, its CSRC list and its
/// extension all lie inside the buffer, so the accessors never panic on such a view.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> RtpPacket<T> {
    /// Wraps `buf` after checking the version and that the full header fits.
    pub fn new_checked(buf: T) -> Result<Self, PacketError> {
        let packet = RtpPacket { buf };
        packet.check()?;
        Ok(packet)
    }

    fn check(&self) -> Result<(), PacketError> {
        let b = self.buf.as_ref();
        if b.len() < RTP_FIXED_HEADER_LEN {
            return Err(PacketError::TooShort {
                len: b.len(),
                needed: RTP_FIXED_HEADER_LEN,
            });
        }
        if b[0] >> 6 != RTP_VERSION {
            return Err(PacketError::BadVersion(b[0] >> 6));
        }
        let mut needed = RTP_FIXED_HEADER_LEN + 4 * usize::from(b[0] & 0x0f);
        if b[0] & 0x10 != 0 {
            if b.len() < needed + 4 {
                return Err(PacketError::TooShort {
                    len: b.len(),
                    needed: needed + 4,
                });
            }
            let words = u16::from_be_bytes([b[needed + 2], b[needed + 3]]);
            needed += 4 + 4 * usize::from(words);
        }
        if b.len() < needed {
            return Err(PacketError::TooShort {
                len: b.len(),
                needed,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Whether the padding bit is set.
    pub fn has_padding(&self) -> bool {
        self.buf.as_ref()[0] & 0x20 != 0
    }

    /// Whether a header extension follows the CSRC list.
    pub fn has_extension(&self) -> bool {
        self.buf.as_ref()[0] & 0x10 != 0
    }

    /// Number of CSRC identifiers.
    pub fn csrc_count(&self) -> usize {
        usize::from(self.buf.as_ref()[0] & 0x0f)
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.buf.as_ref()[1] & 0x80 != 0
    }

    /// The payload type.
    pub fn payload_type(&self) -> u8 {
        self.buf.as_ref()[1] & 0x7f
    }

    /// The sequence number.
    pub fn seq(&self) -> SeqNo {
        let b = self.buf.as_ref();
        SeqNo(u16::from_be_bytes([b[2], b[3]]))
    }

    /// The media timestamp.
    pub fn timestamp(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// The synchronization source.
    pub fn ssrc(&self) -> Ssrc {
        let b = self.buf.as_ref();
        Ssrc(u32::from_be_bytes([b[8], b[9], b[10], b[11]]))
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = Ssrc> + '_ {
        self.buf.as_ref()[RTP_FIXED_HEADER_LEN..RTP_FIXED_HEADER_LEN + 4 * self.csrc_count()]
            .chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The extension's profile word (0xBEDE for RFC 8285 one-byte, 0x100x for two-byte) and
    /// its data, if the packet has an extension.
    pub fn extension(&self) -> Option<(u16, &[u8])> {
        if !self.has_extension() {
            return None;
        }
        let b = self.buf.as_ref();
        let at = RTP_FIXED_HEADER_LEN + 4 * self.csrc_count();
        let profile = u16::from_be_bytes([b[at], b[at + 1]]);
        Some((profile, &b[at + 4..self.header_len()]))
    }

    /// Length of the header including CSRCs and the extension: where the payload starts.
    pub fn header_len(&self) -> usize {
        let b = self.buf.as_ref();
        let at = RTP_FIXED_HEADER_LEN + 4 * self.csrc_count();
        if self.has_extension() {
            at + 4 + 4 * usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]))
        } else {
            at
        }
    }

    /// Everything after the header, padding included (the part SRTP encrypts).
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..]
    }

    /// The payload with RTP padding removed. Only meaningful on a plaintext packet.
    pub fn payload_unpadded(&self) -> Result<&[u8], PacketError> {
        let payload = self.payload();
        if !self.has_padding() {
            return Ok(payload);
        }
        let padding = usize::from(*payload.last().unwrap_or(&0));
        if padding == 0 || padding > payload.len() {
            return Err(PacketError::BadPadding {
                padding,
                payload: payload.len(),
            });
        }
        Ok(&payload[..payload.len() - padding])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RtpPacket<T> {
    /// Sets or clears the marker bit.
    pub fn set_marker(&mut self, marker: bool) {
        let b = self.buf.as_mut();
        b[1] = (b[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }

    /// Sets the payload type (7 bits; the high bit is ignored).
    pub fn set_payload_type(&mut self, pt: u8) {
        let b = self.buf.as_mut();
        b[1] = (b[1] & 0x80) | (pt & 0x7f);
    }

    /// Sets the sequence number.
    pub fn set_seq(&mut self, seq: SeqNo) {
        self.buf.as_mut()[2..4].copy_from_slice(&seq.0.to_be_bytes());
    }

    /// Sets the media timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf.as_mut()[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    /// Sets the synchronization source.
    pub fn set_ssrc(&mut self, ssrc: Ssrc) {
        self.buf.as_mut()[8..12].copy_from_slice(&ssrc.0.to_be_bytes());
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buf.as_mut()[at..]
    }
}

/// The fields of a new packet's fixed header (no CSRCs, no extension, no padding), for writing
/// packets srtpd makes itself: comfort silence, clip packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// The marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: SeqNo,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: Ssrc,
}

impl RtpHeader {
    /// Writes the header and then `payload` at the start of `buf`; returns the packet's
    /// length, or `None` (and writes nothing) when `buf` is too short.
    pub fn emit(&self, buf: &mut [u8], payload: &[u8]) -> Option<usize> {
        let len = RTP_FIXED_HEADER_LEN + payload.len();
        let out = buf.get_mut(..len)?;
        out[0] = RTP_VERSION << 6;
        out[1] = 0;
        out[RTP_FIXED_HEADER_LEN..].copy_from_slice(payload);
        let mut packet = RtpPacket { buf: out };
        packet.set_payload_type(self.payload_type);
        packet.set_marker(self.marker);
        packet.set_seq(self.seq);
        packet.set_timestamp(self.timestamp);
        packet.set_ssrc(self.ssrc);
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fixed_header_csrcs_and_extension() {
        let mut p = vec![
            0x92, 0xe0, 0x12, 0x34, 0, 0, 0x03, 0xc0, 0xde, 0xad, 0xbe, 0xef, // fixed
            0, 0, 0, 1, 0, 0, 0, 2, // two CSRCs
            0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, // one-byte extension, one word
            1, 2, 3,
        ];
        let pkt = RtpPacket::new_checked(&p[..]).unwrap();
        assert_eq!(pkt.seq(), SeqNo(0x1234));
        assert_eq!(pkt.ssrc(), Ssrc(0xdeadbeef));
        assert!(pkt.marker());
        assert_eq!(pkt.payload_type(), 0x60);
        assert_eq!(pkt.csrcs().collect::<Vec<_>>(), vec![Ssrc(1), Ssrc(2)]);
        assert_eq!(pkt.extension(), Some((0xbede, &[0x10, 0xaa, 0, 0][..])));
        assert_eq!(pkt.header_len(), 28);
        assert_eq!(pkt.payload(), &[1, 2, 3]);

        let mut m = RtpPacket::new_checked(&mut p[..]).unwrap();
        m.set_marker(false);
        m.set_seq(SeqNo(7));
        m.set_ssrc(Ssrc(9));
        m.set_timestamp(0x01020304);
        assert!(!m.marker());
        assert_eq!(
            (m.seq(), m.ssrc(), m.timestamp()),
            (SeqNo(7), Ssrc(9), 0x01020304)
        );
    }

    #[test]
    fn rejects_truncated_headers() {
        assert!(matches!(
            RtpPacket::new_checked(&[0x80u8; 11][..]),
            Err(PacketError::TooShort { .. })
        ));
        assert_eq!(
            RtpPacket::new_checked(&[0x40u8; 12][..]).unwrap_err(),
            PacketError::BadVersion(1)
        );
        // CC = 2 but no CSRCs present.
        let mut p = [0u8; 12];
        p[0] = 0x82;
        assert!(RtpPacket::new_checked(&p[..]).is_err());
        // Extension announcing 255 words.
        let mut p = [0u8; 16];
        p[0] = 0x90;
        p[14] = 0;
        p[15] = 255;
        assert_eq!(
            RtpPacket::new_checked(&p[..]).unwrap_err(),
            PacketError::TooShort {
                len: 16,
                needed: 16 + 1020
            }
        );
    }

    #[test]
    fn padding_is_checked_on_plaintext() {
        let mut p = vec![0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 0, 2];
        let pkt = RtpPacket::new_checked(&p[..]).unwrap();
        assert_eq!(pkt.payload_unpadded().unwrap(), &[9, 9]);
        p[15] = 5;
        let pkt = RtpPacket::new_checked(&p[..]).unwrap();
        assert!(matches!(
            pkt.payload_unpadded(),
            Err(PacketError::BadPadding { .. })
        ));
    }
}

//! The RTCP packet view: just enough of the first header for SRTCP and demultiplexing.

use super::packet::RTP_VERSION;
use super::types::{PacketError, Ssrc};

/// Length of the RTCP header plus the sender SSRC: the part SRTCP leaves unencrypted.
pub const RTCP_HEADER_LEN: usize = 8;

/// A view of a (possibly compound) RTCP packet; the accessors read its first packet.
#[derive(Debug, Clone, Copy)]
pub struct RtcpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> RtcpPacket<T> {
    /// Wraps `buf` after checking the version and that the first header and SSRC fit.
    pub fn new_checked(buf: T) -> Result<Self, PacketError> {
        let b = buf.as_ref();
        if b.len() < RTCP_HEADER_LEN {
            return Err(PacketError::TooShort {
                len: b.len(),
                needed: RTCP_HEADER_LEN,
            });
        }
        if b[0] >> 6 != RTP_VERSION {
            return Err(PacketError::BadVersion(b[0] >> 6));
        }
        Ok(RtcpPacket { buf })
    }

    /// The packet type of the first packet (200 SR, 201 RR, ...).
    pub fn packet_type(&self) -> u8 {
        self.buf.as_ref()[1]
    }

    /// The count field (reception report count or subtype) of the first packet.
    pub fn count(&self) -> u8 {
        self.buf.as_ref()[0] & 0x1f
    }

    /// The SSRC of the sender of the first packet.
    pub fn sender_ssrc(&self) -> Ssrc {
        let b = self.buf.as_ref();
        Ssrc(u32::from_be_bytes([b[4], b[5], b[6], b[7]]))
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }
}

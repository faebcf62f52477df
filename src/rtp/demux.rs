//! First-byte demultiplexing of STUN, DTLS, RTP and RTCP sharing one port (RFC 7983, with
//! RFC 5761 for telling RTCP from RTP).

use super::types::Ssrc;

/// What a datagram on a media port is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PacketKind {
    /// STUN (first byte 0..=3).
    Stun,
    /// DTLS (first byte 20..=63); srtpd does not use DTLS and drops it.
    Dtls,
    /// RTP (first byte 128..=191, second byte not an RTCP packet type).
    Rtp,
    /// RTCP (first byte 128..=191, packet type 192..=223).
    Rtcp,
    /// Anything else.
    Other,
}

/// Checks that `pt` can be an RTP payload type on a port shared with RTCP: 0..=127, and not
/// 64..=95, whose values with the marker bit set read as RTCP packet types 192..=223
/// (RFC 5761 section 4).
pub fn check_payload_type(pt: u8) -> Result<(), String> {
    match pt {
        64..=95 => Err(format!(
            "{pt} is in 64..=95, which collides with RTCP packet types on a shared port (RFC 5761)"
        )),
        128.. => Err(format!("{pt} is not an RTP payload type (0..=127)")),
        _ => Ok(()),
    }
}

/// Classifies a datagram by its first two bytes.
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(20..=63) => PacketKind::Dtls,
        Some(128..=191) => match datagram.get(1) {
            Some(192..=223) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Other,
        },
        _ => PacketKind::Other,
    }
}

/// The SSRC that names the stream of an RTP packet (its SSRC) or of an RTCP packet (the
/// sender's), read without parsing the rest; `None` for anything else or a truncated header.
pub fn stream_ssrc(datagram: &[u8]) -> Option<Ssrc> {
    let at = match classify(datagram) {
        PacketKind::Rtp => 8,
        PacketKind::Rtcp => 4,
        _ => return None,
    };
    let bytes = datagram.get(at..at + 4)?;
    Some(Ssrc(u32::from_be_bytes(bytes.try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_rfc_7983() {
        assert_eq!(classify(&[0x00, 0x01]), PacketKind::Stun);
        assert_eq!(classify(&[22, 0xfe]), PacketKind::Dtls);
        assert_eq!(classify(&[0x80, 111]), PacketKind::Rtp);
        assert_eq!(
            classify(&[0x80, 0xe0]),
            PacketKind::Rtp,
            "PT 96 with the marker bit"
        );
        assert_eq!(classify(&[0x81, 200]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x80]), PacketKind::Other);
        assert_eq!(classify(&[]), PacketKind::Other);
        assert_eq!(classify(&[0x40, 0]), PacketKind::Other);
    }

    #[test]
    fn payload_types_that_cannot_read_as_rtcp() {
        for pt in [0, 8, 63, 96, 111, 127] {
            assert!(check_payload_type(pt).is_ok(), "{pt}");
        }
        for pt in [64, 72, 95, 128, 200, 255] {
            assert!(check_payload_type(pt).is_err(), "{pt}");
            // With the marker bit, 72 is RTCP's sender report: the reason this is refused.
        }
        assert_eq!(classify(&[0x80, 0x80 | 72]), PacketKind::Rtcp);
    }

    #[test]
    fn stream_ssrc_of_rtp_and_rtcp() {
        let rtp = [0x80, 111, 0, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
        assert_eq!(stream_ssrc(&rtp), Some(Ssrc(0xdead_beef)));
        assert_eq!(stream_ssrc(&rtp[..11]), None);
        assert_eq!(
            stream_ssrc(&[0x81, 200, 0, 1, 1, 2, 3, 4]),
            Some(Ssrc(0x0102_0304))
        );
        assert_eq!(
            stream_ssrc(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]),
            None,
            "STUN"
        );
    }
}

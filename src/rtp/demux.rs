//! First-byte demultiplexing of STUN, DTLS, RTP and RTCP sharing one port (RFC 7983, with
//! RFC 5761 for telling RTCP from RTP).

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
}

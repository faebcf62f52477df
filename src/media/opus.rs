//! What srtpd needs to know about Opus packets and headers: a packet's duration from its TOC
//! byte (RFC 6716 section 3.1) and the Ogg Opus identification header (RFC 7845 section 5.1).

/// Samples per millisecond at Opus' 48 kHz reference rate.
const PER_MS: u32 = 48;

/// The duration of an Opus packet in 48 kHz samples, from its TOC byte (and, for code 3
/// packets, the frame count byte). `None` for an empty or malformed packet.
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame duration in units of 2.5 ms: 1 = 2.5 ms, 2 = 5 ms, 4 = 10 ms, 8 = 20 ms, ...
    let quarter_units = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)], // SILK: 10, 20, 40, 60 ms
        12..=15 => [4, 8][usize::from(config % 2)],        // Hybrid: 10, 20 ms
        _ => [1, 2, 4, 8][usize::from(config % 4)],        // CELT: 2.5, 5, 10, 20 ms
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let samples = frames * quarter_units * PER_MS * 10 / 4;
    // RFC 6716 limits a packet to 120 ms.
    (frames > 0 && samples <= 120 * PER_MS).then_some(samples)
}

/// The identification header of an Ogg Opus stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusHead {
    /// Channel count (1 or 2 for mapping family 0).
    pub channels: u8,
    /// Samples (at 48 kHz) to discard at the start of decoding.
    pub pre_skip: u16,
    /// The original input sample rate (informational).
    pub input_rate: u32,
}

impl OpusHead {
    /// The 19-byte header packet.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut b = b"OpusHead".to_vec();
        b.push(1);
        b.push(self.channels);
        b.extend_from_slice(&self.pre_skip.to_le_bytes());
        b.extend_from_slice(&self.input_rate.to_le_bytes());
        b.extend_from_slice(&0i16.to_le_bytes());
        b.push(0);
        b
    }

    /// Reads a header packet; `None` if it is not an OpusHead srtpd can play (version 0.x,
    /// mapping family 0 with one or two channels).
    pub fn parse(b: &[u8]) -> Option<OpusHead> {
        if b.len() < 19
            || &b[..8] != b"OpusHead"
            || b[8] >> 4 != 0
            || b[18] != 0
            || !(1..=2).contains(&b[9])
        {
            return None;
        }
        Some(OpusHead {
            channels: b[9],
            pre_skip: u16::from_le_bytes([b[10], b[11]]),
            input_rate: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        })
    }
}

/// The comment header packet srtpd writes: vendor "srtpd", no comments.
pub fn opus_tags() -> Vec<u8> {
    let vendor = concat!("srtpd ", env!("CARGO_PKG_VERSION"));
    let mut b = b"OpusTags".to_vec();
    b.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    b.extend_from_slice(vendor.as_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_from_the_toc() {
        assert_eq!(
            packet_samples(&[0xf8, 0xff, 0xfe]),
            Some(960),
            "CELT FB 20 ms, one frame"
        );
        assert_eq!(packet_samples(&[0x08]), Some(960), "SILK NB 20 ms");
        assert_eq!(packet_samples(&[0x18]), Some(2880), "SILK NB 60 ms");
        assert_eq!(packet_samples(&[0x60]), Some(480), "Hybrid SWB 10 ms");
        assert_eq!(packet_samples(&[0x80]), Some(120), "CELT NB 2.5 ms");
        assert_eq!(
            packet_samples(&[0xf9]),
            Some(1920),
            "code 1: two 20 ms frames"
        );
        assert_eq!(
            packet_samples(&[0xfb, 0x03]),
            Some(2880),
            "code 3: three frames"
        );
        assert_eq!(packet_samples(&[0xfb, 0x07]), None, "over 120 ms");
        assert_eq!(packet_samples(&[0xfb, 0x00]), None, "zero frames");
        assert_eq!(packet_samples(&[0xfb]), None, "code 3 without a count");
        assert_eq!(packet_samples(&[]), None);
    }

    #[test]
    fn head_round_trips_and_refuses_others() {
        let h = OpusHead {
            channels: 2,
            pre_skip: 312,
            input_rate: 48000,
        };
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), 19);
        assert_eq!(OpusHead::parse(&bytes), Some(h));
        assert_eq!(OpusHead::parse(b"OpusTags......................"), None);
        let mut v2 = bytes.clone();
        v2[8] = 0x10;
        assert_eq!(OpusHead::parse(&v2), None, "major version 1 is not ours");
    }
}

//! Packet views over any bytes: classification, RTP and RTCP headers and every field read
//! through them, within the datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srtpd::rtp::{RtcpPacket, RtpPacket, classify, stream_ssrc};

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    let _ = stream_ssrc(data);
    if let Ok(p) = RtpPacket::new_checked(data) {
        assert!(p.header_len() <= data.len());
        let _ = (
            p.ssrc(),
            p.seq(),
            p.timestamp(),
            p.payload_type(),
            p.marker(),
        );
        let _ = (p.csrcs().count(), p.extension(), p.payload().len());
        let _ = p.payload_unpadded();
    }
    if let Ok(p) = RtcpPacket::new_checked(data) {
        let _ = (p.sender_ssrc(), p.packet_type(), p.count());
    }
});

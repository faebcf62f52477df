//! RTCP sender and receiver reports (RFC 3550 section 6.4), built and read with the `rtcp`
//! crate; reports go out every few seconds, so they may allocate.

use bytes::Bytes;
use rtcp::receiver_report::ReceiverReport;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use webrtc_util::marshal::Marshal;

/// One report block about a stream we receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBlock {
    /// The stream reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report (8-bit fixed point).
    pub fraction_lost: u8,
    /// Cumulative packets lost.
    pub total_lost: u32,
    /// Extended highest sequence number.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from it.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

impl From<ReportBlock> for ReceptionReport {
    fn from(b: ReportBlock) -> Self {
        ReceptionReport {
            ssrc: b.ssrc,
            fraction_lost: b.fraction_lost,
            total_lost: b.total_lost,
            last_sequence_number: b.highest_seq,
            jitter: b.jitter,
            last_sender_report: b.lsr,
            delay: b.dlsr,
        }
    }
}

/// What we sent, for a sender report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp of now.
    pub ntp: u64,
    /// The RTP timestamp matching `ntp`.
    pub rtp_time: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

/// A sender report (if `sender` is given) or receiver report from `ssrc`.
pub fn report(ssrc: u32, sender: Option<SenderInfo>, blocks: &[ReportBlock]) -> Vec<u8> {
    let reports = blocks.iter().map(|&b| b.into()).collect();
    let bytes = match sender {
        Some(s) => SenderReport {
            ssrc,
            ntp_time: s.ntp,
            rtp_time: s.rtp_time,
            packet_count: s.packets,
            octet_count: s.octets,
            reports,
            profile_extensions: Bytes::new(),
        }
        .marshal(),
        None => ReceiverReport {
            ssrc,
            reports,
            profile_extensions: Bytes::new(),
        }
        .marshal(),
    };
    bytes.expect("at most 31 report blocks marshal").to_vec()
}

/// What a received compound RTCP packet tells us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// (sender SSRC, middle 32 bits of its NTP time) of each sender report.
    pub sender_reports: Vec<(u32, u32)>,
    /// Report blocks, from sender and receiver reports.
    pub blocks: Vec<ReportBlock>,
}

/// Reads the sender and receiver reports of a compound RTCP packet; other packet types are
/// skipped. `None` if the packet does not parse.
pub fn parse(packet: &[u8]) -> Option<Received> {
    let mut raw = Bytes::copy_from_slice(packet);
    let packets = rtcp::packet::unmarshal(&mut raw).ok()?;
    let mut out = Received::default();
    let block = |r: &ReceptionReport| ReportBlock {
        ssrc: r.ssrc,
        fraction_lost: r.fraction_lost,
        total_lost: r.total_lost,
        highest_seq: r.last_sequence_number,
        jitter: r.jitter,
        lsr: r.last_sender_report,
        dlsr: r.delay,
    };
    for p in &packets {
        if let Some(sr) = p.as_any().downcast_ref::<SenderReport>() {
            out.sender_reports
                .push((sr.ssrc, (sr.ntp_time >> 16) as u32));
            out.blocks.extend(sr.reports.iter().map(block));
        } else if let Some(rr) = p.as_any().downcast_ref::<ReceiverReport>() {
            out.blocks.extend(rr.reports.iter().map(block));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let b = ReportBlock {
            ssrc: 9,
            fraction_lost: 12,
            total_lost: 3,
            highest_seq: 70000,
            jitter: 44,
            lsr: 0x1234_5678,
            dlsr: 65536,
        };
        let sr = report(
            7,
            Some(SenderInfo {
                ntp: 0x0102_0304_0506_0708,
                rtp_time: 1,
                packets: 2,
                octets: 3,
            }),
            &[b],
        );
        assert_eq!(crate::rtp::classify(&sr), crate::rtp::PacketKind::Rtcp);
        let got = parse(&sr).unwrap();
        assert_eq!(got.sender_reports, vec![(7, 0x0304_0506)]);
        assert_eq!(got.blocks, vec![b]);
        let rr = report(7, None, &[b]);
        assert_eq!(parse(&rr).unwrap().blocks, vec![b]);
        assert_eq!(parse(&[0x81, 200, 0, 50]), None);
    }
}

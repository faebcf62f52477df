//! Zero-copy views over RTP and RTCP packets held in byte slices.
//!
//! The views borrow (or own) any `AsRef<[u8]>` buffer and read fields straight from it, so the
//! packet path can inspect and rewrite headers without parsing into owned structs.

mod demux;
mod packet;
mod rtcp;
mod types;

pub use demux::{PacketKind, check_payload_type, classify, stream_ssrc};
pub use packet::{RTP_FIXED_HEADER_LEN, RTP_VERSION, RtpHeader, RtpPacket};
pub use rtcp::{RTCP_HEADER_LEN, RtcpPacket};
pub use types::{PacketError, SeqNo, Ssrc};

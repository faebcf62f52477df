//! Call and track state machines with time passed in: candidate selection, gating, header
//! rewriting, SRTP, RTCP and timers. No sockets here; the daemon's I/O shell drives it.

mod rtcp;
mod session;
mod stats;
mod stun;
mod track;

pub use session::{
    CallEvent, CallSession, CallSetup, CallState, CallStats, CallTimers, Candidate, DropReason,
    Inbound, TrackSetup, TrackStats, Transmit,
};
pub use stats::{DropStats, RecvSnapshot, RecvStats, SendStats};
pub use track::{InboundTrack, MediaKind, MuteMode, OPUS_SILENCE, OutboundTrack, TrackParams};

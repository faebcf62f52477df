//! Calls without I/O, with time passed in: the [`Endpoint`] that holds one worker's calls and
//! routes datagrams to them, each call's media session (candidate selection, gating, header
//! rewriting, SRTP, RTCP, timers), and the tracks' sources and sinks. The daemon's driver
//! feeds it datagrams and commands and carries out what it asks.

pub mod endpoint;
mod event;
mod rtcp;
mod session;
mod sink;
mod source;
mod stats;
mod stun;
mod track;

pub use endpoint::{
    CallNo, CallSpec, Endpoint, EndpointCounters, EndpointError, MAX_DATAGRAM, Outcome, Route,
    RtpSource, SharedSocket, SocketId, TrackPorts, Transmit,
};
pub use event::Event;
pub use session::{
    CallEvent, CallSession, CallSetup, CallState, CallStats, CallTimers, Candidate, DropReason,
    Inbound, TrackSetup, TrackStats,
};
pub use sink::{FileId, FileWrite, Recording};
pub use source::{ClipPoll, ClipSource};
pub use stats::{DropStats, RecvSnapshot, RecvStats, SendStats};
pub use track::{InboundTrack, MediaKind, MuteMode, OPUS_SILENCE, OutboundTrack, TrackParams};

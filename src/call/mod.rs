//! Calls without I/O, with time passed in: the [`Endpoint`] that holds one worker's calls and
//! routes datagrams to them, each call's media session (candidate selection, gating, header
//! rewriting, SRTP, RTCP, timers), and the tracks' sources and sinks. The daemon's driver
//! feeds it datagrams and commands and carries out what it asks.

pub mod bridge;
mod call_id;
pub mod endpoint;
mod event;
mod own_sockets;
mod remote_policy;
mod rtcp;
mod session;
mod sink;
mod source;
mod stats;
mod stun;
mod token_bucket;
mod totals;
mod track;
mod trial_budget;

pub use crate::media::codec::OPUS_SILENCE;
pub use call_id::{MAX_CALL_ID_BYTES, MAX_REASON_BYTES, check_call_id, check_text};
pub use endpoint::{
    CallNo, CallSpec, Endpoint, EndpointCounters, EndpointError, EndpointLimits, MAX_DATAGRAM,
    Outcome, Route, RtpSource, SharedSocket, SocketId, TrackPorts, Transmit,
};
pub use event::Event;
pub use own_sockets::OwnSockets;
pub use remote_policy::RemotePolicy;
pub use session::{
    CallEvent, CallSession, CallSetup, CallState, CallStats, CallTimers, Candidate, DropReason,
    DtmfRefused, Inbound, TrackSetup, TrackStats,
};
pub use sink::{FileId, FileWrite, Recording, RecordingFormat};
pub use source::{ClipPoll, ClipSource};
pub use stats::{DropStats, RecvSnapshot, RecvStats, SendStats};
pub use token_bucket::TokenBucket;
pub use totals::{MediaTotals, TrafficTotals};
pub use track::{InboundTrack, MediaKind, MuteMode, OutboundTrack, TrackParams};
pub use trial_budget::TrialBudget;

//! In-place SRTP and SRTCP: profiles, RFC 3711 key derivation, rollover and replay handling.
//!
//! Contexts hold precomputed AES key schedules, GCM instances and keyed HMAC states, and
//! transform packets inside the caller's buffer, so the packet path neither allocates nor
//! copies.

mod error;
mod index;
mod master_key;
mod options;
mod profile;
mod replay;
mod rtcp_context;
mod rtp_context;
mod session_keys;
mod streams;
mod transform;

pub use error::SrtpError;
pub use index::PacketIndex;
pub use master_key::MasterKey;
pub use options::SrtpOptions;
pub use profile::{SrtpProfile, UnknownProfile};
pub use replay::{ReplayVerdict, ReplayWindow};
pub use rtcp_context::{MAX_SRTCP_INDEX, SrtcpContext};
pub use rtp_context::SrtpContext;
pub use session_keys::{KeyUse, SessionKeys};

//! srtpd: a media endpoint for call-signaling clients.
//!
//! The protocol core does no I/O: [`srtp`] protects and unprotects packets in place, [`rtp`]
//! reads packets without copying them, [`keying`] turns a call's keying material into SRTP
//! master keys, and [`call`] runs a call's media session with time passed in. [`net`],
//! [`control`] and [`daemon`] are the thin I/O shell around it.

pub mod call;
pub mod cli_docs;
pub mod config;
pub mod control;
pub mod daemon;
pub mod keying;
pub mod media;
pub mod net;
pub mod prefetch;
pub mod rtp;
pub mod srtp;
pub mod stanza;

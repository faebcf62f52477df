//! srtpd: a media endpoint for call-signaling clients.
//!
//! The protocol core does no I/O: [`srtp`] protects and unprotects packets in place, [`rtp`]
//! reads packets without copying them, and [`keying`] turns a call's keying material into
//! SRTP master keys.

pub mod keying;
pub mod rtp;
pub mod srtp;

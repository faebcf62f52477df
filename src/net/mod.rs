//! Sockets: UDP media sockets bound with socket2 (port range, DSCP, buffer sizes).

mod socket;

pub use socket::{BindError, MediaSocketOptions, bind_media, bind_udp};

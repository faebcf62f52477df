//! Sockets: UDP media sockets bound with socket2 (port range, DSCP, buffer sizes), and batched
//! sends and receives (sendmmsg with UDP GSO, recvmmsg with UDP GRO).

pub mod batch;
mod socket;

pub use batch::{
    GRO_SLOT, MAX_TRAILER, Received, RecvBatch, SendCounters, SendQueue, enable_gro, recv_batch,
    supports_gso,
};
pub use socket::{BindError, MediaSocketOptions, bind_media, bind_udp, send_now};

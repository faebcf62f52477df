//! The control plane: JSON-RPC 2.0 types, the methods' parameters, dispatch of requests to the
//! daemon, and the Unix-socket server.

pub mod client;
pub mod params;
mod protocol;
pub mod view;

pub use protocol::*;

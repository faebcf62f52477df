//! The control plane: JSON-RPC 2.0 types, the methods' parameters, dispatch of requests to the
//! daemon, and the Unix-socket server.

pub mod client;
pub mod dispatch;
pub mod params;
mod protocol;
mod server;
pub mod view;

pub use protocol::*;
pub use server::{Service, bind_control_socket, serve};

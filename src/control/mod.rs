//! The control plane: JSON-RPC 2.0 types and the Unix-socket server.

pub mod client;
mod protocol;
mod server;
pub mod view;

pub use protocol::*;
pub use server::{bind_control_socket, serve};

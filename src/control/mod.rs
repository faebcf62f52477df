//! The control plane: JSON-RPC 2.0 types and the Unix-socket server.

mod protocol;
mod server;

pub use protocol::*;
pub use server::{bind_control_socket, serve};

//! What the daemon refuses, and why: typed, so that the control edge alone decides how each
//! is told (JSON-RPC codes live in `control::dispatch`).

/// Why a request failed. A failed request changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DaemonError {
    /// A parameter is missing or wrong.
    #[error("{field}: {reason}")]
    InvalidParam {
        /// The field, as a path (`audio.sink.path`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No call with that id.
    #[error("no such call: {0:?}")]
    NoSuchCall(String),
    /// A call with that id runs already.
    #[error("call already exists: {0:?}")]
    CallExists(String),
    /// The daemon carries its maximum number of calls.
    #[error("too many calls: the daemon carries at most {0}")]
    TooManyCalls(usize),
    /// No media port could be bound.
    #[error("{0}")]
    NoFreePort(String),
    /// The keying material was refused (the message never holds key material).
    #[error("bad keying: {0}")]
    BadKeying(String),
    /// Something that should have worked did not.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DaemonError {
    /// [`DaemonError::InvalidParam`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        DaemonError::InvalidParam {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// [`DaemonError::Internal`].
    pub fn internal(e: impl std::fmt::Display) -> Self {
        DaemonError::Internal(e.to_string())
    }
}

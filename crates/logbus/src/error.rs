//! The one error type of this crate: what can go wrong while setting up.
//!
//! Emitting never fails with an error: a record the ring cannot take is counted
//! by the ring (see [`crate::Outcome`]), because a logging call must not make its
//! caller handle failures.

use std::fmt;

use logbus_ring::OpenError;

/// Why a producer, a layer or the global logging set-up could not be made.
///
/// Every variant's `Display` is one line fit for a person.
#[derive(Debug)]
pub enum Error {
    /// The ring could not be opened or created (the error names the file).
    Open(OpenError),
    /// The level filter (`LOGBUS_LEVEL` or the builder's) does not parse.
    Filter {
        /// The directives as given.
        directives: String,
        /// What the parser said.
        reason: String,
    },
    /// A global `tracing` subscriber was installed already.
    SubscriberInstalled,
    /// A global `log` logger was installed already. When [`crate::init`] returns
    /// this, its `tracing` subscriber *is* installed; only `log` records go elsewhere.
    LoggerInstalled,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open(e) => write!(f, "logbus: {e}"),
            Error::Filter { directives, reason } => {
                write!(f, "logbus: bad level filter {directives:?}: {reason}")
            }
            Error::SubscriberInstalled => {
                write!(
                    f,
                    "logbus: a global tracing subscriber is already installed"
                )
            }
            Error::LoggerInstalled => {
                write!(f, "logbus: a global log logger is already installed")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open(e) => Some(e),
            _ => None,
        }
    }
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        Error::Open(e)
    }
}

//! Errors as a class: the one place that says which class (SPEC §2) each
//! of the crate's error types is, and so the exit code the binary ends
//! with. Their text is [`chain`]'s; the commands' own wrappers are in
//! [`wrap`].
//!
//! Each typed error says its class through [`Classify`] (here, not beside
//! the type, so that every decision can be read and checked in one file);
//! [`class_of`] walks an `anyhow` chain from the outside in and takes the
//! first class it finds, so context added on the way out never hides the
//! kind of the error underneath. An error of no known class is usage or
//! configuration (exit 2): the crate's own checks are the errors that come
//! as text alone.

use std::error::Error;
use std::io;

pub(crate) mod chain;
pub(crate) mod wrap;

use crate::cli::UsageError;
use crate::commands::listen::public::PublicError;
use crate::danube::api::ApiError;
use crate::danube::credentials::CredentialsError;
use crate::danube::register::RegisterError;
use crate::danube::tunnel::TunnelError;
use crate::emulator::state::StateError;
use crate::events::EnvelopeError;
use crate::fsutil::FileError;
use crate::http::{CaError, SendError};
use crate::policy::PolicyError;
use crate::store::postgres::PgError;
use crate::store::{BadStore, NotStored, StoreError};
use wrap::{StdoutClosed, Whole};

/// What kind of failure ended a command (SPEC §2), which decides its exit
/// code. A negative result (exit 1) is no error: it is
/// [`crate::commands::Outcome::Negative`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad usage or configuration: a flag, a value, a path that cannot be
    /// used (missing where it must exist, a folder, a file where a folder
    /// must be, no permission), and Danube's 4xx answers other than 429.
    /// Exit 2.
    Usage,
    /// Danube's API or the network failed: no connection, a timeout, TLS,
    /// Danube's 5xx and 429, an answer Danube's API does not document.
    /// Exit 3.
    Network,
    /// Reading or writing a local file failed while working (the store,
    /// the emulator's state, the credentials, the saved webhooks): an I/O
    /// error, a full disk, a file that is not what danube-hooks wrote.
    /// Exit 4.
    LocalFile,
    /// Whoever read stdout went away (`log | head`): nothing more is
    /// wanted, so the command ends quietly. Exit 0.
    StdoutClosed,
}

impl ErrorClass {
    /// The exit code of SPEC §2.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::StdoutClosed => 0,
            Self::Usage => 2,
            Self::Network => 3,
            Self::LocalFile => 4,
        }
    }

    /// Whether the error is told on stderr: a closed stdout is not a
    /// failure anyone needs to read about.
    pub fn is_told(self) -> bool {
        self != Self::StdoutClosed
    }
}

/// The class of the error that ended a command: the first class found
/// from the outermost error in, else [`ErrorClass::Usage`].
pub fn class_of(err: &anyhow::Error) -> ErrorClass {
    err.chain()
        .find_map(class_here)
        .unwrap_or(ErrorClass::Usage)
}

/// [`class_of`] for a chain that starts at a plain error.
fn class_of_chain(err: &(dyn Error + 'static)) -> Option<ErrorClass> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(class) = class_here(err) {
            return Some(class);
        }
        next = err.source();
    }
    None
}

/// An error type's own say in its class; `None` leaves it to its cause.
pub(crate) trait Classify {
    fn class(&self) -> Option<ErrorClass>;
}

/// The class `err` itself says, if it is one of the crate's error types
/// (or `std::io::Error`). Every type that says a class is listed here.
fn class_here(err: &(dyn Error + 'static)) -> Option<ErrorClass> {
    macro_rules! said_by {
        ($($ty:ty),* $(,)?) => {
            $(
                if let Some(err) = err.downcast_ref::<$ty>() {
                    return err.class();
                }
            )*
        };
    }
    said_by!(
        StdoutClosed,
        Whole,
        UsageError,
        ApiError,
        CredentialsError,
        RegisterError,
        TunnelError,
        PublicError,
        SendError,
        CaError,
        StoreError,
        BadStore,
        NotStored,
        StateError,
        FileError,
        EnvelopeError,
        PolicyError,
        PgError,
        io::Error,
    );
    None
}

impl Classify for Whole {
    fn class(&self) -> Option<ErrorClass> {
        class_of_chain(&*self.0)
    }
}

impl Classify for StdoutClosed {
    fn class(&self) -> Option<ErrorClass> {
        Some(ErrorClass::StdoutClosed)
    }
}

/// A path that cannot be used at all (missing, a folder, a file where a
/// folder must be, no permission, a read-only file system) is
/// configuration, and so is an address that cannot be bound; the network's own failures are the network's; any
/// other failure to read or write (an I/O error, a full disk) is the local
/// file's.
fn io_class(err: &io::Error) -> ErrorClass {
    use io::ErrorKind as Kind;
    match err.kind() {
        Kind::NotFound
        | Kind::PermissionDenied
        | Kind::IsADirectory
        | Kind::NotADirectory
        | Kind::AlreadyExists
        | Kind::ReadOnlyFilesystem
        | Kind::InvalidFilename
        | Kind::InvalidInput
        | Kind::AddrInUse
        | Kind::AddrNotAvailable => ErrorClass::Usage,
        Kind::ConnectionRefused
        | Kind::ConnectionReset
        | Kind::ConnectionAborted
        | Kind::NotConnected
        | Kind::TimedOut
        | Kind::HostUnreachable
        | Kind::NetworkUnreachable
        | Kind::NetworkDown => ErrorClass::Network,
        _ => ErrorClass::LocalFile,
    }
}

impl Classify for io::Error {
    fn class(&self) -> Option<ErrorClass> {
        Some(io_class(self))
    }
}

impl Classify for UsageError {
    fn class(&self) -> Option<ErrorClass> {
        Some(ErrorClass::Usage)
    }
}

impl Classify for ApiError {
    fn class(&self) -> Option<ErrorClass> {
        Some(match self {
            // What the user gave, and Danube's 4xx answers but 429: the
            // request is what must change.
            Self::BadBaseUrl { .. }
            | Self::NoCredentials
            | Self::BadCredential { .. }
            | Self::Unauthorized { .. }
            | Self::Forbidden { .. }
            | Self::NotFound { .. }
            | Self::BadRequest { .. } => ErrorClass::Usage,
            // 429, 5xx, no answer, or one the API does not document: the
            // same request may work later.
            Self::RateLimited { .. }
            | Self::PlanLimit { .. }
            | Self::Server { .. }
            | Self::Connect { .. }
            | Self::LocalConnect { .. }
            | Self::Timeout { .. }
            | Self::CreateTimeout { .. }
            | Self::EmitTimeout { .. }
            | Self::Transport { .. }
            | Self::Decode { .. } => ErrorClass::Network,
            Self::Unexpected { status, .. } => {
                if (400..500).contains(status) && *status != 429 {
                    ErrorClass::Usage
                } else {
                    ErrorClass::Network
                }
            }
        })
    }
}

impl Classify for CredentialsError {
    fn class(&self) -> Option<ErrorClass> {
        Some(match self {
            Self::NoConfigDir => ErrorClass::Usage,
            Self::Io { cause, .. } => io_class(cause),
            Self::Corrupt { .. } | Self::CorruptWebhooks { .. } => ErrorClass::LocalFile,
        })
    }
}

impl Classify for RegisterError {
    fn class(&self) -> Option<ErrorClass> {
        match self {
            Self::Api(err) => err.class(),
            Self::Saved(err) => err.class(),
            Self::Undone { cause, .. } => cause.class(),
            // Danube's webhook is one danube-hooks must not change: the
            // user decides what becomes of it.
            Self::Foreign { .. } => Some(ErrorClass::Usage),
            // Danube's answer did not come (or was given up on).
            Self::Stopped
            | Self::CreateLost { .. }
            | Self::CreateUnanswered { .. }
            | Self::Abandoned { .. } => Some(ErrorClass::Network),
            Self::SaveFailed { .. } => Some(ErrorClass::LocalFile),
        }
    }
}

impl Classify for TunnelError {
    fn class(&self) -> Option<ErrorClass> {
        // A flag that cannot be used, or no tunnel running to ask.
        Some(ErrorClass::Usage)
    }
}

impl Classify for PublicError {
    fn class(&self) -> Option<ErrorClass> {
        Some(match self {
            // The tunnel program could not reach its service, or its URL
            // does not reach this listener.
            Self::TunnelFailed { .. } | Self::Unreached { .. } => ErrorClass::Network,
        })
    }
}

impl Classify for SendError {
    fn class(&self) -> Option<ErrorClass> {
        Some(match self {
            Self::BadUrl(..) => ErrorClass::Usage,
            Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::Transport { .. }
            | Self::Tls { .. } => ErrorClass::Network,
        })
    }
}

impl Classify for CaError {
    fn class(&self) -> Option<ErrorClass> {
        // A --cacert file that cannot be used, told at start.
        Some(ErrorClass::Usage)
    }
}

impl Classify for StoreError {
    fn class(&self) -> Option<ErrorClass> {
        Some(match self {
            Self::Open { source, .. } | Self::Read { source, .. } | Self::Write { source, .. } => {
                io_class(source)
            }
            Self::InUse { .. } | Self::Missing { .. } | Self::NotFound { .. } => ErrorClass::Usage,
            // A damaged row is the shared store's damaged line.
            Self::Closed | Self::Corrupt { .. } | Self::DamagedRow { .. } => ErrorClass::LocalFile,
            Self::Shared(err) => return err.class(),
        })
    }
}

/// PostgreSQL is a server reached over the network: failing to reach it or
/// to run a statement there is class 3, as Danube's API failing is; a
/// schema this binary cannot use is configuration.
impl Classify for PgError {
    fn class(&self) -> Option<ErrorClass> {
        Some(match self {
            Self::Connect { .. } | Self::Query { .. } => ErrorClass::Network,
            Self::NewerSchema { .. } | Self::NoSchema { .. } | Self::Cacert(_) => ErrorClass::Usage,
        })
    }
}

impl Classify for BadStore {
    fn class(&self) -> Option<ErrorClass> {
        Some(ErrorClass::Usage)
    }
}

impl Classify for NotStored {
    fn class(&self) -> Option<ErrorClass> {
        Some(ErrorClass::LocalFile)
    }
}

impl Classify for StateError {
    fn class(&self) -> Option<ErrorClass> {
        Some(match self {
            Self::NoDataDir | Self::Locked { .. } => ErrorClass::Usage,
            Self::Io { cause, .. } => io_class(cause),
            Self::Corrupt { .. } => ErrorClass::LocalFile,
        })
    }
}

impl Classify for FileError {
    fn class(&self) -> Option<ErrorClass> {
        Some(io_class(&self.cause))
    }
}

impl Classify for EnvelopeError {
    fn class(&self) -> Option<ErrorClass> {
        Some(ErrorClass::Usage)
    }
}

impl Classify for PolicyError {
    fn class(&self) -> Option<ErrorClass> {
        Some(ErrorClass::Usage)
    }
}

#[cfg(test)]
mod tests {
    use super::chain::{chain, innermost};
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    #[test]
    fn the_chain_and_its_innermost_cause() {
        let inner = Layer {
            text: "connection refused",
            source: None,
        };
        let outer = Layer {
            text: "connect to 127.0.0.1:9",
            source: Some(Box::new(inner)),
        };
        assert_eq!(chain(&outer), "connect to 127.0.0.1:9: connection refused");
        assert_eq!(innermost(&outer), "connection refused");
        let alone = Layer {
            text: "alone",
            source: None,
        };
        assert_eq!(
            (chain(&alone), innermost(&alone)),
            ("alone".into(), "alone".into())
        );
    }

    fn api(status: u16) -> ApiError {
        let message = "m".to_owned();
        match status {
            400 | 409 | 422 => ApiError::BadRequest { status, message },
            500..=599 => ApiError::Server { status, message },
            _ => ApiError::Unexpected { status, message },
        }
    }

    #[test]
    fn danube_s_answers_by_status() {
        use ErrorClass::{Network, Usage};
        for (status, class) in [
            (400, Usage),
            (409, Usage),
            (410, Usage),
            (422, Usage),
            (428, Usage),
            (429, Network),
            (500, Network),
            (503, Network),
            (302, Network),
        ] {
            assert_eq!(api(status).class(), Some(class), "{status}");
        }
        let shown = || "dk_…".to_owned();
        let message = String::new;
        for (err, class) in [
            (
                ApiError::Unauthorized {
                    shown: shown(),
                    message: message(),
                },
                Usage,
            ),
            (
                ApiError::Forbidden {
                    shown: shown(),
                    message: message(),
                },
                Usage,
            ),
            (ApiError::NoCredentials, Usage),
            (
                ApiError::RateLimited {
                    wait: "1 s".into(),
                    message: message(),
                },
                Network,
            ),
            (
                ApiError::Connect {
                    url: "u".into(),
                    cause: "refused".into(),
                    tries: 3,
                },
                Network,
            ),
            (
                ApiError::Timeout {
                    url: "u".into(),
                    within: "1 s".into(),
                    tries: 3,
                },
                Network,
            ),
            (
                ApiError::Transport {
                    url: "u".into(),
                    cause: "TLS: unknown issuer".into(),
                },
                Network,
            ),
        ] {
            assert_eq!(err.class(), Some(class), "{err}");
        }
    }

    #[test]
    fn io_errors_by_kind() {
        use ErrorClass::{LocalFile, Network, Usage};
        use io::ErrorKind as Kind;
        for (kind, class) in [
            (Kind::NotFound, Usage),
            (Kind::PermissionDenied, Usage),
            (Kind::IsADirectory, Usage),
            (Kind::NotADirectory, Usage),
            (Kind::AlreadyExists, Usage),
            (Kind::ReadOnlyFilesystem, Usage),
            (Kind::AddrInUse, Usage),
            (Kind::ConnectionRefused, Network),
            (Kind::TimedOut, Network),
            (Kind::StorageFull, LocalFile),
            (Kind::UnexpectedEof, LocalFile),
            (Kind::Other, LocalFile),
        ] {
            assert_eq!(io_class(&io::Error::from(kind)), class, "{kind:?}");
        }
    }

    #[test]
    fn the_class_is_found_under_context_and_kept_by_whole() {
        use anyhow::Context as _;
        let full = || io::Error::from(io::ErrorKind::StorageFull);
        let store = || StoreError::Write {
            path: "/tmp/deliveries.jsonl".into(),
            source: full(),
        };
        let wrapped = Err::<(), _>(store())
            .context("cannot write the store")
            .context("listen")
            .unwrap_err();
        assert_eq!(class_of(&wrapped), ErrorClass::LocalFile);
        let whole = anyhow::Error::new(Whole::new(store())).context("cannot read the store");
        assert_eq!(class_of(&whole), ErrorClass::LocalFile);
        // Whole tells the store's text once, not its cause again.
        assert_eq!(
            format!("{whole:#}"),
            format!("cannot read the store: {}", store())
        );
        let usage = anyhow::Error::new(UsageError::new("--x: no")).context("outer");
        assert_eq!(class_of(&usage), ErrorClass::Usage);
        let registered = anyhow::Error::new(RegisterError::Api(api(503)));
        assert_eq!(class_of(&registered), ErrorClass::Network);
        let saved = anyhow::Error::new(CredentialsError::Corrupt {
            path: "credentials.json".into(),
            cause: "EOF".into(),
        });
        assert_eq!(class_of(&saved), ErrorClass::LocalFile);
        let closed = anyhow::Error::new(StdoutClosed).context("log");
        assert_eq!(class_of(&closed), ErrorClass::StdoutClosed);
        assert!(!class_of(&closed).is_told());
    }

    #[test]
    fn an_error_of_no_known_class_is_usage() {
        let text = anyhow::anyhow!("something the crate said in words");
        assert_eq!(class_of(&text), ErrorClass::Usage);
        assert_eq!(
            [
                ErrorClass::StdoutClosed,
                ErrorClass::Usage,
                ErrorClass::Network,
                ErrorClass::LocalFile
            ]
            .map(ErrorClass::exit_code),
            [0, 2, 3, 4]
        );
    }
}

//! One module per subcommand: each turns validated arguments into output on
//! stdout and an [`Outcome`]. Diagnostics go to stderr.

pub mod check;
pub mod completions;
pub mod inspect;
pub mod listen;
pub mod man;
pub mod replay;
pub mod sign;
pub mod trigger;
pub mod verify;

/// How a command ended, short of an error (which is exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: a negative verdict (`verify` invalid, `check` failures).
    Negative,
}

/// Unix seconds now. The one place commands read the clock for signatures.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

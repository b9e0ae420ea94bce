//! Errors the commands raise around others: a closed stdout, and an error
//! whose text already tells its causes. Their classes are in the parent.

use std::error::Error;
use std::fmt;

/// Stdout's reader went away (a broken pipe): the command ends there,
/// quietly, with 0.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub(crate) struct StdoutClosed;

/// An error whose text already tells its causes (`cannot read X: {source}`),
/// shown by that text alone, so that `{:#}` does not tell them twice; its
/// class is that of the error inside.
#[derive(Debug)]
pub(crate) struct Whole(pub(super) Box<dyn Error + Send + Sync + 'static>);

impl Whole {
    pub(crate) fn new(err: impl Error + Send + Sync + 'static) -> Self {
        Self(Box::new(err))
    }
}

impl fmt::Display for Whole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for Whole {}

//! Errors as text: the one way an error's chain of causes is written.

use std::error::Error;

/// The error and each of its causes, joined by `": "`: the whole account,
/// for a message that must say what failed and why.
pub(crate) fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// The innermost cause alone (`connection refused`), for a short line
/// whose context already says what was being done.
pub(crate) fn innermost(err: &(dyn Error + 'static)) -> String {
    let mut innermost = err;
    while let Some(inner) = innermost.source() {
        innermost = inner;
    }
    innermost.to_string()
}

//! Errors as text: the one way an error's chain of causes is written.

use std::error::Error;

/// The error and each of its causes, joined by `": "`: the whole account,
/// for a message that must say what failed and why.
pub fn chain(err: &(dyn Error + 'static)) -> String {
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
pub fn innermost(err: &(dyn Error + 'static)) -> String {
    let mut innermost = err;
    while let Some(inner) = innermost.source() {
        innermost = inner;
    }
    innermost.to_string()
}

#[cfg(test)]
mod tests {
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
}

//! The emulator's answers as hyper bodies: a JSON text whole, or a JSON
//! array made an item at a time as the client reads it.
//!
//! A delivery log of 100 records of 64 KiB payloads is 6 MiB of JSON. Made
//! whole, each client that asks and then does not read would hold one, and
//! 512 of them 3 GiB; the records themselves would stay alive after the
//! log dropped them. So a list is an array of ids, each looked up and
//! written only when hyper has room for it: a connection holds one item
//! and hyper's bounded buffer, and an item dropped from the log meanwhile
//! is left out of the answer.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

/// An item's JSON text by its key, while it is still there.
pub(crate) type Lookup = Box<dyn Fn(&str) -> Option<Vec<u8>> + Send>;

/// Items of a list are gathered into pieces of about this size.
const PIECE: usize = 16 * 1024;

/// An answer's body.
pub(crate) enum Body {
    /// Whole: sent with its length.
    Whole(Option<Bytes>),
    /// A JSON array of the items named by `keys`, made as it is read (and
    /// sent chunked).
    Array(Array),
}

impl Body {
    pub(crate) fn whole(bytes: Vec<u8>) -> Self {
        Self::Whole(Some(Bytes::from(bytes)))
    }
}

pub(crate) struct Array {
    keys: std::vec::IntoIter<String>,
    lookup: Lookup,
    /// `[` has gone out.
    opened: bool,
    items: usize,
    closed: bool,
}

impl Array {
    pub(crate) fn new(keys: Vec<String>, lookup: Lookup) -> Self {
        Self {
            keys: keys.into_iter(),
            lookup,
            opened: false,
            items: 0,
            closed: false,
        }
    }

    /// The next piece of the array: `[`, items with their commas, `]`.
    fn next_piece(&mut self) -> Option<Bytes> {
        if self.closed {
            return None;
        }
        let mut piece = Vec::new();
        if !self.opened {
            piece.push(b'[');
            self.opened = true;
        }
        while piece.len() < PIECE {
            let Some(key) = self.keys.next() else {
                piece.push(b']');
                self.closed = true;
                break;
            };
            if let Some(item) = (self.lookup)(&key) {
                if self.items > 0 {
                    piece.push(b',');
                }
                self.items += 1;
                piece.extend_from_slice(&item);
            }
        }
        Some(Bytes::from(piece))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let piece = match self.get_mut() {
            Self::Whole(bytes) => bytes.take(),
            Self::Array(array) => array.next_piece(),
        };
        Poll::Ready(piece.map(|piece| Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Whole(bytes) => bytes.is_none(),
            Self::Array(array) => array.closed,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Self::Array(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    async fn text(body: Body) -> String {
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn array(keys: &[&str], gone: &'static [&'static str]) -> Body {
        Body::Array(Array::new(
            keys.iter().map(|k| (*k).to_owned()).collect(),
            Box::new(move |key| {
                (!gone.contains(&key)).then(|| format!("{{\"k\":\"{key}\"}}").into_bytes())
            }),
        ))
    }

    #[tokio::test]
    async fn an_array_is_json_whatever_items_have_gone() {
        assert_eq!(text(array(&[], &[])).await, "[]");
        assert_eq!(text(array(&["a"], &["a"])).await, "[]");
        assert_eq!(
            text(array(&["a", "b", "c"], &["a"])).await,
            r#"[{"k":"b"},{"k":"c"}]"#
        );
        assert_eq!(text(array(&["a", "b"], &["b"])).await, r#"[{"k":"a"}]"#);
        let keys: Vec<String> = (0..5000).map(|n| n.to_string()).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let parsed: serde_json::Value =
            serde_json::from_str(&text(array(&refs, &[])).await).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 5000);
    }

    #[tokio::test]
    async fn a_long_array_goes_out_in_pieces_and_a_whole_body_with_its_length() {
        let keys: Vec<String> = (0..5000).map(|n| n.to_string()).collect();
        let mut body = Body::Array(Array::new(
            keys,
            Box::new(|key| Some(format!("\"{key}\"").into_bytes())),
        ));
        let mut pieces = 0;
        while let Some(frame) = body.frame().await {
            let piece = frame.unwrap().into_data().unwrap();
            assert!(piece.len() < PIECE + 64, "{}", piece.len());
            pieces += 1;
        }
        assert!(pieces > 1 && hyper::body::Body::is_end_stream(&body));
        let whole = Body::whole(b"{}".to_vec());
        assert_eq!(hyper::body::Body::size_hint(&whole).exact(), Some(2));
        assert_eq!(text(whole).await, "{}");
    }
}

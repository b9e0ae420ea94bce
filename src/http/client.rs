//! Sending one request and reading its answer whole within a bound, so
//! that a hostile server cannot make us hold more than we asked for.

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

/// The client every outbound request goes through.
pub(crate) type Client =
    hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why [`exchange`] has no whole answer: each caller tells it in its own words.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// No answer came: the connection, TLS or the request failed.
    Request(hyper_util::client::legacy::Error),
    /// The answer's body failed, or was larger than the bound.
    Body(Box<dyn std::error::Error + Send + Sync>),
}

/// What becomes of an answer's body past the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// The exchange fails: an answer that large is not the one expected.
    Fail,
    /// The first bytes are kept and the rest is never read: the status
    /// counts and the body is only shown (the emulator's receivers).
    Cut,
}

/// Send `request` and read its answer whole, the body bounded to
/// `max_body` bytes so a hostile server cannot make us hold more.
pub(crate) async fn exchange(
    client: &Client,
    request: hyper::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<(hyper::http::response::Parts, Bytes), ExchangeError> {
    exchange_with(client, request, max_body, Overflow::Fail).await
}

/// [`exchange`], with a body past `max_body` failing or cut as `overflow` says.
pub(crate) async fn exchange_with(
    client: &Client,
    request: hyper::Request<Full<Bytes>>,
    max_body: usize,
    overflow: Overflow,
) -> Result<(hyper::http::response::Parts, Bytes), ExchangeError> {
    use http_body_util::BodyExt as _;
    let response = client
        .request(request)
        .await
        .map_err(ExchangeError::Request)?;
    let (parts, body) = response.into_parts();
    let body = match overflow {
        Overflow::Fail => http_body_util::Limited::new(body, max_body)
            .collect()
            .await
            .map_err(ExchangeError::Body)?
            .to_bytes(),
        Overflow::Cut => read_cut(body, max_body)
            .await
            .map_err(|err| ExchangeError::Body(Box::new(err)))?,
    };
    Ok((parts, body))
}

/// The first `max` bytes of `body`; the rest is left unread.
async fn read_cut(mut body: hyper::body::Incoming, max: usize) -> Result<Bytes, hyper::Error> {
    use http_body_util::BodyExt as _;
    let mut kept = Vec::new();
    while kept.len() < max {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            let room = max - kept.len();
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(Bytes::from(kept))
}

//! URLs built and checked: a target given by a person or read from a
//! record is checked before anything is sent to it, and a path is joined
//! to a base from parts, never as text, so that no path can change the
//! host a request goes to.

use super::message::SendError;

/// Check that `url` is something the client can reach: http or https,
/// a host, no user name.
pub(crate) fn check_url(url: &str) -> Result<hyper::Uri, SendError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| SendError::BadUrl(url.into(), e.to_string()))?;
    // `http://127.0.0.1:4000@127.0.0.1:4001` goes to 4001: the part before
    // `@` is a user name. Nobody means that for a local receiver, and a
    // record written before request targets were checked may hold a URL
    // a stranger built that way.
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(SendError::BadUrl(
            url.into(),
            "it has a user name before '@' (user@host), so it would connect to the host after \
             the '@'; write the host and port alone (e.g. http://127.0.0.1:3000/webhooks/danube)"
                .into(),
        ));
    }
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|host| !host.is_empty()) => Ok(uri),
        Some("http" | "https") => Err(SendError::BadUrl(url.into(), "it has no host".into())),
        _ => Err(SendError::BadUrl(
            url.into(),
            "it must start with http:// or https://".into(),
        )),
    }
}

/// `uri`'s `scheme://authority`, with no path: what names a server in
/// messages and keys. (A URI from [`check_url`] or [`url_at`] has both.)
pub(crate) fn origin(uri: &hyper::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or_default(),
        uri.authority().map(ToString::to_string).unwrap_or_default()
    )
}

/// `base`'s scheme and authority with `path_and_query` (origin-form: `/…`):
/// built from parts, never by joining text, so nothing in the path can
/// change where the request goes (`@host:port`, `:port`, `.evil.com/` all
/// are refused, and `//host/` stays a path).
pub(crate) fn url_at(base: &hyper::Uri, path_and_query: &str) -> Result<hyper::Uri, SendError> {
    let bad = |why: &str| SendError::BadUrl(path_and_query.into(), why.into());
    if !path_and_query.starts_with('/') {
        return Err(bad(
            "a request path must start with '/' (origin-form); this one would not stay a path",
        ));
    }
    let path: hyper::http::uri::PathAndQuery = path_and_query
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    let (Some(scheme), Some(authority)) = (base.scheme(), base.authority()) else {
        return Err(SendError::BadUrl(
            base.to_string(),
            "it has no scheme or host".into(),
        ));
    };
    let url = hyper::Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| bad(&e.to_string()))?;
    // Read back as the client will read it: the same place, or refused.
    let reread: hyper::Uri = url
        .to_string()
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    if reread.scheme() != base.scheme() || reread.authority() != base.authority() {
        return Err(bad("it would change the host the request goes to"));
    }
    Ok(url)
}

/// Where a server bound to `local` is reached, as a URL to copy: an
/// unspecified bind address (`0.0.0.0`, `::`) is reached through loopback.
/// The banners of `listen` and `emulate` print it.
pub(crate) fn reachable_url(local: std::net::SocketAddr) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    let ip = match local.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::from([127, 0, 0, 1]),
        ip if ip.is_unspecified() => IpAddr::from(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, local.port()))
}

/// `http://addr` with `path_and_query` (origin-form), as [`url_at`] builds it.
pub(crate) fn url_on(
    addr: std::net::SocketAddr,
    path_and_query: &str,
) -> Result<hyper::Uri, SendError> {
    let base = hyper::Uri::builder()
        .scheme("http")
        .authority(addr.to_string())
        .path_and_query("/")
        .build()
        .map_err(|e| SendError::BadUrl(addr.to_string(), e.to_string()))?;
    url_at(&base, path_and_query)
}

/// `host:port` of `uri`, the port given or the scheme's own.
pub(super) fn host_port(uri: &hyper::Uri) -> String {
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    format!("{}:{port}", uri.host().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_a_user_name_are_refused() {
        for bad in [
            "http://127.0.0.1:47201@127.0.0.1:47202",
            "http://user:pw@127.0.0.1:3000/x",
            "http://@127.0.0.1:3000/",
        ] {
            let err = check_url(bad).unwrap_err().to_string();
            assert!(err.contains("user name before '@'"), "{bad}: {err}");
        }
        assert!(
            check_url("http://127.0.0.1:3000/a@b").is_ok(),
            "@ in a path is a path"
        );
    }

    #[test]
    fn a_bind_address_becomes_a_url_to_copy() {
        for (bound, url) in [
            ("0.0.0.0:4000", "http://127.0.0.1:4000"),
            ("[::]:4000", "http://[::1]:4000"),
            ("127.0.0.1:5001", "http://127.0.0.1:5001"),
            ("[::1]:1", "http://[::1]:1"),
        ] {
            assert_eq!(reachable_url(bound.parse().unwrap()), url, "{bound}");
        }
    }

    #[test]
    fn url_on_builds_from_parts() {
        let v4: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let v6: std::net::SocketAddr = "[::1]:4000".parse().unwrap();
        assert_eq!(url_on(v4, "/x?y").unwrap(), "http://127.0.0.1:4000/x?y");
        assert_eq!(url_on(v6, "//h/").unwrap(), "http://[::1]:4000//h/");
        assert!(url_on(v4, "@127.0.0.1:1").is_err());
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        assert!(check_url("http://127.0.0.1:3000/x").is_ok());
        assert!(check_url("https://example.com/").is_ok());
        assert!(check_url("https://127.0.0.1:8443/webhooks/danube").is_ok());
        for bad in ["ftp://x/", "localhost:3000", "http://", "https://", ""] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(
            check_url("ftp://x/")
                .unwrap_err()
                .to_string()
                .contains("it must start with http:// or https://")
        );
        // The userinfo trick is refused for https as for http.
        assert!(
            check_url("https://127.0.0.1:4000@127.0.0.1:4001/")
                .unwrap_err()
                .to_string()
                .contains("user name before '@'")
        );
    }

    #[test]
    fn the_tls_host_names_the_port_even_when_it_is_the_schemes_own() {
        let at = |url: &str| host_port(&url.parse().unwrap());
        assert_eq!(at("https://example.com/x"), "example.com:443");
        assert_eq!(at("http://example.com/x"), "example.com:80");
        assert_eq!(at("https://127.0.0.1:8443/"), "127.0.0.1:8443");
    }
}

//! A forward or mirror that comes back to this listener would be received,
//! forwarded and mirrored again, without end. Two layers stop it:
//!
//! - at start, a target that is the listener itself (a loopback address,
//!   `localhost`, an unspecified address or one of this machine's
//!   addresses, on the listener's own port) is refused ([`self_target`]);
//! - a loop through another hop (a tunnel's public URL, a proxy) is cut
//!   at its second arrival: every copy this listener sends carries
//!   [`VIA`] with this run's nonce, and a request that carries it is
//!   answered `508` and recorded, never sent on again.
//!
//! The nonce is random (190 bits) and never shown: a stranger cannot make
//! the listener refuse their requests, and a value that is not this run's
//! changes nothing. The record keeps [`SHOWN`] in its place.

use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;

use hyper::Uri;
use subtle::ConstantTimeEq as _;

use crate::delivery::Delivery;
use crate::http::headers_to_send;

/// On every copy a forward or a mirror sends: this run's nonce.
pub(crate) const VIA: &str = "X-Danube-Hooks-Via";

/// What a record keeps for the value of a [`VIA`] that is this run's.
pub(crate) const SHOWN: &[u8] = b"(this listener)";

/// The rule of a request answered `508` (after `limit: `).
pub(crate) const LOOP_RULE: &str = "loop detected: this request is this listener's own \
     forward or mirror come back (X-Danube-Hooks-Via); not sent on again";

static NONCE: LazyLock<String> = LazyLock::new(|| crate::random::random_alnum(32));

/// Whether a [`VIA`] value is this run's nonce, compared in constant time.
pub(crate) fn is_ours(value: &[u8]) -> bool {
    bool::from(value.ct_eq(NONCE.as_bytes()))
}

/// The headers a forward or a mirror sends for `delivery`: its own (as
/// [`headers_to_send`] passes them on, a [`VIA`] of another hop among
/// them), and this run's [`VIA`].
pub(crate) fn headers_to_send_on(delivery: &Delivery) -> Vec<(String, Vec<u8>)> {
    let mut headers = headers_to_send(delivery);
    headers.push((VIA.to_owned(), NONCE.as_bytes().to_vec()));
    headers
}

/// Whether `target` is the listener bound at `bound`: the same port, on a
/// loopback address or name, an unspecified address, the bound address, or
/// (bound to every address) one of this machine's (`is_local`).
pub(crate) fn self_target(
    target: &Uri,
    bound: SocketAddr,
    is_local: impl Fn(IpAddr) -> bool,
) -> bool {
    let https = target
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let port = target.port_u16().unwrap_or(if https { 443 } else { 80 });
    let Some(host) = target.host() else {
        return false;
    };
    if port != bound.port() {
        return false;
    }
    let host = host.trim_end_matches('.');
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        ip.is_loopback()
            || ip.is_unspecified()
            || ip == bound.ip().to_canonical()
            || (bound.ip().is_unspecified() && is_local(ip))
    } else {
        let host = host.to_ascii_lowercase();
        host == "localhost" || host.ends_with(".localhost")
    }
}

/// Whether `ip` is one of this machine's addresses: one a socket can be
/// bound to is.
pub(crate) fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// The refusal of `flag URL` (`--forward-to` or `--mirror-to`), a target
/// that is the listener at `bound`.
pub(crate) fn refusal(flag: &str, target: &Uri, bound: SocketAddr) -> String {
    format!(
        "{flag} {target} is this listener itself (listening on {bound}): a forward or mirror \
         target may not be the listener, or every copy would come back and be sent again \
         without end; point it at your receiver on another port (as in \
         http://localhost:{other}/...), or move the listener with --port",
        other = if bound.port() == 4001 { 4002 } else { 4001 },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_self(url: &str, bound: &str) -> bool {
        let target = crate::http::check_url(url).unwrap();
        // A machine whose only address beyond loopback is 192.0.2.7.
        self_target(&target, bound.parse().unwrap(), |ip| {
            ip == IpAddr::from([192, 0, 2, 7])
        })
    }

    #[test]
    fn loopback_names_and_addresses_on_the_own_port_are_the_listener() {
        for url in [
            "http://127.0.0.1:4000/webhooks/danube",
            "http://127.1.2.3:4000",
            "http://[::1]:4000/x",
            "http://[::ffff:127.0.0.1]:4000/",
            "http://localhost:4000/webhooks/danube-v2",
            "http://LocalHost.:4000/",
            "http://api.localhost:4000/",
            "http://0.0.0.0:4000/",
            "http://[::]:4000/",
            "https://localhost:4000/",
        ] {
            assert!(is_self(url, "127.0.0.1:4000"), "{url}");
        }
        assert!(is_self("http://localhost/", "127.0.0.1:80"));
        assert!(is_self("https://localhost/", "127.0.0.1:443"));
    }

    #[test]
    fn the_bound_address_and_the_machines_own_are_the_listener() {
        assert!(is_self("http://192.0.2.7:4000/", "192.0.2.7:4000"));
        assert!(is_self("http://192.0.2.7:4000/", "0.0.0.0:4000"));
        assert!(is_self("http://192.0.2.7:4000/", "[::]:4000"));
        // Bound to loopback alone, the machine's other address is not it.
        assert!(!is_self("http://192.0.2.7:4000/", "127.0.0.1:4000"));
        assert!(!is_self("http://198.51.100.1:4000/", "0.0.0.0:4000"));
    }

    #[test]
    fn another_port_or_host_is_allowed() {
        for url in [
            "http://127.0.0.1:4001/",
            "http://localhost:3000/webhooks/danube",
            "http://localhost/",
            "http://[::1]:40000/",
            "http://example.com:4000/",
            "http://notlocalhost:4000/",
            "https://localhost/",
        ] {
            assert!(!is_self(url, "127.0.0.1:4000"), "{url}");
        }
    }

    #[test]
    fn only_this_runs_nonce_is_ours() {
        let sent = headers_to_send_on(&crate::test_support::sample(1, b"{}"));
        let (name, value) = sent.last().unwrap();
        assert_eq!(name, VIA);
        assert!(is_ours(value));
        assert_eq!(value.len(), 32);
        assert!(!is_ours(b""));
        assert!(!is_ours(SHOWN));
        assert!(!is_ours(&value[..31]));
        let mut other = value.clone();
        other[0] ^= 1;
        assert!(!is_ours(&other));
    }

    #[test]
    fn the_refusal_names_the_rule_the_address_and_what_to_do() {
        let target = crate::http::check_url("http://localhost:4000/x").unwrap();
        let text = refusal("--mirror-to", &target, "127.0.0.1:4000".parse().unwrap());
        assert!(
            text.contains("--mirror-to http://localhost:4000/x"),
            "{text}"
        );
        assert!(text.contains("may not be the listener"), "{text}");
        assert!(text.contains("127.0.0.1:4000"), "{text}");
        assert!(text.contains("localhost:4001"), "{text}");
    }
}

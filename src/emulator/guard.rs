//! Whether a request comes from a program on this machine rather than from
//! a web page: the emulator has no TLS and, without `--api-key`, takes any
//! key, so a page open in the developer's browser must not reach it.
//!
//! Two doors are shut. A page that posts across origins carries `Origin`
//! (browsers put it on every cross-origin request). A page that was loaded
//! from `evil.example` and then had that name rebound to 127.0.0.1 (DNS
//! rebinding) is same-origin with the emulator and sends no `Origin` on a
//! GET, but its `Host` is still `evil.example`: so only this machine's own
//! names are accepted as `Host`. SDKs, curl and danube-hooks send neither
//! an `Origin` nor a foreign `Host`.

use std::net::IpAddr;

use hyper::header::{self, HeaderMap};
use hyper::{StatusCode, Uri};

use crate::display::truncate;

/// A refused request: its status and Danube's `detail`.
pub(crate) type Refused = (StatusCode, String);

/// What may be the `Host`, for the refusal's text.
const ALLOWED: &str =
    "localhost, NAME.localhost, 127.0.0.1 (any 127.x.y.z), [::1] and the address it listens on";

/// Refuse what a web page sends: an `Origin`, or a `Host` (or an absolute
/// request target's host) that is not a name of this machine. `local` is
/// the address the client reached, so that a client of `--host 0.0.0.0`
/// may name the interface it came in on.
pub(crate) fn check(headers: &HeaderMap, uri: &Uri, local: IpAddr) -> Result<(), Refused> {
    let hosts = headers.get_all(header::HOST);
    let authority = uri
        .authority()
        .map(|authority| authority.as_str().as_bytes());
    let mut named = false;
    for value in hosts
        .iter()
        .map(hyper::header::HeaderValue::as_bytes)
        .chain(authority)
    {
        named = true;
        let text = String::from_utf8_lossy(value);
        if !is_this_machine(&text, local) {
            return Err((
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host {:?} is not a name of this machine: the emulator answers only to \
                     {ALLOWED}, so that a web page that reached it under another name (DNS \
                     rebinding) reads and fires nothing",
                    truncate(&text, 200)
                ),
            ));
        }
    }
    if !named {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("A Host header is required: one of {ALLOWED}"),
        ));
    }
    if headers.contains_key(header::ORIGIN) {
        return Err((
            StatusCode::FORBIDDEN,
            "Requests from a web page (with an Origin header) are refused: the emulator is for \
             SDKs, curl and danube-hooks on this machine"
                .to_owned(),
        ));
    }
    Ok(())
}

/// `host[:port]` names this machine: `localhost` or a name under it
/// (browsers resolve those to loopback themselves, and no one can own
/// one in DNS), a loopback address, or the address the client reached.
/// Any port: a tunnel (`ssh -L 9000:…`) changes it, a rebinding does not
/// need to.
fn is_this_machine(host: &str, local: IpAddr) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if !(after.is_empty() || port(after.strip_prefix(':'))) {
            return false;
        }
        return inside
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| is_loopback_or(IpAddr::V6(ip), local));
    } else {
        match host.rsplit_once(':') {
            Some((name, given)) if port(Some(given)) => name,
            Some(_) => return false,
            None => host,
        }
    };
    if let Ok(ip) = name.parse::<std::net::Ipv4Addr>() {
        return is_loopback_or(IpAddr::V4(ip), local);
    }
    let name = name.to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    name == "localhost"
        || name
            .strip_suffix(".localhost")
            .is_some_and(|sub| sub.split('.').all(label_ok))
}

fn port(text: Option<&str>) -> bool {
    text.is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_loopback_or(ip: IpAddr, local: IpAddr) -> bool {
    ip.is_loopback() || ip.to_canonical() == local.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>, uri: &str, origin: Option<&str>) -> (HeaderMap, Uri) {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(header::HOST, host.parse().unwrap());
        }
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        (headers, uri.parse().unwrap())
    }

    #[test]
    fn only_this_machines_names_are_a_host() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let lan: IpAddr = "192.168.1.20".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.168.1.20".parse().unwrap();
        let table: &[(&str, IpAddr, bool)] = &[
            ("localhost", loopback, true),
            ("localhost:4200", loopback, true),
            ("LOCALHOST:4200", loopback, true),
            ("app.localhost:4200", loopback, true),
            ("a.b-c.localhost", loopback, true),
            ("127.0.0.1:4200", loopback, true),
            ("127.0.0.1", loopback, true),
            ("127.1.2.3:9", loopback, true),
            ("[::1]:4200", loopback, true),
            ("[::1]", loopback, true),
            ("192.168.1.20:4200", lan, true),
            ("192.168.1.20:4200", mapped, true),
            ("evil.example:4200", loopback, false),
            ("evil.example", loopback, false),
            ("localhost.evil.example", loopback, false),
            ("127.0.0.1.evil.example", loopback, false),
            ("evillocalhost", loopback, false),
            (".localhost", loopback, false),
            ("a..localhost", loopback, false),
            ("192.168.1.20:4200", loopback, false),
            ("10.0.0.1", lan, false),
            ("0.0.0.0:4200", loopback, false),
            ("localhost:", loopback, false),
            ("localhost:42x", loopback, false),
            ("localhost:4200:1", loopback, false),
            ("[::1", loopback, false),
            ("[::1]x", loopback, false),
            ("[fe80::1]:4200", loopback, false),
            ("user@localhost", loopback, false),
            ("", loopback, false),
        ];
        for (host, local, want) in table {
            assert_eq!(is_this_machine(host, *local), *want, "{host} from {local}");
        }
    }

    #[test]
    fn a_foreign_host_an_absolute_target_no_host_and_an_origin_are_refused() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let ok = request(Some("127.0.0.1:4200"), "/v1/webhooks", None);
        assert!(check(&ok.0, &ok.1, local).is_ok());
        let cases = [
            (
                request(Some("evil.example:4200"), "/v1/webhooks", None),
                StatusCode::MISDIRECTED_REQUEST,
            ),
            (
                request(
                    Some("localhost"),
                    "http://evil.example:4200/v1/webhooks",
                    None,
                ),
                StatusCode::MISDIRECTED_REQUEST,
            ),
            (request(None, "/v1/webhooks", None), StatusCode::BAD_REQUEST),
            (
                request(Some("localhost"), "/", Some("https://evil.example")),
                StatusCode::FORBIDDEN,
            ),
        ];
        for ((headers, uri), status) in cases {
            let (got, detail) = check(&headers, &uri, local).unwrap_err();
            assert_eq!(got, status, "{detail}");
            assert!(
                detail.contains("localhost") || detail.contains("web page"),
                "{detail}"
            );
        }
        let long = format!("{}.example", "a".repeat(5000));
        let (_, detail) = check(
            &request(Some(&long), "/", None).0,
            &"/".parse().unwrap(),
            local,
        )
        .unwrap_err();
        assert!(
            detail.len() < 1000,
            "a stranger's host is quoted cut: {detail}"
        );
    }
}

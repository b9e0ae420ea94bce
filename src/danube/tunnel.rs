//! The tunnel's public `https://` URL. `listen --tunnel` starts the tunnel
//! program itself and keeps it running ([`program`], [`child`],
//! [`supervisor`]); `listen --register` alone finds the URL of a tunnel the
//! user started: given with `--public-url`, else read from a running ngrok
//! agent (its local API, `GET /api/tunnels`: the https tunnel to this
//! listener's port), else from a running cloudflared quick tunnel (its
//! metrics server, `GET /quicktunnel` on 127.0.0.1:20241–20245), else an
//! error naming those three ways and why each failed. Either way the URL
//! is proved to reach this listener before it is registered ([`reach`]).
//!
//! Discovery asks only the addresses above (or the ones `--ngrok-api` and
//! `--cloudflared-metrics` give), with a short timeout and a bounded
//! answer, and never fails open: an answer it cannot read, or a tunnel that
//! is not https or not to this port, is passed over with the reason, never
//! guessed at. URLs are built from parsed parts ([`crate::http::url_at`]).

pub(crate) mod child;
mod owner;
pub(crate) mod program;
pub(crate) mod reach;
pub(crate) mod supervisor;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use serde::Deserialize;

use crate::display::{escape_line, truncate};
use crate::http::{Client, ExchangeError};
use crate::http::{check_url, origin, url_at};

/// Where ngrok's agent serves its local API by default.
pub(crate) const NGROK_API: &str = "http://127.0.0.1:4040";
/// The ports cloudflared's metrics server tries, in order, by default.
pub(crate) const CLOUDFLARED_PORTS: std::ops::RangeInclusive<u16> = 20241..=20245;
/// The path a webhook is registered at unless `--path` says otherwise.
pub(crate) const DEFAULT_PATH: &str = "/webhooks/danube";
/// How long one question to an agent may take: they are on this machine
/// (or where the user said), so a slow one is as good as none.
pub(crate) const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(2);
/// An agent's answer larger than this is not one (ngrok lists a few
/// tunnels; cloudflared answers one host name).
const MAX_AGENT_ANSWER: usize = 1024 * 1024;
/// A reason quoted from an answer is cut to this many characters.
const MAX_REASON: usize = 160;
/// At most this many of an agent's tunnels are named in an error.
const MAX_TUNNELS_NAMED: usize = 5;

/// A flag of discovery that cannot be used: a usage error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TunnelError {
    #[error("--public-url {url}: {why}")]
    BadPublicUrl { url: String, why: String },
    #[error("--ngrok-api {url}: {why}")]
    BadNgrokApi { url: String, why: String },
    #[error("--cloudflared-metrics {addr}: {why} (give HOST:PORT, e.g. 127.0.0.1:20241)")]
    BadMetrics { addr: String, why: String },
    #[error("--path {path}: {why}")]
    BadPath { path: String, why: String },
    #[error(
        "no public https:// URL to register: pass --public-url https://…, or start `ngrok http \
         {port}` (asked {ngrok_api}: {ngrok}), or start `cloudflared tunnel --url \
         http://localhost:{port}` (asked {cloudflared_at}: {cloudflared})"
    )]
    NotFound {
        port: u16,
        ngrok_api: String,
        ngrok: String,
        cloudflared_at: String,
        cloudflared: String,
    },
}

/// Where to look for the public URL, checked.
#[derive(Debug, Clone)]
pub(crate) struct Discovery {
    /// `--public-url`: an https origin.
    public_url: Option<Uri>,
    /// ngrok's `/api/tunnels`.
    ngrok: Uri,
    /// cloudflared's `/quicktunnel` on each metrics address, in order.
    cloudflared: Vec<Uri>,
    /// Whether `--cloudflared-metrics` named the address (for the error).
    cloudflared_given: bool,
}

/// Where the public URL came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `--public-url`.
    Given,
    /// A tunnel of the ngrok agent whose API is at `api`.
    Ngrok { api: String, tunnel: String },
    /// The quick tunnel of the cloudflared whose metrics are at `metrics`.
    Cloudflared { metrics: String },
    /// The tunnel `--tunnel` started, asked at its own `control` address.
    Started {
        program: program::Program,
        control: String,
    },
}

impl Source {
    /// One line for the banner. Agent-given names are escaped.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Given => "--public-url".to_owned(),
            Self::Ngrok { api, tunnel } => format!(
                "ngrok (tunnel {:?} of the agent at {api})",
                escape_line(tunnel)
            ),
            // A quick tunnel's answer does not say which port it serves.
            Self::Cloudflared { metrics } => format!(
                "a cloudflared quick tunnel (metrics at {metrics}; it does not say its port: it \
                 must be `--url http://localhost:PORT` of this listener)"
            ),
            Self::Started { program, control } => format!(
                "{}, started by danube-hooks ({} at {control})",
                program.name(),
                match program {
                    program::Program::Cloudflared => "its metrics",
                    program::Program::Ngrok => "its agent API",
                }
            ),
        }
    }
}

/// What the listener shows of its public side while it runs: the
/// dashboard's header rows and status line, and headless, stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct View {
    /// The tunnel started: its program, URL and starts; `None` without one.
    pub(crate) tunnel: Option<String>,
    /// The registered webhook: id, fingerprint, URL, what happens on exit.
    pub(crate) webhook: Option<String>,
    /// The latest thing that happened.
    pub(crate) notice: Option<Notice>,
}

/// One thing that happened to the public side (a restart, a new URL, a
/// re-point), numbered so that each is shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub(crate) seq: u64,
    pub(crate) text: String,
    /// Something the user must act on or know went wrong.
    pub(crate) is_error: bool,
}

/// The tunnel's public origin, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicUrl {
    /// `https://host[:port]/`, nothing more.
    pub(crate) origin: Uri,
    pub(crate) source: Source,
}

impl PublicUrl {
    /// The webhook URL: this origin and `path` (checked by
    /// [`check_path`]), built from parts.
    pub(crate) fn webhook_url(&self, path: &str) -> Result<Uri, TunnelError> {
        url_at(&self.origin, path).map_err(|err| TunnelError::BadPath {
            path: escape_line(path).into_owned(),
            why: err.to_string(),
        })
    }
}

/// An origin as shown to a person: `https://host[:port]`, escaped.
pub(crate) fn shown_origin(origin: &Uri) -> String {
    escape_line(&crate::http::origin(origin)).into_owned()
}

/// `--path`: origin-form, a path alone (no query, no fragment).
pub(crate) fn check_path(path: &str) -> Result<(), TunnelError> {
    let bad = |why: &str| TunnelError::BadPath {
        path: escape_line(path).into_owned(),
        why: why.to_owned(),
    };
    if !path.starts_with('/') {
        return Err(bad("it must start with '/', e.g. /webhooks/danube"));
    }
    if path.contains(['?', '#']) {
        return Err(bad("a path alone, without ? or #"));
    }
    let base = Uri::from_static("https://example.com/");
    url_at(&base, path).map_err(|err| bad(&err.to_string()))?;
    Ok(())
}

impl Discovery {
    /// Check the flags: `--public-url` an https origin (or http, when
    /// `local_danube`: an API on this machine, such as `emulate
    /// --allow-http`, which decides for itself), `--ngrok-api` an http(s)
    /// origin (or its `/api/tunnels`), `--cloudflared-metrics` HOST:PORT.
    pub(crate) fn new(
        public_url: Option<&str>,
        ngrok_api: Option<&str>,
        cloudflared_metrics: Option<&str>,
        local_danube: bool,
    ) -> Result<Self, TunnelError> {
        let public_url = public_url
            .map(|url| public_origin(url, local_danube))
            .transpose()?;
        let ngrok = ngrok_tunnels_url(ngrok_api.unwrap_or(NGROK_API))?;
        let cloudflared = match cloudflared_metrics {
            Some(addr) => vec![quicktunnel_url(addr)?],
            None => CLOUDFLARED_PORTS
                .map(|port| quicktunnel_url(&format!("127.0.0.1:{port}")))
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            public_url,
            ngrok,
            cloudflared,
            cloudflared_given: cloudflared_metrics.is_some(),
        })
    }

    /// The public URL for a listener bound to `local`: `--public-url`, else
    /// ngrok, else cloudflared.
    pub(crate) async fn discover(
        &self,
        client: &Client,
        local: SocketAddr,
    ) -> Result<PublicUrl, TunnelError> {
        if let Some(origin) = &self.public_url {
            return Ok(PublicUrl {
                origin: origin.clone(),
                source: Source::Given,
            });
        }
        let ngrok_api = origin(&self.ngrok);
        let ngrok = match ask_ngrok(client, &self.ngrok, local).await {
            Ok(found) => return Ok(found),
            Err(why) => why,
        };
        let mut cloudflared = Vec::new();
        for url in &self.cloudflared {
            match ask_cloudflared(client, url).await {
                Ok(found) => return Ok(found),
                Err(why) => cloudflared.push(why),
            }
        }
        cloudflared.dedup();
        let cloudflared_at = if self.cloudflared_given {
            self.cloudflared
                .iter()
                .map(origin)
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!(
                "127.0.0.1:{}–{}",
                CLOUDFLARED_PORTS.start(),
                CLOUDFLARED_PORTS.end()
            )
        };
        Err(TunnelError::NotFound {
            port: local.port(),
            ngrok_api,
            ngrok,
            cloudflared_at,
            cloudflared: cloudflared.join("; "),
        })
    }
}

/// The https tunnel to the listener at `local` of the ngrok agent whose
/// `/api/tunnels` is `api`, or why there is none.
async fn ask_ngrok(client: &Client, api: &Uri, local: SocketAddr) -> Result<PublicUrl, String> {
    refuse_another_users(api)?;
    let answer = get_json::<NgrokTunnels>(client, api).await?;
    let (origin, tunnel) = pick_ngrok(&answer.tunnels, local)?;
    Ok(PublicUrl {
        origin,
        source: Source::Ngrok {
            api: crate::http::origin(api),
            tunnel,
        },
    })
}

/// The quick tunnel of the cloudflared whose `/quicktunnel` is `metrics`,
/// or why there is none.
async fn ask_cloudflared(client: &Client, metrics: &Uri) -> Result<PublicUrl, String> {
    refuse_another_users(metrics)?;
    let answer = get_json::<QuickTunnel>(client, metrics).await?;
    Ok(PublicUrl {
        origin: quick_tunnel_origin(&answer.hostname)?,
        source: Source::Cloudflared {
            metrics: metrics
                .authority()
                .map(ToString::to_string)
                .unwrap_or_default(),
        },
    })
}

/// An agent on this machine that runs as another user is not asked: its
/// answer would choose where Danube posts ([`owner`]).
fn refuse_another_users(agent: &Uri) -> Result<(), String> {
    let host = agent.host().unwrap_or_default();
    let on_this_machine = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let port = agent.port_u16().unwrap_or(80);
    match owner::foreign_listener(port).filter(|_| on_this_machine) {
        Some(uid) => Err(format!(
            "what listens there runs as another user (uid {uid}), so its answer is not taken"
        )),
        None => Ok(()),
    }
}

/// `--public-url`: https (or http when `http_allowed`), a host, and no
/// path beyond `/`.
pub(crate) fn public_origin(url: &str, http_allowed: bool) -> Result<Uri, TunnelError> {
    let bad = |why: String| TunnelError::BadPublicUrl {
        url: escape_line(url).into_owned(),
        why,
    };
    let uri = check_url(url).map_err(|err| bad(err.to_string()))?;
    if uri.scheme_str() != Some("https") && !(http_allowed && uri.scheme_str() == Some("http")) {
        return Err(bad(
            "Danube posts only to https:// URLs; give the tunnel's https:// address (http:// \
             only with a Danube on this machine, --api-url http://127.0.0.1:…)"
                .into(),
        ));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(bad(
            "give the tunnel's origin alone (e.g. https://abc.ngrok.app) and the path with --path"
                .into(),
        ));
    }
    url_at(&uri, "/").map_err(|err| bad(err.to_string()))
}

/// `--ngrok-api`: its origin, or its `/api/tunnels`; the request goes to
/// `/api/tunnels` there.
fn ngrok_tunnels_url(url: &str) -> Result<Uri, TunnelError> {
    let bad = |why: String| TunnelError::BadNgrokApi {
        url: escape_line(url).into_owned(),
        why,
    };
    let uri = check_url(url).map_err(|err| bad(err.to_string()))?;
    match uri
        .path_and_query()
        .map(hyper::http::uri::PathAndQuery::as_str)
    {
        None | Some("/" | "/api/tunnels" | "/api/tunnels/") => {}
        Some(_) => {
            return Err(bad(
                "give the agent's address alone, e.g. http://127.0.0.1:4040".into(),
            ));
        }
    }
    url_at(&uri, "/api/tunnels").map_err(|err| bad(err.to_string()))
}

/// `--cloudflared-metrics HOST:PORT`: `http://HOST:PORT/quicktunnel`.
fn quicktunnel_url(addr: &str) -> Result<Uri, TunnelError> {
    let bad = |why: &str| TunnelError::BadMetrics {
        addr: escape_line(addr).into_owned(),
        why: why.to_owned(),
    };
    let authority: hyper::http::uri::Authority =
        addr.parse().map_err(|_| bad("not a host and port"))?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad("not a host and port"));
    }
    if authority.port_u16().is_none() {
        return Err(bad("no port"));
    }
    let base = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query("/")
        .build()
        .map_err(|_| bad("not a host and port"))?;
    url_at(&base, "/quicktunnel").map_err(|err| bad(&err.to_string()))
}

/// ngrok's `GET /api/tunnels`, the fields read.
#[derive(Debug, Deserialize)]
struct NgrokTunnels {
    tunnels: Vec<NgrokTunnel>,
}

#[derive(Debug, Clone, Deserialize)]
struct NgrokTunnel {
    #[serde(default)]
    name: String,
    #[serde(default)]
    public_url: String,
    #[serde(default)]
    proto: String,
    #[serde(default)]
    config: NgrokConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct NgrokConfig {
    /// What the tunnel forwards to: `http://localhost:4000`,
    /// `localhost:4000`, `4000`, `127.0.0.1:4000`, …
    #[serde(default)]
    addr: String,
}

/// cloudflared's `GET /quicktunnel`.
#[derive(Debug, Deserialize)]
struct QuickTunnel {
    hostname: String,
}

/// The https tunnel of `tunnels` that forwards to the listener at `local`,
/// or why there is none.
fn pick_ngrok(tunnels: &[NgrokTunnel], local: SocketAddr) -> Result<(Uri, String), String> {
    let mut seen = Vec::new();
    for tunnel in tunnels {
        let https = tunnel.proto == "https" || tunnel.public_url.starts_with("https://");
        let to_us = forwards_to(&tunnel.config.addr, local);
        if https && to_us {
            match public_origin(&tunnel.public_url, false) {
                Ok(origin) => {
                    return Ok((origin, truncate(&tunnel.name, MAX_REASON).into_owned()));
                }
                // The error quotes the agent's URL whole (escaped): cut it,
                // so a hostile agent cannot fill the terminal with it.
                Err(err) => seen.push(truncate(&err.to_string(), MAX_REASON * 2).into_owned()),
            }
        } else {
            seen.push(format!(
                "{} → {}",
                escape_line(&truncate(&tunnel.public_url, MAX_REASON)),
                escape_line(&truncate(&tunnel.config.addr, MAX_REASON))
            ));
        }
    }
    if seen.is_empty() {
        return Err("the agent runs no tunnel".to_owned());
    }
    // An agent's answer may list thousands of tunnels: name a few.
    let more = seen.len().saturating_sub(MAX_TUNNELS_NAMED);
    seen.truncate(MAX_TUNNELS_NAMED);
    if more > 0 {
        seen.push(format!("and {more} more"));
    }
    Err(format!(
        "no https tunnel to port {} among {}",
        local.port(),
        seen.join(", ")
    ))
}

/// Whether ngrok's `addr` is this listener: plain http (the listener
/// speaks no TLS), this port, and a host that reaches it (loopback,
/// `localhost`, or the address it is bound to).
fn forwards_to(addr: &str, local: SocketAddr) -> bool {
    let rest = match addr.split_once("://") {
        Some(("http", rest)) => rest,
        Some(_) => return false,
        None => addr,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if let Ok(port) = authority.parse::<u16>() {
        return port == local.port();
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => match port.parse::<u16>() {
            Ok(port) => (host, port),
            Err(_) => return false,
        },
        // No port: http's own.
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host_ok = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified() || ip == local.ip());
    host_ok && port == local.port()
}

/// `https://HOSTNAME/` for cloudflared's answer, if it is a host name.
fn quick_tunnel_origin(hostname: &str) -> Result<Uri, String> {
    let valid = !hostname.is_empty()
        && hostname.len() <= 253
        && hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        return Err(format!(
            "its quick tunnel's hostname {:?} is not a host name",
            escape_line(&truncate(hostname, MAX_REASON))
        ));
    }
    Uri::builder()
        .scheme("https")
        .authority(hostname)
        .path_and_query("/")
        .build()
        .map_err(|err| format!("its quick tunnel's hostname cannot be used: {err}"))
}

/// GET `uri` within [`DISCOVERY_TIMEOUT`] and [`MAX_AGENT_ANSWER`]: its
/// status and body, or a short reason.
async fn get(client: &Client, uri: &Uri) -> Result<(hyper::StatusCode, Bytes), String> {
    let mut request = hyper::Request::get(uri.clone()).header("accept", "application/json");
    if let Some(authority) = uri.authority() {
        request = request.header("host", authority.as_str());
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(|err| err.to_string())?;
    let exchange = crate::http::exchange(client, request, MAX_AGENT_ANSWER);
    let (parts, body) = tokio::time::timeout(DISCOVERY_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", DISCOVERY_TIMEOUT.as_secs()))?
        .map_err(|err| match err {
            ExchangeError::Request(err) if err.is_connect() => "nothing answers there".to_owned(),
            ExchangeError::Request(err) => format!("the request failed: {err}"),
            ExchangeError::Body(err) => format!("reading its answer failed: {err}"),
        })?;
    Ok((parts.status, body))
}

/// GET `uri` and read a 200's JSON; anything else is a short reason.
async fn get_json<T: serde::de::DeserializeOwned>(client: &Client, uri: &Uri) -> Result<T, String> {
    let (status, body) = get(client, uri).await?;
    if status != hyper::StatusCode::OK {
        return Err(format!("it answered {status}"));
    }
    serde_json::from_slice(&body).map_err(|err| {
        format!(
            "its answer is not what the agent sends ({:?} error at line {} column {})",
            err.classify(),
            err.line(),
            err.column()
        )
    })
}

/// cloudflared's `/ready`: 200 once a connection to Cloudflare's edge is
/// up, 503 before. A cloudflared without it (404) is taken as ready.
async fn get_ready(client: &Client, uri: &Uri) -> Result<(), String> {
    match get(client, uri).await?.0 {
        hyper::StatusCode::OK | hyper::StatusCode::NOT_FOUND => Ok(()),
        status => Err(format!("{} answered {status}", uri.path())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_servers::{closed_port, ok_with, serve};

    fn tunnel(name: &str, public_url: &str, proto: &str, addr: &str) -> NgrokTunnel {
        NgrokTunnel {
            name: name.into(),
            public_url: public_url.into(),
            proto: proto.into(),
            config: NgrokConfig { addr: addr.into() },
        }
    }

    #[test]
    fn the_ngrok_addr_names_this_listener_in_any_of_its_forms() {
        let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let table = [
            ("http://localhost:4000", true),
            ("localhost:4000", true),
            ("4000", true),
            ("127.0.0.1:4000", true),
            ("http://127.0.0.1:4000/", true),
            ("http://[::1]:4000", true),
            ("http://0.0.0.0:4000", true),
            ("http://LOCALHOST:4000", true),
            ("http://localhost:3000", false),
            ("3000", false),
            ("https://localhost:4000", false),
            ("tcp://localhost:4000", false),
            ("http://192.168.1.9:4000", false),
            ("http://example.com:4000", false),
            ("http://localhost", false),
            ("", false),
            ("localhost:99999", false),
        ];
        for (addr, want) in table {
            assert_eq!(forwards_to(addr, local), want, "{addr}");
        }
        let lan: SocketAddr = "192.168.1.9:80".parse().unwrap();
        assert!(forwards_to("http://192.168.1.9", lan));
    }

    #[test]
    fn ngrok_the_https_tunnel_to_this_port_is_picked() {
        let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let tunnels = [
            tunnel(
                "other",
                "https://other.ngrok.app",
                "https",
                "http://localhost:3000",
            ),
            tunnel(
                "plain",
                "http://abc.ngrok.app",
                "http",
                "http://localhost:4000",
            ),
            tunnel("ours", "https://abc.ngrok.app", "https", "localhost:4000"),
        ];
        let (origin, name) = pick_ngrok(&tunnels, local).unwrap();
        assert_eq!(origin.to_string(), "https://abc.ngrok.app/");
        assert_eq!(name, "ours");

        let why = pick_ngrok(&tunnels[..2], local).unwrap_err();
        assert!(why.contains("no https tunnel to port 4000"), "{why}");
        assert!(
            why.contains("http://abc.ngrok.app → http://localhost:4000"),
            "{why}"
        );
        assert_eq!(
            pick_ngrok(&[], local).unwrap_err(),
            "the agent runs no tunnel"
        );
        // A public_url that is not an https origin is never used.
        let odd = [tunnel("odd", "https://u@evil.example", "https", "4000")];
        assert!(pick_ngrok(&odd, local).is_err());
    }

    #[test]
    fn a_quick_tunnels_hostname_is_a_host_name_or_nothing() {
        assert_eq!(
            quick_tunnel_origin("tall-river-1234.trycloudflare.com")
                .unwrap()
                .to_string(),
            "https://tall-river-1234.trycloudflare.com/"
        );
        for bad in ["", "evil.com/x", "a@b.com", "host:80", "a b", "\u{1b}[2J"] {
            let why = quick_tunnel_origin(bad).unwrap_err();
            assert!(!why.contains('\u{1b}'), "{why}");
        }
    }

    #[test]
    fn the_flags_are_checked() {
        let ok = Discovery::new(Some("https://abc.ngrok.app"), None, None, false).unwrap();
        assert_eq!(ok.public_url.unwrap().to_string(), "https://abc.ngrok.app/");
        assert_eq!(ok.ngrok.to_string(), "http://127.0.0.1:4040/api/tunnels");
        assert_eq!(ok.cloudflared.len(), 5);
        assert_eq!(
            ok.cloudflared[0].to_string(),
            "http://127.0.0.1:20241/quicktunnel"
        );
        for (public, why) in [
            ("http://abc.ngrok.app", "https://"),
            ("https://abc.ngrok.app/webhooks", "--path"),
            ("abc.ngrok.app", "http:// or https://"),
            ("https://user@abc.ngrok.app", "user name"),
        ] {
            let err = Discovery::new(Some(public), None, None, false)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{public}: {err}");
        }
        // http:// only for a Danube on this machine (emulate --allow-http).
        let local = Discovery::new(Some("http://127.0.0.1:4000"), None, None, true).unwrap();
        assert_eq!(
            local.public_url.unwrap().to_string(),
            "http://127.0.0.1:4000/"
        );
        let given = Discovery::new(
            None,
            Some("http://10.0.0.2:4041/api/tunnels"),
            Some("[::1]:20300"),
            false,
        )
        .unwrap();
        assert_eq!(given.ngrok.to_string(), "http://10.0.0.2:4041/api/tunnels");
        assert_eq!(given.cloudflared.len(), 1);
        assert_eq!(
            given.cloudflared[0].to_string(),
            "http://[::1]:20300/quicktunnel"
        );
        assert!(Discovery::new(None, Some("http://127.0.0.1:4040/x"), None, false).is_err());
        for metrics in [
            "127.0.0.1",
            "a@127.0.0.1:1",
            "127.0.0.1:1/x",
            "http://127.0.0.1:1",
            "",
        ] {
            let err = Discovery::new(None, None, Some(metrics), false)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("--cloudflared-metrics"), "{metrics}: {err}");
        }
    }

    #[test]
    fn the_path_is_a_path() {
        let public = PublicUrl {
            origin: Uri::from_static("https://abc.ngrok.app/"),
            source: Source::Given,
        };
        assert_eq!(
            public.webhook_url(DEFAULT_PATH).unwrap().to_string(),
            "https://abc.ngrok.app/webhooks/danube"
        );
        assert!(check_path(DEFAULT_PATH).is_ok());
        assert!(check_path("/").is_ok());
        for bad in ["webhooks", "/a?b=1", "/a#b", "@evil.com/x", "/a b"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    /// A fake agent answering 200 with `body`.
    fn agent(body: &str) -> SocketAddr {
        serve(Some(ok_with(body))).0
    }

    /// Discover for a listener on port 4000, asking the ngrok API at
    /// `ngrok` and cloudflared's metrics at `cloudflared`.
    async fn discover(
        ngrok: SocketAddr,
        cloudflared: SocketAddr,
    ) -> Result<PublicUrl, TunnelError> {
        let client = crate::http::Trust::default().client();
        let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        Discovery::new(
            None,
            Some(&format!("http://{ngrok}")),
            Some(&cloudflared.to_string()),
            false,
        )
        .unwrap()
        .discover(&client, local)
        .await
    }

    #[tokio::test]
    async fn discovery_falls_through_and_names_every_reason() {
        let ngrok = agent(
            r#"{"tunnels":[{"name":"web","public_url":"https://web.ngrok.app","proto":"https","config":{"addr":"http://localhost:3000"}}]}"#,
        );
        let bad_cloudflared = agent(r#"{"hostname":"not a host"}"#);
        let slow = serve(None).0;
        let err = discover(ngrok, bad_cloudflared)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("--public-url"), "{err}");
        assert!(err.contains("ngrok http 4000"), "{err}");
        assert!(
            err.contains("cloudflared tunnel --url http://localhost:4000"),
            "{err}"
        );
        assert!(err.contains("no https tunnel to port 4000"), "{err}");
        assert!(err.contains("is not a host name"), "{err}");

        let started = std::time::Instant::now();
        let err = discover(slow, closed_port()).await.unwrap_err().to_string();
        assert!(err.contains("no answer within 2 s"), "{err}");
        assert!(err.contains("nothing answers there"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));

        let cloudflared = agent(r#"{"hostname":"tall-river-1234.trycloudflare.com"}"#);
        let not_json = agent("<html>");
        let found = discover(not_json, cloudflared).await.unwrap();
        assert_eq!(
            found.origin.to_string(),
            "https://tall-river-1234.trycloudflare.com/"
        );
        assert_eq!(
            found.source,
            Source::Cloudflared {
                metrics: cloudflared.to_string()
            }
        );
    }
}

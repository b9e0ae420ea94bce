//! A TLS server on loopback for the tests of HTTPS out: its CA and
//! certificate made per test with rcgen; it answers `200 ok` and hands
//! over the bytes of each request it could read (so a test can assert
//! that nothing reached it when the client refused its certificate).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{Arrived, TempDir};

const WAIT: Duration = Duration::from_secs(10);

/// A receiver over TLS: answers `200 ok` to each request, one request per
/// connection, and hands over the bytes of each request it read.
pub struct TlsReceiver {
    pub addr: SocketAddr,
    pub requests: mpsc::Receiver<Vec<u8>>,
    /// Where the test CA's certificate is, in PEM.
    pub ca_pem: PathBuf,
    _dir: TempDir,
}

impl TlsReceiver {
    /// Serving a certificate for `names`, issued by a CA made for this test.
    pub fn start(names: &[&str]) -> Self {
        let dir = TempDir::new("https");
        let (ca_params, ca_key) = test_ca("danube-hooks test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_pem = dir.join("ca.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();

        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params =
            CertificateParams::new(names.iter().map(ToString::to_string).collect::<Vec<_>>())
                .unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        Self::serving(dir, leaf.der().clone(), &leaf_key, ca_pem)
    }

    /// Serving its own self-signed certificate for `localhost`, marked
    /// `CA:TRUE` as `openssl req -x509 -subj /CN=localhost -addext
    /// subjectAltName=DNS:localhost` makes it, valid from `not_before` to
    /// `not_after`; its PEM is in `ca()`.
    pub fn self_signed(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Self {
        let dir = TempDir::new("https-self");
        let (cert, key) = self_signed_localhost(not_before, not_after);
        let pem = dir.join("server.pem");
        std::fs::write(&pem, cert.pem()).unwrap();
        Self::serving(dir, cert.der().clone(), &key, pem)
    }

    /// Serving `cert` with `key`; `trusted` is the PEM a test gives
    /// `--cacert`.
    pub fn serving(
        dir: TempDir,
        cert: rustls::pki_types::CertificateDer<'static>,
        key: &KeyPair,
        trusted: PathBuf,
    ) -> Self {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        let config = Arc::new(config);

        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let (requests_tx, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for tcp in server.incoming() {
                let Ok(tcp) = tcp else { continue };
                let config = Arc::clone(&config);
                let requests_tx = requests_tx.clone();
                // A thread per connection: a client that gives up in the
                // handshake does not hold up the next one.
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(WAIT));
                    let connection = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(connection, tcp);
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 8192];
                    while super::complete_message(&seen).is_none() {
                        match tls.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tls.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                    let _ = tls.flush();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    let _ = requests_tx.send(seen);
                });
            }
        });
        Self {
            addr,
            requests,
            ca_pem: trusted,
            _dir: dir,
        }
    }

    /// `https://localhost:PORT{path}`: the name a self-signed certificate
    /// here is for.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn ca(&self) -> &str {
        self.ca_pem.to_str().unwrap()
    }

    pub fn next_request(&self) -> Arrived {
        Arrived::parse(&self.requests.recv_timeout(WAIT).expect("a request arrived"))
    }

    pub fn assert_nothing_arrived(&self) {
        assert!(
            self.requests
                .recv_timeout(Duration::from_millis(200))
                .is_err(),
            "a request reached the server"
        );
    }
}

/// A CA's parameters and key, named `name`.
pub fn test_ca(name: &str) -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params, key)
}

/// A self-signed `CA:TRUE` certificate for `localhost` (CN and
/// subjectAltName), as `openssl req -x509` makes one, and its key.
pub fn self_signed_localhost(
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    (params.self_signed(&key).unwrap(), key)
}

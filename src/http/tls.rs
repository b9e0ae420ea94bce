//! Which servers the client believes (SPEC §12): rustls with the ring
//! provider and the web's root certificates (webpki-roots, compiled in),
//! plus a private CA or a server's own certificate from `--cacert PEM`
//! ([`cacert`]), or no certificate checks at all with `--insecure`; and a
//! TLS failure told in one line that names the certificate problem.

use std::path::Path;
use std::sync::Arc;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::client::Client;

mod cacert;

/// A `--cacert` file larger than this is not a CA file (the whole web's
/// roots as PEM are about 250 KiB); the bound keeps a wrong path (a device,
/// a log) from being read whole.
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// Why a `--cacert` file cannot be used: a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaError {
    #[error("cannot read --cacert {path}: {cause}")]
    Read { path: String, cause: String },
    #[error(
        "--cacert {path} is not a PEM file (no \"-----BEGIN\" line); give the CA certificate in \
         PEM (a DER file converts with `openssl x509 -inform der -in CA.der -out CA.pem`)"
    )]
    NotPem { path: String },
    #[error(
        "--cacert {path} holds no CERTIFICATE section (a key or a request alone?); give the CA's \
         certificate in PEM"
    )]
    NoCertificate { path: String },
    #[error("--cacert {path}: certificate {index} cannot be used: {cause}")]
    BadCertificate {
        path: String,
        index: usize,
        cause: String,
    },
}

/// Which servers the client believes. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Trust {
    config: Arc<ClientConfig>,
    insecure: bool,
}

/// The roots are many and not worth printing; whether checks are on is.
impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl Default for Trust {
    /// The web's root certificates alone.
    fn default() -> Self {
        Self::with_roots(&[]).expect("the web's roots are valid certificates")
    }
}

impl Trust {
    /// The web's roots, plus the CA certificates of `cacert` if given; or no
    /// checks at all when `insecure` (which wins, as with curl).
    pub(crate) fn load(cacert: Option<&Path>, insecure: bool) -> Result<Self, CaError> {
        if insecure {
            return Ok(Self::insecure());
        }
        match cacert {
            Some(path) => Self::with_cacert(path, read_ca_file(path)?).map_err(|(index, cause)| {
                CaError::BadCertificate {
                    path: crate::display::escape_path(path),
                    index,
                    cause,
                }
            }),
            None => Ok(Self::default()),
        }
    }

    /// Whether certificate checks are off (`--insecure`).
    pub(crate) fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The TLS configuration itself, for a client other than hyper's (the
    /// shared store's connection).
    pub(crate) fn rustls_config(&self) -> &ClientConfig {
        &self.config
    }

    /// A client that speaks http and https under this trust. HTTP/1 only:
    /// what Danube speaks to a receiver.
    pub(crate) fn client(&self) -> Client {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        // The TLS layer takes `https://`; without this the TCP layer
        // refuses every scheme but `http`.
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.config).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https)
    }

    /// The web's roots and `extra`; the index of an extra certificate that
    /// rustls cannot parse, and why.
    fn with_roots(extra: &[CertificateDer<'static>]) -> Result<Self, (usize, String)> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots_and(extra)?)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            insecure: false,
        })
    }

    /// The web's roots and the certificates of the `--cacert` file at
    /// `path`, each trusted as a CA and as a server's own
    /// ([`cacert::CacertVerifier`]).
    fn with_cacert(
        path: &Path,
        given: Vec<CertificateDer<'static>>,
    ) -> Result<Self, (usize, String)> {
        let provider = provider();
        let chain = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots_and(&given)?),
            provider.clone(),
        )
        .build()
        .expect("the web's roots are never empty");
        let verifier = cacert::CacertVerifier {
            chain,
            given,
            path: crate::display::escape_path(path),
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            insecure: false,
        })
    }

    fn insecure() -> Self {
        let provider = provider();
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
            .with_no_client_auth();
        Self {
            config: Arc::new(config),
            insecure: true,
        }
    }
}

/// The web's roots and `extra`; the index (from 1) of an extra
/// certificate that rustls cannot parse, and why.
fn roots_and(extra: &[CertificateDer<'static>]) -> Result<RootCertStore, (usize, String)> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for (index, cert) in extra.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|err| (index + 1, err.to_string()))?;
    }
    Ok(roots)
}

/// ring, named rather than taken from a process-wide default, so that no
/// other crate's choice can change it.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file, with an error that says what the file
/// is instead when it is not that.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let shown = || crate::display::escape_path(path);
    let read_error = |cause: String| CaError::Read {
        path: shown(),
        cause,
    };
    let bytes = crate::fsutil::read_within(path, MAX_CA_FILE + 1)
        .map_err(|err| read_error(err.to_string()))?;
    if bytes.len() as u64 > MAX_CA_FILE {
        return Err(read_error(format!(
            "it is larger than {} MiB, too large for a CA file",
            MAX_CA_FILE / (1024 * 1024)
        )));
    }
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(CaError::NotPem { path: shown() });
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| read_error(format!("it is not valid PEM: {err}")))?;
    if certs.is_empty() {
        return Err(CaError::NoCertificate { path: shown() });
    }
    Ok(certs)
}

/// `--insecure`: any certificate is accepted, but the handshake's
/// signatures are still checked (with the certificate the server sent),
/// so the connection is at least the one the server keyed.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS problem somewhere in `err`'s causes, told for a person (with
/// what to do, for a certificate problem); `None` when TLS is not why.
pub(crate) fn tls_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        // rustls's errors reach hyper inside an io::Error (or two), whose
        // `source` skips the error it wraps: look inside.
        cause = match err.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => err.source(),
            },
            None => err.source(),
        };
    }
    None
}

const TRUST_HINT: &str = "pass --cacert PEM to trust its CA, or --insecure";

fn describe(err: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(problem) = err else {
        return match err {
            rustls::Error::InvalidMessage(_) => {
                format!("{err} (is it a plain http:// server? then write http://)")
            }
            _ => err.to_string(),
        };
    };
    if let CertificateError::Other(other) = problem
        && let Some(given) = other.0.downcast_ref::<cacert::GivenCacert>()
    {
        return describe_with_cacert(&given.problem, &given.path);
    }
    let (what, _) = told(problem);
    format!("{what}; {TRUST_HINT}")
}

/// A certificate problem met with `--cacert PATH` given: what to do
/// instead, since passing it again changes nothing.
fn describe_with_cacert(problem: &CertificateError, path: &str) -> String {
    let (what, kind) = told(problem);
    let hint = match kind {
        Problem::Time => "renew it (or check this machine's clock), or pass --insecure".to_owned(),
        Problem::Name => {
            "connect by a name it was made for (see its subjectAltName), or pass --insecure"
                .to_owned()
        }
        Problem::Trust => format!(
            "--cacert {path} holds neither the CA that issued it nor this certificate itself; \
             put one of them in that file, or pass --insecure"
        ),
    };
    format!("{what}; {hint}")
}

/// What kind of certificate problem, for what can be done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// Expired or not valid yet.
    Time,
    /// Not for the host name asked.
    Name,
    /// Nothing trusted vouches for it.
    Trust,
}

/// A certificate problem told in words, and its kind.
fn told(problem: &CertificateError) -> (String, Problem) {
    let what = match problem {
        CertificateError::UnknownIssuer => "the certificate is not trusted (UnknownIssuer)",
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            return (
                "the certificate is not for this host name (NotValidForName)".to_owned(),
                Problem::Name,
            );
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            return (
                "the certificate has expired (Expired)".to_owned(),
                Problem::Time,
            );
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            return (
                "the certificate is not valid yet (NotValidYet)".to_owned(),
                Problem::Time,
            );
        }
        CertificateError::Revoked => "the certificate is revoked (Revoked)",
        CertificateError::BadSignature => "the certificate's signature is bad (BadSignature)",
        // webpki's own reasons, e.g. CaUsedAsEndEntity: a self-signed CA
        // certificate served as the server's own.
        CertificateError::Other(other) => {
            return (
                format!("the certificate is rejected ({other})"),
                Problem::Trust,
            );
        }
        _ => {
            return (
                format!("the certificate is rejected ({problem:?})"),
                Problem::Trust,
            );
        }
    };
    (what.to_owned(), Problem::Trust)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cacert_path_is_escaped_in_its_errors() {
        let hostile = std::env::temp_dir().join("no-such\u{1b}[2J\ndir/ca.pem");
        let err = Trust::load(Some(&hostile), false)
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains('\u{1b}') && !err.contains('\n'), "{err}");
        assert!(err.contains("\\x1b[2J\\ndir/ca.pem"), "{err}");
    }

    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn with(name: &str, contents: &[u8]) -> Self {
            let path = std::env::temp_dir()
                .join(format!("danube-hooks-http-{}-{name}", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn load_error(path: &Path) -> String {
        match Trust::load(Some(path), false) {
            Ok(_) => panic!("{} loaded", path.display()),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let message = load_error(Path::new("/nonexistent/ca.pem"));
        assert!(
            message.starts_with("cannot read --cacert /nonexistent/ca.pem: "),
            "{message}"
        );
    }

    #[test]
    fn a_file_that_is_not_pem_says_so_and_how_to_convert() {
        let der = TempFile::with("der", &[0x30, 0x82, 0x01, 0x0a, 0x02, 0x82]);
        let message = load_error(&der.0);
        assert!(message.contains("is not a PEM file"), "{message}");
        assert!(message.contains("openssl x509 -inform der"), "{message}");
    }

    #[test]
    fn pem_without_a_certificate_says_so() {
        let key = TempFile::with(
            "key",
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        );
        let message = load_error(&key.0);
        assert!(
            message.contains("holds no CERTIFICATE section"),
            "{message}"
        );
    }

    #[test]
    fn a_broken_pem_section_is_not_valid_pem() {
        let cut = TempFile::with("cut", b"-----BEGIN CERTIFICATE-----\nMIIB\n");
        let message = load_error(&cut.0);
        assert!(message.contains("is not valid PEM"), "{message}");
    }

    #[test]
    fn a_certificate_that_cannot_be_parsed_is_named_by_its_place() {
        let junk = TempFile::with(
            "junk",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let message = load_error(&junk.0);
        assert!(
            message.contains("certificate 1 cannot be used"),
            "{message}"
        );
    }

    #[test]
    fn insecure_needs_no_file_and_says_it_is() {
        let trust = Trust::load(Some(Path::new("/nonexistent/ca.pem")), true).unwrap();
        assert!(trust.is_insecure());
        assert!(!Trust::default().is_insecure());
    }

    #[test]
    fn certificate_problems_name_the_problem_and_the_way_out() {
        let cases = [
            (
                CertificateError::UnknownIssuer,
                "not trusted (UnknownIssuer)",
            ),
            (CertificateError::NotValidForName, "not for this host name"),
            (CertificateError::Expired, "has expired"),
        ];
        for (problem, expected) in cases {
            let io = std::io::Error::other(rustls::Error::InvalidCertificate(problem));
            let told = tls_problem(&io).unwrap();
            assert!(told.contains(expected), "{told}");
            assert!(told.ends_with(TRUST_HINT), "{told}");
            assert!(!told.contains('\n'));
        }
        let webpki = rustls::Error::InvalidCertificate(CertificateError::Other(
            rustls::OtherError(Arc::new(std::io::Error::other("CaUsedAsEndEntity"))),
        ));
        let told = tls_problem(&std::io::Error::other(webpki)).unwrap();
        assert!(
            told.starts_with("the certificate is rejected (CaUsedAsEndEntity); pass --cacert"),
            "{told}"
        );
        let not_tls = tls_problem(&std::io::Error::other(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        )))
        .unwrap();
        assert!(
            not_tls.contains("is it a plain http:// server?"),
            "{not_tls}"
        );
        let plain = std::io::Error::other("connection refused");
        assert_eq!(tls_problem(&plain), None);
        // With --cacert given, what the file lacks, never to pass it.
        for (problem, expected) in [
            (
                CertificateError::UnknownIssuer,
                "not trusted (UnknownIssuer); --cacert c.pem holds neither",
            ),
            (
                CertificateError::NotValidForName,
                "(NotValidForName); connect by a name it was made for",
            ),
            (CertificateError::Expired, "(Expired); renew it"),
        ] {
            let given = rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(cacert::GivenCacert {
                    problem,
                    path: "c.pem".into(),
                })),
            ));
            let told = tls_problem(&std::io::Error::other(given)).unwrap();
            assert!(told.contains(expected), "{told}");
            assert!(!told.contains("pass --cacert"), "{told}");
        }
    }
}

//! `--cacert PEM` as curl reads it (SPEC §12): each certificate in the file
//! is trusted as a CA, and also as a server's own certificate when the
//! server presents that very certificate (byte for byte), within its
//! validity and for the host name asked. The second is how a self-signed
//! server certificate is trusted: `openssl req -x509` marks it `CA:TRUE`,
//! which webpki refuses as a server's own (`CaUsedAsEndEntity`) however it
//! is trusted. A problem met with `--cacert` given is wrapped in
//! [`GivenCacert`], so that it is never told as "pass --cacert".

use std::sync::Arc;

use chrono::NaiveDateTime;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// A certificate problem met while `--cacert` was given.
#[derive(Debug)]
pub(crate) struct GivenCacert {
    pub(crate) problem: CertificateError,
    /// The `--cacert` file, as given.
    pub(crate) path: String,
}

impl std::fmt::Display for GivenCacert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} (with --cacert {})", self.problem, self.path)
    }
}

impl std::error::Error for GivenCacert {}

/// The web's roots and the `--cacert` certificates as CAs (webpki's chain
/// check), and the `--cacert` certificates as servers' own.
#[derive(Debug)]
pub(crate) struct CacertVerifier {
    pub(crate) chain: Arc<WebPkiServerVerifier>,
    pub(crate) given: Vec<CertificateDer<'static>>,
    pub(crate) path: String,
}

impl CacertVerifier {
    fn told(&self, problem: CertificateError) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            GivenCacert {
                problem,
                path: self.path.clone(),
            },
        ))))
    }
}

impl ServerCertVerifier for CacertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let by_chain = self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let problem = match by_chain {
            Ok(verified) => return Ok(verified),
            Err(rustls::Error::InvalidCertificate(problem)) => problem,
            Err(other) => return Err(other),
        };
        if !self
            .given
            .iter()
            .any(|given| given.as_ref() == end_entity.as_ref())
        {
            return Err(self.told(problem));
        }
        // The user gave this very certificate: what is wrong with it as
        // itself is the problem to tell, not why no chain reaches it.
        match valid_as_itself(end_entity, server_name, now) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(problem) => Err(self.told(problem)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// A certificate trusted as itself still has to be for `server_name` and
/// valid `now`. (The handshake's signature, checked apart, proves the
/// server holds its key.)
fn valid_as_itself(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), CertificateError> {
    let parsed = ParsedCertificate::try_from(cert).map_err(certificate_error)?;
    rustls::client::verify_server_name(&parsed, server_name).map_err(certificate_error)?;
    let (not_before, not_after) = validity(cert.as_ref()).ok_or(CertificateError::BadEncoding)?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < not_before {
        return Err(CertificateError::NotValidYet);
    }
    if now > not_after {
        return Err(CertificateError::Expired);
    }
    Ok(())
}

fn certificate_error(err: rustls::Error) -> CertificateError {
    match err {
        rustls::Error::InvalidCertificate(problem) => problem,
        _ => CertificateError::BadEncoding,
    }
}

/// A certificate's validity (RFC 5280 4.1.2.5), `notBefore` and `notAfter`
/// in Unix seconds; `None` for DER that is not a certificate's. Only
/// certificates that rustls has parsed already come here.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (certificate, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(certificate, SEQUENCE)?;
    if tbs.first() == Some(&VERSION_TAG) {
        tbs = element(tbs, VERSION_TAG)?.1;
    }
    // serialNumber, signature, issuer: skipped whatever they hold.
    for _ in 0..3 {
        tbs = element(tbs, *tbs.first()?)?.1;
    }
    let (validity, _) = element(tbs, SEQUENCE)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, rest) = time(rest)?;
    rest.is_empty().then_some((not_before, not_after))
}

const SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT Version`.
const VERSION_TAG: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element tagged `tag` at the start of `input`: its content and
/// what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, mut rest) = rest.split_first()?;
    let length = if length < 0x80 {
        usize::from(length)
    } else {
        // The long form: 1 to 4 length bytes follow.
        let count = usize::from(length & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |total, &b| (total << 8) | usize::from(b))
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

/// A `Time`: `UTCTime` `YYMMDDHHMMSSZ` (years 1950 to 2049) or
/// `GeneralizedTime` `YYYYMMDDHHMMSSZ`, the two forms RFC 5280 allows, in
/// Unix seconds; and what follows it.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let tag = *input.first()?;
    let (content, rest) = element(input, tag)?;
    let text = std::str::from_utf8(content).ok()?.strip_suffix('Z')?;
    let full = match (tag, text.len()) {
        (UTC_TIME, 12) => {
            let year: u32 = text[..2].parse().ok()?;
            let century = if year >= 50 { "19" } else { "20" };
            format!("{century}{text}")
        }
        (GENERALIZED_TIME, 14) => text.to_owned(),
        _ => return None,
    };
    if !full.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let at = NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S").ok()?;
    Some((at.and_utc().timestamp(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_time_forms_are_read_and_nothing_else() {
        let utc = b"\x17\x0d261130160000Z\x05";
        assert_eq!(time(utc), Some((1_796_054_400, &[5][..])));
        let generalized = b"\x18\x0f20261130160000Z";
        assert_eq!(time(generalized), Some((1_796_054_400, &[][..])));
        let last_century = b"\x17\x0d991231235959Z";
        assert_eq!(time(last_century).unwrap().0, 946_684_799);
        for bad in [
            &b"\x17\x0d26113016000+Z"[..],
            b"\x17\x0b2611301600Z",
            b"\x18\x0d261130160000Z",
            b"\x17\x0f20261130160000Z",
            b"\x17\x0d261130160000",
            b"\x17\x20261130160000Z",
            b"",
        ] {
            assert_eq!(time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lengths_in_long_form_and_bounds() {
        let mut long = vec![SEQUENCE, 0x82, 0x01, 0x00];
        long.extend(std::iter::repeat_n(7, 256));
        long.push(9);
        let (content, rest) = element(&long, SEQUENCE).unwrap();
        assert_eq!((content.len(), rest), (256, &[9][..]));
        assert_eq!(element(&long[..100], SEQUENCE), None, "cut short");
        assert_eq!(element(&[SEQUENCE, 0x80], SEQUENCE), None, "indefinite");
        assert_eq!(element(&[SEQUENCE, 0x85, 1, 1, 1, 1, 1], SEQUENCE), None);
        assert_eq!(element(&[0x31, 0], SEQUENCE), None, "another tag");
    }

    #[test]
    fn the_validity_of_a_real_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 11, 30);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        // 2049 is still a UTCTime; 2050 on is a GeneralizedTime.
        assert_eq!(
            validity(cert.der()),
            Some((1_796_054_400 - 16 * 3600, 2_524_521_600))
        );
        params.not_after = rcgen::date_time_ymd(2050, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(validity(cert.der()).unwrap().1, 2_524_608_000);
        assert_eq!(validity(&cert.der()[..40]), None);
    }
}

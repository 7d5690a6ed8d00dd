//! TLS client setup with rustls: the server certificate is verified against its host name
//! with the system's roots by default, or against a CA file, or accepted by its SHA-256
//! fingerprint alone when one is pinned; an optional client certificate serves servers that
//! demand mutual TLS. A certificate refused for a reason the user can fix is refused in
//! words that say how.

use core::fmt;
use core::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::Digest as _;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Trust these CAs instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The name to verify the server's certificate against (the SIP URI's host).
    pub server_name: Option<String>,
    /// Accept exactly the server certificate with this fingerprint, whoever issued it and
    /// whatever names it holds: for servers with self-signed certificates.
    pub pinned_sha256: Option<Sha256Fingerprint>,
    /// Whose certificate this checks, so a refusal names it and the setting that fixes it.
    pub peer: TlsPeer,
}

/// The kind of server a connector talks to, for the wording of certificate refusals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsPeer {
    /// A registrar, proxy or phone: `[account]` or the command line says how to trust it.
    #[default]
    Server,
    /// A recorder: `[recording]` says how to trust it, and can pin its certificate.
    Recorder,
}

impl TlsPeer {
    fn name(self) -> &'static str {
        match self {
            TlsPeer::Server => "server",
            TlsPeer::Recorder => "recorder",
        }
    }

    /// What to do about a self-signed certificate (the fingerprint it has), as a sentence.
    fn self_signed_advice(self, seen: Sha256Fingerprint) -> String {
        match self {
            TlsPeer::Server => format!(
                "Give the server a certificate issued by a CA and trust that CA (tls_ca_file \
                 in [account], or --tls-ca); this certificate's SHA-256 is {seen}"
            ),
            TlsPeer::Recorder => format!(
                "Give the recorder a certificate issued by a CA and set tls_ca_file to that \
                 CA, or pin this certificate with tls_certificate_sha256 = \"{seen}\" in \
                 [recording]"
            ),
        }
    }

    fn pin_name(self) -> &'static str {
        match self {
            TlsPeer::Server => "the pinned fingerprint",
            TlsPeer::Recorder => "tls_certificate_sha256",
        }
    }
}

/// The SHA-256 of a certificate's DER encoding, shown as `openssl x509 -fingerprint -sha256`
/// shows it: upper-case hex pairs between colons.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sha256Fingerprint([u8; 32]);

impl Sha256Fingerprint {
    pub fn of(certificate: &[u8]) -> Sha256Fingerprint {
        Sha256Fingerprint(sha2::Sha256::digest(certificate).into())
    }

    /// 64 hex digits in either case, either all run together or in pairs between colons
    /// (`AB:CD:...`); spaces around them are ignored.
    pub fn parse(text: &str) -> Result<Sha256Fingerprint, String> {
        let text = text.trim();
        let refused = || {
            format!(
                "{text:?} is not a SHA-256 fingerprint (64 hex digits, optionally in pairs \
                 between colons)"
            )
        };
        let digits = if text.contains(':') {
            let pairs: Vec<&str> = text.split(':').collect();
            if pairs.len() != 32 || pairs.iter().any(|pair| pair.len() != 2) {
                return Err(refused());
            }
            pairs.concat()
        } else {
            text.to_owned()
        };
        if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refused());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
            let pair = core::str::from_utf8(pair).map_err(|_| refused())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| refused())?;
        }
        Ok(Sha256Fingerprint(bytes))
    }
}

impl fmt::Display for Sha256Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Fingerprint({self})")
    }
}

/// A server certificate refused with an explanation meant for the user as it stands;
/// [`handshake_failure`] finds it again in the error the handshake ends with.
#[derive(Debug)]
struct CertificateRefusal(String);

impl fmt::Display for CertificateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CertificateRefusal {}

impl CertificateRefusal {
    /// As a certificate error, so rustls tells the server with a bad_certificate alert.
    fn into_error(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            self,
        ))))
    }
}

/// Why a TLS handshake failed, in the refusal's own words when we refused the certificate
/// with an explanation (rustls would show it wrapped in its debug form).
pub fn handshake_failure(error: &std::io::Error) -> String {
    let refusal = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|tls_error| match tls_error {
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                other.0.downcast_ref::<CertificateRefusal>()
            }
            _ => None,
        });
    match refusal {
        Some(refusal) => refusal.to_string(),
        None => error.to_string(),
    }
}

/// Accepts the one certificate whose fingerprint is pinned: no chain, no name, no dates, as
/// the pin is the server's identity. The handshake's signatures are still checked against
/// that certificate's key, so only the holder of its private key gets through.
#[derive(Debug)]
struct PinnedCertificate {
    pin: Sha256Fingerprint,
    peer: TlsPeer,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Sha256Fingerprint::of(end_entity);
        if seen == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        let peer = self.peer.name();
        Err(CertificateRefusal(format!(
            "the {peer}'s certificate does not match {}: the {peer} presented SHA-256 {seen}, \
             the pin is {}",
            self.peer.pin_name(),
            self.pin
        ))
        .into_error())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// rustls's own verification, with the refusal people meet most when setting up their own
/// server put in words they can act on: a self-signed certificate made the usual way
/// (`openssl req -x509`) is marked as a CA, which webpki refuses as a server's certificate
/// even when it is the trusted CA itself.
#[derive(Debug)]
struct ExplainedRefusals {
    webpki: Arc<WebPkiServerVerifier>,
    peer: TlsPeer,
}

impl ServerCertVerifier for ExplainedRefusals {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|error| {
                if !is_ca_used_as_end_entity(&error) {
                    return error;
                }
                let peer = self.peer.name();
                CertificateRefusal(format!(
                    "the {peer}'s certificate is a CA certificate (as self-signed ones made \
                     with openssl req -x509 are), which is not accepted as a server's \
                     certificate. {}",
                    self.peer
                        .self_signed_advice(Sha256Fingerprint::of(end_entity))
                ))
                .into_error()
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}

/// rustls passes webpki's reasons it has no variant for along as the webpki error itself.
fn is_ca_used_as_end_entity(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

pub fn connector(settings: &TlsSettings) -> Result<tokio_rustls::TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match settings.pinned_sha256 {
        Some(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
                pin,
                peer: settings.peer,
                algorithms: provider.signature_verification_algorithms,
            })),
        None => {
            let roots = trusted_roots(settings.ca_file.as_deref())?;
            if roots.is_empty() {
                // The verifier's builder refuses an empty store; rustls's default takes one
                // and refuses every certificate as from an unknown issuer, which is the truth.
                builder.with_root_certificates(roots)
            } else {
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("cannot check server certificates: {e}"))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ExplainedRefusals {
                        webpki,
                        peer: settings.peer,
                    }))
            }
        }
    };
    let config = match (&settings.client_certificate, &settings.client_key) {
        (Some(cert_path), Some(key_path)) => {
            let chain = CertificateDer::pem_file_iter(cert_path)
                .map_err(|e| {
                    format!(
                        "cannot read client certificate {}: {e}",
                        cert_path.display()
                    )
                })?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("bad client certificate {}: {e}", cert_path.display()))?;
            let key = PrivateKeyDer::from_pem_file(key_path)
                .map_err(|e| format!("cannot read client key {}: {e}", key_path.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate rejected: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a client certificate needs both the certificate and the key file".into()),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsServerSettings {
    pub listen: SocketAddr,
    pub certificate: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate issued by one of these CAs.
    pub client_ca: Option<PathBuf>,
}

/// The CA file's certificates, or the system's roots without one.
fn trusted_roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    if let Some(path) = ca_file {
        return read_roots(path);
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system store may hold certificates rustls cannot use; skip them.
        let _ = roots.add(cert);
    }
    Ok(roots)
}

fn read_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("unusable CA in {}: {e}", path.display()))?;
    }
    Ok(roots)
}

pub fn acceptor(settings: &TlsServerSettings) -> Result<tokio_rustls::TlsAcceptor, String> {
    let chain = CertificateDer::pem_file_iter(&settings.certificate)
        .map_err(|e| {
            format!(
                "cannot read certificate {}: {e}",
                settings.certificate.display()
            )
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate {}: {e}", settings.certificate.display()))?;
    let key = PrivateKeyDer::from_pem_file(&settings.key)
        .map_err(|e| format!("cannot read key {}: {e}", settings.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &settings.client_ca {
        Some(path) => {
            let roots = Arc::new(read_roots(path)?);
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| format!("client CA {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1 marked as a CA, as `openssl req -x509` makes.
    fn self_signed_ca() -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().der().clone()
    }

    fn refusal_text(error: rustls::Error) -> String {
        handshake_failure(&std::io::Error::new(std::io::ErrorKind::InvalidData, error))
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons_in_either_case() {
        let bytes: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(37));
        let shown = Sha256Fingerprint(bytes).to_string();
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert!(shown.starts_with("00:25:4A:6F:"), "{shown}");
        let bare = shown.replace(':', "");
        for text in [
            shown.clone(),
            shown.to_ascii_lowercase(),
            bare.clone(),
            bare.to_ascii_lowercase(),
            format!("  {shown}\n"),
        ] {
            assert_eq!(
                Sha256Fingerprint::parse(&text),
                Ok(Sha256Fingerprint(bytes)),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_fingerprints_are_refused_saying_what_is_expected() {
        let good = "AB".repeat(32);
        let bad = [
            String::new(),
            good[..62].to_owned(),
            format!("{good}AB"),
            format!("{}GG", &good[..62]),
            // Colons somewhere but not between every pair.
            format!("ABC:{}", &good[3..]),
            format!(
                "{}:",
                good.as_bytes()
                    .chunks(2)
                    .map(|p| String::from_utf8_lossy(p))
                    .collect::<Vec<_>>()
                    .join(":")
            ),
            "sha256:".to_owned() + &good,
        ];
        for text in bad {
            let error = Sha256Fingerprint::parse(&text).unwrap_err();
            assert!(error.contains("64 hex digits"), "{text}: {error}");
        }
    }

    #[test]
    fn a_fingerprint_is_the_sha256_of_the_certificate_der() {
        let certificate = self_signed_ca();
        let expected: [u8; 32] = sha2::Sha256::digest(certificate.as_ref()).into();
        assert_eq!(Sha256Fingerprint::of(&certificate).0, expected);
    }

    #[test]
    fn a_self_signed_ca_certificate_is_refused_in_words_that_say_what_to_do() {
        let certificate = self_signed_ca();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certificate.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let fingerprint = Sha256Fingerprint::of(&certificate).to_string();
        for (peer, advice) in [
            (
                TlsPeer::Recorder,
                format!("tls_certificate_sha256 = \"{fingerprint}\""),
            ),
            (TlsPeer::Server, format!("SHA-256 is {fingerprint}")),
        ] {
            let verifier = ExplainedRefusals {
                webpki: webpki.clone(),
                peer,
            };
            let error = verifier
                .verify_server_cert(&certificate, &[], &name, &[], UnixTime::now())
                .unwrap_err();
            let text = refusal_text(error);
            assert!(
                text.starts_with(&format!(
                    "the {}'s certificate is a CA certificate (as self-signed ones",
                    peer.name()
                )),
                "{text}"
            );
            assert!(
                text.contains("self-signed") && text.contains(&advice),
                "{text}"
            );
        }
    }

    #[test]
    fn a_pinned_certificate_is_accepted_by_its_fingerprint_alone() {
        let certificate = self_signed_ca();
        let verifier = |pin| PinnedCertificate {
            pin,
            peer: TlsPeer::Recorder,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        };
        // Another name than the certificate's: the pin is the identity.
        let name = ServerName::try_from("recorder.example").unwrap();
        let pinned = verifier(Sha256Fingerprint::of(&certificate));
        assert!(
            pinned
                .verify_server_cert(&certificate, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        let other = Sha256Fingerprint([7; 32]);
        let error = verifier(other)
            .verify_server_cert(&certificate, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        let text = refusal_text(error);
        assert!(
            text.starts_with("the recorder's certificate does not match tls_certificate_sha256"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "presented SHA-256 {}",
                Sha256Fingerprint::of(&certificate)
            )) && text.contains(&format!("the pin is {other}")),
            "{text}"
        );
    }

    #[test]
    fn other_handshake_failures_read_as_rustls_puts_them() {
        let error = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(refusal_text(error.clone()), error.to_string());
    }
}

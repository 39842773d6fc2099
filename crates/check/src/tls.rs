//! TLS for `wss://` and `https://` targets: which certificates the suite and the load generator
//! trust, and what a failed handshake is called in a report.
//!
//! A [`TlsClient`] trusts the platform's roots (read once, with rustls-native-certs) plus the CA
//! certificates of `--ca-cert FILE`, and speaks TLS 1.2 and 1.3 with rustls and the ring provider.
//! A TLS target is only ever dialled with TLS: there is no fallback to plain TCP, and a
//! certificate the client does not trust is a connect failure whose reason names the problem.
//!
//! What it must not do: skip verification (no "insecure" switch), or read files (the CLI reads
//! `--ca-cert` and hands over its PEM).

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// The TLS side of a client: the roots it trusts. Cheap to clone.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    /// Whether `--ca-cert` added roots, for the hint in error messages.
    extra_roots: usize,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("extra_roots", &self.extra_roots)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for TlsClient {}

/// Why a [`TlsClient`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsSetupError {
    #[error(
        "the CA file holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); give the certificate of the CA that signed the server's"
    )]
    NoCertificate,
    #[error("the CA file is not valid PEM: {0}")]
    BadPem(String),
    #[error("a certificate in the CA file cannot be used as a root: {0}")]
    BadRoot(String),
    #[error("the TLS library refused its own defaults: {0}")]
    Provider(String),
}

/// The platform's roots, read once per process (they are files on disk).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

impl TlsClient {
    /// Trusts the platform's roots and, when given, the CA certificates in `ca_pem`.
    ///
    /// # Errors
    /// When `ca_pem` is not PEM, holds no certificate, or holds one that cannot be a root.
    pub fn new(ca_pem: Option<&[u8]>) -> Result<TlsClient, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        // Roots the platform ships that rustls cannot parse are skipped, as browsers do.
        let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
        let mut extra_roots = 0;
        if let Some(pem) = ca_pem {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| TlsSetupError::BadPem(err.to_string()))?;
            if certs.is_empty() {
                return Err(TlsSetupError::NoCertificate);
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|err| TlsSetupError::BadRoot(err.to_string()))?;
                extra_roots += 1;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsSetupError::Provider(err.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClient {
            config: Arc::new(config),
            extra_roots,
        })
    }

    /// The platform's roots only; built once and shared by every caller in the process.
    ///
    /// # Errors
    /// Only if the crypto provider refuses the default protocol versions (it never does).
    pub fn system() -> Result<TlsClient, TlsSetupError> {
        static SYSTEM: OnceLock<Result<TlsClient, TlsSetupError>> = OnceLock::new();
        SYSTEM.get_or_init(|| TlsClient::new(None)).clone()
    }

    /// The rustls configuration, for the WebSocket and HTTP connectors.
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// A person's words for a failed handshake: what is wrong with the certificate and what to
    /// do, or the I/O error as it is when it is not about TLS.
    pub fn describe(&self, err: &std::io::Error) -> String {
        if let Some(tls) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return describe_rustls(tls, self.extra_roots > 0);
        }
        match err.kind() {
            // A server that does not speak TLS on the port hangs up on the ClientHello.
            std::io::ErrorKind::UnexpectedEof => format!(
                "TLS handshake failed: the server closed the connection during the handshake; does it speak TLS on this port? ({err})"
            ),
            std::io::ErrorKind::InvalidData => format!("TLS handshake failed: {err}"),
            _ => err.to_string(),
        }
    }
}

fn describe_rustls(err: &rustls::Error, has_ca_file: bool) -> String {
    use rustls::CertificateError as C;
    let trust_hint = if has_ca_file {
        "neither the system's roots nor --ca-cert trust its issuer; check that --ca-cert is the CA that signed the server's certificate"
    } else {
        "the system's roots do not trust its issuer; pass the CA that signed it with --ca-cert FILE"
    };
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => format!(
                "TLS: the server's certificate is not signed by a trusted CA (UnknownIssuer): {trust_hint}"
            ),
            // A trusted CA with the same name as the real issuer: still not signed by it.
            C::BadSignature | C::UnsupportedSignatureAlgorithmContext { .. } => format!(
                "TLS: the server's certificate is not signed by a trusted CA (its signature does not verify: {cert:?}): {trust_hint}"
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "TLS: the server's certificate is not valid for the target's host name (NotValidForName): {err}"
            ),
            C::Expired | C::ExpiredContext { .. } => {
                format!("TLS: the server's certificate has expired: {err}")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("TLS: the server's certificate is not valid yet (check the clocks): {err}")
            }
            C::Revoked => "TLS: the server's certificate has been revoked".to_owned(),
            _ => format!("TLS: the server's certificate was refused: {err}"),
        },
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        assert_eq!(
            TlsClient::new(Some(b"not pem at all")),
            Err(TlsSetupError::NoCertificate)
        );
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let client = TlsClient::new(Some(ca.pem().as_bytes())).unwrap();
        assert_eq!(client.extra_roots, 1);
        assert_eq!(TlsClient::system(), TlsClient::system(), "shared");
        assert!(TlsClient::system().is_ok());
    }

    #[test]
    fn certificate_problems_are_named_with_what_to_do() {
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let text = describe_rustls(&unknown, false);
        assert!(
            text.contains("UnknownIssuer") && text.contains("--ca-cert FILE"),
            "{text}"
        );
        assert!(describe_rustls(&unknown, true).contains("check that --ca-cert"));
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert!(describe_rustls(&expired, false).contains("expired"));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, unknown);
        assert!(
            TlsClient::system()
                .unwrap()
                .describe(&io)
                .contains("not signed by a trusted CA")
        );
        let bad_signature =
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        assert!(describe_rustls(&bad_signature, true).contains("not signed by a trusted CA"));
        let hung_up = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert!(
            TlsClient::system()
                .unwrap()
                .describe(&hung_up)
                .contains("does it speak TLS")
        );
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(TlsClient::system().unwrap().describe(&plain), "refused");
    }
}

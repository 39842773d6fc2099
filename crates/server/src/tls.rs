//! TLS termination in the process, for deployments without a proxy in front
//! (`agentwire serve --tls-cert FILE --tls-key FILE`): the certificate chain and private key in
//! PEM, served with rustls (ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`).
//!
//! This module only turns PEM into a rustls configuration and says clearly what is wrong with the
//! files; the handshake itself happens in [`crate::accept`], bounded by the header timeout. It
//! must not read files (the CLI does) or ever log key material.

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// A server certificate and key, ready to accept TLS connections. Cheap to clone.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TlsSettings {
    // Never the key; the protocols are enough to see TLS is on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("alpn", &"http/1.1")
            .finish_non_exhaustive()
    }
}

/// Why a certificate or key cannot be served. Each message names the file's problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "the certificate file holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); give the server's certificate, then its intermediates"
    )]
    NoCertificate,
    #[error("the certificate file is not valid PEM: {0}")]
    BadCertificate(String),
    #[error(
        "the key file holds no PEM private key (PKCS#8 `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`): {0}"
    )]
    BadKey(String),
    #[error("the certificate and key cannot be used together: {0}")]
    Unusable(String),
}

impl TlsSettings {
    /// Reads a PEM certificate chain (the server's certificate first) and its PEM private key.
    ///
    /// # Errors
    /// [`TlsError`] naming what is wrong: no certificate, unreadable PEM, no key, or a key that
    /// does not match the certificate.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsSettings, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| TlsError::BadCertificate(err.to_string()))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|err| TlsError::BadKey(err.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError::Unusable(err.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|err| TlsError::Unusable(err.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsSettings {
            config: Arc::new(config),
        })
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_are_accepted() {
        let (cert, key) = pair();
        let settings = TlsSettings::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert!(!format!("{settings:?}").contains("PRIVATE"));
    }

    #[test]
    fn each_problem_is_named() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        assert!(matches!(
            TlsSettings::from_pem(b"", key.as_bytes()),
            Err(TlsError::NoCertificate)
        ));
        // The files given the wrong way round.
        assert!(matches!(
            TlsSettings::from_pem(cert.as_bytes(), cert.as_bytes()),
            Err(TlsError::BadKey(_))
        ));
        let err = TlsSettings::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(matches!(err, TlsError::Unusable(_)), "{err}");
    }
}

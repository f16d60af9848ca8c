//! TLS for `rtmps://` ingests, by rustls: certificate verification always on, against the
//! system's roots (where the system exposes them as files or a keychain: Linux, macOS, and
//! Android's CA directory), Mozilla's roots (webpki-roots) where it does not, plus the CAs the app
//! adds with `SessionConfigBuilder::ingest_ca_pem`.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::error::{Error, Result, TlsFailure};

/// The client configuration for this session's ingest: the system's roots and `extra_pem`.
pub(crate) fn client_config(extra_pem: Option<&str>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(system.certs);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(pem) = extra_pem {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::InvalidConfig(format!("ingest CA: not a PEM certificate ({e})")))?;
        if certs.is_empty() {
            return Err(Error::InvalidConfig(
                "ingest CA: no certificate in the PEM text".into(),
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| Error::InvalidConfig(format!("ingest CA: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidConfig(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What kind of TLS failure `error` is.
pub(crate) fn failure_of(error: &rustls::Error) -> TlsFailure {
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::NameMismatch
            }
            // Not signed by a trusted root: an unknown CA, or one that only shares a trusted
            // root's name (its signature does not verify against that root's key).
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                TlsFailure::UnknownIssuer
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsFailure::Expired,
            _ => TlsFailure::Other,
        },
        _ => TlsFailure::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_extra_ca_is_a_configuration_error() {
        assert!(matches!(
            client_config(Some("not a certificate")),
            Err(Error::InvalidConfig(_))
        ));
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn certificate_errors_map_to_their_failure() {
        let of = |e| failure_of(&rustls::Error::InvalidCertificate(e));
        assert_eq!(
            of(CertificateError::NotValidForName),
            TlsFailure::NameMismatch
        );
        assert_eq!(
            of(CertificateError::UnknownIssuer),
            TlsFailure::UnknownIssuer
        );
        assert_eq!(of(CertificateError::Expired), TlsFailure::Expired);
        assert_eq!(
            of(CertificateError::BadSignature),
            TlsFailure::UnknownIssuer
        );
        assert_eq!(of(CertificateError::Revoked), TlsFailure::Other);
        assert_eq!(
            failure_of(&rustls::Error::HandshakeNotComplete),
            TlsFailure::Other
        );
    }
}

//! A verifying rustls connector for the PostgreSQL connections (feature
//! `postgres-rustls`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
pub use tokio_postgres_rustls::MakeRustlsConnect;

/// A TLS connector for `tokio_postgres` (the sink's
/// [`PostgresSinkBuilder::tls`](super::PostgresSinkBuilder::tls), the
/// connection given to [`migrate`](super::migrate), `verify_postgres` or the
/// query API): rustls with the aws-lc-rs provider, TLS 1.2 and 1.3, trusting
/// Mozilla's roots (webpki-roots) plus the PEM certificates of `ca_file`
/// (for example a managed database's private CA).
///
/// The server certificate and host name are always verified; there is no
/// option to skip that. Whether TLS is used at all is up to the connection
/// string's `sslmode`: `require` refuses a server without TLS (with this
/// connector it means what libpq calls `verify-full`), `disable` never
/// uses TLS. The sink and the CLI treat `prefer` (the default), which would
/// go on in the clear when told the server has no TLS, as `require`
/// ([`require_tls`](super::require_tls)); with `tokio_postgres::connect`
/// yourself, call it on the `Config` first.
///
/// ```no_run
/// use guardrails_audit::sink::postgres::{PostgresSink, migrate, rustls_connector};
/// use secrecy::{ExposeSecret, SecretString};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tls = rustls_connector(Some(std::path::Path::new("/etc/ssl/db-ca.pem")))?;
/// let url = SecretString::from(std::env::var("AUDIT_DATABASE_URL")?); // with sslmode=require
/// let (mut client, connection) = tokio_postgres::connect(url.expose_secret(), tls.clone()).await?;
/// tokio::spawn(connection);
/// migrate(&mut client).await?;
/// let sink = PostgresSink::builder(url).tls(tls).open().await?;
/// # drop(sink);
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`TlsSetupError::CaFile`] when `ca_file` cannot be read, is not PEM or
/// holds no usable certificate; [`TlsSetupError::Config`] when the provider
/// offers no safe protocol version.
pub fn rustls_connector(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, TlsSetupError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let ca_error = |problem| TlsSetupError::CaFile {
            path: path.to_owned(),
            problem,
        };
        let mut added = 0_usize;
        for cert in
            CertificateDer::pem_file_iter(path).map_err(|e| ca_error(CaFileProblem::Pem(e)))?
        {
            let cert = cert.map_err(|e| ca_error(CaFileProblem::Pem(e)))?;
            roots
                .add(cert)
                .map_err(|e| ca_error(CaFileProblem::Certificate(e)))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error(CaFileProblem::NoCertificate));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The TLS connector could not be built ([`rustls_connector`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The CA file cannot be read, is not PEM or holds no usable
    /// certificate.
    #[error("CA file {}: {problem}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: CaFileProblem,
    },
    /// The TLS client configuration cannot be built.
    #[error("TLS client configuration: {0}")]
    Config(rustls::Error),
}

/// What is wrong with a CA file ([`TlsSetupError::CaFile`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaFileProblem {
    /// It cannot be read, or is not PEM.
    #[error("not a readable PEM file: {0}")]
    Pem(rustls::pki_types::pem::Error),
    /// It holds no `CERTIFICATE` block.
    #[error("holds no PEM certificate")]
    NoCertificate,
    /// A certificate cannot be used as a trust anchor.
    #[error("a certificate cannot be trusted: {0}")]
    Certificate(rustls::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webpki_roots_alone() {
        assert!(rustls_connector(None).is_ok());
    }

    #[test]
    fn a_ca_file_must_hold_a_usable_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = rustls_connector(Some(&missing)).err().unwrap();
        assert!(
            matches!(
                &error,
                TlsSetupError::CaFile {
                    problem: CaFileProblem::Pem(_),
                    ..
                }
            ),
            "{error}"
        );
        assert!(
            error.to_string().starts_with(&format!(
                "CA file {}: not a readable PEM file",
                missing.display()
            )),
            "{error}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = rustls_connector(Some(&empty)).err().unwrap();
        assert!(
            matches!(
                error,
                TlsSetupError::CaFile {
                    problem: CaFileProblem::NoCertificate,
                    ..
                }
            ),
            "{error}"
        );

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = rustls_connector(Some(&garbage)).err().unwrap();
        assert!(
            matches!(
                error,
                TlsSetupError::CaFile {
                    problem: CaFileProblem::Certificate(_),
                    ..
                }
            ),
            "{error}"
        );
    }
}

//! TLS to PostgreSQL, when the store URL asks for it with libpq's own parameters:
//! `sslmode=verify-full&sslrootcert=/path/ca.pem` (encrypted; the server's certificate must chain
//! to that CA and name the host of the URL), `verify-ca` (the chain only, any host name), or
//! `require` (encrypted; verified as `verify-ca` when `sslrootcert` is given, otherwise not
//! verified at all, exactly as libpq does). Without `sslmode` (or with `disable`, `allow`,
//! `prefer`) connections are plain TCP, as before: the gateway negotiates no opportunistic TLS.
//!
//! The TLS itself is rustls (the ring provider, as everywhere in the gateway) through
//! `tokio-postgres-rustls`; only the choice of certificate verifier is made here, from rustls's
//! own WebPKI functions. tokio-postgres knows neither `verify-ca`/`verify-full` nor
//! `sslrootcert`, so `split_url` takes them out of the URL before it is parsed.

use std::path::PathBuf;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// How a connection is protected, as `sslmode` (and `sslrootcert`) ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Protection {
    /// Plain TCP: no `sslmode`, or `disable`, `allow` or `prefer`.
    Plain,
    /// TLS, the server not authenticated (`require` without `sslrootcert`).
    Unauthenticated,
    /// TLS, the server's certificate chains to the CA in the file (`verify-ca`, or `require`
    /// with `sslrootcert`).
    VerifyCa(PathBuf),
    /// TLS, the server's certificate chains to the CA in the file and names the URL's host.
    VerifyFull(PathBuf),
}

impl Protection {
    /// Whether connections use TLS at all.
    pub(super) fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain)
    }
}

/// A store URL with its TLS parameters taken out.
#[derive(Debug)]
pub(super) struct SplitUrl {
    /// The URL without `sslmode` and `sslrootcert`, for tokio-postgres.
    pub(super) url: String,
    /// What they asked for.
    pub(super) protection: Protection,
}

fn invalid(problem: String) -> StoreError {
    StoreError::unavailable(format!("invalid PostgreSQL URL: {problem}"))
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL and says what they ask for.
/// Refuses what it cannot honour rather than connecting with less protection than asked:
/// an unknown `sslmode`, `verify-ca`/`verify-full` without `sslrootcert`, `sslrootcert` with a
/// mode that would not use it, and client certificates (`sslcert`, `sslkey`: not supported).
pub(super) fn split_url(url: &str) -> Result<SplitUrl, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid(
            "expected postgres://USER@HOST:PORT/DATABASE?PARAMETERS".to_owned(),
        ));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = None;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| {
            percent_decode_str(text)
                .decode_utf8()
                .map(|t| t.into_owned())
                .map_err(|e| invalid(format!("{pair:?} is not UTF-8: {e}")))
        };
        match decode(key)?.as_str() {
            "sslmode" => mode = Some(decode(value)?),
            "sslrootcert" => root_cert = Some(PathBuf::from(decode(value)?)),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(invalid(format!(
                    "{key}: client certificates for PostgreSQL are not supported"
                )));
            }
            _ => kept.push(pair),
        }
    }
    let protection = match (mode.as_deref(), root_cert) {
        (None | Some("disable" | "allow" | "prefer"), None) => Protection::Plain,
        (None | Some("disable" | "allow" | "prefer"), Some(_)) => {
            return Err(invalid(format!(
                "sslrootcert is set but sslmode={} does not verify the server: use \
                 sslmode=verify-full",
                mode.as_deref().unwrap_or("(none)")
            )));
        }
        (Some("require"), None) => Protection::Unauthenticated,
        (Some("require" | "verify-ca"), Some(ca)) => Protection::VerifyCa(ca),
        (Some("verify-full"), Some(ca)) => Protection::VerifyFull(ca),
        (Some(mode @ ("verify-ca" | "verify-full")), None) => {
            return Err(invalid(format!(
                "sslmode={mode} needs sslrootcert=PATH (the CA that signed the server's \
                 certificate)"
            )));
        }
        (Some(other), _) => {
            return Err(invalid(format!(
                "sslmode={other:?} is none of disable, allow, prefer, require, verify-ca, \
                 verify-full"
            )));
        }
    };
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(SplitUrl { url, protection })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The connector for `protection`. For [`Protection::Plain`] it is never used (the connection
/// is made with `sslmode=disable`), but one type of connector keeps the pool, the migration and
/// the listener written once.
pub(super) fn connector(protection: &Protection) -> Result<MakeRustlsConnect, StoreError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::unavailable_from("PostgreSQL TLS: protocol versions", e))?;
    let config = match protection {
        Protection::Plain => builder
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
        Protection::VerifyFull(ca) => builder
            .with_root_certificates(roots(ca)?)
            .with_no_client_auth(),
        Protection::VerifyCa(ca) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LibpqVerifier {
                roots: Some(roots(ca)?),
                provider,
            }))
            .with_no_client_auth(),
        Protection::Unauthenticated => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LibpqVerifier {
                roots: None,
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The CA certificates of an `sslrootcert` file.
fn roots(ca: &std::path::Path) -> Result<Arc<RootCertStore>, StoreError> {
    let certs = crate::net::tls::load_certs(ca)
        .map_err(|e| StoreError::unavailable_from("PostgreSQL TLS: sslrootcert", e))?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            StoreError::unavailable_from(
                format!(
                    "PostgreSQL TLS: sslrootcert {}: not a CA certificate",
                    ca.display()
                ),
                e,
            )
        })?;
    }
    Ok(Arc::new(roots))
}

/// The two checks libpq makes that rustls' own verifier does not: `verify-ca` (`roots` given:
/// the server's certificate must chain to them and be valid now, whatever host name it gives)
/// and `require` without `sslrootcert` (`roots: None`: encrypted, the certificate not checked —
/// protects against eavesdropping, not against someone in the middle). In both, the
/// handshake's signatures are checked as usual.
#[derive(Debug)]
struct LibpqVerifier {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether `error` is a TLS handshake that rustls refused (e.g. a certificate signed by another
/// CA, or not naming the host), for a context that says so.
pub(super) fn is_refused_handshake(error: &tokio_postgres::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protection(url: &str) -> Result<Protection, StoreError> {
        split_url(url).map(|s| s.protection)
    }

    #[test]
    fn tls_parameters_are_read_as_libpq_defines_them_and_taken_out() {
        let split = split_url(
            "postgres://u@db.example:5432/x?options=-c%20search_path%3Ds&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca%20file.pem&application_name=gw",
        )
        .unwrap();
        assert_eq!(
            split.url,
            "postgres://u@db.example:5432/x?options=-c%20search_path%3Ds&application_name=gw"
        );
        assert_eq!(
            split.protection,
            Protection::VerifyFull("/etc/ca file.pem".into())
        );
        let plain = split_url("postgres://u@h/x").unwrap();
        assert_eq!(
            (plain.url.as_str(), plain.protection),
            ("postgres://u@h/x", Protection::Plain)
        );
        assert_eq!(
            split_url("postgres://u@h/x?sslmode=disable").unwrap().url,
            "postgres://u@h/x"
        );
        for mode in ["disable", "allow", "prefer"] {
            assert_eq!(
                protection(&format!("postgres://h/x?sslmode={mode}")).unwrap(),
                Protection::Plain
            );
        }
        assert_eq!(
            protection("postgres://h/x?sslmode=require").unwrap(),
            Protection::Unauthenticated
        );
        assert_eq!(
            protection("postgres://h/x?sslmode=require&sslrootcert=ca.pem").unwrap(),
            Protection::VerifyCa("ca.pem".into())
        );
        assert_eq!(
            protection("postgresql://h/x?sslrootcert=ca.pem&sslmode=verify-ca").unwrap(),
            Protection::VerifyCa("ca.pem".into())
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        for url in [
            "postgres://h/x?sslmode=verify-full",
            "postgres://h/x?sslmode=verify-ca",
            "postgres://h/x?sslrootcert=ca.pem",
            "postgres://h/x?sslmode=prefer&sslrootcert=ca.pem",
            "postgres://h/x?sslmode=verify_full&sslrootcert=ca.pem",
            "postgres://h/x?sslmode=verify-full&sslrootcert=ca.pem&sslcert=c.pem",
            "host=h sslmode=verify-full",
        ] {
            let error = protection(url).unwrap_err();
            assert!(
                matches!(&error, StoreError::Unavailable { context, .. }
                    if context.starts_with("invalid PostgreSQL URL")),
                "{url}: {error:?}"
            );
        }
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let error = connector(&Protection::VerifyFull("/nonexistent/ca.pem".into()))
            .err()
            .expect("no such file");
        let source = std::error::Error::source(&error).expect("the file error");
        assert!(
            source.to_string().contains("/nonexistent/ca.pem"),
            "{source}"
        );
        connector(&Protection::Plain).expect("a plain connector");
        connector(&Protection::Unauthenticated).expect("an unauthenticated connector");
    }
}

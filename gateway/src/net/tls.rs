//! rustls configurations for the gateway's listener, the bureaus' receiving endpoints and the
//! gateway's outgoing client, and the [`Identity`] named by a verified peer certificate.
//!
//! Every configuration trusts only the exchange CA (never public roots), uses the ring
//! [`CryptoProvider`] explicitly (no process-wide default is installed or relied upon), speaks
//! TLS 1.3 and TLS 1.2, and offers ALPN `h2` then `http/1.1`.
//!
//! Revocation: the node's configurations ([`node_server_config`], [`PushVerifier`]) check every
//! peer certificate against the exchange CA's CRLs (`tls.crl_files`): a bureau's or operator's
//! certificate on the listener, a receiver's when pushing. A certificate whose status no CRL
//! gives is refused (rustls' default), a CRL past its next update is still applied (`/readyz`
//! warns about it: [`crl_next_update`]). A revoked client certificate is logged once per
//! certificate and configuration, however often its owner retries.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme, SupportedProtocolVersion,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

use super::identity::Identity;

/// ALPN protocols offered and accepted, in order of preference.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// TLS 1.3 and TLS 1.2. Every TLS 1.2 suite of the ring provider is an ECDHE AEAD suite
/// (AES-GCM or ChaCha20-Poly1305): rustls implements no CBC, RC4 or static-RSA suites, so
/// allowing 1.2 for older bureau systems does not admit weak ciphers.
static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A failure to build a TLS configuration or read a certificate, naming the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be opened, read or decoded.
    #[error("{}: cannot read PEM: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A PEM file holds no certificate (or, for a key file, no private key).
    #[error("{}: contains no {what}", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// What was expected: `certificate` or `private key`.
        what: &'static str,
    },
    /// A certificate could not be parsed or used.
    #[error("{}: invalid certificate: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The client-certificate verifier could not be built from the CA file.
    #[error("{}: cannot verify client certificates with this CA: {source}", ca.display())]
    Verifier {
        /// The CA file.
        ca: PathBuf,
        /// The underlying error.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// rustls refused the certificate and key (e.g. the key does not match the certificate).
    #[error("{} with {}: {source}", cert.display(), key.display())]
    CertifiedKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The underlying error.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused the protocol versions (cannot happen with the ring provider).
    #[error("TLS protocol versions: {0}")]
    Protocol(#[source] rustls::Error),
    /// The server-certificate verifier could not be built (e.g. a CRL rustls cannot use).
    #[error("{}: cannot verify server certificates with this CA and these CRLs: {source}", ca.display())]
    ServerVerifier {
        /// The CA file.
        ca: PathBuf,
        /// The underlying error.
        #[source]
        source: rustls::client::VerifierBuilderError,
    },
    /// A CRL file holds no CRL, or one that does not parse.
    #[error("{}: not a readable CRL: {reason}", path.display())]
    Crl {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The files the node's TLS is built from, read again on every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The exchange CA.
    pub ca: PathBuf,
    /// The node's certificate.
    pub cert: PathBuf,
    /// The node's private key.
    pub key: PathBuf,
    /// The exchange CA's certificate revocation lists (PEM or DER), possibly none.
    pub crls: Vec<PathBuf>,
}

/// Loads every CRL of `paths` (each file PEM with one or more CRLs, or one DER CRL); each must
/// parse, so a half-written file is refused rather than taken for an empty list.
pub fn load_crls(
    paths: &[PathBuf],
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let mut crls = Vec::new();
    for path in paths {
        let bad = |reason: String| TlsError::Crl {
            path: path.clone(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let found: Vec<CertificateRevocationListDer<'static>> = if bytes.starts_with(b"-----") {
            CertificateRevocationListDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?
        } else {
            vec![CertificateRevocationListDer::from(bytes)]
        };
        if found.is_empty() {
            return Err(bad("no CRL in the file".into()));
        }
        for crl in &found {
            x509_parser::parse_x509_crl(crl).map_err(|e| bad(e.to_string()))?;
        }
        crls.extend(found);
    }
    Ok(crls)
}

/// Seconds from now until the earliest `nextUpdate` of the CRLs in `path` (negative once it has
/// passed); `None` for CRLs that name no next update.
pub fn crl_next_update(path: &Path) -> Result<Option<i64>, TlsError> {
    let crls = load_crls(std::slice::from_ref(&path.to_owned()))?;
    let now = unix_now();
    let mut earliest: Option<i64> = None;
    for crl in &crls {
        let (_, parsed) = x509_parser::parse_x509_crl(crl).map_err(|e| TlsError::Crl {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if let Some(next) = parsed.next_update() {
            let left = next.timestamp().saturating_sub(now);
            earliest = Some(earliest.map_or(left, |e| e.min(left)));
        }
    }
    Ok(earliest)
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn alpn() -> Vec<Vec<u8>> {
    ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect()
}

/// Loads every certificate of a PEM file, in order (end-entity first for a chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::Pem {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// Loads the first private key (PKCS#8, SEC1 or PKCS#1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            path: path.to_owned(),
            what: "private key",
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

/// The exchange CA as the only trust anchor.
fn load_roots(ca: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert).map_err(|e| TlsError::Certificate {
            path: ca.to_owned(),
            reason: format!("not usable as a trust anchor: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

fn build_server_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
    require_client_cert: bool,
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let builder = WebPkiClientVerifier::builder_with_provider(load_roots(ca)?, provider.clone())
        .with_crls(crls);
    // Even when optional, a certificate that IS presented must chain to the exchange CA, or
    // the handshake fails.
    let builder = if require_client_cert {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    let verifier = builder.build().map_err(|source| TlsError::Verifier {
        ca: ca.to_owned(),
        source,
    })?;
    let verifier = Arc::new(LogsRevoked {
        inner: verifier,
        logged: Mutex::new(HashSet::new()),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Protocol)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(certified_key_error(cert, key))?;
    config.alpn_protocols = alpn();
    Ok(Arc::new(config))
}

/// The gateway listener's configuration: serves `cert`/`key`; client certificates are verified
/// against the exchange CA `ca` but optional at the TLS level, because `/healthz` and `/readyz`
/// serve load balancers without certificates. The HTTP layer refuses bureau endpoints to a
/// connection without a [`peer_identity`].
pub fn server_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_config(ca, cert, key, false, Vec::new())
}

/// The gateway listener's configuration as [`server_config`], with every presented client
/// certificate also checked against the CRLs of `files` (read now: build a new one to reload).
pub fn node_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_config(
        &files.ca,
        &files.cert,
        &files.key,
        false,
        load_crls(&files.crls)?,
    )
}

/// A bureau receiving endpoint's configuration: like [`server_config`], but a client certificate
/// chaining to the exchange CA is required at the TLS level.
pub fn endpoint_server_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_config(ca, cert, key, true, Vec::new())
}

/// Most revoked certificates remembered as logged by one configuration.
const REVOKED_LOGGED_MAX: usize = 4096;

/// The client-certificate verifier of the listener: rustls' WebPKI verifier, plus one warning
/// per revoked certificate (not one per handshake of a client retrying in a loop).
#[derive(Debug)]
struct LogsRevoked {
    inner: Arc<dyn ClientCertVerifier>,
    /// The serial numbers of the revoked certificates already logged.
    logged: Mutex<HashSet<Vec<u8>>>,
}

impl LogsRevoked {
    fn log_once(&self, end_entity: &CertificateDer<'_>) {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity) else {
            return;
        };
        let serial = cert.raw_serial().to_vec();
        {
            let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
            if logged.len() >= REVOKED_LOGGED_MAX || !logged.insert(serial) {
                return;
            }
        }
        let identity = peer_identity(std::slice::from_ref(end_entity));
        tracing::warn!(
            message = "revoked certificate refused at the handshake (logged once per certificate)",
            identity = identity
                .as_ref()
                .map(Identity::uri)
                .as_deref()
                .unwrap_or("none"),
            serial = cert.raw_serial_as_string(),
        );
    }
}

impl ClientCertVerifier for LogsRevoked {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(rustls::Error::InvalidCertificate(CertificateError::Revoked)) = &verified {
            self.log_once(end_entity);
        }
        verified
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The verifier of the receivers' certificates on outgoing pushes: the exchange CA and its CRLs,
/// replaced as a whole by [`PushVerifier::reload`] so the push client (built once) applies new
/// CRLs to its next handshake. Connections already open to a receiver stay open until the push
/// client's pool lets them go idle.
#[derive(Debug)]
pub struct PushVerifier(RwLock<Arc<WebPkiServerVerifier>>);

impl PushVerifier {
    fn build(files: &TlsFiles) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
        WebPkiServerVerifier::builder_with_provider(load_roots(&files.ca)?, provider())
            .with_crls(load_crls(&files.crls)?)
            .build()
            .map_err(|source| TlsError::ServerVerifier {
                ca: files.ca.clone(),
                source,
            })
    }

    /// Reads the CA and CRLs of `files` again; on an error the previous ones stay in force.
    pub fn reload(&self, files: &TlsFiles) -> Result<(), TlsError> {
        let verifier = Self::build(files)?;
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = verifier;
        Ok(())
    }

    fn current(&self) -> Arc<WebPkiServerVerifier> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ServerCertVerifier for PushVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.current().verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// The node's push client configuration: presents the node's certificate, verifies receivers
/// with the [`PushVerifier`] it returns (reload that to apply new CRLs), and never resumes a
/// session, so every new connection verifies the receiver's certificate again.
pub fn push_client_config(
    files: &TlsFiles,
) -> Result<(Arc<ClientConfig>, Arc<PushVerifier>), TlsError> {
    let verifier = Arc::new(PushVerifier(RwLock::new(PushVerifier::build(files)?)));
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Protocol)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_auth_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .map_err(certified_key_error(&files.cert, &files.key))?;
    config.alpn_protocols = alpn();
    config.resumption = Resumption::disabled();
    Ok((Arc::new(config), verifier))
}

/// The error for a certificate and key that rustls refuses as a pair.
fn certified_key_error(cert: &Path, key: &Path) -> impl FnOnce(rustls::Error) -> TlsError {
    let (cert, key) = (cert.to_owned(), key.to_owned());
    move |source| TlsError::CertifiedKey { cert, key, source }
}

fn client_builder(
    ca: &Path,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Protocol)?
        .with_root_certificates(load_roots(ca)?))
}

/// A client configuration that trusts only the exchange CA `ca` and presents `cert`/`key` as
/// its identity.
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = client_builder(ca)?
        .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
        .map_err(certified_key_error(cert, key))?;
    config.alpn_protocols = alpn();
    Ok(Arc::new(config))
}

/// A client configuration that trusts only the exchange CA `ca` and presents no certificate.
pub fn client_config_without_identity(ca: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = client_builder(ca)?.with_no_client_auth();
    config.alpn_protocols = alpn();
    Ok(Arc::new(config))
}

/// The identity named by a peer's certificate chain (end-entity first), as rustls reports it
/// after verifying the chain: the one SAN URI that [`Identity::from_uri`] accepts. `None` when
/// there is no chain, the certificate does not parse, or it names no identity or several
/// different ones.
pub fn peer_identity(certs: &[CertificateDer<'_>]) -> Option<Identity> {
    let (_, cert) = x509_parser::parse_x509_certificate(certs.first()?).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let mut found: Option<Identity> = None;
    for name in &san.value.general_names {
        let GeneralName::URI(uri) = name else {
            continue;
        };
        let Some(identity) = Identity::from_uri(uri) else {
            continue;
        };
        match &found {
            Some(previous) if *previous != identity => return None,
            Some(_) => {}
            None => found = Some(identity),
        }
    }
    found
}

/// When the end-entity certificate of a peer's chain expires (its `notAfter`, Unix
/// milliseconds); `None` when there is no chain or it does not parse.
pub fn peer_not_after(certs: &[CertificateDer<'_>]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(certs.first()?).ok()?;
    cert.validity().not_after.timestamp().checked_mul(1000)
}

/// Seconds from now until the first certificate in `cert` expires (its `notAfter`); negative
/// once it has expired.
pub fn seconds_until_expiry(cert: &Path) -> Result<i64, TlsError> {
    let der = load_certs(cert)?.swap_remove(0);
    let (_, parsed) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| TlsError::Certificate {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(parsed
        .validity()
        .not_after
        .timestamp()
        .saturating_sub(unix_now()))
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::ServerName;
    use schemas::BureauId;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;
    use crate::net::pki::{self, PkiLayout};
    use crate::testing::TempDir;

    /// What the server saw of a completed handshake.
    #[derive(Debug)]
    struct Accepted {
        identity: Option<Identity>,
        alpn: Option<Vec<u8>>,
    }

    /// Runs a handshake over an in-memory pipe and exchanges one message, so a client whose
    /// certificate the server rejects after the client's side of a TLS 1.3 handshake completed
    /// also sees the failure.
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        server_name: &str,
    ) -> (Result<Accepted, String>, Result<(), String>) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        let server_side = async move {
            let mut stream = TlsAcceptor::from(server)
                .accept(server_io)
                .await
                .map_err(|e| e.to_string())?;
            let (_, connection) = stream.get_ref();
            let accepted = Accepted {
                identity: connection.peer_certificates().and_then(peer_identity),
                alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
            };
            let mut buf = [0u8; 4];
            stream
                .read_exact(&mut buf)
                .await
                .map_err(|e| e.to_string())?;
            stream.write_all(b"pong").await.map_err(|e| e.to_string())?;
            stream.shutdown().await.map_err(|e| e.to_string())?;
            Ok(accepted)
        };
        let client_side = async move {
            let mut stream = TlsConnector::from(client)
                .connect(name, client_io)
                .await
                .map_err(|e| e.to_string())?;
            stream.write_all(b"ping").await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            stream
                .read_exact(&mut buf)
                .await
                .map_err(|e| e.to_string())?;
            assert_eq!(&buf, b"pong");
            Ok(())
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            tokio::join!(server_side, client_side)
        })
        .await
        .expect("handshake timed out")
    }

    fn client_for(layout: &PkiLayout, stem: &str) -> Arc<ClientConfig> {
        let (cert, key) = layout.cert_and_key(stem);
        client_config(&layout.ca, &cert, &key).unwrap()
    }

    #[tokio::test]
    async fn mutual_tls_names_the_peer_and_refuses_strangers() {
        let temp = TempDir::new("tls");
        let exchange = pki::init(&temp.path().join("exchange"), "node-1").unwrap();
        let other = pki::init(&temp.path().join("other"), "node-1").unwrap();
        let (gateway_cert, gateway_key) = exchange.gateway();
        let listener = server_config(&exchange.ca, &gateway_cert, &gateway_key).unwrap();
        let (water_cert, water_key) = exchange.bureau(BureauId::Water);
        let endpoint = endpoint_server_config(&exchange.ca, &water_cert, &water_key).unwrap();

        // A bureau against the listener: identified, h2 preferred.
        let (server, client) = handshake(
            listener.clone(),
            client_for(&exchange, "water"),
            "localhost",
        )
        .await;
        client.unwrap();
        let accepted = server.unwrap();
        assert_eq!(accepted.identity, Some(Identity::Bureau(BureauId::Water)));
        assert_eq!(accepted.alpn.as_deref(), Some(&b"h2"[..]));

        // A client offering only HTTP/1.1 gets it; the server name may be the loopback IP.
        let mut http1 = (*client_for(&exchange, "operator")).clone();
        http1.alpn_protocols = vec![b"http/1.1".to_vec()];
        let (server, client) = handshake(listener.clone(), Arc::new(http1), "127.0.0.1").await;
        client.unwrap();
        let accepted = server.unwrap();
        assert_eq!(
            accepted.identity,
            Some(Identity::Operator("operator".into()))
        );
        assert_eq!(accepted.alpn.as_deref(), Some(&b"http/1.1"[..]));

        // A certificate from another CA is refused even though certificates are optional.
        let (server, client) =
            handshake(listener.clone(), client_for(&other, "water"), "localhost").await;
        assert!(server.is_err(), "{server:?}");
        assert!(client.is_err());

        // No certificate: accepted by the listener without an identity...
        let anonymous = client_config_without_identity(&exchange.ca).unwrap();
        let (server, client) = handshake(listener.clone(), anonymous.clone(), "localhost").await;
        client.unwrap();
        assert_eq!(server.unwrap().identity, None);

        // ...but refused by a bureau endpoint, which requires one.
        let (server, client) = handshake(endpoint.clone(), anonymous, "localhost").await;
        assert!(server.is_err(), "{server:?}");
        assert!(client.is_err());

        // The gateway pushing to a bureau endpoint (with ::1 as the server name).
        let (server, client) =
            handshake(endpoint.clone(), client_for(&exchange, "gateway"), "::1").await;
        client.unwrap();
        assert_eq!(
            server.unwrap().identity,
            Some(Identity::Gateway("node-1".into()))
        );

        // A certificate issued later by the same CA works too.
        let alice = Identity::Operator("alice".into());
        pki::issue(&exchange.dir, &alice, "operator-alice").unwrap();
        let (server, client) = handshake(
            listener.clone(),
            client_for(&exchange, "operator-alice"),
            "localhost",
        )
        .await;
        client.unwrap();
        assert_eq!(server.unwrap().identity, Some(alice));

        // The client trusts only the exchange CA: a server from another CA is refused, and a
        // name the certificate does not carry is refused.
        let (other_cert, other_key) = other.gateway();
        let impostor = server_config(&other.ca, &other_cert, &other_key).unwrap();
        let (_, client) = handshake(impostor, client_for(&exchange, "water"), "localhost").await;
        assert!(client.is_err());
        let (_, client) = handshake(listener, client_for(&exchange, "water"), "example.com").await;
        assert!(client.is_err());
    }

    #[test]
    fn a_revoked_certificate_is_refused_and_logged_once() {
        let temp = TempDir::new("tls-crl");
        let layout = pki::init(temp.path(), "node-1").unwrap();
        let crl = pki::revoke(&layout.dir, "water").unwrap();
        assert_eq!((crl.revoked, crl.added), (1, true));
        let files = TlsFiles {
            ca: layout.ca.clone(),
            cert: layout.gateway().0,
            key: layout.gateway().1,
            crls: vec![crl.path.clone()],
        };
        node_server_config(&files).unwrap();
        let inner = WebPkiClientVerifier::builder_with_provider(
            load_roots(&layout.ca).unwrap(),
            provider(),
        )
        .with_crls(load_crls(&files.crls).unwrap())
        .allow_unauthenticated()
        .build()
        .unwrap();
        let verifier = LogsRevoked {
            inner,
            logged: Mutex::new(HashSet::new()),
        };
        let water = load_certs(&layout.bureau(BureauId::Water).0).unwrap();
        let planning = load_certs(&layout.bureau(BureauId::Planning).0).unwrap();
        for _ in 0..3 {
            let refused = verifier.verify_client_cert(&water[0], &[], UnixTime::now());
            assert!(
                matches!(
                    refused,
                    Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
                ),
                "{refused:?}"
            );
        }
        assert_eq!(verifier.logged.lock().unwrap().len(), 1, "logged once");
        verifier
            .verify_client_cert(&planning[0], &[], UnixTime::now())
            .unwrap();

        // The push side refuses a revoked receiver the same way.
        let (_, push) = push_client_config(&files).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let refused = push.verify_server_cert(&water[0], &[], &name, &[], UnixTime::now());
        assert!(
            matches!(
                refused,
                Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
            ),
            "{refused:?}"
        );
        push.verify_server_cert(&planning[0], &[], &name, &[], UnixTime::now())
            .unwrap();

        // A stale CRL says so.
        let past = SystemTime::now() - std::time::Duration::from_secs(3600);
        pki::sign_crl(&layout.dir, past).unwrap();
        assert!(crl_next_update(&crl.path).unwrap().unwrap() < 0);
        // A file that is not a CRL is refused, not taken for an empty list.
        std::fs::write(
            &crl.path,
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        )
        .unwrap();
        assert!(matches!(load_crls(&files.crls), Err(TlsError::Crl { .. })));
    }

    #[test]
    fn peer_identity_needs_exactly_one_of_our_uris() {
        use rcgen::{CertificateParams, KeyPair, SanType};
        let key = KeyPair::generate().unwrap();
        let cert_with = |uris: &[&str]| {
            let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            for uri in uris {
                params
                    .subject_alt_names
                    .push(SanType::URI((*uri).try_into().unwrap()));
            }
            params.self_signed(&key).unwrap().der().clone()
        };
        assert_eq!(peer_identity(&[]), None);
        assert_eq!(peer_identity(&[cert_with(&[])]), None);
        assert_eq!(
            peer_identity(&[cert_with(&["https://example.com", "urn:bureau:water"])]),
            Some(Identity::Bureau(BureauId::Water))
        );
        assert_eq!(
            peer_identity(&[cert_with(&["urn:bureau:water", "urn:bureau:water"])]),
            Some(Identity::Bureau(BureauId::Water))
        );
        assert_eq!(
            peer_identity(&[cert_with(&["urn:bureau:water", "urn:operator:alice"])]),
            None
        );
        assert_eq!(peer_identity(&[CertificateDer::from(vec![1, 2, 3])]), None);
    }

    #[test]
    fn errors_name_the_file() {
        let temp = TempDir::new("tls-errors");
        let layout = pki::init(temp.path(), "node-1").unwrap();
        let missing = temp.path().join("missing.pem");
        let (cert, key) = layout.gateway();

        let err = server_config(&missing, &cert, &key).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = client_config(&layout.ca, &cert, &missing).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");

        // A key file holding no key, and a key that does not match the certificate.
        let err = client_config(&layout.ca, &cert, &cert).unwrap_err();
        assert!(matches!(err, TlsError::Empty { .. }), "{err}");
        let (_, water_key) = layout.bureau(BureauId::Water);
        let err = server_config(&layout.ca, &cert, &water_key).unwrap_err();
        assert!(matches!(err, TlsError::CertifiedKey { .. }), "{err}");

        let err = seconds_until_expiry(&key).unwrap_err();
        assert!(matches!(err, TlsError::Empty { .. }), "{err}");
        assert!(err.to_string().contains("gateway.key"), "{err}");
    }
}

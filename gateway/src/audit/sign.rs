//! Signing checkpoints with the node's TLS key, and checking a signature offline with nothing
//! but the exchange CA: the certificate verifier and the signature algorithms are rustls's own
//! (rustls-webpki, ring), so a checkpoint verifies exactly as a TLS handshake with that node
//! would, and `openssl dgst -sha256 -verify` agrees (ECDSA signatures are DER, as OpenSSL writes
//! them).

use std::sync::Arc;

use base64::Engine as _;
use rustls::SignatureScheme;
use rustls::sign::SigningKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::net::tls::TlsFiles;

/// Why a signature could not be made or does not verify.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

/// The schemes a node key may sign with, in preference order, with their stored names (the
/// `alg` of a checkpoint).
const SCHEMES: &[(SignatureScheme, &str)] = &[
    (SignatureScheme::ECDSA_NISTP256_SHA256, "ECDSA_P256_SHA256"),
    (SignatureScheme::ECDSA_NISTP384_SHA384, "ECDSA_P384_SHA384"),
    (SignatureScheme::ED25519, "ED25519"),
    (SignatureScheme::RSA_PKCS1_SHA256, "RSA_PKCS1_SHA256"),
];

/// The node's key and certificate, loaded from its TLS files.
pub struct NodeSigner {
    /// The node's name.
    pub node: String,
    /// Its certificate, PEM (stored with every checkpoint).
    pub certificate_pem: String,
    key: Arc<dyn SigningKey>,
}

impl std::fmt::Debug for NodeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSigner")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl NodeSigner {
    /// Loads the node's certificate and key.
    pub fn load(node: &str, files: &TlsFiles) -> Result<Self, SignError> {
        let certificate_pem = std::fs::read_to_string(&files.cert)
            .map_err(|e| SignError(format!("cannot read {}: {e}", files.cert.display())))?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| SignError(format!("cannot read {}: {e}", files.key.display())))?;
        let key = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| SignError(format!("{}: {e}", files.key.display())))?;
        Ok(Self {
            node: node.to_owned(),
            certificate_pem,
            key,
        })
    }

    /// Signs `body`: the algorithm's name and the signature, base64.
    pub fn sign(&self, body: &[u8]) -> Result<(&'static str, String), SignError> {
        let offered: Vec<SignatureScheme> = SCHEMES.iter().map(|(s, _)| *s).collect();
        let signer = self
            .key
            .choose_scheme(&offered)
            .ok_or_else(|| SignError("the node key signs with none of the schemes".into()))?;
        let name = SCHEMES
            .iter()
            .find(|(s, _)| *s == signer.scheme())
            .map_or("unknown", |(_, name)| name);
        let signature = signer
            .sign(body)
            .map_err(|e| SignError(format!("signing failed: {e}")))?;
        Ok((
            name,
            base64::engine::general_purpose::STANDARD.encode(signature),
        ))
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> &'static str {
        let offered: Vec<SignatureScheme> = SCHEMES.iter().map(|(s, _)| *s).collect();
        self.key
            .choose_scheme(&offered)
            .and_then(|signer| SCHEMES.iter().find(|(s, _)| *s == signer.scheme()))
            .map_or("unknown", |(_, name)| name)
    }
}

fn algorithm(name: &str) -> Option<&'static dyn rustls_pki_types::SignatureVerificationAlgorithm> {
    Some(match name {
        "ECDSA_P256_SHA256" => webpki::ring::ECDSA_P256_SHA256,
        "ECDSA_P384_SHA384" => webpki::ring::ECDSA_P384_SHA384,
        "ED25519" => webpki::ring::ED25519,
        "RSA_PKCS1_SHA256" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        _ => return None,
    })
}

/// Checks that `signature` (base64) over `body` was made with the key of `certificate_pem`
/// (algorithm `alg`), and, when `ca_pem` is given, that the certificate was issued by that CA
/// and valid at `at_ms`.
pub fn verify(
    certificate_pem: &str,
    ca_pem: Option<&[u8]>,
    at_ms: i64,
    alg: &str,
    body: &[u8],
    signature: &str,
) -> Result<(), SignError> {
    let cert = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
        .map_err(|e| SignError(format!("the node certificate does not parse: {e}")))?;
    let end_entity = webpki::EndEntityCert::try_from(&cert)
        .map_err(|e| SignError(format!("the node certificate does not parse: {e}")))?;
    if let Some(ca_pem) = ca_pem {
        let ca = CertificateDer::from_pem_slice(ca_pem)
            .map_err(|e| SignError(format!("the CA certificate does not parse: {e}")))?;
        let anchor = webpki::anchor_from_trusted_cert(&ca)
            .map_err(|e| SignError(format!("the CA certificate does not parse: {e}")))?;
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_millis(
            u64::try_from(at_ms).unwrap_or(0),
        ));
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &[anchor],
                &[],
                at,
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .map_err(|e| {
                SignError(format!(
                    "the node certificate was not issued by this CA, or not valid then: {e}"
                ))
            })?;
    }
    let alg = algorithm(alg).ok_or_else(|| SignError(format!("unknown algorithm {alg:?}")))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|e| SignError(format!("the signature is not base64: {e}")))?;
    end_entity
        .verify_signature(alg, body, &signature)
        .map_err(|e| SignError(format!("the signature does not verify: {e}")))
}

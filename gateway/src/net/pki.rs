//! A development PKI for `gateway pki init|issue` and `gateway demo`: one exchange CA and leaf
//! certificates naming each party by the SAN URI of its [`Identity`].
//!
//! Production deployments use certificates from the bureaus' own PKI; this one exists so the
//! exchange can be run and tested end to end on one machine. Every leaf is valid for both server
//! and client authentication and for `localhost`, `127.0.0.1` and `::1`, because in the demo the
//! gateway and the simulated bureaus all serve HTTPS on the loopback interface.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use schemas::BureauId;

use super::identity::Identity;

/// The common name of the development CA.
pub const CA_COMMON_NAME: &str = "Shanghai Approval Exchange Dev CA";
/// Validity of the development CA, in days (ten years).
pub const CA_VALIDITY_DAYS: u64 = 3650;
/// Validity of every leaf certificate, in days.
pub const LEAF_VALIDITY_DAYS: u64 = 825;
/// File stem of the CA certificate and key (`ca.pem`, `ca.key`).
pub const CA_STEM: &str = "ca";
/// File stem of the gateway's certificate written by [`init`].
pub const GATEWAY_STEM: &str = "gateway";
/// File stem of the operator certificate written by [`init`].
pub const OPERATOR_STEM: &str = "operator";
/// Operator name of the certificate written by [`init`] (`urn:operator:operator`).
pub const OPERATOR_NAME: &str = "operator";

/// File name of the dev CA's certificate revocation list, written by [`revoke`] and
/// [`sign_crl`]; list it in `tls.crl_files` to apply it.
pub const CRL_FILE: &str = "crl.pem";
/// A CRL written by [`revoke`] announces its next update this many days ahead.
pub const CRL_VALIDITY_DAYS: u64 = 7;

/// Leaves are dated this far back, to tolerate small clock differences between machines.
const BACKDATE: Duration = Duration::from_secs(5 * 60);
const DAY: u64 = 24 * 60 * 60;

/// A failure of the development PKI, naming the file or the certificate concerned.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading, writing or creating a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The CA certificate or key could not be parsed.
    #[error("{}: cannot load the CA: {source}", path.display())]
    LoadCa {
        /// The file that failed to parse.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// The CA certificate is not a readable PEM X.509 certificate.
    #[error("{}: not a readable CA certificate", path.display())]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `ca.key` is not the private key of `ca.pem`.
    #[error("{}: is not the private key of {}", key.display(), cert.display())]
    CaKeyMismatch {
        /// The CA certificate.
        cert: PathBuf,
        /// The CA key.
        key: PathBuf,
    },
    /// Only one file of a certificate/key pair exists; refusing to guess which one to trust.
    #[error(
        "{} exists but {} does not; remove it or reissue with `gateway pki issue`",
        present.display(),
        missing.display()
    )]
    IncompletePair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// Generating a key or signing a certificate failed.
    #[error("cannot generate {what}: {source}")]
    Generate {
        /// What was being generated, e.g. `certificate for urn:bureau:water`.
        what: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// A file stem that is empty or could escape the PKI directory.
    #[error("invalid file stem {0:?}: use letters, digits, - _ .")]
    InvalidStem(String),
    /// A certificate or CRL of the PKI directory could not be read.
    #[error("{}: not a readable {what}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// `certificate` or `CRL`.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What [`revoke`] or [`sign_crl`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlWritten {
    /// The CRL file, `<dir>/crl.pem`.
    pub path: PathBuf,
    /// Its CRL number (one more than the previous one's).
    pub number: u64,
    /// How many certificates it lists as revoked.
    pub revoked: usize,
    /// Whether this call added a certificate to it (false: it was already listed).
    pub added: bool,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where [`init`] put the files of a PKI directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiLayout {
    /// The PKI directory.
    pub dir: PathBuf,
    /// The CA certificate, `ca.pem`.
    pub ca: PathBuf,
    /// The CA private key, `ca.key`.
    pub ca_key: PathBuf,
    /// Whether this call created a new CA (false when an existing one was reused).
    pub ca_created: bool,
    /// The stems of the leaf certificates this call created, in creation order.
    pub created: Vec<String>,
}

impl PkiLayout {
    /// The layout of `dir`, without touching the file system.
    pub fn new(dir: &Path) -> Self {
        let (ca, ca_key) = pair_paths(dir, CA_STEM);
        Self {
            dir: dir.to_owned(),
            ca,
            ca_key,
            ca_created: false,
            created: Vec::new(),
        }
    }

    /// The certificate and key paths of `stem`: `<dir>/<stem>.pem`, `<dir>/<stem>.key`.
    pub fn cert_and_key(&self, stem: &str) -> (PathBuf, PathBuf) {
        pair_paths(&self.dir, stem)
    }

    /// The gateway's certificate and key.
    pub fn gateway(&self) -> (PathBuf, PathBuf) {
        self.cert_and_key(GATEWAY_STEM)
    }

    /// A bureau's certificate and key.
    pub fn bureau(&self, bureau: BureauId) -> (PathBuf, PathBuf) {
        self.cert_and_key(bureau.as_str())
    }

    /// The operator's certificate and key.
    pub fn operator(&self) -> (PathBuf, PathBuf) {
        self.cert_and_key(OPERATOR_STEM)
    }

    /// The CA's certificate revocation list, `<dir>/crl.pem`.
    pub fn crl(&self) -> PathBuf {
        self.dir.join(CRL_FILE)
    }
}

fn pair_paths(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    )
}

/// Creates `dir` if needed, a development CA in it unless `ca.pem` and `ca.key` already exist,
/// and every leaf certificate that is missing: `gateway` for `urn:gateway:<node>`, one per bureau
/// (stem = the bureau id) and `operator` for `urn:operator:operator`. Existing files are never
/// overwritten.
pub fn init(dir: &Path, node: &str) -> Result<PkiLayout, PkiError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut layout = PkiLayout::new(dir);
    let ca = match (layout.ca.exists(), layout.ca_key.exists()) {
        (true, true) => load_ca(&layout.ca, &layout.ca_key)?,
        (false, false) => {
            let ca = create_ca(&layout.ca, &layout.ca_key)?;
            layout.ca_created = true;
            ca
        }
        (true, false) => return Err(incomplete(&layout.ca, &layout.ca_key)),
        (false, true) => return Err(incomplete(&layout.ca_key, &layout.ca)),
    };

    let mut leaves = vec![(GATEWAY_STEM.to_owned(), Identity::Gateway(node.to_owned()))];
    leaves.extend(
        BureauId::ALL
            .into_iter()
            .map(|bureau| (bureau.as_str().to_owned(), Identity::Bureau(bureau))),
    );
    leaves.push((
        OPERATOR_STEM.to_owned(),
        Identity::Operator(OPERATOR_NAME.to_owned()),
    ));

    for (stem, identity) in leaves {
        let (cert, key) = layout.cert_and_key(&stem);
        match (cert.exists(), key.exists()) {
            (true, true) => continue,
            (false, false) => {}
            (true, false) => return Err(incomplete(&cert, &key)),
            (false, true) => return Err(incomplete(&key, &cert)),
        }
        let (cert_pem, key_pem) = issue_leaf(&ca, &identity)?;
        write_new(&key, &key_pem, true)?;
        write_new(&cert, &cert_pem, false)?;
        layout.created.push(stem);
    }
    Ok(layout)
}

/// Issues a certificate for `identity`, signed by the CA in `dir` (`ca.pem`, `ca.key`), and
/// writes `<dir>/<stem>.pem` and `<dir>/<stem>.key`, replacing existing files. Returns the
/// certificate and key paths.
pub fn issue(dir: &Path, identity: &Identity, stem: &str) -> Result<(PathBuf, PathBuf), PkiError> {
    valid_stem(stem)?;
    let layout = PkiLayout::new(dir);
    let ca = load_ca(&layout.ca, &layout.ca_key)?;
    let (cert_pem, key_pem) = issue_leaf(&ca, identity)?;
    let (cert, key) = layout.cert_and_key(stem);
    write_replacing(&key, &key_pem, true)?;
    write_replacing(&cert, &cert_pem, false)?;
    Ok((cert, key))
}

fn valid_stem(stem: &str) -> Result<(), PkiError> {
    let stem_ok = !stem.is_empty()
        && !stem.starts_with('.')
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if stem_ok && stem != CA_STEM {
        Ok(())
    } else {
        Err(PkiError::InvalidStem(stem.to_owned()))
    }
}

/// Revokes the certificate `<dir>/<stem>.pem` (e.g. `water`, `operator-alice`): adds its serial
/// number to the CA's CRL `<dir>/crl.pem` (created if missing) and signs it again with the next
/// CRL number, due for its next update in [`CRL_VALIDITY_DAYS`]. Revoking a certificate twice
/// only re-signs the list. A gateway with the file in `tls.crl_files` applies it to new
/// handshakes at its next CRL check (`tls.crl_check_interval_seconds`) or on SIGHUP.
pub fn revoke(dir: &Path, stem: &str) -> Result<CrlWritten, PkiError> {
    valid_stem(stem)?;
    let layout = PkiLayout::new(dir);
    let (cert, _) = layout.cert_and_key(stem);
    let der = CertificateDer::from_pem_file(&cert).map_err(unreadable(&cert, "certificate"))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| unreadable(&cert, "certificate")(e.to_owned()))?;
    let serial = significant(parsed.raw_serial()).to_vec();
    let now = SystemTime::now();
    let (mut revoked, number) = read_crl(&layout.crl())?;
    let added = !revoked.iter().any(|(s, _)| *s == serial);
    if added {
        revoked.push((serial, now));
    }
    write_crl(
        &layout,
        &revoked,
        number + 1,
        now + Duration::from_secs(CRL_VALIDITY_DAYS * DAY),
        added,
    )
}

/// Signs the CA's CRL again (an empty one if there is none yet) with the next CRL number and
/// `next_update` as its next update (which may be in the past, to test staleness warnings).
pub fn sign_crl(dir: &Path, next_update: SystemTime) -> Result<CrlWritten, PkiError> {
    let layout = PkiLayout::new(dir);
    let (revoked, number) = read_crl(&layout.crl())?;
    write_crl(&layout, &revoked, number + 1, next_update, false)
}

/// A serial number without the sign byte DER may put in front of it.
fn significant(serial: &[u8]) -> &[u8] {
    let start = serial
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(serial.len().saturating_sub(1));
    &serial[start..]
}

fn unreadable<'a, E: std::error::Error + Send + Sync + 'static>(
    path: &'a Path,
    what: &'static str,
) -> impl FnOnce(E) -> PkiError + 'a {
    move |source| PkiError::Unreadable {
        path: path.to_owned(),
        what,
        source: Box::new(source),
    }
}

/// The revoked serial numbers (with their revocation times) and the number of the CRL at
/// `path`; nothing and 0 when there is no file yet.
#[allow(clippy::type_complexity, reason = "a private helper's plain pair")]
fn read_crl(path: &Path) -> Result<(Vec<(Vec<u8>, SystemTime)>, u64), PkiError> {
    if !path.exists() {
        return Ok((Vec::new(), 0));
    }
    let der = CertificateRevocationListDer::from_pem_file(path).map_err(unreadable(path, "CRL"))?;
    let (_, crl) =
        x509_parser::parse_x509_crl(&der).map_err(|e| unreadable(path, "CRL")(e.to_owned()))?;
    let revoked = crl
        .iter_revoked_certificates()
        .map(|entry| {
            let at = u64::try_from(entry.revocation_date.timestamp()).unwrap_or(0);
            (
                significant(entry.raw_serial()).to_vec(),
                SystemTime::UNIX_EPOCH + Duration::from_secs(at),
            )
        })
        .collect();
    let number = crl.crl_number().map_or(0, |n| {
        n.to_bytes_be().iter().fold(0u64, |acc, b| {
            acc.saturating_mul(256).saturating_add(u64::from(*b))
        })
    });
    Ok((revoked, number))
}

fn write_crl(
    layout: &PkiLayout,
    revoked: &[(Vec<u8>, SystemTime)],
    number: u64,
    next_update: SystemTime,
    added: bool,
) -> Result<CrlWritten, PkiError> {
    let what = || "the CRL".to_owned();
    let ca = load_ca(&layout.ca, &layout.ca_key)?;
    let now = SystemTime::now();
    // A CRL's this-update must come before its next update, even for a deliberately stale one.
    let this_update = if next_update > now {
        now
    } else {
        next_update - Duration::from_secs(DAY)
    };
    let params = CertificateRevocationListParams {
        this_update: this_update.into(),
        next_update: next_update.into(),
        crl_number: SerialNumber::from(number.to_be_bytes().to_vec()),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|(serial, at)| RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: (*at).into(),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&ca).map_err(generate(what))?;
    let pem = crl.pem().map_err(generate(what))?;
    let path = layout.crl();
    write_replacing(&path, &pem, false)?;
    Ok(CrlWritten {
        path,
        number,
        revoked: revoked.len(),
        added,
    })
}

fn incomplete(present: &Path, missing: &Path) -> PkiError {
    PkiError::IncompletePair {
        present: present.to_owned(),
        missing: missing.to_owned(),
    }
}

fn generate(what: impl FnOnce() -> String) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Generate {
        what: what(),
        source,
    }
}

fn create_ca(cert: &Path, key: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let what = || "the development CA".to_owned();
    let now = SystemTime::now();
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + Duration::from_secs(CA_VALIDITY_DAYS * DAY)).into();
    let key_pair = KeyPair::generate().map_err(generate(what))?;
    let certificate = params.self_signed(&key_pair).map_err(generate(what))?;
    write_new(key, &key_pair.serialize_pem(), true)?;
    write_new(cert, &certificate.pem(), false)?;
    Ok(Issuer::new(params, key_pair))
}

fn load_ca(cert: &Path, key: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let cert_pem = fs::read_to_string(cert).map_err(io_error(cert))?;
    let key_pem = fs::read_to_string(key).map_err(io_error(key))?;
    let load_error = |path: &Path| {
        let path = path.to_owned();
        move |source| PkiError::LoadCa { path, source }
    };
    let key_pair = KeyPair::from_pem(&key_pem).map_err(load_error(key))?;

    // rcgen would happily sign with an unrelated key; check the pair belongs together.
    let unreadable = |source: Box<dyn std::error::Error + Send + Sync>| PkiError::ReadCa {
        path: cert.to_owned(),
        source,
    };
    let cert_der =
        CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| unreadable(Box::new(e)))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| unreadable(Box::new(e.to_owned())))?;
    if parsed.public_key().subject_public_key.data.as_ref() != key_pair.public_key_raw() {
        return Err(PkiError::CaKeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
        });
    }
    Issuer::from_ca_cert_der(&cert_der, key_pair).map_err(load_error(cert))
}

/// Generates a key pair and a leaf certificate for `identity`; returns (certificate, key) PEM.
fn issue_leaf(ca: &Issuer<'_, KeyPair>, identity: &Identity) -> Result<(String, String), PkiError> {
    let uri = identity.uri();
    let what = || format!("a certificate for {uri}");
    let now = SystemTime::now();
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, uri.as_str());
    params.distinguished_name = name;
    params.subject_alt_names = vec![
        SanType::URI(uri.as_str().try_into().map_err(generate(what))?),
        SanType::DnsName("localhost".try_into().map_err(generate(what))?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + Duration::from_secs(LEAF_VALIDITY_DAYS * DAY)).into();
    let key_pair = KeyPair::generate().map_err(generate(what))?;
    let certificate = params.signed_by(&key_pair, ca).map_err(generate(what))?;
    Ok((certificate.pem(), key_pair.serialize_pem()))
}

fn open_options(private: bool) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    if private {
        options.mode(0o600);
    }
    options
}

/// Writes a file that must not exist yet.
fn write_new(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let mut file = open_options(private)
        .create_new(true)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(path))
}

/// Writes a file through a temporary file and a rename, so a reader never sees half a file and
/// a replaced private key never keeps the permissions of the file it replaces.
fn write_replacing(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = open_options(private)
        .create(true)
        .truncate(true)
        .open(&temporary)
        .map_err(io_error(&temporary))?;
    if private {
        // `mode` only applies when the file is created; a leftover temporary file keeps its own.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_error(&temporary))?;
    }
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temporary))?;
    fs::rename(&temporary, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tls::{peer_identity, seconds_until_expiry};
    use crate::testing::TempDir;

    fn identity_of(cert: &Path) -> Option<Identity> {
        let der = CertificateDer::from_pem_file(cert).unwrap();
        peer_identity(&[der])
    }

    #[test]
    fn init_is_idempotent_and_issue_uses_the_same_ca() {
        let temp = TempDir::new("pki");
        let dir = temp.path().join("nested");
        let layout = init(&dir, "node-1").unwrap();
        assert!(layout.ca_created);
        // The CA, the gateway, every bureau and an operator.
        assert_eq!(
            layout.created.len(),
            BureauId::ALL.len() + 2,
            "{:?}",
            layout.created
        );

        assert_eq!(
            identity_of(&layout.gateway().0),
            Some(Identity::Gateway("node-1".into()))
        );
        assert_eq!(
            identity_of(&layout.operator().0),
            Some(Identity::Operator("operator".into()))
        );
        for bureau in BureauId::ALL {
            let (cert, key) = layout.bureau(bureau);
            assert_eq!(identity_of(&cert), Some(Identity::Bureau(bureau)));
            let mode = fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        assert_eq!(
            fs::metadata(&layout.ca_key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The CA names no identity.
        assert_eq!(identity_of(&layout.ca), None);

        let expected = i64::try_from(LEAF_VALIDITY_DAYS * DAY).unwrap();
        let remaining = seconds_until_expiry(&layout.gateway().0).unwrap();
        assert!(
            (expected - 60..=expected).contains(&remaining),
            "{remaining}"
        );

        // A second init keeps everything, and recreates only what is missing.
        let ca_before = fs::read(&layout.ca).unwrap();
        let water_before = fs::read(layout.bureau(BureauId::Water).0).unwrap();
        let (traffic_cert, traffic_key) = layout.bureau(BureauId::TrafficPolice);
        fs::remove_file(&traffic_cert).unwrap();
        fs::remove_file(&traffic_key).unwrap();
        let again = init(&dir, "node-1").unwrap();
        assert!(!again.ca_created);
        assert_eq!(again.created, vec![BureauId::TrafficPolice.as_str()]);
        assert_eq!(fs::read(&again.ca).unwrap(), ca_before);
        assert_eq!(
            fs::read(again.bureau(BureauId::Water).0).unwrap(),
            water_before
        );

        // Half a pair is refused rather than silently replaced.
        fs::remove_file(layout.operator().1).unwrap();
        assert!(matches!(
            init(&dir, "node-1"),
            Err(PkiError::IncompletePair { .. })
        ));

        // `issue` signs with the same CA (and replaces files).
        let alice = Identity::Operator("alice".into());
        let (cert, key) = issue(&dir, &alice, "operator-alice").unwrap();
        assert_eq!(cert, dir.join("operator-alice.pem"));
        assert_eq!(identity_of(&cert), Some(alice.clone()));
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let first = fs::read(&cert).unwrap();
        issue(&dir, &alice, "operator-alice").unwrap();
        assert_ne!(fs::read(&cert).unwrap(), first);
        assert_eq!(fs::read(&again.ca).unwrap(), ca_before);
        let issued = CertificateDer::from_pem_file(&cert).unwrap();
        let ca = CertificateDer::from_pem_file(&again.ca).unwrap();
        let (_, issued) = x509_parser::parse_x509_certificate(&issued).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
        assert_eq!(issued.issuer(), ca.subject());

        assert!(matches!(
            issue(&dir, &alice, "../escape"),
            Err(PkiError::InvalidStem(_))
        ));
        assert!(matches!(
            issue(&temp.path().join("missing"), &alice, "x"),
            Err(PkiError::Io { .. })
        ));
    }
}

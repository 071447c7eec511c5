//! Development certificates: a throwaway CA and a serving certificate signed by it, so the
//! quickstart needs no openssl.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the CA key does not belong to the CA certificate")]
    KeyMismatch,
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// PEM text of a generated CA and serving pair.
pub struct GeneratedPair {
    pub ca_cert_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A generated CA is valid this long: it outlives any serving certificate it signs, and dev and
/// `certs` installs are expected to be re-run long before then.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// A generated serving certificate is valid for a year, so the expiry metric means something
/// (rcgen's default runs to the year 4096) and a forgotten dev pair does not live forever.
const SERVING_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Validity starts this long in the past, so a node whose clock lags a little still accepts a
/// certificate generated a moment ago.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// DNS names the serving certificate carries: loopback for local use and the in-cluster
/// Service names kube-apiserver dials.
pub fn serving_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Generates a CA and a serving certificate for `names` signed by it.
pub fn generate(names: &[String]) -> Result<GeneratedPair, CertError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kuma-identity-webhook CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca_params, CA_VALIDITY);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    sign_serving(names, &issuer, ca_cert.pem())
}

/// Generates a serving certificate for `names` signed by an existing CA (PEM certificate and
/// key).
pub fn generate_with_ca(
    names: &[String],
    ca_cert_pem: &str,
    ca_key_pem: &str,
) -> Result<GeneratedPair, CertError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    if ca_public_key(ca_cert_pem).as_deref() != Some(ca_key.public_key_raw()) {
        return Err(CertError::KeyMismatch);
    }
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key)?;
    sign_serving(names, &issuer, ca_cert_pem.to_owned())
}

/// The raw public key of a PEM certificate (the contents of its subjectPublicKey bit string).
fn ca_public_key(cert_pem: &str) -> Option<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.public_key().subject_public_key.data.to_vec())
}

fn sign_serving(
    names: &[String],
    issuer: &Issuer<'_, KeyPair>,
    ca_cert_pem: String,
) -> Result<GeneratedPair, CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().map_or("localhost", String::as_str),
    );
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params, SERVING_VALIDITY);
    let cert = params.signed_by(&key, issuer)?;
    Ok(GeneratedPair {
        ca_cert_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Writes `tls.crt`, `tls.key` and `ca.crt` next to `cert_path` when the pair is missing or its
/// certificate is about to expire; returns the CA path when it generated one.
pub fn ensure_dev_pair(
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> Result<Option<PathBuf>, CertError> {
    if cert_path.exists() && key_path.exists() && !expiring(cert_path) {
        return Ok(None);
    }
    let pair = generate(names)?;
    let ca_path = cert_path.with_file_name("ca.crt");
    for (path, pem) in [
        (cert_path, &pair.cert_pem),
        (key_path, &pair.key_pem),
        (ca_path.as_path(), &pair.ca_cert_pem),
    ] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        write_private(path, pem).map_err(|source| CertError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(Some(ca_path))
}

/// A dev pair this close to its end is replaced: `--dev` should never serve an expired one.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whether the certificate at `path` ends within [`RENEW_BEFORE`]. One that cannot be read as a
/// certificate is not ours to replace: the server reports it when loading.
fn expiring(path: &Path) -> bool {
    let Ok(pem) = std::fs::read(path) else {
        return false;
    };
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&pem) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    let renew_at = time::OffsetDateTime::now_utc() + RENEW_BEFORE;
    cert.validity().not_after.timestamp() <= renew_at.unix_timestamp()
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + validity;
}

/// Writes `contents` readable by the owner only: these files hold private keys (or sit beside
/// them), and a world-readable key on a shared machine is a leaked key.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // `mode` only applies when the file is created; an existing file is narrowed too.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_pair_is_kept_while_valid_and_replaced_near_expiry() {
        let dir = std::env::temp_dir().join(format!("kiw-certs-{}", std::process::id()));
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        let names = serving_names("svc", "ns");
        assert!(ensure_dev_pair(&cert, &key, &names).unwrap().is_some());
        let first = std::fs::read_to_string(&cert).unwrap();
        assert!(ensure_dev_pair(&cert, &key, &names).unwrap().is_none());
        assert_eq!(std::fs::read_to_string(&cert).unwrap(), first);

        // A certificate with a week left is renewed.
        let key_pair = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(3600);
        params.not_after = now + Duration::from_secs(7 * 24 * 3600);
        let short = params.self_signed(&key_pair).unwrap();
        write_private(&cert, &short.pem()).unwrap();
        assert!(ensure_dev_pair(&cert, &key, &names).unwrap().is_some());
        assert!(!expiring(&cert));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Development certificates: a throwaway CA and a serving certificate signed by it, so the
//! quickstart needs no openssl.

use std::path::{Path, PathBuf};

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
    let cert = params.signed_by(&key, issuer)?;
    Ok(GeneratedPair {
        ca_cert_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Writes `tls.crt`, `tls.key` and `ca.crt` next to `cert_path` when the pair is missing; returns
/// the CA path when it generated one.
pub fn ensure_dev_pair(
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> Result<Option<PathBuf>, CertError> {
    if cert_path.exists() && key_path.exists() {
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
        std::fs::write(path, pem).map_err(|source| CertError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(Some(ca_path))
}

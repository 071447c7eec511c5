//! Serving-certificate rotation without restarts (the client CA of [`super::client_auth`] is
//! reloaded the same way).
//!
//! The TLS configuration asks [`CertStore`] for the certificate on every handshake, and a poller
//! re-reads the files every [`super::poll::POLL_INTERVAL`]. Reading by path follows symlinks, so both in-place
//! rewrites and the kubelet's `..data` symlink flip of a Secret volume are picked up. A pair that
//! does not load (half written, key and certificate not matching) is ignored: the last good pair
//! keeps being served, and the failure is logged and counted. Open connections keep the
//! certificate they were established with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::crypto::{provider, TlsError};
use super::poll::poll;
use crate::metrics::Metrics;

/// A loaded pair and the bytes it was loaded from (to notice changes cheaply).
struct Loaded {
    key: Arc<CertifiedKey>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

/// The serving certificate currently in force.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Loaded>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish()
    }
}

impl CertStore {
    /// Loads the pair once; a server must not start without a certificate.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let loaded = load_pair(cert_path, key_path)?;
        Ok(Self {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(loaded),
        })
    }

    /// Re-reads the files; swaps in the new pair when they changed and load cleanly.
    /// Returns `Ok(true)` when a new pair was installed.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let cert_pem = read(&self.cert_path, true)?;
        let key_pem = read(&self.key_path, false)?;
        let unchanged = self
            .current
            .read()
            .map(|c| c.cert_pem == cert_pem && c.key_pem == key_pem)
            .unwrap_or(false);
        if unchanged {
            return Ok(false);
        }
        let loaded = parse_pair(&self.cert_path, &self.key_path, cert_pem, key_pem)?;
        if let Ok(mut current) = self.current.write() {
            *current = loaded;
        }
        Ok(true)
    }

    /// The end-entity certificate's expiry, as Unix seconds.
    pub fn expiry_unix_seconds(&self) -> Option<i64> {
        let current = self.current.read().ok()?;
        let der = current.key.end_entity_cert().ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        Some(cert.validity().not_after.timestamp())
    }

    /// Polls the files until the task is dropped, recording reloads and failures.
    pub async fn watch(self: Arc<Self>, metrics: Arc<Metrics>) {
        self.record_expiry(&metrics);
        poll(
            "serving certificate",
            &self.cert_path,
            || self.reload(),
            || {
                metrics.tls_reloads.inc();
                self.record_expiry(&metrics);
            },
            || {
                metrics.tls_reload_errors.inc();
            },
        )
        .await
    }

    fn record_expiry(&self, metrics: &Metrics) {
        if let Some(expiry) = self.expiry_unix_seconds() {
            metrics.tls_expiry.set(expiry);
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.key.clone())
    }
}

fn read(path: &Path, is_cert: bool) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| {
        let (path, message) = (path.display().to_string(), e.to_string());
        if is_cert {
            TlsError::Certificate { path, message }
        } else {
            TlsError::Key { path, message }
        }
    })
}

fn load_pair(cert_path: &Path, key_path: &Path) -> Result<Loaded, TlsError> {
    let cert_pem = read(cert_path, true)?;
    let key_pem = read(key_path, false)?;
    parse_pair(cert_path, key_path, cert_pem, key_pem)
}

/// Parses a PEM chain and key and checks that they belong together.
fn parse_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
) -> Result<Loaded, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate {
            path: cert_path.display().to_string(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.display().to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
        path: key_path.display().to_string(),
        message: e.to_string(),
    })?;
    let certified = CertifiedKey::from_der(chain, key, &provider())?;
    Ok(Loaded {
        key: Arc::new(certified),
        cert_pem,
        key_pem,
    })
}

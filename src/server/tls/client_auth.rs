//! Who may call: with `--client-ca`, the admission listener accepts only clients that present a
//! certificate chained to that CA (kube-apiserver presents one when its AdmissionConfiguration
//! names a kubeconfig with `client-certificate`).
//!
//! The CA file is re-read like the serving pair ([`super::reload::poll`]): a changed file that
//! loads replaces the CA for new handshakes, one that does not (half written, no certificate)
//! is logged and counted and the last good CA stays in force. Established connections keep
//! the verdict of their handshake.
//!
//! The certificate request names no acceptable CAs: the list would have to be borrowed from a
//! CA that can change under it, and the clients that matter (kube-apiserver and Go clients,
//! curl, rustls) send their certificate without one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::crypto::{provider, TlsError};
use super::poll::poll;
use crate::metrics::Metrics;

/// The client CA in force, and the bytes it was loaded from (to notice changes cheaply).
struct Loaded {
    verifier: Arc<dyn ClientCertVerifier>,
    pem: Vec<u8>,
}

/// Verifies client certificates against the CA bundle in a file, reloaded while serving.
pub struct ClientCa {
    path: PathBuf,
    current: RwLock<Loaded>,
}

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCa")
            .field("path", &self.path)
            .finish()
    }
}

impl ClientCa {
    /// Loads the CA bundle once; a server must not start without one when it was asked for.
    pub fn load(path: &Path) -> Result<Self, TlsError> {
        let pem = read(path)?;
        let loaded = parse(path, pem)?;
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new(loaded),
        })
    }

    /// Re-reads the file; swaps in the new CA when it changed and loads cleanly. Returns
    /// `Ok(true)` when a new CA was installed.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let pem = read(&self.path)?;
        let unchanged = self
            .current
            .read()
            .map(|current| current.pem == pem)
            .unwrap_or(false);
        if unchanged {
            return Ok(false);
        }
        let loaded = parse(&self.path, pem)?;
        if let Ok(mut current) = self.current.write() {
            *current = loaded;
        }
        Ok(true)
    }

    /// Polls the file until the task is dropped, recording reloads and failures.
    pub async fn watch(self: Arc<Self>, metrics: Arc<Metrics>) {
        poll(
            "client CA",
            &self.path,
            || self.reload(),
            || {
                metrics.client_ca_reloads.inc();
            },
            || {
                metrics.client_ca_reload_errors.inc();
            },
        )
        .await
    }

    fn verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        self.current
            .read()
            .map(|current| current.verifier.clone())
            .map_err(|_| rustls::Error::General("client CA lock poisoned".to_owned()))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::ClientCa {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Builds a verifier that requires a client certificate chained to one of the PEM CAs.
fn parse(path: &Path, pem: Vec<u8>) -> Result<Loaded, TlsError> {
    let error = |message: String| TlsError::ClientCa {
        path: path.display().to_string(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| error(e.to_string()))?;
        roots.add(cert).map_err(|e| error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(error("no CA certificate in the file".to_owned()));
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| error(e.to_string()))?;
    Ok(Loaded { verifier, pem })
}

/// Each call goes to the CA in force at that moment.
impl ClientCertVerifier for ClientCa {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier()?
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

//! The admission listener's TLS configuration.

use std::path::Path;
use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;
use rustls::ServerConfig;

use super::crypto::{provider, TlsError};
use super::store::CertStore;

/// ALPN protocols offered: kube-apiserver speaks HTTP/1.1 to webhooks; h2 serves other clients.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A server configuration that speaks TLS 1.2 and 1.3 only and takes its certificate from
/// `store` on every handshake, so rotated certificates apply to new connections. With
/// `client_auth`, every client must present a certificate it accepts.
pub fn server_config(
    store: Arc<CertStore>,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?;
    let builder = match client_auth {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(store);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Loads a PEM certificate chain and key into a server configuration (no rotation, no client
/// authentication).
pub fn load_server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    server_config(Arc::new(CertStore::load(cert_path, key_path)?), None)
}

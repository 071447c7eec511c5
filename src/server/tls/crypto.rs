//! What every TLS piece shares: the crypto provider and the error type.

use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading certificate {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("reading private key {path}: {message}")]
    Key { path: String, message: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("reading client CA {path}: {message}")]
    ClientCa { path: String, message: String },
    #[error("building TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider, chosen explicitly so no feature unification can pick another one.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

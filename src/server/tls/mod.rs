//! TLS for the admission listener: the configuration, the serving pair that rotates without a
//! restart, optional client-certificate authentication, and development certificates.

pub mod certs;
pub mod client_auth;
mod config;
mod crypto;
mod poll;
pub mod store;

pub use config::{load_server_config, server_config, ALPN};
pub use crypto::{provider, TlsError};
pub use poll::POLL_INTERVAL;

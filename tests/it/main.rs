//! Every integration test in one binary, so the shared `support` module compiles once. Each
//! module tests one surface: the admission fixtures, the server's protocol and deadlines, the
//! built binary (quickstart, drain, hostile input, settings), the live state against a fake API
//! server, the offline commands, the deploy manifests, and the Go oracles.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod admission_fixtures;
mod audit;
mod audit_agreement;
mod audit_scale;
mod boolean_settings;
mod cert_rotation;
mod certs_cli;
mod client_auth;
mod connection_deadlines;
mod crds;
mod deploy_manifests;
mod deploy_rendered;
mod drain;
mod duration_oracle;
mod gotemplate_oracle;
mod hostile_input;
mod inject_golden;
mod inject_https;
mod live_scale;
mod live_state;
mod no_panic;
mod offline_cli;
mod quickstart;
mod server_protocol;
mod webhook_order;

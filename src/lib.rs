//! kuma-identity-webhook: admission for Kuma's `MeshIdentity` and SPIRE agent socket injection.
//!
//! Layers: [`api`] types; pure decisions in [`validate`], [`inject`], [`select`] and [`render`]
//! over a read-only [`state::ClusterView`]; thin adapters in [`admission`] (AdmissionReview
//! envelope), [`server`] (HTTPS) and the CLI in the binary.

pub mod admission;
pub mod api;
pub mod certs;
pub mod config;
pub mod crd;
pub mod dataplane;
pub mod duration;
pub mod explain;
pub mod gotemplate;
pub mod inject;
pub mod live;
pub mod manifest;
pub mod metrics;
pub mod mutate;
pub mod offline;
pub mod pruned;
pub mod registration;
pub mod render;
pub mod select;
pub mod server;
pub mod spiffe;
pub mod state;
pub mod supervise;
pub mod validate;

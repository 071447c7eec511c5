//! kuma-identity-webhook: admission for Kuma's `MeshIdentity` and SPIRE agent socket injection.
//!
//! Layers (ARCHITECTURE.md has the map): [`api`] types; pure decisions in [`validate`],
//! [`inject`] and [`identity`] over a read-only [`cluster::ClusterView`], answering with a
//! [`verdict::Verdict`]; adapters around them: [`admission`] (the AdmissionReview envelope and
//! the webhook table), [`server`] (HTTPS), [`cluster::watch`] (Kubernetes watches), [`offline`]
//! (the command line's `check`, `inject` and `explain`).

pub mod admission;
pub mod api;
pub mod audit;
pub mod cluster;
pub mod config;
pub mod gotemplate;
pub mod identity;
pub mod inject;
pub mod metrics;
pub mod offline;
pub mod server;
pub mod supervise;
pub mod validate;
pub mod verdict;

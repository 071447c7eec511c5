//! The same decisions without a cluster: `check` applies manifests as `kubectl apply
//! --dry-run=server` would ([`apply`]), `inject` rewrites workloads' pod templates
//! ([`workloads`]), `explain` says why a pod gets its identity ([`explain`]). The webhooks called
//! are the ones the shipped registrations select ([`registration`]).

pub mod apply;
pub mod explain;
pub mod registration;
pub mod sources;
pub mod workloads;

pub use apply::{check, Answer, Cluster, ObjectResult};
pub use sources::{load_sources, Source};
pub use workloads::{pod_of, pod_template_pointer, short_name};

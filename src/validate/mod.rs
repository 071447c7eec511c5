//! Admission decisions: pure functions over (request, cluster view, settings) that return a
//! [`crate::verdict::Verdict`]. The HTTPS server and the offline CLI both call these and only these.

pub mod duration;
pub mod mesh;
pub mod meshidentity;
pub mod pod;
mod provider;
mod templates;
mod workload;

pub use workload::how_to_give_a_workload;
